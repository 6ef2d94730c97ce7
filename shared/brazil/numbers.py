"""Brazilian money and date text: parsing what retailers type or export, and formatting for
messages.

Why it exists: spreadsheets and ERPs export amounts as ``1.234,56``, ``1234.56`` or
``R$ 1.234,56`` and dates as ``10/03/2025`` or ISO; a misread separator multiplies a debt by a
thousand, so parsing is strict and refuses anything ambiguous rather than guessing.  Amounts are
``Decimal`` end to end, never floats.

Conventions:

* Money is rounded to the centavo with ROUND_HALF_UP (:func:`round_money`), before formatting,
  because Babel itself rounds HALF_EVEN.
* :func:`format_brl` keeps Babel's no-break space after ``R$`` (``R$\\u00a01.234,56``): it
  keeps the symbol and the number on one line in chat apps.  Never feed it into a payload
  (Pix and APIs use a dot decimal).
* Reasons in :class:`InvalidValue` never echo the input back (it may be personal data).
"""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Context, Decimal

from babel import Locale

from shared.brazil.errors import InvalidValue

__all__ = [
    "CENT",
    "format_brl",
    "format_date_br",
    "parse_amount",
    "parse_date",
    "round_money",
]

CENT = Decimal("0.01")

# Enough digits for any amount the product handles; quantize() needs the result to fit.
_MONEY_CONTEXT = Context(prec=50)

_MAX_AMOUNT_CHARS = 40
_MAX_DATE_CHARS = 40
_MIN_YEAR = 1900
_MAX_YEAR = 2199

# "R$" prefix, then any (no-break) spaces.
_CURRENCY_PREFIX = re.compile(r"^R\$\s*", re.IGNORECASE)
_MINUS_SIGNS = ("-", "\u2212")
_DIGITS_AND_SEPARATORS = re.compile(r"[0-9.,]+")
# Integer digits grouped by thousands: 0, 1, 123, 1<sep>234, 12<sep>345<sep>678 ...
_INT_WITH_DOTS = re.compile(r"0|[1-9][0-9]{0,2}(?:\.[0-9]{3})*")
_INT_WITH_COMMAS = re.compile(r"0|[1-9][0-9]{0,2}(?:,[0-9]{3})*")
_PLAIN_INT = re.compile(r"[0-9]+")
_THOUSANDS_DOT = re.compile(r"[1-9][0-9]{0,2}(?:\.[0-9]{3})+")

_BR_DATE = re.compile(r"([0-9]{1,2})([/.-])([0-9]{1,2})\2([0-9]{4})")
_BR_DATE_SHORT_YEAR = re.compile(r"[0-9]{1,2}([/.-])[0-9]{1,2}\1[0-9]{2}")
_ISO_DATE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")
_ISO_DATETIME = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})T.+")


def round_money(x: Decimal) -> Decimal:
    """``x`` quantized to the centavo, ROUND_HALF_UP (ties away from zero)."""
    if not x.is_finite():
        raise InvalidValue("The amount must be a finite number.")
    return x.quantize(CENT, rounding=ROUND_HALF_UP, context=_MONEY_CONTEXT)


# --- amounts -------------------------------------------------------------------------------


def _strip_amount(raw: str) -> str:
    """The number part of ``raw``: no surrounding spaces, no ``R$``; refuses negatives."""
    text = raw.strip()
    if not text:
        raise InvalidValue("The amount is empty.")
    if len(text) > _MAX_AMOUNT_CHARS:
        raise InvalidValue("The amount is too long.")
    if any(sign in text for sign in _MINUS_SIGNS):
        raise InvalidValue("The amount must not be negative.")
    text = _CURRENCY_PREFIX.sub("", text)
    if not text:
        raise InvalidValue("The amount is empty.")
    return text


def _split_decimal(number: str) -> tuple[str, str, str | None]:
    """Split into (integer part, fraction digits, thousands separator or None).

    Both ``.`` and ``,``: the last one is the decimal separator.  Only ``,``: decimal (at most
    one).  Only ``.``: thousands when the number is grouped in threes (``1.234``,
    ``12.345.678``), otherwise decimal (at most one).
    """
    has_dot, has_comma = "." in number, "," in number
    if has_dot and has_comma:
        decimal_sep = "." if number.rfind(".") > number.rfind(",") else ","
        thousands = "," if decimal_sep == "." else "."
        integer, _, fraction = number.rpartition(decimal_sep)
        return integer, fraction, thousands
    if has_comma:
        if number.count(",") > 1:
            raise InvalidValue("The amount has more than one decimal comma.")
        integer, _, fraction = number.partition(",")
        return integer, fraction, None
    if has_dot:
        if _THOUSANDS_DOT.fullmatch(number):
            return number, "", "."
        if number.count(".") > 1:
            raise InvalidValue("The amount's thousands separators are not in groups of three.")
        integer, _, fraction = number.partition(".")
        return integer, fraction, None
    return number, "", None


