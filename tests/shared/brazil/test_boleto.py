"""Boleto: the vectors of brazil-rules.md §5, plus generated barcodes (check digits from a small
independent oracle) that must round-trip through the line and decode amount and due date."""

from __future__ import annotations

import string
from datetime import date, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.brazil.boleto import Boleto, dates_for_factor, due_factor, parse_boleto
from shared.brazil.errors import InvalidValue

TODAY = date(2026, 11, 1)

# --- oracle ---------------------------------------------------------------------------------


def luhn_dv(digits: str) -> int:
    total = 0
    for i, c in enumerate(digits[::-1]):
        n = int(c) * (2 - i % 2)
        total += n - 9 if n > 9 else n
    return -total % 10


def weighted_mod11(digits: str) -> int:
    weights = [2, 3, 4, 5, 6, 7, 8, 9] * 6
    return sum(int(c) * w for c, w in zip(digits[::-1], weights, strict=False)) % 11


def bank_barcode(bank: str, factor: int, cents: int, free: str, currency: str = "9") -> str:
    body = f"{bank}{currency}{factor:04d}{cents:010d}{free}"
    dv = 11 - weighted_mod11(body)
    return f"{body[:4]}{1 if dv > 9 else dv}{body[4:]}"


def arrecadacao_dv(digits: str, value_id: str) -> int:
    if value_id in "67":
        return luhn_dv(digits)
    r = weighted_mod11(digits)
    return 0 if r < 2 else 11 - r


def arrecadacao_barcode(value_id: str, rest: str) -> str:
    body = f"8{rest[0]}{value_id}{rest[1:]}"  # 43 digits, general DV goes 4th
    return f"{body[:3]}{arrecadacao_dv(body, value_id)}{body[3:]}"


# --- reference vectors ----------------------------------------------------------------------

VECTOR_1 = (
    "00190.50095 40144.816069 06809.350314 3 37370000000100",
    "00193373700000001000500940144816060680935031",
)
VECTOR_2 = (
    "23793.38128 60007.827136 95000.063305 9 75520000370000",
    "23799755200003700003381260007827139500006330",
)


@pytest.mark.parametrize(
    ("line", "barcode", "bank", "amount", "old", "new"),
    [
        (*VECTOR_1, "001", Decimal("1.00"), date(2007, 12, 31), date(2032, 8, 21)),
        (*VECTOR_2, "237", Decimal("3700.00"), date(2018, 6, 11), date(2043, 1, 31)),
    ],
)
def test_bancario_vectors(
    line: str, barcode: str, bank: str, amount: Decimal, old: date, new: date
) -> None:
    digits = line.replace(".", "").replace(" ", "")
    from_line = parse_boleto(line, today=old)
    from_barcode = parse_boleto(barcode, today=old)
    assert from_line == from_barcode
    assert from_line == Boleto(
        barcode=barcode, line=digits, bank=bank, amount=amount, due_date=old, kind="bancario"
    )
    assert from_line.display_line == line
    assert str(from_line.amount) == f"{amount:.2f}"
    assert parse_boleto(digits, today=new).due_date == new
    assert dates_for_factor(int(barcode[5:9])) == (old, new)


@pytest.mark.parametrize(
    ("line", "barcode", "amount"),
    [
        (
            "836200000005667800481000180975657313001589636081",
            "83620000000667800481001809756573100158963608",
            Decimal("66.78"),
        ),
        (
            "848900000002404201622015806051904292586034111220",
            "84890000000404201622018060519042958603411122",
            Decimal("40.42"),
        ),
    ],
)
def test_arrecadacao_vectors(line: str, barcode: str, amount: Decimal) -> None:
    expected = Boleto(
        barcode=barcode, line=line, bank=None, amount=amount, due_date=None, kind="arrecadacao"
    )
    assert parse_boleto(line) == expected
    assert parse_boleto(barcode) == expected
    assert parse_boleto(expected.display_line) == expected
    assert expected.display_line.startswith(f"{line[:11]}-{line[11]} ")


@pytest.mark.parametrize(
    ("day", "factor"),
    [
        (date(2000, 7, 3), 1000),
        (date(2025, 2, 21), 9999),
        (date(2025, 2, 22), 1000),
        (date(2025, 2, 23), 1001),
        (date(2049, 10, 13), 9999),
        (date(2007, 12, 31), 3737),
        (date(2032, 8, 21), 3737),
    ],
)
def test_factor_vectors(day: date, factor: int) -> None:
    assert due_factor(day) == factor
    assert day in dates_for_factor(factor)


def test_factor_limits() -> None:
    with pytest.raises(InvalidValue):
        due_factor(date(2000, 7, 2))
    for factor in (0, 999, 10000):
        with pytest.raises(InvalidValue):
            dates_for_factor(factor)


def test_factor_zero_means_no_due_date() -> None:
    barcode = bank_barcode("341", 0, 12345, "1" * 25)
    boleto = parse_boleto(barcode, today=TODAY)
    assert boleto.due_date is None
    assert boleto.amount == Decimal("123.45")


def test_zero_amount_is_none() -> None:
    assert parse_boleto(bank_barcode("104", 9000, 0, "2" * 25), today=TODAY).amount is None


# --- failures name the check ----------------------------------------------------------------


def _change(text: str, index: int) -> str:
    return text[:index] + str((int(text[index]) + 1) % 10) + text[index + 1 :]


