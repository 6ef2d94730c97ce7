"""Pix BR Code: the vectors of brazil-rules.md §4 (CRC check value, the BCB manual payloads,
the negative vectors), the field limits, Pix keys, and encode/decode properties."""

from __future__ import annotations

import re
import string
from decimal import Decimal

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from shared.brazil.errors import InvalidValue
from shared.brazil.pix import (
    BRCode,
    crc16_ccitt,
    decode,
    encode_dynamic,
    encode_static,
    validate_pix_key,
)
from tests.shared.brazil.test_documents import cnpj_with_dv, cpf_with_dv

STATIC = (
    "00020126580014br.gov.bcb.pix0136123e4567-e12b-12d1-a456-426655440000"
    "5204000053039865802BR5913Fulano de Tal6008BRASILIA62070503***63041D3D"
)
DYNAMIC = (
    "00020101021226700014br.gov.bcb.pix2548pix.example.com/8b3da2f39a4140d1a91abd93113bd441"
    "5204000053039865802BR5913Fulano de Tal6008BRASILIA62070503***630464E4"
)
# The Lerian docs example: GUI "br.gov.bcb.Pix" and a wrong CRC (the right one is 02A4).
LERIAN = (
    "00020126580014br.gov.bcb.Pix0136123e4567-e12b-12d1-a456-426655440000"
    "520400005303986540510.005802BR5913TESTE ACCOUNT6008BRASILIA62070503***630445C8"
)
EVP = "123e4567-e12b-12d1-a456-426655440000"


def tlv(tag: str, value: str) -> str:
    return f"{tag}{len(value):02d}{value}"


def with_crc(body: str) -> str:
    return body + "6304" + crc16_ccitt((body + "6304").encode())


def static_body(**override: str) -> str:
    """The fields of the STATIC vector, any of them replaced ("" drops it), without the CRC."""
    values = {
        "00": "01",
        "26": tlv("00", "br.gov.bcb.pix") + tlv("01", EVP),
        "52": "0000",
        "53": "986",
        "58": "BR",
        "59": "Fulano de Tal",
        "60": "BRASILIA",
        "62": tlv("05", "***"),
    } | override
    return "".join(tlv(tag, value) for tag, value in values.items() if value)


# --- CRC and reference vectors --------------------------------------------------------------


def test_crc_check_value() -> None:
    assert crc16_ccitt(b"123456789") == "29B1"
    assert crc16_ccitt(b"") == "FFFF"


def test_helper_rebuilds_the_static_vector() -> None:
    assert with_crc(static_body()) == STATIC


def test_static_vector() -> None:
    code = decode(STATIC)
    assert code == BRCode(
        payload=STATIC,
        gui="br.gov.bcb.pix",
        key=EVP,
        description=None,
        url=None,
        amount=None,
        merchant_name="Fulano de Tal",
        city="BRASILIA",
        txid="***",
        postal_code=None,
        point_of_initiation=None,
        crc="1D3D",
        fields=code.fields,
    )
    assert code.fields["26.01"] == EVP
    assert code.fields["62.05"] == "***"
    assert code.fields["53"] == "986"
    again = encode_static(
        key=code.key or "",
        merchant_name=code.merchant_name,
        city=code.city,
        amount=code.amount,
        txid=None,
        description=code.description,
        gui=code.gui,
    )
    assert again == STATIC


def test_dynamic_vector() -> None:
    code = decode(DYNAMIC)
    assert code.key is None
    assert code.url == "pix.example.com/8b3da2f39a4140d1a91abd93113bd441"
    assert code.point_of_initiation == "12"
    assert code.txid == "***"
    assert code.crc == "64E4"
    again = encode_dynamic(
        url=code.url,
        merchant_name=code.merchant_name,
        city=code.city,
        amount=code.amount,
        gui=code.gui,
    )
    assert again == DYNAMIC


def test_bcb_dynamic_example_with_amount() -> None:
    # The BCB manual's dynamic example with an amount, as quoted by public parsers' suites.
    payload = (
        "00020101021226720014br.gov.bcb.pix2550bx.com.br/pix/8b3da2f3-9a41-40d1-a91a-bd93113bd441"
        "5204000053039865406123.455802BR5913Fulano de Tal6008BRASILIA62190515RP12345678-2019"
        "630445C8"
    )
    code = decode(payload)
    assert code.amount == Decimal("123.45")
    assert code.txid == "RP12345678-2019"