def _check_integer_part(integer: str, thousands: str | None) -> str:
    """The integer digits without separators; refuses bad grouping or a missing integer."""
    if thousands is None:
        if not _PLAIN_INT.fullmatch(integer):
            raise InvalidValue("The amount needs digits before the decimal separator.")
        return integer
    pattern = _INT_WITH_DOTS if thousands == "." else _INT_WITH_COMMAS
    if not pattern.fullmatch(integer):
        raise InvalidValue("The amount's thousands separators are not in groups of three.")
    return integer.replace(thousands, "")


def parse_amount(raw: str) -> Decimal:
    """Parse a non-negative amount of reais written the Brazilian or the plain way.

    Accepts ``1.234,56``, ``1234,56``, ``1234.56``, ``R$ 1.234,56`` (also with a no-break space),
    `` 250 `` and ``250.5``.  Returns a Decimal with two decimal places.  Refuses (InvalidValue)
    empty text, negatives, more than two decimal places, bad thousands grouping, NaN, infinity and
    anything else that is not digits and separators.
    """
    number = _strip_amount(raw)
    if not _DIGITS_AND_SEPARATORS.fullmatch(number):
        raise InvalidValue("The amount is not a number such as 1.234,56 or 1234.56.")
    integer, fraction, thousands = _split_decimal(number)
    digits = _check_integer_part(integer, thousands)
    if len(fraction) > 2:
        raise InvalidValue("The amount has more than 2 decimal places.")
    if number[-1] in ".,":
        raise InvalidValue("The amount ends with a separator.")
    return Decimal(f"{digits}.{fraction or '0'}").quantize(CENT, context=_MONEY_CONTEXT)


# --- dates ---------------------------------------------------------------------------------


def _make_date(year: int, month: int, day: int) -> date:
    if not _MIN_YEAR <= year <= _MAX_YEAR:
        raise InvalidValue(f"The year must be between {_MIN_YEAR} and {_MAX_YEAR}.")
    try:
        return date(year, month, day)
    except ValueError:
        raise InvalidValue("The date does not exist in the calendar.") from None


def _parse_iso_datetime_prefix(text: str) -> date:
    """The date written at the start of an ISO datetime, as written (no zone conversion)."""
    match = _ISO_DATETIME.fullmatch(text)
    if match is None:
        raise InvalidValue("The date must be dd/mm/aaaa or aaaa-mm-dd.")
    day = _make_date(int(match[1]), int(match[2]), int(match[3]))
    try:
        datetime.fromisoformat(text)
    except ValueError:
        raise InvalidValue("The time after the date is not a valid ISO 8601 time.") from None
    return day


def parse_date(raw: str) -> date:
    """Parse ``dd/mm/aaaa`` (also ``d/m/aaaa``, ``dd-mm-aaaa``, ``dd.mm.aaaa``) or ISO
    ``aaaa-mm-dd``, optionally followed by an ISO time (``2025-03-10T14:00:00-03:00``: the date
    as written, no time zone conversion).

    Two-digit years are refused (ambiguous), as are dates that do not exist (31/02/2025).
    """
    text = raw.strip()
    if not text:
        raise InvalidValue("The date is empty.")
    if len(text) > _MAX_DATE_CHARS:
        raise InvalidValue("The date is too long.")
    if match := _BR_DATE.fullmatch(text):
        return _make_date(int(match[4]), int(match[3]), int(match[1]))
    if match := _ISO_DATE.fullmatch(text):
        return _make_date(int(match[1]), int(match[2]), int(match[3]))
    if _BR_DATE_SHORT_YEAR.fullmatch(text):
        raise InvalidValue("Two-digit years are ambiguous; write the date as dd/mm/aaaa.")
    return _parse_iso_datetime_prefix(text)


# --- formatting ----------------------------------------------------------------------------


_PT_BR = Locale.parse("pt_BR")
# Babel's pt_BR currency pattern, parsed once: a reminder formats a dozen amounts, and resolving
# the locale and pattern on every call took half of each call's time.
_BRL_PATTERN = _PT_BR.currency_formats["standard"]


def format_brl(x: Decimal) -> str:
    """``R$\\u00a01.234,56`` (pt_BR, no-break space), rounded HALF_UP to the centavo first."""
    if not isinstance(x, Decimal):
        raise TypeError("format_brl takes a Decimal; floats cannot represent centavos exactly")
    formatted: str = _BRL_PATTERN.apply(round_money(x), _PT_BR, currency="BRL")
    return formatted


def format_date_br(d: date) -> str:
    """``dd/mm/aaaa``."""
    return f"{d.day:02d}/{d.month:02d}/{d.year:04d}"
