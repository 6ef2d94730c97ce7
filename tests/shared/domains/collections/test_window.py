"""The contact window at its edges, in the debtor's own time: 19:59 goes and 20:00 waits in São
Paulo, Manaus and Rio Branco alike; Saturday closes at 14:00; no Sunday, no holiday (20
November, Good Friday, state holidays); Carnival is a working day unless the tenant avoids it."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.domains.collections.window import DEFAULT, ContactWindow, WindowTooWide, place_of

SP = place_of("SP", "São Paulo")
MANAUS = place_of("AM", "Manaus")
RIO_BRANCO = place_of("AC", "Rio Branco")


def local(zone: str, *args: int) -> datetime:
    return datetime(*args, tzinfo=ZoneInfo(zone))  # type: ignore[misc]


@pytest.mark.parametrize(
    ("place", "zone"),
    [(SP, "America/Sao_Paulo"), (MANAUS, "America/Manaus"), (RIO_BRANCO, "America/Rio_Branco")],
)
def test_a_weekday_closes_at_20_00_local_time(place: object, zone: str) -> None:
    monday = (2026, 11, 23)
    assert DEFAULT.allows(local(zone, *monday, 19, 59), place)  # type: ignore[arg-type]
    assert not DEFAULT.allows(local(zone, *monday, 20, 0), place)  # type: ignore[arg-type]
    assert not DEFAULT.allows(local(zone, *monday, 7, 59), place)  # type: ignore[arg-type]
    assert DEFAULT.allows(local(zone, *monday, 8, 0), place)  # type: ignore[arg-type]
    # what waits goes at 08:00 the next morning, local time
    waited = DEFAULT.next_allowed(local(zone, *monday, 20, 0), place)  # type: ignore[arg-type]
    assert waited == local(zone, 2026, 11, 24, 8, 0)


def test_the_same_utc_instant_is_late_in_sao_paulo_and_fine_in_rio_branco() -> None:
    at = local("America/Sao_Paulo", 2026, 11, 23, 20, 30)  # 18:30 in Acre
    assert not DEFAULT.allows(at, SP)
    assert DEFAULT.allows(at, RIO_BRANCO)
    assert DEFAULT.allows(at, place_of(None, None, "+5568999870003"))  # DDD 68: Acre


def test_saturday_closes_at_14_00_and_sunday_is_closed() -> None:
    assert DEFAULT.allows(local("America/Sao_Paulo", 2026, 11, 28, 13, 59), SP)
    saturday_two = local("America/Sao_Paulo", 2026, 11, 28, 14, 0)
    assert not DEFAULT.allows(saturday_two, SP)
    assert not DEFAULT.allows(local("America/Sao_Paulo", 2026, 11, 29, 10, 0), SP)
    assert DEFAULT.next_allowed(saturday_two, SP) == local("America/Sao_Paulo", 2026, 11, 30, 8)


@pytest.mark.parametrize(
    ("day", "name"),
    [((2025, 11, 20), "Consciência Negra"), ((2025, 4, 18), "Sexta-feira Santa"),
     ((2025, 12, 25), "Natal"), ((2026, 4, 21), "Tiradentes")],
)  # fmt: skip
def test_national_holidays_are_closed(day: tuple[int, int, int], name: str) -> None:
    assert not DEFAULT.allows(local("America/Sao_Paulo", *day, 10, 0), SP), name


def test_a_state_holiday_closes_only_that_state() -> None:
    revolution = (2026, 7, 9)  # São Paulo's Revolução Constitucionalista, a Thursday
    assert not DEFAULT.allows(local("America/Sao_Paulo", *revolution, 10), SP)
    assert DEFAULT.allows(local("America/Sao_Paulo", *revolution, 10), place_of("RJ", None))


def test_carnival_is_a_contact_day_unless_the_tenant_avoids_it() -> None:
    tuesday = local("America/Sao_Paulo", 2025, 3, 4, 10, 0)
    assert DEFAULT.allows(tuesday, SP)
    careful = ContactWindow(avoid_carnival=True)
    assert not careful.allows(tuesday, SP)
    assert careful.next_allowed(tuesday, SP) == local("America/Sao_Paulo", 2025, 3, 5, 8)


def test_a_split_ddd_gets_the_intersection_of_both_zones() -> None:
    ddd97 = place_of(None, None, "+5597991234567")
    monday = (2026, 11, 23)
    # 08:00 in Manaus is 07:00 in Eirunepé: too early there
    assert not DEFAULT.allows(local("America/Manaus", *monday, 8, 30), ddd97)
    assert DEFAULT.allows(local("America/Manaus", *monday, 9, 0), ddd97)
    assert DEFAULT.allows(local("America/Manaus", *monday, 19, 59), ddd97)
    assert not DEFAULT.allows(local("America/Manaus", *monday, 20, 0), ddd97)
    ddd81 = place_of(None, None, "+5581991234567")  # Recife and Fernando de Noronha
    assert not DEFAULT.allows(local("America/Recife", *monday, 19, 30), ddd81)
    assert DEFAULT.allows(local("America/Recife", *monday, 18, 59), ddd81)


def test_tenants_may_narrow_the_window_but_never_widen_it() -> None:
    ContactWindow(weekdays=(time(9), time(18)), saturday=None).check_within(DEFAULT)
    with pytest.raises(WindowTooWide):
        ContactWindow(weekdays=(time(7), time(20))).check_within(DEFAULT)
    with pytest.raises(WindowTooWide):
        ContactWindow(saturday=(time(8), time(16))).check_within(DEFAULT)
    with pytest.raises(WindowTooWide):
        ContactWindow(weekdays=(time(18), time(9))).check_within(DEFAULT)


PLACES = st.sampled_from(
    [SP, MANAUS, RIO_BRANCO, place_of("AM", None), place_of("PE", "Fernando de Noronha"),
     place_of(None, None, "+5581991234567"), place_of("RS", "Porto Alegre")]
)  # fmt: skip
WINDOWS = st.sampled_from(
    [DEFAULT, ContactWindow(weekdays=(time(9), time(18)), saturday=None, avoid_carnival=True)]
)
INSTANTS = st.datetimes(
    min_value=datetime(2024, 1, 1), max_value=datetime(2030, 12, 31), timezones=st.just(UTC)
)


@given(at=INSTANTS, place=PLACES, window=WINDOWS)
def test_the_next_allowed_instant_is_the_first_one(
    at: datetime, place: object, window: ContactWindow
) -> None:
    found = window.next_allowed(at, place)  # type: ignore[arg-type]
    assert found >= at
    assert window.allows(found, place)  # type: ignore[arg-type]
    if found > at:  # nothing earlier was open: the second before it is still closed
        assert not window.allows(found - timedelta(seconds=1), place)  # type: ignore[arg-type]
    for zone in place.zones:  # type: ignore[attr-defined]
        moment = found.astimezone(ZoneInfo(zone))
        assert moment.weekday() != 6
        assert time(7) <= moment.time() < time(21)  # inside 08-20 in its zone, give or take
