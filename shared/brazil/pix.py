"""Pix BR Code ("copia e cola"): build static payloads, decode and validate any payload, and
validate Pix keys.

A BR Code is EMV MPM: a run of ``ID (2 digits) + LEN (2 digits) + VALUE`` objects, with the Pix
account in template 26 and the txid in template 62, closed by ``6304`` + CRC-16/CCITT-FALSE of
everything before the CRC value.  Static codes carry the key (26.01); dynamic codes carry the
PSP location (26.25) and the charge lives behind it.  The encoder emits the field order of the
BCB manual examples, so it reproduces them byte for byte.

Name, city and description are reduced to ASCII: LEN counts characters, and banking apps
disagree on non-ASCII codes.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Literal

from shared.brazil.documents import normalize_document
from shared.brazil.errors import InvalidValue
from shared.brazil.phones import normalize_phone

PixKeyKind = Literal["cpf", "cnpj", "phone", "email", "evp"]

__all__ = [
    "PIX_GUI",
    "BRCode",
    "PixKeyKind",
    "ascii_text",
    "crc16_ccitt",
    "decode",
    "encode_dynamic",
    "encode_static",
    "validate_pix_key",
]

PIX_GUI = "br.gov.bcb.pix"

# Top-level ids
_FORMAT, _INITIATION, _ACCOUNT, _MCC, _CURRENCY, _AMOUNT = "00", "01", "26", "52", "53", "54"
_COUNTRY, _NAME, _CITY, _POSTAL, _ADDITIONAL, _CRC = "58", "59", "60", "61", "62", "63"
# Template 26 ids
_GUI, _KEY, _DESCRIPTION, _URL = "00", "01", "02", "25"
# Template 62 id
_TXID = "05"

_MAX_VALUE = 99
_MAX_NAME = 25
_MAX_CITY = 15
_MAX_AMOUNT = 13
_MAX_KEY = 77  # also the limit of a dynamic code's location URL
_MAX_TXID = 25
_NO_TXID = "***"
_CRC_TAG = _CRC + "04"

_TXID_STATIC = re.compile(r"[A-Za-z0-9]{1,25}")
_AMOUNT_TEXT = re.compile(r"[0-9]+(\.[0-9]{1,2})?")
_CRC_TEXT = re.compile(r"[0-9A-F]{4}")
_MCC_TEXT = re.compile(r"[0-9]{4}")
_TWO_DIGITS = re.compile(r"[0-9]{2}")
_CENT = Decimal("0.01")
_AMOUNT_LIMIT = Decimal("10000000000")  # 10 integer digits + "." + 2 decimals = 13 characters

_EVP = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_EMAIL = re.compile(
    r"[a-z0-9.!#$&'*+/=?^_`{|}~-]+@[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
    r"(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)+"
)
_PHONE_KEY = re.compile(r"\+[1-9][0-9]{1,14}")
_DOCUMENT_SEPARATORS = re.compile(r"[.\-/\s]+")


# --- CRC ------------------------------------------------------------------------------------


def _crc_table_entry(byte: int) -> int:
    crc = byte << 8
    for _ in range(8):
        crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
    return crc & 0xFFFF


_CRC_TABLE = tuple(_crc_table_entry(byte) for byte in range(256))


def crc16_ccitt(data: bytes) -> str:
    """CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, no reflection, no final xor) as four
    upper-case hex digits: ``crc16_ccitt(b"123456789") == "29B1"``."""
    crc = 0xFFFF
    for byte in data:
        crc = ((crc << 8) & 0xFFFF) ^ _CRC_TABLE[(crc >> 8) ^ byte]
    return f"{crc:04X}"


# --- keys -----------------------------------------------------------------------------------


def validate_pix_key(key: str) -> tuple[PixKeyKind, str]:
    """The kind of a Pix key and its DICT form.

    * phone: starts with ``+``; returned as E.164 (``+5511987654321``);
    * email: contains ``@``; returned lower-cased, at most 77 characters;
    * evp: a UUID; returned lower-cased;
    * cpf / cnpj: 11 digits (never a phone without ``+``) / 14 characters, check digits
      verified; returned bare.  Dots, dashes and slashes are ignored.
    """
    text = key.strip()
    if text.startswith("+"):
        return "phone", _phone_key(text)
    if "@" in text:
        return "email", _email_key(text)
    lowered = text.lower()
    if _EVP.fullmatch(lowered):
        return "evp", lowered
    bare = _DOCUMENT_SEPARATORS.sub("", text)
    if len(bare) in (11, 14):
        document = normalize_document(bare)
        return ("cpf" if len(document) == 11 else "cnpj"), document
    raise InvalidValue(
        "not a valid Pix key: expected a CPF, CNPJ, phone (+55...), email or random key (EVP)"
    )


def _phone_key(text: str) -> str:
    e164 = normalize_phone(text)
    if not _PHONE_KEY.fullmatch(e164):
        raise InvalidValue("not a valid Pix phone key")
    return e164


def _email_key(text: str) -> str:
    email = text.lower()
    if len(email) > _MAX_KEY:
        raise InvalidValue(f"a Pix email key has at most {_MAX_KEY} characters")
    if not _EMAIL.fullmatch(email):
        raise InvalidValue("not a valid Pix email key")
    return email


# --- encoding -------------------------------------------------------------------------------


def _tlv(tag: str, value: str) -> str:
    if len(value) > _MAX_VALUE:
        raise InvalidValue(f"BR Code field {tag} is longer than {_MAX_VALUE} characters")
    return f"{tag}{len(value):02d}{value}"


def ascii_text(text: str) -> str:
    """Accents stripped, other non-ASCII and control characters dropped, spaces collapsed."""
    decomposed = unicodedata.normalize("NFKD", text)
    plain = "".join(char for char in decomposed if " " <= char <= "~")
    return " ".join(plain.split())


def _text_field(value: str, limit: int, what: str) -> str:
    cleaned = ascii_text(value)[:limit].rstrip()
    if not cleaned:
        raise InvalidValue(f"{what} must not be empty")
    return cleaned


def _amount_text(amount: Decimal) -> str:
    if not amount.is_finite() or amount <= 0:
        raise InvalidValue("Pix amount must be a positive number")
    if amount >= _AMOUNT_LIMIT:
        raise InvalidValue(f"Pix amount must fit in {_MAX_AMOUNT} characters")
    if amount != amount.quantize(_CENT):
        raise InvalidValue("Pix amount must have at most 2 decimal places")
    return f"{amount:.2f}"


def _txid_text(txid: str | None) -> str:
    if txid is None:
        return _NO_TXID
    if not _TXID_STATIC.fullmatch(txid):
        raise InvalidValue("a static Pix txid has 1 to 25 letters or digits (A-Z, a-z, 0-9)")
    return txid


def _gui_tlv(gui: str) -> str:
    if gui.lower() != PIX_GUI:
        raise InvalidValue(f"the Pix GUI must be {PIX_GUI}")
    return _tlv(_GUI, gui)


def _static_account(gui: str, key: str, description: str | None) -> str:
    inner = _gui_tlv(gui) + _tlv(_KEY, key)
    if description:
        inner += _tlv(_DESCRIPTION, description)
    if len(inner) > _MAX_VALUE:
        room = _MAX_VALUE - len(_gui_tlv(gui)) - 8
        raise InvalidValue(f"Pix key and description together must not exceed {room} characters")
    return _tlv(_ACCOUNT, inner)


def _dynamic_account(gui: str, url: str) -> str:
    if "://" in url:
        raise InvalidValue("the Pix location URL is given without its scheme (no https://)")
    if not 1 <= len(url) <= _MAX_KEY or not url.isascii() or not url.isprintable():
        raise InvalidValue(f"the Pix location URL has 1 to {_MAX_KEY} ASCII characters")
    return _tlv(_ACCOUNT, _gui_tlv(gui) + _tlv(_URL, url))


def _merchant_tail(merchant_name: str, city: str, txid: str) -> list[str]:
    return [
        _tlv(_COUNTRY, "BR"),
        _tlv(_NAME, _text_field(merchant_name, _MAX_NAME, "merchant name")),
        _tlv(_CITY, _text_field(city, _MAX_CITY, "merchant city")),
        _tlv(_ADDITIONAL, _tlv(_TXID, txid)),
    ]


def _amount_tlv(amount: Decimal | None) -> list[str]:
    return [] if amount is None else [_tlv(_AMOUNT, _amount_text(amount))]


def _with_crc(body: str) -> str:
    """``body`` + ``6304`` + its CRC."""
    data = body + _CRC_TAG
    return data + crc16_ccitt(data.encode("ascii"))


def encode_static(
    *,
    key: str,
    merchant_name: str,
    city: str,
    amount: Decimal | None,
    txid: str | None,
    description: str | None = None,
    gui: str = PIX_GUI,
) -> str:
    """A static Pix "copia e cola" payload.

    The key is validated and normalized (:func:`validate_pix_key`).  Name and city lose their
    accents and are cut to 25 and 15 characters; the description is reduced to ASCII and must
    fit with the key in template 26 (``len(key) + len(description) <= 73``).  ``amount`` has at
    most 2 decimal places; ``txid`` is ``[A-Za-z0-9]{1,25}``, or ``None`` for ``***``.
    """
    _, pix_key = validate_pix_key(key)
    info = ascii_text(description) if description else ""
    parts = [
        _tlv(_FORMAT, "01"),
        _static_account(gui, pix_key, info or None),
        _tlv(_MCC, "0000"),
        _tlv(_CURRENCY, "986"),
        *_amount_tlv(amount),
        *_merchant_tail(merchant_name, city, _txid_text(txid)),
    ]
    return _with_crc("".join(parts))


def encode_dynamic(
    *,
    url: str,
    merchant_name: str,
    city: str,
    amount: Decimal | None = None,
    gui: str = PIX_GUI,
) -> str:
    """A dynamic, single-use (``01=12``) payload pointing at a PSP location.

    ``url`` is the location without ``https://``; the charge, and its txid, live behind it, so
    62.05 is ``***``.  Name and city are treated as in :func:`encode_static`.
    """
    parts = [
        _tlv(_FORMAT, "01"),
        _tlv(_INITIATION, "12"),
        _dynamic_account(gui, url),
        _tlv(_MCC, "0000"),
        _tlv(_CURRENCY, "986"),
        *_amount_tlv(amount),
        *_merchant_tail(merchant_name, city, _NO_TXID),
    ]
    return _with_crc("".join(parts))


# --- decoding -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BRCode:
    """A decoded, validated BR Code.  ``key`` is set for a static code, ``url`` for a dynamic
    one.  ``fields`` maps every top-level id to its raw value, and the ids of templates 26 and
    62 as ``"26.01"``, ``"62.05"``, ..."""

    payload: str
    gui: str
    key: str | None
    description: str | None
    url: str | None
    amount: Decimal | None
    merchant_name: str
    city: str
    txid: str | None
    postal_code: str | None
    point_of_initiation: str | None
    crc: str
    fields: dict[str, str] = field(default_factory=dict)


def _parse_tlv(text: str, where: str) -> list[tuple[str, str]]:
    """Split ``text`` into (id, value) pairs; the lengths must account for every character."""
    objects: list[tuple[str, str]] = []
    what = "the payload" if where == "payload" else f"template {where}"
    position = 0
    while position < len(text):
        header = text[position : position + 4]
        tag, size = header[:2], header[2:]
        if len(header) < 4 or not _TWO_DIGITS.fullmatch(tag) or not _TWO_DIGITS.fullmatch(size):
            raise InvalidValue(f"BR Code is malformed at character {position + 1} of {what}")
        end = position + 4 + int(size)
        if end > len(text):
            raise InvalidValue(f"BR Code field {_label(where, tag)} runs past the end of {what}")
        if any(tag == seen for seen, _ in objects):
            raise InvalidValue(f"BR Code field {_label(where, tag)} appears twice")
        objects.append((tag, text[position + 4 : end]))
        position = end
    return objects


def _label(where: str, tag: str) -> str:
    return tag if where == "payload" else f"{where}.{tag}"


def _check_crc(payload: str) -> str:
    if len(payload) < 8 or payload[-8:-4] != _CRC_TAG:
        raise InvalidValue("BR Code must end with the CRC field 63")
    crc = payload[-4:]
    if not _CRC_TEXT.fullmatch(crc):
        raise InvalidValue("BR Code CRC (field 63) must be 4 upper-case hex digits")
    if crc16_ccitt(payload[:-4].encode("utf-8")) != crc:
        raise InvalidValue("BR Code CRC (field 63) does not match")
    return crc


def _require(fields: dict[str, str], tag: str, what: str) -> str:
    value = fields.get(tag)
    if value is None:
        raise InvalidValue(f"BR Code field {tag} ({what}) is missing")
    return value


def _expect(fields: dict[str, str], tag: str, what: str, expected: str) -> None:
    if _require(fields, tag, what) != expected:
        raise InvalidValue(f"BR Code field {tag} ({what}) must be {expected}")


def _decoded_amount(fields: dict[str, str]) -> Decimal | None:
    text = fields.get(_AMOUNT)
    if text is None:
        return None
    if len(text) > _MAX_AMOUNT or not _AMOUNT_TEXT.fullmatch(text):
        raise InvalidValue("BR Code field 54 (amount) is not a valid amount")
    try:
        amount = Decimal(text).quantize(_CENT)
    except InvalidOperation:  # pragma: no cover - the pattern already excludes it
        raise InvalidValue("BR Code field 54 (amount) is not a valid amount") from None
    if amount <= 0:
        raise InvalidValue("BR Code field 54 (amount) must be positive")
    return amount


def _bounded_text(fields: dict[str, str], tag: str, what: str, limit: int) -> str:
    value = _require(fields, tag, what)
    if not 1 <= len(value) <= limit:
        raise InvalidValue(f"BR Code field {tag} ({what}) must have 1 to {limit} characters")
    return value


def _template(fields: dict[str, str], tag: str, raw: str) -> dict[str, str]:
    inner = dict(_parse_tlv(raw, tag))
    fields.update({f"{tag}.{inner_tag}": value for inner_tag, value in inner.items()})
    return inner


def _pix_account(account: dict[str, str]) -> tuple[str, str | None, str | None, str | None]:
    gui = account.get(_GUI)
    if gui is None or gui.lower() != PIX_GUI:
        raise InvalidValue(f"BR Code field 26.00 (GUI) must be {PIX_GUI}")
    key, url = account.get(_KEY), account.get(_URL)
    if (key is None) == (url is None):
        raise InvalidValue("BR Code must carry either a key (26.01) or a URL (26.25)")
    if key is not None and not 1 <= len(key) <= _MAX_KEY:
        raise InvalidValue(f"BR Code field 26.01 (key) must have 1 to {_MAX_KEY} characters")
    if url is not None and not 1 <= len(url) <= _MAX_KEY:
        raise InvalidValue(f"BR Code field 26.25 (URL) must have 1 to {_MAX_KEY} characters")
    return gui, key, account.get(_DESCRIPTION), url


def decode(payload: str) -> BRCode:
    """Parse and validate a BR Code; raises :class:`InvalidValue` naming the offending field.

    Checked: the TLV structure (top level and templates 26 and 62), ``00=01`` first and ``63``
    last with the right CRC, ``53=986``, ``58=BR``, name (1-25) and city (1-15), the GUI
    ``br.gov.bcb.pix`` (any case), exactly one of key or URL, and the amount.  The payload is
    taken as is: strip surrounding whitespace before calling.
    """
    crc = _check_crc(payload)
    objects = _parse_tlv(payload, "payload")
    if objects[0][0] != _FORMAT:
        raise InvalidValue("BR Code must start with field 00 (payload format indicator)")
    fields = dict(objects)
    if objects[-1][0] != _CRC or fields[_CRC] != crc:
        raise InvalidValue("BR Code must end with the CRC field 63")
    _expect(fields, _FORMAT, "payload format indicator", "01")
    initiation = fields.get(_INITIATION)
    if initiation not in (None, "11", "12"):
        raise InvalidValue("BR Code field 01 (point of initiation) must be 11 or 12")
    gui, key, description, url = _pix_account(
        _template(fields, _ACCOUNT, _require(fields, _ACCOUNT, "Pix account"))
    )
    if not _MCC_TEXT.fullmatch(_require(fields, _MCC, "merchant category code")):
        raise InvalidValue("BR Code field 52 (merchant category code) must be 4 digits")
    _expect(fields, _CURRENCY, "currency", "986")
    _expect(fields, _COUNTRY, "country", "BR")
    additional = _template(fields, _ADDITIONAL, fields.get(_ADDITIONAL, ""))
    txid = additional.get(_TXID)
    if txid is not None and not 1 <= len(txid) <= _MAX_TXID:
        raise InvalidValue(f"BR Code field 62.05 (txid) must have 1 to {_MAX_TXID} characters")
    return BRCode(
        payload=payload,
        gui=gui,
        key=key,
        description=description,
        url=url,
        amount=_decoded_amount(fields),
        merchant_name=_bounded_text(fields, _NAME, "merchant name", _MAX_NAME),
        city=_bounded_text(fields, _CITY, "merchant city", _MAX_CITY),
        txid=txid,
        postal_code=fields.get(_POSTAL),
        point_of_initiation=initiation,
        crc=crc,
        fields=fields,
    )
