from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.brazil.errors import InvalidValue
from shared.brazil.numbers import (
    CENT,
    format_brl,
    format_date_br,
    parse_amount,
    parse_date,
    round_money,
)

NBSP = "\u00a0"

# --- round_money ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("0.005", "0.01"),
        ("0.004", "0.00"),
        ("2.675", "2.68"),  # the float-famous tie, exact in Decimal
        ("1234.565", "1234.57"),
        ("1234.575", "1234.58"),
        ("-0.005", "-0.01"),  # ties go away from zero
        ("3.75", "3.75"),
        ("10", "10.00"),
    ],
)
def test_round_money_is_half_up(raw: str, expected: str) -> None:
    rounded = round_money(Decimal(raw))
    assert rounded == Decimal(expected)
    assert rounded.as_tuple().exponent == -2


def test_cent() -> None:
    assert Decimal("0.01") == CENT


@pytest.mark.parametrize("raw", ["NaN", "Infinity", "-Infinity", "sNaN"])
def test_round_money_refuses_non_finite(raw: str) -> None:
    with pytest.raises(InvalidValue):
        round_money(Decimal(raw))


# --- parse_amount --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1.234,56", "1234.56"),
        ("1234,56", "1234.56"),
        ("1234.56", "1234.56"),
        ("R$ 1.234,56", "1234.56"),
        (f"R${NBSP}1.234,56", "1234.56"),
        ("R$1.234,56", "1234.56"),
        ("r$ 10", "10.00"),
        (" 250 ", "250.00"),
        ("250.5", "250.50"),
        ("250,5", "250.50"),
        ("0,05", "0.05"),
        ("0", "0.00"),
        ("1.234", "1234.00"),  # a lone dot before 3 digits groups thousands
        ("12.345.678", "12345678.00"),
        ("12.345.678,90", "12345678.90"),
        ("1,234.56", "1234.56"),  # both present: the last one is the decimal separator
        ("1,234,567.89", "1234567.89"),
        ("1.23", "1.23"),
        ("0250,00", "250.00"),
        (f"{NBSP}R$ 5,00{NBSP}", "5.00"),
    ],
)
def test_parse_amount_accepts(raw: str, expected: str) -> None:
    parsed = parse_amount(raw)
    assert parsed == Decimal(expected)
    assert isinstance(parsed, Decimal)
    assert parsed.as_tuple().exponent == -2


@pytest.mark.parametrize(
    ("raw", "reason_part"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("R$ ", "empty"),
        ("-10,00", "negative"),
        ("R$ -10,00", "negative"),
        ("\u221210", "negative"),  # the Unicode minus sign
        ("1234,567", "2 decimal places"),
        ("1234.567", "2 decimal places"),  # not grouped (4 digits before the dot)
        ("1.234,567", "2 decimal places"),
        ("1,234", "2 decimal places"),  # a lone comma is decimal, so 3 places
        ("0.123", "2 decimal places"),  # "0" cannot start a thousands group
        ("NaN", "not a number"),
        ("nan", "not a number"),
        ("inf", "not a number"),
        ("Infinity", "not a number"),
        ("1e3", "not a number"),
        ("abc", "not a number"),
        ("12 345", "not a number"),
        ("US$ 10", "not a number"),
        ("\uff11\uff12", "not a number"),  # full-width digits
        ("1.23.4", "groups of three"),
        ("12.34,56", "groups of three"),
        ("1.2345,00", "groups of three"),
        ("1,2,3", "more than one decimal comma"),
        ("250.", "ends with a separator"),
        ("250,", "ends with a separator"),
        (",50", "digits before"),
        (".50", "digits before"),
        ("9" * 41, "too long"),
    ],
)
def test_parse_amount_refuses(raw: str, reason_part: str) -> None:
    with pytest.raises(InvalidValue) as caught:
        parse_amount(raw)
    assert reason_part in caught.value.reason


def test_parse_amount_reason_does_not_echo_the_input() -> None:
    with pytest.raises(InvalidValue) as caught:
        parse_amount("12.34,56")
    assert "12.34" not in caught.value.reason