@pytest.mark.parametrize(
    ("index", "reason"),
    [
        (9, "boleto field 1 check digit (mod 10) does not match"),
        (20, "boleto field 2 check digit (mod 10) does not match"),
        (31, "boleto field 3 check digit (mod 10) does not match"),
        (32, "boleto general check digit (mod 11) does not match"),
        (40, "boleto general check digit (mod 11) does not match"),
    ],
)
def test_bancario_line_failures(index: int, reason: str) -> None:
    line = VECTOR_1[0].replace(".", "").replace(" ", "")
    with pytest.raises(InvalidValue) as caught:
        parse_boleto(_change(line, index), today=TODAY)
    assert caught.value.reason == reason


def test_bancario_barcode_failure() -> None:
    with pytest.raises(InvalidValue) as caught:
        parse_boleto(_change(VECTOR_1[1], 4), today=TODAY)
    assert caught.value.reason == "boleto general check digit (mod 11) does not match"


def test_other_currency_is_refused() -> None:
    with pytest.raises(InvalidValue) as caught:
        parse_boleto(bank_barcode("001", 3737, 100, "0" * 25, currency="0"), today=TODAY)
    assert caught.value.reason == "boleto currency code must be 9 (real)"


def test_factor_below_1000_is_refused() -> None:
    with pytest.raises(InvalidValue) as caught:
        parse_boleto(bank_barcode("001", 500, 100, "0" * 25), today=TODAY)
    assert caught.value.reason == "boleto due-date factor is out of range"


@pytest.mark.parametrize(
    ("index", "reason"),
    [
        (11, "arrecadação block 1 check digit does not match"),
        (23, "arrecadação block 2 check digit does not match"),
        (35, "arrecadação block 3 check digit does not match"),
        (47, "arrecadação block 4 check digit does not match"),
    ],
)
def test_arrecadacao_line_failures(index: int, reason: str) -> None:
    line = "836200000005667800481000180975657313001589636081"
    with pytest.raises(InvalidValue) as caught:
        parse_boleto(_change(line, index))
    assert caught.value.reason == reason


def test_arrecadacao_general_dv_and_value_id() -> None:
    with pytest.raises(InvalidValue) as caught:
        parse_boleto(_change("83620000000667800481001809756573100158963608", 3))
    assert caught.value.reason == "arrecadação general check digit does not match"
    with pytest.raises(InvalidValue, match="3rd digit"):
        parse_boleto("83520000000667800481001809756573100158963608")


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "123",
        "0019337370000000100050094014481606068093503",  # 43 digits
        "0019X373700000001000500940144816060680935031",
        "136200000005667800481000180975657313001589636081",  # 48 digits not starting with 8
    ],
)
def test_shape_failures(raw: str) -> None:
    with pytest.raises(InvalidValue):
        parse_boleto(raw, today=TODAY)


# --- properties -----------------------------------------------------------------------------

banks = st.text(string.digits, min_size=3, max_size=3).filter(lambda bank: bank[0] != "8")
free_fields = st.text(string.digits, min_size=25, max_size=25)
cents = st.integers(0, 9_999_999_999)
due_dates = st.dates(date(2000, 7, 3), date(2049, 10, 13))


@settings(max_examples=150)
@given(bank=banks, due=due_dates, amount=cents, free=free_fields, offset=st.integers(-3000, 5500))
def test_generated_bancario_round_trip(
    bank: str, due: date, amount: int, free: str, offset: int
) -> None:
    barcode = bank_barcode(bank, due_factor(due), amount, free)
    today = due - timedelta(days=offset)  # due is within [today - 3000, today + 5500]
    boleto = parse_boleto(barcode, today=today)
    assert len(boleto.line) == 47
    assert parse_boleto(boleto.line, today=today) == boleto
    assert parse_boleto(boleto.display_line, today=today) == boleto
    assert boleto.barcode == barcode
    assert boleto.bank == bank
    assert boleto.due_date == due
    assert boleto.amount == (Decimal(amount) / 100 if amount else None)
    assert boleto.line[9] == str(luhn_dv(boleto.line[:9]))


@settings(max_examples=100)
@given(
    bank=banks,
    factor=st.integers(1000, 9999),
    free=free_fields,
    index=st.integers(0, 31),
    shift=st.integers(1, 9),
)
def test_any_changed_digit_in_fields_1_to_3_is_refused(
    bank: str, factor: int, free: str, index: int, shift: int
) -> None:
    line = parse_boleto(bank_barcode(bank, factor, 100, free), today=TODAY).line
    changed = line[:index] + str((int(line[index]) + shift) % 10) + line[index + 1 :]
    with pytest.raises(InvalidValue):
        parse_boleto(changed, today=TODAY)


@settings(max_examples=150)
@given(
    value_id=st.sampled_from("6789"),
    rest=st.text(string.digits, min_size=41, max_size=41),
)
def test_generated_arrecadacao_round_trip(value_id: str, rest: str) -> None:
    barcode = arrecadacao_barcode(value_id, rest)
    boleto = parse_boleto(barcode)
    assert boleto.kind == "arrecadacao"
    assert len(boleto.line) == 48
    assert parse_boleto(boleto.line) == boleto
    value = int(barcode[4:15])
    expected = Decimal(value) / 100 if value and value_id in "68" else None
    assert boleto.amount == expected


@settings(max_examples=100)
@given(due=due_dates)
def test_factor_round_trip(due: date) -> None:
    factor = due_factor(due)
    assert 1000 <= factor <= 9999
    old, new = dates_for_factor(factor)
    assert due in (old, new)
    assert (new - old).days == 9000
