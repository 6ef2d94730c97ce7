"""Phones: the phonenumbers vectors of brazil-rules.md §7.1, the DDD table, and the WhatsApp
9-insensitive key of §7.2."""

from __future__ import annotations

import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.brazil.errors import InvalidValue
from shared.brazil.phones import (
    DDD_UF,
    ddd_of,
    normalize_phone,
    phone_type,
    uf_for_ddd,
    whatsapp_key,
    whatsapp_variants,
)

# --- §7.1 -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "e164", "kind"),
    [
        ("(11) 98765-4321", "+5511987654321", "mobile"),
        ("011 98765-4321", "+5511987654321", "mobile"),
        ("+5568999887766", "+5568999887766", "mobile"),
        ("+5581987654321", "+5581987654321", "mobile"),
        ("+551132654321", "+551132654321", "fixed"),
    ],
)
def test_reference_valid(raw: str, e164: str, kind: str) -> None:
    assert normalize_phone(raw) == e164
    assert phone_type(e164) == kind


@pytest.mark.parametrize(
    "raw",
    [
        "+551187654321",  # old 8-digit mobile without the 9
        "+553188887777",  # the wa_id shape
        "+5520987654321",  # DDD 20 does not exist
        "+55119876543210",  # too long
    ],
)
def test_reference_invalid(raw: str) -> None:
    with pytest.raises(InvalidValue) as caught:
        normalize_phone(raw)
    assert caught.value.reason == "not a valid phone number"


@pytest.mark.parametrize(
    "raw",
    [
        "5511987654321",
        "55 11 98765-4321",
        "+55 (11) 9 8765-4321",
        "0xx11 98765-4321",
        "0XX11 98765-4321",
        "0 21 11 98765-4321",
        "02111987654321",
        "11987654321",
    ],
)
def test_usual_spellings(raw: str) -> None:
    assert normalize_phone(raw) == "+5511987654321"


def test_carrier_prefix_on_a_landline() -> None:
    assert normalize_phone("0xx21 3265-4321") == "+552132654321"
    assert normalize_phone("0 15 11 3265-4321") == "+551132654321"


@pytest.mark.parametrize(
    "raw", ["", "abc", "(11) 9876A-4321", "98765-4321", "+55", "1" * 300, "+55 11 98765-4321 x12"]
)
def test_garbage_is_refused(raw: str) -> None:
    with pytest.raises(InvalidValue):
        normalize_phone(raw)


def test_foreign_numbers_and_region() -> None:
    assert normalize_phone("+1 650 253 0000") == "+16502530000"
    assert normalize_phone("020 7946 0958", region="GB") == "+442079460958"
    assert phone_type("+442079460958") == "fixed"
    assert phone_type("+16502530000") == "other"  # NANP does not say fixed or mobile
    assert phone_type("0800 123 4567") == "other"  # toll-free


# --- DDD ------------------------------------------------------------------------------------


def test_ddd_table_has_the_67_mobile_ddds() -> None:
    assert len(DDD_UF) == 67
    valid = {str(ddd) for ddd in range(10, 100) if _is_valid_mobile(f"+55{ddd}987654321")}
    assert valid == set(DDD_UF)
    assert len(set(DDD_UF.values())) == 27  # 26 states and the DF


def _is_valid_mobile(e164: str) -> bool:
    try:
        return phone_type(e164) == "mobile"
    except InvalidValue:
        return False


@pytest.mark.parametrize(
    ("ddd", "uf"),
    [("11", "SP"), ("21", "RJ"), ("61", "DF"), ("68", "AC"), ("81", "PE"), ("97", "AM"),
     ("99", "MA"), ("20", None), ("1", None)],
)  # fmt: skip
def test_uf_for_ddd(ddd: str, uf: str | None) -> None:
    assert uf_for_ddd(ddd) == uf


def test_ddd_of() -> None:
    assert ddd_of("+5568999887766") == "68"
    assert ddd_of("551132654321") == "11"
    assert ddd_of("553188887777") == "31"
    assert ddd_of("+16502530000") is None
    with pytest.raises(InvalidValue):
        ddd_of("not a phone")


# --- WhatsApp (§7.2) ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("number", "key"),
    [
        ("553188887777", "553188887777"),
        ("+5531988887777", "553188887777"),
        ("5511987654321", "551187654321"),
        ("551187654321", "551187654321"),
        ("+551132654321", "551132654321"),
        ("+16502530000", "16502530000"),
        ("+55 31 98888-7777", "553188887777"),
    ],
)
def test_whatsapp_key_vectors(number: str, key: str) -> None:
    assert whatsapp_key(number) == key


@pytest.mark.parametrize("number", ["", "+", "55abc", "+55 31 9888/7777"])
def test_whatsapp_key_refuses_non_numbers(number: str) -> None:
    with pytest.raises(InvalidValue):
        whatsapp_key(number)


def test_whatsapp_variants() -> None:
    assert whatsapp_variants("+5531988887777") == ["5531988887777", "553188887777"]
    assert whatsapp_variants("553188887777") == ["5531988887777", "553188887777"]
    assert whatsapp_variants("+551132654321") == ["551132654321"]
    assert whatsapp_variants("+16502530000") == ["16502530000"]


eight_digits = st.text(string.digits, min_size=8, max_size=8)


@settings(max_examples=150)
@given(ddd=st.sampled_from(sorted(DDD_UF)), subscriber=eight_digits)
def test_whatsapp_key_ignores_the_ninth_digit(ddd: str, subscriber: str) -> None:
    e164 = f"+55{ddd}9{subscriber}"
    wa_id = f"55{ddd}{subscriber}"
    assert normalize_phone(e164) == e164
    assert whatsapp_key(e164) == whatsapp_key(e164[1:]) == whatsapp_key(wa_id) == wa_id
    variants = whatsapp_variants(e164)
    assert variants[0] == e164[1:]
    assert {whatsapp_key(variant) for variant in variants} == {wa_id}
    assert ddd_of(e164) == ddd_of(wa_id) == ddd
