"""Boleto codes: validate a linha digitável or barcode, convert between them, decode the amount
and due date.

Two families share the paper slip:

* **bancário** (cobrança): 44-digit barcode ``BBBMDFFFFVVVVVVVVVVLLLL...`` (bank, currency,
  general DV mod 11, due-date factor, amount, 25-digit campo livre) and a 47-digit line of
  three mod-10 fields, the general DV and factor + amount;
* **arrecadação** (utilities, taxes): barcode starting with ``8``, 48-digit line in four blocks
  of 11 digits + DV; its third digit picks mod 10 (6, 7) or mod 11 (8, 9).

The due-date factor counts days from 1997-10-07 and wrapped to 1000 on 2025-02-22 (new base
2022-05-29), so one factor names two dates; decoding picks the one plausible for ``today``.
Quita receives boletos from the retailer's bank and never alters them: this module only reads.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Literal

from shared.brazil.errors import InvalidValue

BoletoKind = Literal["bancario", "arrecadacao"]

__all__ = [
    "Boleto",
    "BoletoKind",
    "dates_for_factor",
    "due_factor",
    "parse_boleto",
]

# Factor 1000 fell on these days; each cycle covers factors 1000..9999 (9000 days).
_FIRST_CYCLE_START = date(2000, 7, 3)
_SECOND_CYCLE_START = date(2025, 2, 22)
_CYCLE_DAYS = 9000
_MIN_FACTOR = 1000
_MAX_FACTOR = 9999
# A due date is looked for between 3000 days before and 5500 days after the reference day.
_WINDOW_BEFORE = timedelta(days=3000)
_WINDOW_AFTER = timedelta(days=5500)

_FORMATTING = re.compile(r"[\s.\-]+")
_DIGITS = re.compile(r"[0-9]+")
_REAL = "9"


@dataclass(frozen=True, slots=True)
class Boleto:
    """A validated boleto.  ``barcode`` (44) and ``line`` (47 or 48) are bare digits.

    ``bank`` is the 3-digit bank code (``None`` for arrecadação); ``amount`` is ``None`` when
    the code carries no amount in reais; ``due_date`` is ``None`` when it carries no date
    (factor ``0000``, and always for arrecadação)."""

    barcode: str
    line: str
    bank: str | None
    amount: Decimal | None
    due_date: date | None
    kind: BoletoKind

    @property
    def display_line(self) -> str:
        """The line as printed on the slip, e.g. ``00190.50095 40144.816069 06809.350314 3
        37370000000100``, or ``83620000000-5 66780048100-0 ...`` for arrecadação."""
        line = self.line
        if self.kind == "arrecadacao":
            return " ".join(f"{line[i : i + 11]}-{line[i + 11]}" for i in range(0, 48, 12))
        return (
            f"{line[0:5]}.{line[5:10]} {line[10:15]}.{line[15:21]} "
            f"{line[21:26]}.{line[26:32]} {line[32]} {line[33:47]}"
        )


# --- check digits ---------------------------------------------------------------------------


def _mod10(digits: str) -> str:
    """Weights 2, 1, 2, ... from the right; two-digit products add their digits."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        product = int(char) * (2 if position % 2 == 0 else 1)
        total += product // 10 + product % 10
    return str((10 - total % 10) % 10)


def _mod11_sum(digits: str) -> int:
    """Weights 2..9 cycling from the right."""
    return sum(int(char) * (2 + position % 8) for position, char in enumerate(reversed(digits)))


def _mod11_bancario(digits: str) -> str:
    """General DV of a bank barcode: ``11 - r``, with 0, 10 and 11 becoming 1."""
    dv = 11 - _mod11_sum(digits) % 11
    return "1" if dv in (0, 10, 11) else str(dv)


def _mod11_arrecadacao(digits: str) -> str:
    """Arrecadação mod 11: remainder 0 or 1 gives 0, otherwise ``11 - r``."""
    remainder = _mod11_sum(digits) % 11
    return "0" if remainder in (0, 1) else str(11 - remainder)


# --- due-date factor ------------------------------------------------------------------------


def due_factor(d: date) -> int:
    """The 4-digit due-date factor of ``d`` (1000..9999), cycling every 9000 days since
    2000-07-03: 2025-02-21 is 9999 and 2025-02-22 is 1000 again."""
    if d < _FIRST_CYCLE_START:
        raise InvalidValue("due dates before 2000-07-03 have no due-date factor")
    return _MIN_FACTOR + (d - _FIRST_CYCLE_START).days % _CYCLE_DAYS


def dates_for_factor(factor: int) -> tuple[date, date]:
    """The two dates a factor names: ``(old cycle, cycle started 2025-02-22)``."""
    if not _MIN_FACTOR <= factor <= _MAX_FACTOR:
        raise InvalidValue("due-date factor must be between 1000 and 9999")
    offset = timedelta(days=factor - _MIN_FACTOR)
    return _FIRST_CYCLE_START + offset, _SECOND_CYCLE_START + offset


