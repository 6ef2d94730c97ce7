from __future__ import annotations

from datetime import date, timedelta
from zoneinfo import ZoneInfo

import pytest

from shared.brazil.calendar import (
    UFS,
    WESTERN_AMAZONAS_CITIES,
    carnival_days,
    easter,
    holidays_for,
    is_bank_business_day,
    is_contact_holiday,
    next_bank_business_day,
    timezone_for,
)
from shared.brazil.errors import InvalidValue

# Handbook section 2.5: year, Easter, Carnival Mon, Carnival Tue, Ash Wed, Good Friday, Corpus.
MOVEABLE = [
    (2024, "03-31", "02-12", "02-13", "02-14", "03-29", "05-30"),
    (2025, "04-20", "03-03", "03-04", "03-05", "04-18", "06-19"),
    (2026, "04-05", "02-16", "02-17", "02-18", "04-03", "06-04"),
    (2027, "03-28", "02-08", "02-09", "02-10", "03-26", "05-27"),
    (2028, "04-16", "02-28", "02-29", "03-01", "04-14", "06-15"),
    (2029, "04-01", "02-12", "02-13", "02-14", "03-30", "05-31"),
    (2030, "04-21", "03-04", "03-05", "03-06", "04-19", "06-20"),
]


def _d(year: int, month_day: str) -> date:
    return date.fromisoformat(f"{year}-{month_day}")


# --- UFs and time zones --------------------------------------------------------------------


def test_ufs_are_the_27_state_codes() -> None:
    assert len(UFS) == 27
    assert len(set(UFS)) == 27
    assert list(UFS) == sorted(UFS)
    assert {"SP", "RJ", "DF", "AM", "AC", "TO"} <= set(UFS)


@pytest.mark.parametrize(
    ("uf", "zone"),
    [
        ("SP", "America/Sao_Paulo"),
        ("RJ", "America/Sao_Paulo"),
        ("DF", "America/Sao_Paulo"),
        ("BA", "America/Bahia"),
        ("CE", "America/Fortaleza"),
        ("MA", "America/Fortaleza"),
        ("PE", "America/Recife"),
        ("AL", "America/Maceio"),
        ("SE", "America/Maceio"),
        ("TO", "America/Araguaina"),
        ("PA", "America/Belem"),
        ("AP", "America/Belem"),
        ("MT", "America/Cuiaba"),
        ("MS", "America/Campo_Grande"),
        ("RO", "America/Porto_Velho"),
        ("RR", "America/Boa_Vista"),
        ("AM", "America/Manaus"),
        ("AC", "America/Rio_Branco"),
    ],
)
def test_timezone_per_uf(uf: str, zone: str) -> None:
    assert timezone_for(uf) == zone


def test_every_uf_has_a_real_iana_zone() -> None:
    for uf in UFS:
        ZoneInfo(timezone_for(uf))


def test_unknown_state_is_sao_paulo_time() -> None:
    assert timezone_for(None) == "America/Sao_Paulo"
    assert timezone_for(None, "Eirunepé") == "America/Sao_Paulo"


def test_uf_is_case_and_space_insensitive() -> None:
    assert timezone_for(" ac ") == "America/Rio_Branco"


@pytest.mark.parametrize("city", ["Eirunepé", "EIRUNEPE", " eirunepe ", "Boca do Acre", "Amaturá"])
def test_western_amazonas_is_utc_minus_5(city: str) -> None:
    assert timezone_for("AM", city) == "America/Eirunepe"


@pytest.mark.parametrize("city", ["Manaus", "Tabatinga", "Parintins", None])
def test_rest_of_amazonas_is_manaus_time(city: str | None) -> None:
    assert timezone_for("AM", city) == "America/Manaus"


def test_western_amazonas_set_is_small_and_normalized() -> None:
    assert len(WESTERN_AMAZONAS_CITIES) == 11
    assert "sao paulo de olivenca" in WESTERN_AMAZONAS_CITIES


def test_noronha_is_utc_minus_2_and_cities_elsewhere_are_ignored() -> None:
    assert timezone_for("PE", "Fernando de Noronha") == "America/Noronha"
    assert timezone_for("PE", "Recife") == "America/Recife"
    assert timezone_for("SP", "Eirunepé") == "America/Sao_Paulo"


@pytest.mark.parametrize("uf", ["XX", "", "São Paulo", "BR"])
def test_unknown_uf_is_refused(uf: str) -> None:
    with pytest.raises(InvalidValue) as caught:
        timezone_for(uf)
    assert "UF" in caught.value.reason


# --- Easter, Carnival and holidays ---------------------------------------------------------


