"""Brazilian calendar rules: states (UFs), time zones, holidays and bank business days.

Why it exists: a due date that falls on a weekend, a holiday or Carnival moves to the next bank
business day without charges (Lei 7.089/1983, STJ REsp 1.954.924), and collection contacts must
respect the debtor's local time and holidays.  Everything here is a pure function of its
arguments (holiday sets are cached per year and UF).

Conventions:

* National and state holidays come from the ``holidays`` package (``holidays.Brazil``, public
  category; Good Friday is listed there as national).  Municipal holidays are not covered.
* Carnival Monday and Tuesday (Easter - 48 and - 47) are not holidays by law, but they are bank
  non-business days (Res. CMN 4.880/2020), so :func:`is_bank_business_day` excludes them, and
  :func:`is_contact_holiday` treats them as holidays for the contact window (product policy).
* A UF argument of ``None`` means "unknown": national rules only and São Paulo time.  UFs are
  accepted in any case and surrounding spaces; an unknown code raises :class:`InvalidValue`.
"""

from __future__ import annotations

import unicodedata
from datetime import date, timedelta
from functools import lru_cache

from holidays.countries.brazil import Brazil

from shared.brazil.errors import InvalidValue

__all__ = [
    "UFS",
    "carnival_days",
    "easter",
    "holidays_for",
    "is_bank_business_day",
    "is_contact_holiday",
    "next_bank_business_day",
    "normalize_uf",
    "timezone_for",
]

UFS: tuple[str, ...] = (
    "AC", "AL", "AM", "AP", "BA", "CE", "DF", "ES", "GO", "MA", "MG", "MS", "MT", "PA",
    "PB", "PE", "PI", "PR", "RJ", "RN", "RO", "RR", "RS", "SC", "SE", "SP", "TO",
)  # fmt: skip

DEFAULT_TIMEZONE = "America/Sao_Paulo"

# IANA zone per UF (Decreto 2.784/1913 as amended by Lei 12.876/2013; no DST since Decreto
# 9.772/2019).  Western Pará uses America/Santarem, which has had the same offset as Belém since
# 2008, so the whole state maps to Belém.
_UF_TIMEZONES: dict[str, str] = {
    "AC": "America/Rio_Branco",
    "AL": "America/Maceio",
    "AM": "America/Manaus",
    "AP": "America/Belem",
    "BA": "America/Bahia",
    "CE": "America/Fortaleza",
    "DF": "America/Sao_Paulo",
    "ES": "America/Sao_Paulo",
    "GO": "America/Sao_Paulo",
    "MA": "America/Fortaleza",
    "MG": "America/Sao_Paulo",
    "MS": "America/Campo_Grande",
    "MT": "America/Cuiaba",
    "PA": "America/Belem",
    "PB": "America/Fortaleza",
    "PE": "America/Recife",
    "PI": "America/Fortaleza",
    "PR": "America/Sao_Paulo",
    "RJ": "America/Sao_Paulo",
    "RN": "America/Fortaleza",
    "RO": "America/Porto_Velho",
    "RR": "America/Boa_Vista",
    "RS": "America/Sao_Paulo",
    "SC": "America/Sao_Paulo",
    "SE": "America/Maceio",
    "SP": "America/Sao_Paulo",
    "TO": "America/Araguaina",
}

# Amazonas municipalities west of the Tabatinga-Porto Acre line, on UTC-5 like Acre (Lei
# 12.876/2013).  The list is the one published by Portal Amazônia (11 municipalities); it is a
# secondary source, so the set is deliberately small and explicit.  Keys are normalized names
# (see _normalize_city).  Tabatinga itself stays on Manaus time.
WESTERN_AMAZONAS_CITIES: frozenset[str] = frozenset(
    {
        "amatura",
        "atalaia do norte",
        "benjamin constant",
        "boca do acre",
        "eirunepe",
        "envira",
        "guajara",
        "ipixuna",
        "itamarati",
        "pauini",
        "sao paulo de olivenca",
    }
)

