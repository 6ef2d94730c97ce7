"""CPF and CNPJ: the vectors of brazil-rules.md §6 plus generated documents checked against a
small independent check-digit oracle."""

from __future__ import annotations

import string

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from shared.brazil.documents import (
    document_kind,
    format_document,
    mask_document,
    normalize_document,
)
from shared.brazil.errors import InvalidValue

# --- oracle ---------------------------------------------------------------------------------


def _dv(values: list[int], weights: list[int]) -> int:
    remainder = sum(v * w for v, w in zip(values, weights, strict=True)) % 11
    return 0 if remainder < 2 else 11 - remainder


def cpf_with_dv(base: str) -> str:
    values = [int(c) for c in base]
    values.append(_dv(values, list(range(10, 1, -1))))
    values.append(_dv(values, list(range(11, 1, -1))))
    return "".join(str(v) for v in values)


def cnpj_with_dv(base: str) -> str:
    values = [ord(c) - 48 for c in base]
    first = _dv(values, [5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2])
    second = _dv([*values, first], [6, 5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2])
    return f"{base}{first}{second}"


cpfs = st.text(string.digits, min_size=9, max_size=9).map(cpf_with_dv)
numeric_cnpjs = st.text(string.digits, min_size=12, max_size=12).map(cnpj_with_dv)
alnum_cnpjs = st.text(string.digits + string.ascii_uppercase, min_size=12, max_size=12).map(
    cnpj_with_dv
)


def test_oracle_matches_the_worked_example() -> None:
    assert cnpj_with_dv("12ABC34501DE") == "12ABC34501DE35"
    assert cpf_with_dv("123456789") == "12345678909"


# --- reference vectors (§6) -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "bare", "kind"),
    [
        ("123.456.789-09", "12345678909", "cpf"),
        ("11.222.333/0001-81", "11222333000181", "cnpj"),
        ("11.444.777/0001-61", "11444777000161", "cnpj"),
        ("12.ABC.345/01DE-35", "12ABC34501DE35", "cnpj"),
    ],
)
def test_valid_vectors(raw: str, bare: str, kind: str) -> None:
    assert normalize_document(raw) == bare
    assert document_kind(raw) == kind
    assert format_document(bare) == raw


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("123.456.789-00", "not a valid CPF: check digits do not match"),
        ("111.111.111-11", "not a valid CPF: all digits are the same"),
        ("000.000.000-00", "not a valid CPF: all digits are the same"),
        ("12.ABC.345/01DE-36", "not a valid CNPJ: check digits do not match"),
        ("12ABC34501DEAB", "not a valid CNPJ: the last two characters must be digits"),
        ("00.000.000/0000-00", "not a valid CNPJ: all characters are the same"),
    ],
)
def test_invalid_vectors(raw: str, reason: str) -> None:
    with pytest.raises(InvalidValue) as caught:
        normalize_document(raw)
    assert caught.value.reason == reason


@pytest.mark.parametrize(
    "raw",
    ["", "1234567890", "123456789012", "123.456.789_09", "\uff11" * 11, "12ABC34501DE3"],
)
def test_wrong_shape(raw: str) -> None:
    with pytest.raises(InvalidValue) as caught:
        normalize_document(raw)
    assert caught.value.reason == "must be a CPF (11 digits) or a CNPJ (14 characters)"


def test_input_is_cleaned_and_upper_cased() -> None:
    assert normalize_document(" 123 456 789 09 ") == "12345678909"
    assert normalize_document("12.abc.345/01de-35") == "12ABC34501DE35"
    assert normalize_document("11222333/0001-81") == "11222333000181"


def test_mask() -> None:
    assert mask_document("12345678909") == "***.456.789-**"
    assert mask_document("123.456.789-09") == "***.456.789-**"
    assert mask_document("12ABC34501DE35") == "12.ABC.345/01DE-35"


def test_reasons_do_not_echo_the_document() -> None:
    with pytest.raises(InvalidValue) as caught:
        normalize_document("123.456.789-00")
    assert "456" not in str(caught.value)


# --- properties -----------------------------------------------------------------------------


def _other_digit(digit: str, shift: int) -> str:
    return str((int(digit) + shift) % 10)


@settings(max_examples=150)
@given(doc=cpfs | numeric_cnpjs | alnum_cnpjs)
def test_generated_documents_round_trip(doc: str) -> None:
    assume(len(set(doc)) > 1)
    assert normalize_document(doc) == doc
    formatted = format_document(doc)
    assert normalize_document(formatted) == doc
    assert normalize_document(formatted.lower()) == doc
    assert document_kind(doc) == ("cpf" if len(doc) == 11 else "cnpj")
    assert len(formatted) == (14 if len(doc) == 11 else 18)


@settings(max_examples=150)
@given(
    doc=cpfs | numeric_cnpjs | alnum_cnpjs,
    position=st.sampled_from([-1, -2]),
    shift=st.integers(1, 9),
)
def test_one_changed_check_digit_is_refused(doc: str, position: int, shift: int) -> None:
    chars = list(doc)
    chars[position] = _other_digit(chars[position], shift)
    with pytest.raises(InvalidValue):
        normalize_document("".join(chars))
