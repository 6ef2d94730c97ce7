"""How many SMS segments a text costs, and how to keep a Portuguese reminder in GSM-7.

An SMS carries 140 bytes: 160 characters of the GSM 03.38 7-bit alphabet, or 70 UTF-16 code units
(UCS-2) as soon as one character falls outside it.  A longer text is split into parts that each
lose room to the concatenation header: 153 septets or 67 code units.  Characters of the GSM
extension table (``€ [ ] { } ^ ~ \\ |`` and form feed) take two septets, an escape plus the
character, and a part never splits that pair; nor does it split an emoji's surrogate pair.

Most Portuguese accents (ã, õ, ç, á, ê...) are not in GSM-7, so one of them turns a 160-character
reminder into three UCS-2 segments.  ``gsm_fold`` replaces them with the plain letter, which a
tenant may choose to do (Twilio's "smart encoding" does the same on its side).
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from enum import StrEnum

__all__ = [
    "GSM7_BASIC",
    "GSM7_EXTENSION",
    "Encoding",
    "SegmentCount",
    "count_segments",
    "gsm_fold",
    "is_gsm7",
    "segments",
]

# GSM 03.38 default alphabet, in table order (0x1B, the escape to the extension table, left out).
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ"
    " !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")

SINGLE_GSM7, PART_GSM7 = 160, 153
SINGLE_UCS2, PART_UCS2 = 70, 67

# Characters folded one for one besides accented letters: what pt-BR text and our formatters
# produce (the no-break space of "R$ 150,00", typographic quotes and dashes, ordinals).
_FOLD_EXTRA = {
    "\u00a0": " ",
    "\u202f": " ",
    "\u2018": "'",
    "\u2019": "'",
    "\u201c": '"',
    "\u201d": '"',
    "\u2013": "-",
    "\u2014": "-",
    "º": "o",
    "ª": "a",
}


class Encoding(StrEnum):
    GSM7 = "GSM-7"
    UCS2 = "UCS-2"


@dataclass(frozen=True, slots=True)
class SegmentCount:
    """How a text travels: its encoding, how many segments, and its size in that encoding's
    units (septets for GSM-7, UTF-16 code units for UCS-2)."""

    encoding: Encoding
    segments: int
    units: int


def is_gsm7(text: str) -> bool:
    """Whether every character of ``text`` is in the GSM-7 alphabet or its extension table."""
    return all(c in GSM7_BASIC or c in GSM7_EXTENSION for c in text)


def _weight(char: str, encoding: Encoding) -> int:
    if encoding is Encoding.GSM7:
        return 2 if char in GSM7_EXTENSION else 1
    return 2 if ord(char) > 0xFFFF else 1


def _parts(weights: list[int], capacity: int) -> int:
    """Greedy packing into parts of ``capacity`` units; a character is never split."""
    parts, used = 1, 0
    for weight in weights:
        if used + weight > capacity:
            parts, used = parts + 1, 0
        used += weight
    return parts


def count_segments(text: str) -> SegmentCount:
    """The encoding, segments and size of ``text``; an empty text is zero segments."""
    encoding = Encoding.GSM7 if is_gsm7(text) else Encoding.UCS2
    weights = [_weight(c, encoding) for c in text]
    units = sum(weights)
    single, part = (
        (SINGLE_GSM7, PART_GSM7) if encoding is Encoding.GSM7 else (SINGLE_UCS2, PART_UCS2)
    )
    if units == 0:
        count = 0
    elif units <= single:
        count = 1
    else:
        count = _parts(weights, part)
    return SegmentCount(encoding=encoding, segments=count, units=units)


def segments(text: str) -> int:
    """How many SMS segments ``text`` needs."""
    return count_segments(text).segments


def _fold_char(char: str) -> str:
    if char in GSM7_BASIC or char in GSM7_EXTENSION:
        return char
    if char in _FOLD_EXTRA:
        return _FOLD_EXTRA[char]
    base = unicodedata.normalize("NFD", char)[0]
    return base if base in GSM7_BASIC else char


def gsm_fold(text: str) -> str:
    """``text`` with accented letters outside GSM-7 replaced by their plain letter ("ã" → "a",
    "Ç" kept: it is GSM-7) and typographic spaces, quotes and dashes by ASCII ones.

    One character in, one out, so the text never grows; characters with no GSM-7 stand-in
    (emoji, other scripts) are kept rather than dropped, and the text then stays UCS-2."""
    return "".join(_fold_char(c) for c in text)
