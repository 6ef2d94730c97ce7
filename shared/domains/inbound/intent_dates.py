"""Times a debtor says in a (normalised) reply, resolved to dates on their local calendar.

``dia 10`` is this month when not past, else next month (``dia 10 do mês que vem`` next month);
``10/12`` and ``10 de dezembro`` this year, else next year; ``10/12/2026`` as written; weekdays
(``sexta``, ``sexta-feira``, ``na segunda``) the next such day after today — an ordinal before
``via``/``parcela`` is no weekday; ``amanhã``, ``depois de amanhã``, ``hoje``; ``semana que vem``
today + 7; ``fim do mês`` the month's last day; ``fim de semana`` the next Saturday; ``daqui a 5
dias``.  ``mês que vem``, ``essa semana`` are times without a date; ``assim que``, ``quando
receber``, ``depois`` are cues that only qualify a verb.  A date in the past or more than
:data:`MAX_PROMISE_DAYS` ahead resolves to None: more likely a misreading than a plan.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date, timedelta

__all__ = ["MAX_PROMISE_DAYS", "WEEKDAY", "WHEN", "When", "whens"]

MAX_PROMISE_DAYS = 60


def _in_order(spaced: str) -> list[str]:
    return spaced.split()


_WEEKDAYS = {"segunda": 0, "terca": 1, "quarta": 2, "quinta": 3, "sexta": 4}
_WEEKDAYS |= {"sabado": 5, "domingo": 6}
_MONTHS = {
    name: i + 1
    for i, name in enumerate(
        _in_order(
            "janeiro fevereiro marco abril maio junho julho agosto setembro outubro novembro "
            "dezembro"
        )
    )
}
_UNITS = _in_order("um dois tres quatro cinco seis sete oito nove")
_TEENS = _in_order("dez onze doze treze quatorze quinze dezesseis dezessete dezoito dezenove")
_NUMBER_WORDS = {w: i + 1 for i, w in enumerate(_UNITS)} | {w: i + 10 for i, w in enumerate(_TEENS)}
_NUMBER_WORDS |= {"catorze": 14, "vinte": 20, "trinta": 30, "primeiro": 1, "trinta e um": 31}
_NUMBER_WORDS |= {f"vinte e {w}": 21 + i for i, w in enumerate(_UNITS)}
_NUM = "|".join(sorted(map(re.escape, _NUMBER_WORDS), key=len, reverse=True))
_DAY = rf"[0-9]{{1,2}}o?|{_NUM}"
_MONTH = "|".join(_MONTHS)
WEEKDAY = "|".join(_WEEKDAYS)  # the names, as a regex alternation
_NOT_ORDINAL = r"(?! (?:via|parcela|parcelas|prestacao|vez|opcao|boleto|fatura|mensalidade)\b)"

WHEN = re.compile(
    r"(?<!\S)(?:"
    r"(?P<d1>[0-9]{1,2})/(?P<m1>[0-9]{1,2})(?:/(?P<y1>[0-9]{4}|[0-9]{2}))?"
    rf"|dia (?P<d2>{_DAY})(?: de (?P<m2>{_MONTH}))?(?P<next2> do (?:mes que vem|proximo mes))?"
    rf"|(?P<d3>[0-9]{{1,2}}|primeiro) de (?P<m3>{_MONTH})"
    r"|(?P<plus2>depois de amanha)|(?P<plus1>amanha)|(?P<today>(?:ainda )?hoje)"
    r"|(?P<now>agora|ja ja)"
    rf"|(?P<wd>{WEEKDAY})(?: feira)?(?: que vem)?{_NOT_ORDINAL}"
    r"|(?P<week>semana que vem|proxima semana|semana seguinte)"
    r"|(?P<eom>(?:fim|final) (?:do|de|deste|desse|este|esse) mes)(?! que vem)"
    r"|(?P<weekend>(?:fim|final) de semana)"
    rf"|(?:daqui a|daqui|em) (?P<n>[0-9]{{1,2}}|{_NUM}) dias?"
    r"|(?P<vague>(?:(?:inicio|comeco|fim|final) do )?(?:mes que vem|proximo mes)"
    r"|(?:inicio|comeco) do mes|(?:n?essa|n?esta) semana|ate o fim da semana)"
    r"|(?P<cue>assim que|logo que|quando (?:eu )?(?:receber|recebo|cair|sair|tiver|puder"
    r"|conseguir|der)|mais tarde|em breve|(?:a|de|mais a) (?:tarde|noite)|logo mais|depois)"
    r")(?!\S)"
)


@dataclass(frozen=True, slots=True)
class When:
    """A time said in the reply.  ``date`` and ``vague`` (``mês que vem``) may be a whole reply;
    ``now`` (``agora``) and ``cue`` (``assim que``, ``depois``) only qualify a verb."""

    start: int
    end: int
    day: date | None
    kind: str  # "date" | "vague" | "now" | "cue"


def whens(text: str, today: date) -> list[When]:
    """The times said in ``text`` (normalised), in order, each resolved against ``today``."""
    found = []
    for m in WHEN.finditer(text):
        g = m.groupdict()
        kind = "cue" if g["cue"] else "now" if g["now"] else "vague" if g["vague"] else "date"
        found.append(When(m.start(), m.end(), _resolve(g, today), kind))
    return found


def _resolve(g: dict[str, str | None], today: date) -> date | None:
    try:
        day = _day(g, today)
    except OverflowError:  # a "today" at the end of the calendar
        return None
    if day is None or not today <= day <= today + timedelta(days=MAX_PROMISE_DAYS):
        return None
    return day


def _day(g: dict[str, str | None], today: date) -> date | None:
    day: date | None = None
    if g["d1"]:
        year = int(g["y1"]) + (2000 if len(g["y1"] or "") == 2 else 0) if g["y1"] else None
        day = _day_month(today, int(g["d1"]), int(g["m1"] or 0), year)
    elif g["d2"]:
        number = _number(g["d2"])
        if g["m2"]:
            day = _day_month(today, number, _MONTHS[g["m2"]], None)
        else:
            day = _day_of_month(today, number, next_month=g["next2"] is not None)
    elif g["d3"]:
        day = _day_month(today, _number(g["d3"]), _MONTHS[g["m3"] or ""], None)
    elif g["plus2"] or g["plus1"] or g["today"] or g["now"]:
        day = today + timedelta(days=2 if g["plus2"] else 1 if g["plus1"] else 0)
    elif g["wd"]:
        day = today + timedelta(days=(_WEEKDAYS[g["wd"]] - today.weekday() - 1) % 7 + 1)
    elif g["week"]:
        day = today + timedelta(days=7)
    elif g["eom"]:
        day = today.replace(day=calendar.monthrange(today.year, today.month)[1])
    elif g["weekend"]:
        day = today + timedelta(days=(5 - today.weekday()) % 7)
    elif g["n"]:
        day = today + timedelta(days=_number(g["n"]))
    return day


def _number(word: str) -> int:
    return int(word.rstrip("o")) if word[0].isdigit() else _NUMBER_WORDS[word]


def _safe_date(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


def _day_of_month(today: date, day: int, *, next_month: bool) -> date | None:
    year, month = today.year, today.month
    if next_month or day < today.day:
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return _safe_date(year, month, day)


def _day_month(today: date, day: int, month: int, year: int | None) -> date | None:
    if year is not None:
        return _safe_date(year, month, day)
    found = _safe_date(today.year, month, day)
    if found is not None and found < today:
        found = _safe_date(today.year + 1, month, day)
    return found