def test_upper_case_gui_is_accepted_but_changes_the_crc() -> None:
    upper = encode_static(
        key=EVP, merchant_name="Fulano de Tal", city="BRASILIA", amount=None, txid=None,
        gui="BR.GOV.BCB.PIX",
    )  # fmt: skip
    assert upper.replace("BR.GOV.BCB.PIX", "br.gov.bcb.pix")[:-4] == STATIC[:-4]
    assert upper[-4:] != STATIC[-4:]
    assert decode(upper).gui == "BR.GOV.BCB.PIX"


def test_negative_vectors() -> None:
    with pytest.raises(InvalidValue, match="CRC"):
        decode(STATIC[:-4] + "1D3E")
    with pytest.raises(InvalidValue, match="CRC"):
        decode(LERIAN)
    assert crc16_ccitt(LERIAN[:-4].encode()) == "02A4"
    assert decode(LERIAN[:-4] + "02A4").amount == Decimal("10.00")


def test_declared_length_longer_than_its_value_is_malformed() -> None:
    # The gist's example declares 6208 for the 7-character "0503***".
    payload = with_crc(static_body().replace("62070503***", "62080503***"))
    with pytest.raises(InvalidValue, match="field 30 runs past the end of the payload"):
        decode(payload)


def _decodes(payload: str) -> bool:
    try:
        decode(payload)
    except InvalidValue:
        return False
    return True


def test_every_single_character_change_fails() -> None:
    accepted = [
        (index, char)
        for vector in (STATIC, DYNAMIC)
        for index, original in enumerate(vector)
        for char in string.printable
        if char != original and _decodes(vector[:index] + char + vector[index + 1 :])
    ]
    assert accepted == []


# --- decode: field by field ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (with_crc(static_body()[6:] + "000201"), "must start with field 00"),
        (with_crc(static_body(**{"00": "02"})), "field 00 (payload format indicator) must be 01"),
        (with_crc(static_body(**{"53": "840"})), "field 53 (currency) must be 986"),
        (with_crc(static_body(**{"58": "US"})), "field 58 (country) must be BR"),
        (with_crc(static_body(**{"52": ""})), "field 52 (merchant category code) is missing"),
        (with_crc(static_body(**{"52": "00A0"})), "field 52 (merchant category code)"),
        (with_crc(static_body(**{"59": "N" * 26})), "field 59 (merchant name) must have 1 to 25"),
        (with_crc(static_body(**{"60": "C" * 16})), "field 60 (merchant city) must have 1 to 15"),
        (with_crc(static_body(**{"59": ""})), "field 59 (merchant name) is missing"),
        (with_crc(static_body(**{"26": ""})), "field 26 (Pix account) is missing"),
        (
            with_crc(static_body(**{"26": tlv("00", "br.gov.bcb.spi") + tlv("01", EVP)})),
            "26.00 (GUI) must be br.gov.bcb.pix",
        ),
        (
            with_crc(
                static_body(
                    **{"26": tlv("00", "br.gov.bcb.pix") + tlv("01", EVP) + tlv("25", "a.b/c")}
                )
            ),
            "either a key (26.01) or a URL (26.25)",
        ),
        (
            with_crc(static_body(**{"26": tlv("00", "br.gov.bcb.pix") + tlv("02", "hello")})),
            "either a key (26.01) or a URL (26.25)",
        ),
        (with_crc(static_body(**{"54": "1,00"})), "field 54 (amount) is not a valid amount"),
        (with_crc(static_body(**{"54": "10000000000.00"})), "field 54 (amount) is not a valid"),
        (with_crc(static_body(**{"54": "0.00"})), "field 54 (amount) must be positive"),
        (with_crc(static_body(**{"01": "13"})), "field 01 (point of initiation)"),
        (with_crc(static_body() + tlv("59", "Again")), "field 59 appears twice"),
        (with_crc(static_body(**{"62": "0503**"})), "field 62.05 runs past the end of template 62"),
        (with_crc(static_body(**{"62": tlv("05", "T" * 26)})), "62.05 (txid) must have 1 to 25"),
        (with_crc(static_body() + "AB02xy"), "malformed at character"),
        (static_body() + "6304" + "1d3d", "4 upper-case hex digits"),
        (static_body(), "must end with the CRC field 63"),
        (with_crc(static_body()[:-11] + "62150503***"), "must end with the CRC field 63"),
        ("", "must end with the CRC field 63"),
    ],
)
def test_decode_refuses(payload: str, reason: str) -> None:
    with pytest.raises(InvalidValue, match=re.escape(reason)):
        decode(payload)