def _due_date(factor: int, today: date) -> date:
    """The candidate inside [today - 3000 days, today + 5500 days], else the nearest one."""
    candidates = dates_for_factor(factor)
    for candidate in candidates:
        if today - _WINDOW_BEFORE <= candidate <= today + _WINDOW_AFTER:
            return candidate
    return min(candidates, key=lambda candidate: abs((candidate - today).days))


# --- bancário -------------------------------------------------------------------------------


def _bancario_line(barcode: str) -> str:
    fields = (barcode[0:4] + barcode[19:24], barcode[24:34], barcode[34:44])
    return "".join(field + _mod10(field) for field in fields) + barcode[4] + barcode[5:19]


def _bancario_barcode(line: str) -> str:
    for number, (start, end) in enumerate(((0, 9), (10, 20), (21, 31)), start=1):
        if _mod10(line[start:end]) != line[end]:
            raise InvalidValue(f"boleto field {number} check digit (mod 10) does not match")
    return line[0:4] + line[32] + line[33:47] + line[4:9] + line[10:20] + line[21:31]


def _amount(digits: str) -> Decimal | None:
    value = Decimal(digits).scaleb(-2)
    return value if value else None


def _bancario(barcode: str, line: str, today: date) -> Boleto:
    if _mod11_bancario(barcode[:4] + barcode[5:]) != barcode[4]:
        raise InvalidValue("boleto general check digit (mod 11) does not match")
    if barcode[3] != _REAL:
        raise InvalidValue("boleto currency code must be 9 (real)")
    factor = int(barcode[5:9])
    if factor and factor < _MIN_FACTOR:
        raise InvalidValue("boleto due-date factor is out of range")
    return Boleto(
        barcode=barcode,
        line=line,
        bank=barcode[0:3],
        amount=_amount(barcode[9:19]),
        due_date=_due_date(factor, today) if factor else None,
        kind="bancario",
    )


# --- arrecadação ----------------------------------------------------------------------------


def _arrecadacao_dv(barcode_or_block: str, value_id: str) -> str:
    if value_id in "67":
        return _mod10(barcode_or_block)
    return _mod11_arrecadacao(barcode_or_block)


def _value_id(code: str) -> str:
    value_id = code[2]
    if value_id not in "6789":
        raise InvalidValue("arrecadação value identifier (3rd digit) must be 6, 7, 8 or 9")
    return value_id


def _arrecadacao_barcode(line: str) -> str:
    value_id = _value_id(line)
    blocks = [line[i : i + 11] for i in range(0, 48, 12)]
    for number, block in enumerate(blocks, start=1):
        if _arrecadacao_dv(block, value_id) != line[number * 12 - 1]:
            raise InvalidValue(f"arrecadação block {number} check digit does not match")
    return "".join(blocks)


def _arrecadacao(barcode: str) -> Boleto:
    value_id = _value_id(barcode)
    if _arrecadacao_dv(barcode[:3] + barcode[4:], value_id) != barcode[3]:
        raise InvalidValue("arrecadação general check digit does not match")
    line = "".join(
        barcode[i : i + 11] + _arrecadacao_dv(barcode[i : i + 11], value_id)
        for i in range(0, 44, 11)
    )
    # 6 and 8 carry an effective value in reais; 7 and 9 a reference quantity.
    amount = _amount(barcode[4:15]) if value_id in "68" else None
    return Boleto(
        barcode=barcode, line=line, bank=None, amount=amount, due_date=None, kind="arrecadacao"
    )


# --- entry point ----------------------------------------------------------------------------


def parse_boleto(raw: str, *, today: date | None = None) -> Boleto:
    """Validate and decode a boleto given as a 47-digit line, a 44-digit barcode or a 48-digit
    arrecadação line.  Spaces, dots and dashes are ignored.

    ``today`` is the reference day for choosing between the two dates of a due-date factor
    (default: the current date).  Raises :class:`InvalidValue` naming the failed check.
    """
    digits = _FORMATTING.sub("", raw)
    if not _DIGITS.fullmatch(digits):
        raise InvalidValue("a boleto code has only digits")
    reference = today if today is not None else date.today()
    if len(digits) == 47:
        return _bancario(_bancario_barcode(digits), digits, reference)
    if len(digits) == 48:
        if digits[0] != "8":
            raise InvalidValue("a 48-digit boleto line must start with 8 (arrecadação)")
        return _arrecadacao(_arrecadacao_barcode(digits))
    if len(digits) == 44:
        if digits[0] == "8":
            return _arrecadacao(digits)
        return _bancario(digits, _bancario_line(digits), reference)
    raise InvalidValue(
        "a boleto must be a 47-digit line, a 44-digit barcode or a 48-digit arrecadação line"
    )
