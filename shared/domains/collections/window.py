"""The contact window: when a collection message may reach a debtor, in the debtor's local time.

Default (brazil-rules §2.2, the São Paulo rule applied nationwide): Monday to Friday
08:00-20:00, Saturday 08:00-14:00, never on Sunday or on a national or state holiday.  The end
is exclusive (a message at Saturday 13:59 goes, at 14:00 waits).  Carnival is not a holiday by
law and is a contact day unless the tenant chooses to avoid it.  Tenants may narrow the window,
never widen it.

The debtor's zone comes from the address (UF, and the city where it changes the answer);
without an address, from the phone's DDD.  Where the DDD spans two zones (97: Manaus and
Eirunepé; 81: Recife and Fernando de Noronha), the window is the intersection of both, so the
message is lawful wherever the debtor is.  A message planned outside the window waits for the
next allowed instant — it is never dropped (§2.2, "queue, do not drop").
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from shared.brazil.calendar import carnival_days, holidays_for, timezone_for
from shared.brazil.phones import ddd_of, uf_for_ddd

__all__ = ["DEFAULT", "ContactWindow", "Place", "WindowTooWide", "place_of"]

_SATURDAY, _SUNDAY = 5, 6
_SEARCH_DAYS = 21  # the longest run without a contact day: a Carnival week plus holidays

# DDDs whose area spans two zones (brazil-rules §2.5): the window is their intersection.
_SPLIT_DDDS = {
    "97": ("America/Manaus", "America/Eirunepe"),
    "81": ("America/Recife", "America/Noronha"),
}


class WindowTooWide(ValueError):
    """A tenant's window reaches beyond the lawful default."""


@dataclass(frozen=True, slots=True)
class ContactWindow:
    """Hours per kind of day, ``None`` for no contact at all.  ``avoid_carnival`` treats
    Carnival Monday and Tuesday as holidays."""

    weekdays: tuple[time, time] | None = (time(8), time(20))
    saturday: tuple[time, time] | None = (time(8), time(14))
    avoid_carnival: bool = False

    def check_within(self, outer: ContactWindow) -> None:
        """Refuse a window wider than ``outer`` (tenants narrow the default, never widen it)."""
        for name in ("weekdays", "saturday"):
            mine, allowed = getattr(self, name), getattr(outer, name)
            if mine is None:
                continue
            if mine[0] >= mine[1]:
                raise WindowTooWide(f"{name}: the start must come before the end")
            if allowed is None or mine[0] < allowed[0] or mine[1] > allowed[1]:
                raise WindowTooWide(f"{name}: the law allows at most {_show(allowed)}")
        if outer.avoid_carnival and not self.avoid_carnival:
            raise WindowTooWide("carnival: must be avoided")

    def hours_on(self, day: date, uf: str | None) -> tuple[time, time] | None:
        """The window on a local calendar day in ``uf``; ``None`` when no contact that day."""
        if day.weekday() == _SUNDAY or day in holidays_for(day.year, uf):
            return None
        if self.avoid_carnival and day in carnival_days(day.year):
            return None
        return self.saturday if day.weekday() == _SATURDAY else self.weekdays

    def allows(self, at: datetime, place: Place) -> bool:
        """Whether a message may reach the debtor at the instant ``at`` (aware)."""
        return self.next_allowed(at, place) == at

    def next_allowed(self, at: datetime, place: Place) -> datetime:
        """The first instant at or after ``at`` inside the window in every zone of ``place``
        (``at`` itself when it is inside), in UTC."""
        if at.tzinfo is None:
            raise ValueError("at must be timezone-aware")
        at = at.astimezone(UTC)
        first_day = min(at.astimezone(ZoneInfo(z)).date() for z in place.zones)
        for offset in range(_SEARCH_DAYS):
            span = self._span(first_day + timedelta(days=offset), place)
            if span is not None and at < span[1]:
                return max(at, span[0])
        raise ValueError(f"no contact day within {_SEARCH_DAYS} days of {at.isoformat()}")

    def _span(self, day: date, place: Place) -> tuple[datetime, datetime] | None:
        """The UTC interval of ``day`` allowed in every zone of the place (their intersection)."""
        hours = self.hours_on(day, place.uf)
        if hours is None:
            return None
        start = max(datetime.combine(day, hours[0], ZoneInfo(z)) for z in place.zones)
        end = min(datetime.combine(day, hours[1], ZoneInfo(z)) for z in place.zones)
        if start >= end:
            return None
        return start.astimezone(UTC), end.astimezone(UTC)


DEFAULT = ContactWindow()


def _show(hours: tuple[time, time] | None) -> str:
    return "no contact" if hours is None else f"{hours[0]:%H:%M}-{hours[1]:%H:%M}"


@dataclass(frozen=True, slots=True)
class Place:
    """Where the debtor is, as far as the window cares: the state (for its holidays) and the
    time zones the debtor may be in (one, or two for a split DDD)."""

    uf: str | None
    zones: tuple[str, ...]


def place_of(uf: str | None, city: str | None, phone: str | None = None) -> Place:
    """The debtor's place from the address, else from the phone's DDD."""
    if uf:
        if uf.upper() == "AM" and not city:
            return Place("AM", _SPLIT_DDDS["97"])
        return Place(uf.upper(), (timezone_for(uf, city),))
    ddd = ddd_of(phone) if phone else None
    if ddd is not None:
        state = uf_for_ddd(ddd)
        if ddd in _SPLIT_DDDS:
            return Place(state, _SPLIT_DDDS[ddd])
        if state is not None:
            return Place(state, (timezone_for(state),))
    return Place(None, (timezone_for(None),))