def test_decode_optional_fields() -> None:
    account = tlv("00", "br.gov.bcb.pix") + tlv("01", EVP) + tlv("02", "x")
    payload = with_crc(static_body(**{"26": account, "54": "10.5", "61": "01310100"}))
    code = decode(payload)
    assert code.amount == Decimal("10.50")
    assert code.postal_code == "01310100"
    assert code.description == "x"
    assert decode(with_crc(static_body(**{"62": ""}))).txid is None


# --- encode: limits -------------------------------------------------------------------------


def _static(**override: object) -> str:
    args: dict[str, object] = {
        "key": EVP,
        "merchant_name": "Loja",
        "city": "Recife",
        "amount": None,
        "txid": None,
    } | override
    return encode_static(**args)  # type: ignore[arg-type]


def test_name_and_city_are_cleaned_and_truncated() -> None:
    code = decode(
        _static(
            merchant_name="  Móveis  São  João Comércio de Eletro Ltda", city="São José dos Campos"
        )
    )
    assert code.merchant_name == "Moveis Sao Joao Comercio"
    assert code.city == "Sao Jose dos Ca"


@pytest.mark.parametrize(
    ("override", "reason"),
    [
        ({"merchant_name": "  "}, "merchant name must not be empty"),
        ({"city": "😀"}, "merchant city must not be empty"),
        ({"txid": "ABC-123"}, "static Pix txid"),
        ({"txid": "A" * 26}, "static Pix txid"),
        ({"txid": ""}, "static Pix txid"),
        ({"amount": Decimal("10000000000.00")}, "13 characters"),
        ({"amount": Decimal("1.005")}, "at most 2 decimal places"),
        ({"amount": Decimal(0)}, "positive"),
        ({"amount": Decimal("-1")}, "positive"),
        ({"amount": Decimal("NaN")}, "positive"),
        ({"description": "d" * 38}, "must not exceed 73 characters"),
        ({"gui": "br.gov.bcb.spi"}, "GUI"),
        ({"key": "hello"}, "not a valid Pix key"),
    ],
)
def test_encode_refuses(override: dict[str, object], reason: str) -> None:
    with pytest.raises(InvalidValue, match=reason):
        _static(**override)


def test_encode_limits_that_fit() -> None:
    assert len(EVP) + 37 == 73
    assert decode(_static(description="d" * 37)).description == "d" * 37
    assert decode(_static(amount=Decimal("9999999999.99"))).fields["54"] == "9999999999.99"
    assert decode(_static(amount=Decimal("152.4"))).fields["54"] == "152.40"
    assert decode(_static(txid="A" * 25)).txid == "A" * 25


def test_encode_dynamic_refuses_a_scheme() -> None:
    with pytest.raises(InvalidValue, match="scheme"):
        encode_dynamic(url="https://pix.example.com/x", merchant_name="Loja", city="Recife")
    with pytest.raises(InvalidValue, match="URL"):
        encode_dynamic(url="x" * 78, merchant_name="Loja", city="Recife")


# --- keys (§4.4) ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "kind", "normalized"),
    [
        ("123.456.789-09", "cpf", "12345678909"),
        ("12345678909", "cpf", "12345678909"),
        ("11.222.333/0001-81", "cnpj", "11222333000181"),
        ("12abc34501de35", "cnpj", "12ABC34501DE35"),
        ("+55 (11) 98765-4321", "phone", "+5511987654321"),
        ("+5511987654321", "phone", "+5511987654321"),
        ("Fulano.Tal+pix@Example.COM", "email", "fulano.tal+pix@example.com"),
        ("123E4567-E12B-12D1-A456-426655440000", "evp", EVP),
        (f"  {EVP}  ", "evp", EVP),
    ],
)
def test_pix_keys(key: str, kind: str, normalized: str) -> None:
    assert validate_pix_key(key) == (kind, normalized)


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        ("11987654321", "not a valid CPF"),  # 11 digits without + is a CPF, never a phone
        ("12345678900", "not a valid CPF"),
        ("12.ABC.345/01DE-36", "not a valid CNPJ"),
        ("+551187654321", "not a valid phone number"),
        ("a" * 70 + "@ex.com.br", "at most 77 characters"),
        ("fulano@example", "not a valid Pix email key"),
        ("fulano @example.com", "not a valid Pix email key"),
        ("123e4567-e12b-12d1-a456-42665544000g", "not a valid Pix key"),
        ("", "not a valid Pix key"),
    ],
)
def test_bad_pix_keys(key: str, reason: str) -> None:
    with pytest.raises(InvalidValue, match=reason):
        validate_pix_key(key)