@pytest.mark.parametrize(("year", "sunday", "mon", "tue", "ash", "friday", "corpus"), MOVEABLE)
def test_easter_and_carnival_table(
    year: int, sunday: str, mon: str, tue: str, ash: str, friday: str, corpus: str
) -> None:
    assert easter(year) == _d(year, sunday)
    assert carnival_days(year) == (_d(year, mon), _d(year, tue))
    assert _d(year, ash) - easter(year) == timedelta(days=-46)
    assert _d(year, corpus) - easter(year) == timedelta(days=60)


@pytest.mark.parametrize(("year", "sunday", "mon", "tue", "ash", "friday", "corpus"), MOVEABLE)
def test_bank_business_days_around_easter(
    year: int, sunday: str, mon: str, tue: str, ash: str, friday: str, corpus: str
) -> None:
    assert not is_bank_business_day(_d(year, mon))  # Carnival: bank non-business day
    assert not is_bank_business_day(_d(year, tue))
    assert is_bank_business_day(_d(year, ash))  # banks open (at noon)
    assert not is_bank_business_day(_d(year, friday))  # Good Friday
    assert not is_bank_business_day(_d(year, sunday))
    assert is_bank_business_day(_d(year, corpus))  # municipal only; not in the national set
    assert next_bank_business_day(_d(year, mon)) == _d(year, ash)


def test_easter_matches_a_long_known_range() -> None:
    assert easter(2000) == date(2000, 4, 23)
    assert easter(2038) == date(2038, 4, 25)  # the latest possible date
    assert easter(2285) == date(2285, 3, 22)  # the earliest possible date


def test_national_holidays_2025() -> None:
    expected = {
        date(2025, 1, 1),
        date(2025, 4, 18),
        date(2025, 4, 21),
        date(2025, 5, 1),
        date(2025, 9, 7),
        date(2025, 10, 12),
        date(2025, 11, 2),
        date(2025, 11, 15),
        date(2025, 11, 20),
        date(2025, 12, 25),
    }
    assert holidays_for(2025, None) == expected


def test_black_awareness_day_is_national_from_2024() -> None:
    assert not is_bank_business_day(date(2025, 11, 20))  # a Thursday
    assert not is_bank_business_day(date(2025, 11, 20), "RS")
    assert is_contact_holiday(date(2025, 11, 20), None)
    assert date(2024, 11, 20) in holidays_for(2024, None)
    assert date(2023, 11, 20) not in holidays_for(2023, None)  # Lei 14.759/2023


def test_sao_paulo_9_july_is_a_state_holiday() -> None:
    july_9 = date(2025, 7, 9)  # a Wednesday
    assert july_9 in holidays_for(2025, "SP")
    assert july_9 not in holidays_for(2025, None)
    assert not is_bank_business_day(july_9, "SP")
    assert is_bank_business_day(july_9, "RJ")
    assert is_bank_business_day(july_9)
    assert is_contact_holiday(july_9, "SP")
    assert not is_contact_holiday(july_9, "MG")


def test_carnival_is_not_in_the_holiday_set_but_is_a_contact_holiday() -> None:
    monday, tuesday = carnival_days(2025)
    assert monday not in holidays_for(2025, "SP")
    assert is_contact_holiday(monday, "SP")
    assert is_contact_holiday(tuesday, None)
    assert not is_contact_holiday(date(2025, 3, 5), None)  # Ash Wednesday


def test_weekends_are_not_contact_holidays() -> None:
    assert not is_contact_holiday(date(2025, 3, 9), "SP")  # an ordinary Sunday


def test_holidays_are_cached_per_year_and_normalized_uf() -> None:
    assert holidays_for(2025, "sp") is holidays_for(2025, "SP")
    assert holidays_for(2026, "SP") is not holidays_for(2025, "SP")


def test_unknown_uf_is_refused_even_on_a_weekend() -> None:
    with pytest.raises(InvalidValue):
        is_bank_business_day(date(2025, 3, 8), "XX")
    with pytest.raises(InvalidValue):
        is_contact_holiday(date(2025, 3, 8), "XX")


# --- next bank business day ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "uf", "expected"),
    [
        (date(2025, 3, 10), None, date(2025, 3, 10)),  # a Monday is itself
        (date(2025, 3, 8), None, date(2025, 3, 10)),  # Saturday -> Monday
        (date(2025, 3, 9), None, date(2025, 3, 10)),  # Sunday -> Monday
        (date(2025, 3, 1), None, date(2025, 3, 5)),  # Carnival weekend -> Ash Wednesday
        (date(2025, 4, 18), None, date(2025, 4, 22)),  # Good Friday, Tiradentes Monday
        (date(2025, 12, 25), None, date(2025, 12, 26)),
        (date(2025, 7, 9), "SP", date(2025, 7, 10)),
        (date(2025, 7, 9), None, date(2025, 7, 9)),
        (date(2025, 11, 15), None, date(2025, 11, 17)),  # Saturday holiday
    ],
)
def test_next_bank_business_day(day: date, uf: str | None, expected: date) -> None:
    assert next_bank_business_day(day, uf) == expected