# --- parse_date ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("10/03/2025", date(2025, 3, 10)),
        ("1/3/2025", date(2025, 3, 1)),
        ("01/3/2025", date(2025, 3, 1)),
        ("10-03-2025", date(2025, 3, 10)),
        ("10.03.2025", date(2025, 3, 10)),
        ("2025-03-10", date(2025, 3, 10)),
        ("  2025-03-10 ", date(2025, 3, 10)),
        ("2025-03-10T14:05:00", date(2025, 3, 10)),
        ("2025-03-10T23:30:00-03:00", date(2025, 3, 10)),
        ("2025-03-10T02:00:00Z", date(2025, 3, 10)),  # the date as written, no conversion
        ("29/02/2024", date(2024, 2, 29)),
    ],
)
def test_parse_date_accepts(raw: str, expected: date) -> None:
    parsed = parse_date(raw)
    assert parsed == expected
    assert type(parsed) is date


@pytest.mark.parametrize(
    ("raw", "reason_part"),
    [
        ("", "empty"),
        ("10/03/25", "Two-digit years"),
        ("1-3-25", "Two-digit years"),
        ("31/02/2025", "does not exist"),
        ("29/02/2025", "does not exist"),
        ("2025-02-30", "does not exist"),
        ("00/01/2025", "does not exist"),
        ("10/13/2025", "does not exist"),  # US order is not guessed
        ("10/03-2025", "dd/mm/aaaa"),  # mixed separators
        ("2025/03/10", "dd/mm/aaaa"),
        ("10 de março de 2025", "dd/mm/aaaa"),
        ("20250310", "dd/mm/aaaa"),
        ("2025-03-10T", "dd/mm/aaaa"),
        ("2025-03-10Tlunch", "ISO 8601 time"),
        ("2025-02-30T10:00:00", "does not exist"),
        ("01/01/1899", "year"),
        ("0001-01-01", "year"),
        ("1" * 41, "too long"),
    ],
)
def test_parse_date_refuses(raw: str, reason_part: str) -> None:
    with pytest.raises(InvalidValue) as caught:
        parse_date(raw)
    assert reason_part in caught.value.reason


# --- formatting ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "expected"),
    [
        ("1234.56", f"R${NBSP}1.234,56"),
        ("1234.565", f"R${NBSP}1.234,57"),  # Babel alone would give 1.234,56 (HALF_EVEN)
        ("1234.575", f"R${NBSP}1.234,58"),
        ("0", f"R${NBSP}0,00"),
        ("0.5", f"R${NBSP}0,50"),
        ("258.75", f"R${NBSP}258,75"),
        ("1234567.891", f"R${NBSP}1.234.567,89"),
    ],
)
def test_format_brl(amount: str, expected: str) -> None:
    assert format_brl(Decimal(amount)) == expected


def test_format_brl_keeps_the_no_break_space() -> None:
    text = format_brl(Decimal("1234.56"))
    assert NBSP in text
    assert text != "R$ 1.234,56"


def test_format_brl_refuses_floats_and_nan() -> None:
    with pytest.raises(TypeError):
        format_brl(1234.56)  # type: ignore[arg-type]
    with pytest.raises(InvalidValue):
        format_brl(Decimal("NaN"))


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (date(2025, 3, 1), "01/03/2025"),
        (date(2025, 12, 31), "31/12/2025"),
        (datetime(2025, 3, 10, 14, 5), "10/03/2025"),
    ],
)
def test_format_date_br(day: date, expected: str) -> None:
    assert format_date_br(day) == expected


# --- round trips ---------------------------------------------------------------------------

amounts = st.decimals(
    min_value=Decimal("0"),
    max_value=Decimal("999999999.99"),
    places=2,
    allow_nan=False,
    allow_infinity=False,
)


@settings(max_examples=200, deadline=None)
@given(amounts)
def test_formatted_amounts_parse_back(amount: Decimal) -> None:
    assert parse_amount(format_brl(amount)) == amount
    assert parse_amount(format_brl(amount).replace(NBSP, " ")) == amount


@settings(max_examples=200, deadline=None)
@given(amounts)
def test_plain_dot_decimal_amounts_parse_back(amount: Decimal) -> None:
    assert parse_amount(f"{amount:.2f}") == amount
    assert parse_amount(f"{amount:.2f}".replace(".", ",")) == amount


@settings(max_examples=200, deadline=None)
@given(st.dates(min_value=date(1900, 1, 1), max_value=date(2199, 12, 31)))
def test_formatted_dates_parse_back(day: date) -> None:
    assert parse_date(format_date_br(day)) == day
    assert parse_date(day.isoformat()) == day