# --- properties -----------------------------------------------------------------------------

_ddds = ["11", "21", "31", "61", "68", "81", "92", "99"]
cpf_keys = st.text(string.digits, min_size=9, max_size=9).map(cpf_with_dv)
cnpj_keys = st.text(string.digits + string.ascii_uppercase, min_size=12, max_size=12).map(
    cnpj_with_dv
)
phone_keys = st.builds(
    lambda ddd, rest: f"+55{ddd}9{rest}",
    st.sampled_from(_ddds),
    st.text(string.digits, min_size=8, max_size=8),
)
email_keys = st.builds(
    lambda user, domain: f"{user}@{domain}.com.br",
    st.text(string.ascii_lowercase + string.digits + "._-", min_size=1, max_size=20),
    st.text(string.ascii_lowercase, min_size=1, max_size=15),
)
evp_keys = st.uuids().map(str)
keys = (cpf_keys | cnpj_keys | phone_keys | email_keys | evp_keys).filter(
    lambda key: len(set(key)) > 1
)
texts = st.text(
    string.ascii_letters + string.digits + "  .-&'áéíóúâêôãõçÁÉÓÇ", min_size=1, max_size=40
).filter(lambda text: any(char.isalnum() for char in text))
amounts = st.none() | st.integers(1, 999_999_999_999).map(lambda cents: Decimal(cents) / 100)
txids = st.none() | st.from_regex(r"[A-Za-z0-9]{1,25}", fullmatch=True)
descriptions = st.none() | st.text(string.ascii_letters + string.digits + " /", max_size=30)


def _encode(
    key: str,
    name: str,
    city: str,
    amount: Decimal | None,
    txid: str | None,
    description: str | None,
) -> str:
    return encode_static(
        key=key, merchant_name=name, city=city, amount=amount, txid=txid, description=description
    )


@settings(max_examples=150)
@given(
    key=keys,
    name=texts,
    city=texts,
    amount=amounts,
    txid=txids,
    description=descriptions,
)
def test_encode_decode_round_trip(
    key: str,
    name: str,
    city: str,
    amount: Decimal | None,
    txid: str | None,
    description: str | None,
) -> None:
    assume(description is None or len(key) + len(description.strip()) <= 73)
    payload = _encode(key, name, city, amount, txid, description)
    assert payload.isascii()
    code = decode(payload)
    assert code.key == validate_pix_key(key)[1]
    assert code.amount == amount
    assert code.txid == (txid or "***")
    assert code.merchant_name.isascii() and 1 <= len(code.merchant_name) <= 25
    assert code.city.isascii() and 1 <= len(code.city) <= 15
    if name.isascii() and name == " ".join(name.split()) and len(name) <= 25:
        assert code.merchant_name == name
    again = _encode(
        code.key or "", code.merchant_name, code.city, code.amount, txid, code.description
    )
    assert again == payload


@settings(max_examples=150)
@given(
    key=keys,
    amount=amounts,
    txid=txids,
    data=st.data(),
)
def test_any_single_character_change_fails(
    key: str, amount: Decimal | None, txid: str | None, data: st.DataObject
) -> None:
    payload = _encode(key, "Loja Exemplo", "Recife", amount, txid, None)
    index = data.draw(st.integers(0, len(payload) - 1))
    char = data.draw(st.sampled_from(string.printable).filter(lambda c: c != payload[index]))
    with pytest.raises(InvalidValue):
        decode(payload[:index] + char + payload[index + 1 :])