# Pernambuco's Atlantic archipelago (a state district) is on UTC-2.
_NORONHA = "fernando de noronha"

# Weekday numbers from date.weekday().
_SATURDAY = 5

# A run of non-business days longer than this would mean a broken calendar.
_MAX_NON_BUSINESS_RUN = 31


def normalize_uf(uf: str | None) -> str | None:
    """Return the UF in upper case, ``None`` for ``None``; raise InvalidValue if unknown."""
    if uf is None:
        return None
    code = uf.strip().upper()
    if code not in _UF_TIMEZONES:
        raise InvalidValue("UF must be one of the 27 Brazilian state codes, such as SP or RJ.")
    return code


def _normalize_city(city: str) -> str:
    """Lower case, no accents, single spaces, hyphens as spaces ("Eirunepé" -> "eirunepe")."""
    decomposed = unicodedata.normalize("NFKD", city)
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(plain.replace("-", " ").casefold().split())


def timezone_for(uf: str | None, city: str | None = None) -> str:
    """The IANA time zone of a debtor in ``uf`` (and ``city``, when it changes the answer).

    ``None`` gives America/Sao_Paulo (Brasília time, the national reference).  The city only
    matters for western Amazonas (America/Eirunepe, UTC-5) and Fernando de Noronha
    (America/Noronha, UTC-2); elsewhere it is ignored.
    """
    code = normalize_uf(uf)
    if code is None:
        return DEFAULT_TIMEZONE
    if city is not None:
        name = _normalize_city(city)
        if code == "AM" and name in WESTERN_AMAZONAS_CITIES:
            return "America/Eirunepe"
        if code == "PE" and name == _NORONHA:
            return "America/Noronha"
    return _UF_TIMEZONES[code]


def easter(year: int) -> date:
    """Gregorian Easter Sunday (anonymous / Meeus-Jones-Butcher computus)."""
    a = year % 19
    b, c = divmod(year, 100)
    d, e = divmod(b, 4)
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    weekday_shift = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * weekday_shift) // 451
    month, day = divmod(h + weekday_shift - 7 * m + 114, 31)
    return date(year, month, day + 1)


def carnival_days(year: int) -> tuple[date, date]:
    """Carnival Monday and Tuesday (Easter - 48 and - 47 days)."""
    sunday = easter(year)
    return sunday - timedelta(days=48), sunday - timedelta(days=47)


@lru_cache(maxsize=512)
def _holidays(year: int, uf: str | None) -> frozenset[date]:
    calendar = Brazil(years=year, subdiv=uf)
    return frozenset(calendar.keys())


def holidays_for(year: int, uf: str | None) -> frozenset[date]:
    """National plus (when ``uf`` is given) state holidays of ``year``; no Carnival."""
    return _holidays(year, normalize_uf(uf))


def _is_carnival(d: date) -> bool:
    return d in carnival_days(d.year)


def is_bank_business_day(d: date, uf: str | None = None) -> bool:
    """True unless ``d`` is a weekend, a national/state holiday, or Carnival Monday/Tuesday."""
    national_and_state = holidays_for(d.year, uf)  # validates the UF before any early return
    if d.weekday() >= _SATURDAY:
        return False
    return d not in national_and_state and not _is_carnival(d)


def next_bank_business_day(d: date, uf: str | None = None) -> date:
    """``d`` itself when it is a bank business day, else the first one after it."""
    candidate = d
    for _ in range(_MAX_NON_BUSINESS_RUN):
        if is_bank_business_day(candidate, uf):
            return candidate
        candidate += timedelta(days=1)
    raise AssertionError("no bank business day within a month; the holiday calendar is broken")


def is_contact_holiday(d: date, uf: str | None) -> bool:
    """True on national/state holidays and Carnival Monday/Tuesday (weekends not included)."""
    return d in holidays_for(d.year, uf) or _is_carnival(d)
