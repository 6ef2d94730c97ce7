"""Phone numbers: E.164 normalization, DDD and UF, and WhatsApp ``wa_id`` matching.

The canonical debtor phone is E.164 with the ninth digit (``+5511987654321``), validated by
``phonenumbers``.  WhatsApp accounts created before the "nono dígito" migration may still be
registered without it (``wa_id`` ``553188887777`` for ``+5531988887777``), so inbound messages
are matched on a 9-insensitive key and outbound code can try both forms.
"""

from __future__ import annotations

import re
from typing import Literal

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat, PhoneNumberType

from shared.brazil.errors import InvalidValue

PhoneType = Literal["mobile", "fixed", "other"]

__all__ = [
    "DDD_UF",
    "PhoneType",
    "ddd_of",
    "normalize_phone",
    "phone_type",
    "uf_for_ddd",
    "whatsapp_key",
    "whatsapp_variants",
]

_INVALID = "not a valid phone number"
_BR_CODE = "55"

# DDD (area code) -> UF.  The 67 DDDs that phonenumbers accepts for mobiles.
DDD_UF: dict[str, str] = {
    **dict.fromkeys(("11", "12", "13", "14", "15", "16", "17", "18", "19"), "SP"),
    **dict.fromkeys(("21", "22", "24"), "RJ"),
    **dict.fromkeys(("27", "28"), "ES"),
    **dict.fromkeys(("31", "32", "33", "34", "35", "37", "38"), "MG"),
    **dict.fromkeys(("41", "42", "43", "44", "45", "46"), "PR"),
    **dict.fromkeys(("47", "48", "49"), "SC"),
    **dict.fromkeys(("51", "53", "54", "55"), "RS"),
    "61": "DF",
    **dict.fromkeys(("62", "64"), "GO"),
    "63": "TO",
    **dict.fromkeys(("65", "66"), "MT"),
    "67": "MS",
    "68": "AC",
    "69": "RO",
    **dict.fromkeys(("71", "73", "74", "75", "77"), "BA"),
    "79": "SE",
    **dict.fromkeys(("81", "87"), "PE"),
    "82": "AL",
    "83": "PB",
    "84": "RN",
    **dict.fromkeys(("85", "88"), "CE"),
    **dict.fromkeys(("86", "89"), "PI"),
    **dict.fromkeys(("91", "93", "94"), "PA"),
    **dict.fromkeys(("92", "97"), "AM"),
    "95": "RR",
    "96": "AP",
    **dict.fromkeys(("98", "99"), "MA"),
}

# "0xx11 ..." is how Brazilians write "0 + <carrier code> + DDD": drop the placeholder.
_CARRIER_PLACEHOLDER = re.compile(r"^\s*0\s*[xX]\s*[xX]")
_LETTER = re.compile(r"[A-Za-z]")
_WA_SEPARATORS = re.compile(r"[\s().\-]+")
_DIGITS = re.compile(r"[0-9]+")
_TYPES: dict[int, PhoneType] = {
    PhoneNumberType.MOBILE: "mobile",
    PhoneNumberType.FIXED_LINE: "fixed",
}


def _parse_valid(raw: str, region: str) -> phonenumbers.PhoneNumber:
    text = _CARRIER_PLACEHOLDER.sub("0", raw)
    if _LETTER.search(text):
        raise InvalidValue(_INVALID)
    try:
        number = phonenumbers.parse(text, region)
    except NumberParseException:
        raise InvalidValue(_INVALID) from None
    if number.extension:
        raise InvalidValue("phone numbers with an extension are not supported")
    if not phonenumbers.is_valid_number(number):
        raise InvalidValue(_INVALID)
    return number


def normalize_phone(raw: str, region: str = "BR") -> str:
    """E.164 (``+5511987654321``) for a valid number written any usual way.

    Accepts ``(11) 98765-4321``, ``011 98765-4321``, ``0xx11 98765-4321``, carrier prefixes
    (``0 21 11 ...``), ``+55...`` and ``55...`` without the plus.  Numbers without a country
    code are read as numbers of ``region``.
    """
    number = _parse_valid(raw, region)
    return phonenumbers.format_number(number, PhoneNumberFormat.E164)


def phone_type(e164: str) -> PhoneType:
    """``"mobile"``, ``"fixed"`` or ``"other"`` (toll-free, VoIP, or a plan that does not say
    whether the number is fixed or mobile)."""
    number = _parse_valid(e164, "BR")
    return _TYPES.get(phonenumbers.number_type(number), "other")


def _digits(number: str) -> str:
    """The digits of an E.164 number (with or without ``+``) or of a ``wa_id``."""
    text = _WA_SEPARATORS.sub("", number).removeprefix("+")
    if not _DIGITS.fullmatch(text):
        raise InvalidValue(_INVALID)
    return text


def _is_brazilian(digits: str) -> bool:
    """``55`` + DDD + 8 or 9 digits."""
    return digits.startswith(_BR_CODE) and len(digits) in (12, 13)


def whatsapp_key(number: str) -> str:
    """The 9-insensitive key used to match WhatsApp ids with stored phones.

    For ``55`` + DDD + 8 or 9 digits the key is ``55`` + DDD + the last 8 digits, so
    ``+5531988887777`` and ``553188887777`` share ``553188887777``.  Other numbers are their
    digits.  Accepts E.164 with or without ``+`` or a ``wa_id``.
    """
    digits = _digits(number)
    if _is_brazilian(digits):
        return digits[:4] + digits[-8:]
    return digits


def whatsapp_variants(e164: str) -> list[str]:
    """The ``wa_id`` forms (digits, no ``+``) to try for a number, canonical form first.

    A Brazilian mobile gives two: with the ninth digit and without it.  Accepts the 8-digit
    ``wa_id`` shape too (an old mobile number, subscriber starting 6-9).  Anything else, a
    landline or a foreign number, gives its digits alone.
    """
    digits = _digits(e164)
    if not _is_brazilian(digits):
        return [digits]
    area, subscriber = digits[:4], digits[4:]
    if len(subscriber) == 9 and subscriber[0] == "9":
        return [digits, area + subscriber[1:]]
    if len(subscriber) == 8 and subscriber[0] in "6789":
        return [area + "9" + subscriber, digits]
    return [digits]


def ddd_of(e164: str) -> str | None:
    """The two-digit DDD of a Brazilian number, ``None`` for a foreign one."""
    digits = _digits(e164)
    return digits[2:4] if _is_brazilian(digits) else None


def uf_for_ddd(ddd: str) -> str | None:
    """The state (UF) of a DDD, ``None`` if the DDD does not exist.  A number's DDD may not be
    where its owner lives now: prefer the address when there is one."""
    return DDD_UF.get(ddd)
