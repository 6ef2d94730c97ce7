from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from shared.brazil.errors import InvalidValue
from shared.brazil.numbers import round_money
from shared.domains.money.fees import Balance, FeeRule, compute_balance

D = Decimal
DEFAULT = FeeRule(version=1)
IPCA = FeeRule(version=2, correction_index="ipca")
# Handbook section 1.6: illustrative (not real) IPCA of 0.50 % and 0.40 %, as fractions.
ILLUSTRATIVE_IPCA = {(2025, 3): D("0.005"), (2025, 4): D("0.004")}


def balance(
    due: date,
    as_of: date,
    *,
    principal: str = "250.00",
    rule: FeeRule = DEFAULT,
    uf: str | None = None,
    payments: list[tuple[date, Decimal]] | None = None,
    index_rates: dict[tuple[int, int], Decimal] | None = None,
) -> Balance:
    return compute_balance(
        principal=D(principal),
        due_date=due,
        as_of=as_of,
        rule=rule,
        uf=uf,
        payments=payments or [],
        index_rates=index_rates,
    )


def components_sum(b: Balance) -> Decimal:
    return b.principal + b.correction + b.fine + b.interest - b.discount


# --- handbook section 1.6 ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "due", "paid", "days", "fine", "interest", "total"),
    [
        ("A", date(2025, 3, 10), date(2025, 4, 24), 45, "5.00", "3.75", "258.75"),
        ("B", date(2025, 3, 10), date(2025, 3, 11), 1, "5.00", "0.08", "255.08"),
        ("C", date(2025, 3, 10), date(2025, 4, 9), 30, "5.00", "2.50", "257.50"),
        ("D", date(2025, 3, 8), date(2025, 3, 10), 0, "0.00", "0.00", "250.00"),
        ("E", date(2025, 3, 8), date(2025, 3, 11), 3, "5.00", "0.25", "255.25"),
    ],
)
def test_handbook_examples(
    name: str, due: date, paid: date, days: int, fine: str, interest: str, total: str
) -> None:
    b = balance(due, paid)
    assert b.days_overdue == days, name
    assert b.principal == D("250.00")
    assert b.correction == 0
    assert b.fine == D(fine)
    assert b.interest == D(interest)
    assert b.discount == 0
    assert b.total == D(total)
    assert b.paid == 0
    assert b.overpaid == 0
    assert b.fee_rule_version == 1
    assert b.as_of == paid


def test_saturday_due_date_moves_to_monday() -> None:
    b = balance(date(2025, 3, 8), date(2025, 3, 10))
    assert b.effective_due_date == date(2025, 3, 10)


def test_the_30_day_simple_convention_gives_3_75() -> None:
    # 250,00 for 45 days at 1 % a.m.: 3,75 (30-day month); not 3,69 (actual month lengths)
    # nor 3,76 (compound daily, forbidden).
    interest = balance(date(2025, 3, 10), date(2025, 4, 24)).interest
    assert interest == D("3.75")
    assert interest not in (D("3.69"), D("3.76"))


def test_ipca_example() -> None:
    b = balance(date(2025, 3, 10), date(2025, 4, 24), rule=IPCA, index_rates=ILLUSTRATIVE_IPCA)
    assert b.principal + b.correction == D("252.26")  # P' = round(250 x 1.005 x 1.004)
    assert b.correction == D("2.26")
    assert b.fine == D("5.05")
    assert b.interest == D("3.78")
    assert b.total == D("261.09")
    assert b.fee_rule_version == 2


def test_amounts_have_two_decimal_places() -> None:
    b = balance(date(2025, 3, 10), date(2025, 4, 24), principal="250")
    for amount in (b.principal, b.correction, b.fine, b.interest, b.discount, b.total):
        assert amount.as_tuple().exponent == -2


# --- grace on non-business days ------------------------------------------------------------


def test_carnival_due_date_is_payable_on_ash_wednesday() -> None:
    carnival_monday = date(2025, 3, 3)
    assert balance(carnival_monday, date(2025, 3, 5)).total == D("250.00")
    late = balance(carnival_monday, date(2025, 3, 6))
    assert late.days_overdue == 3
    assert late.total == D("255.25")


def test_state_holiday_grace_needs_the_uf() -> None:
    july_9 = date(2025, 7, 9)
    assert balance(july_9, date(2025, 7, 10), uf="SP").total == D("250.00")
    assert balance(july_9, date(2025, 7, 10), uf=None).total == D("255.08")


def test_without_grace_a_weekend_due_date_is_late_on_monday() -> None:
    rule = FeeRule(version=3, business_day_grace=False)
    b = balance(date(2025, 3, 8), date(2025, 3, 10), rule=rule)
    assert b.effective_due_date == date(2025, 3, 8)
    assert b.days_overdue == 2
    assert b.interest == D("0.17")  # 250 x 1 % x 2/30 = 0.1666...
    assert b.total == D("255.17")


def test_before_the_due_date_nothing_is_charged() -> None:
    b = balance(date(2025, 3, 10), date(2025, 2, 1))
    assert b.total == D("250.00")
    assert b.days_overdue == 0


# --- correction ----------------------------------------------------------------------------


def test_missing_months_count_as_zero() -> None:
    rates = {(2025, 4): D("0.004")}
    b = balance(date(2025, 3, 10), date(2025, 4, 24), rule=IPCA, index_rates=rates)
    assert b.correction == D("1.00")


def test_months_outside_the_period_are_ignored() -> None:
    rates = {**ILLUSTRATIVE_IPCA, (2025, 2): D("0.01"), (2025, 5): D("0.01")}
    b = balance(date(2025, 3, 10), date(2025, 4, 24), rule=IPCA, index_rates=rates)
    assert b.correction == D("2.26")


def test_correction_needs_the_rule() -> None:
    b = balance(date(2025, 3, 10), date(2025, 4, 24), index_rates=ILLUSTRATIVE_IPCA)
    assert b.correction == 0
    assert b.total == D("258.75")


def test_no_correction_while_not_overdue() -> None:
    b = balance(date(2025, 3, 10), date(2025, 3, 10), rule=IPCA, index_rates=ILLUSTRATIVE_IPCA)
    assert b.total == D("250.00")


def test_deflation_never_takes_the_principal_below_nominal() -> None:
    rates = {(2025, 3): D("-0.01"), (2025, 4): D("0.004")}
    b = balance(date(2025, 3, 10), date(2025, 4, 24), rule=IPCA, index_rates=rates)
    assert b.correction == 0
    assert b.total == D("258.75")


def test_deflation_offsets_earlier_inflation() -> None:
    rates = {(2025, 3): D("0.01"), (2025, 4): D("-0.005")}
    b = balance(date(2025, 3, 10), date(2025, 4, 24), rule=IPCA, index_rates=rates)
    assert b.correction == D("1.24")  # 250 x 1.01 x 0.995 = 251.2375


def test_index_rates_written_as_percentages_are_refused() -> None:
    with pytest.raises(InvalidValue) as caught:
        balance(date(2025, 3, 10), date(2025, 4, 24), rule=IPCA, index_rates={(2025, 3): D("0.5")})
    assert "fractions" in caught.value.reason


def test_index_rate_keys_must_be_year_and_month() -> None:
    with pytest.raises(InvalidValue):
        balance(date(2025, 3, 10), date(2025, 4, 24), rule=IPCA, index_rates={(2025, 13): D(0)})


# --- discount ------------------------------------------------------------------------------

EARLY = FeeRule(version=4, discount_percent=D("5"), discount_days_before_due=3)


def test_discount_applies_until_n_days_before_due() -> None:
    due = date(2025, 3, 10)
    b = balance(due, date(2025, 3, 7), rule=EARLY)
    assert b.discount == D("12.50")
    assert b.total == D("237.50")
    assert components_sum(b) == b.total
    assert balance(due, date(2025, 3, 8), rule=EARLY).discount == 0
    assert balance(due, date(2025, 3, 10), rule=EARLY).total == D("250.00")


def test_discount_with_zero_days_lasts_through_the_due_date_but_not_the_grace() -> None:
    rule = FeeRule(version=5, discount_percent=D("10"))
    saturday = date(2025, 3, 8)
    assert balance(saturday, saturday, rule=rule).total == D("225.00")
    assert balance(saturday, date(2025, 3, 10), rule=rule).total == D("250.00")
    assert balance(saturday, date(2025, 3, 11), rule=rule).total == D("255.25")


def test_paying_the_discounted_amount_in_the_window_settles() -> None:
    due = date(2025, 3, 10)
    paid = [(date(2025, 3, 5), D("237.50"))]
    for as_of in (date(2025, 3, 5), date(2025, 3, 10), date(2025, 6, 1)):
        b = balance(due, as_of, rule=EARLY, payments=paid)
        assert b.total == 0
        assert b.overpaid == 0
        assert b.paid == D("237.50")
        assert b.days_overdue == 0


def test_a_partial_payment_in_the_window_keeps_the_discount_on_the_rest() -> None:
    due = date(2025, 3, 10)
    b = balance(due, date(2025, 3, 6), rule=EARLY, payments=[(date(2025, 3, 1), D("50.00"))])
    assert b.principal == D("200.00")
    assert b.discount == D("10.00")
    assert b.total == D("190.00")


# --- partial payments ----------------------------------------------------------------------


def test_a_late_partial_payment_pays_charges_first() -> None:
    # On 25/03 (15 days): fine 5.00 + interest 1.25 are paid first, 93.75 goes to principal.
    # Then 156.25 x 1 % x 30/30 = 1.5625 from 25/03 to 24/04.
    b = balance(date(2025, 3, 10), date(2025, 4, 24), payments=[(date(2025, 3, 25), D("100"))])
    assert b.principal == D("156.25")
    assert b.fine == 0
    assert b.interest == D("1.56")
    assert b.total == D("157.81")
    assert b.paid == D("100.00")
    assert b.days_overdue == 45
    assert components_sum(b) == b.total


def test_a_small_late_payment_only_pays_part_of_the_fine() -> None:
    b = balance(date(2025, 3, 10), date(2025, 4, 24), payments=[(date(2025, 3, 25), D("2"))])
    assert b.fine == D("3.00")
    assert b.interest == D("3.75")  # the principal is untouched, so interest is unchanged
    assert b.total == D("256.75")


def test_a_payment_on_the_grace_day_is_on_time_and_the_rest_is_late_from_the_due_date() -> None:
    saturday = date(2025, 3, 8)
    payments = [(date(2025, 3, 10), D("100"))]
    b = balance(saturday, date(2025, 3, 11), payments=payments)
    assert b.principal == D("150.00")
    assert b.fine == D("3.00")  # on the 150.00 left at the effective due date
    assert b.interest == D("0.15")  # 3 days from Saturday
    assert b.total == D("153.15")


def test_overpayment() -> None:
    b = balance(date(2025, 3, 10), date(2025, 4, 24), payments=[(date(2025, 3, 25), D("300"))])
    assert b.total == 0
    assert b.overpaid == D("43.75")  # 300 - (250 + 5.00 + 1.25)
    assert b.days_overdue == 0
    assert components_sum(b) == 0


def test_payments_after_as_of_are_ignored_and_order_does_not_matter() -> None:
    due = date(2025, 3, 10)
    as_of = date(2025, 4, 24)
    payments = [
        (date(2025, 5, 1), D("50")),
        (date(2025, 4, 1), D("20")),
        (date(2025, 3, 25), D("100")),
    ]
    b = balance(due, as_of, payments=payments)
    expected = balance(due, as_of, payments=sorted(payments[1:]))
    assert b == expected
    assert b.paid == D("120.00")


def test_a_settled_installment_accrues_nothing_more() -> None:
    due = date(2025, 3, 10)
    settle = balance(due, date(2025, 3, 25))
    paid = [(date(2025, 3, 25), settle.total)]
    assert balance(due, date(2026, 3, 25), payments=paid).total == 0


def test_partial_payment_with_correction() -> None:
    # 25/03: P' = 251.25 (correction 1.25), fine 5.03, interest 1.25625 -> 1.26; the 10.00 pays
    # 5.03 + 1.26 + 1.25 and 2.46 of principal (247.54 left).  24/04: 247.54 x 1.004 = 248.53016
    # (correction 0.99); interest 248.53 x 1 % = 2.4853, accrued 3.74155 -> 3.74 - 1.26 = 2.48.
    b = balance(
        date(2025, 3, 10),
        date(2025, 4, 24),
        rule=IPCA,
        index_rates=ILLUSTRATIVE_IPCA,
        payments=[(date(2025, 3, 25), D("10"))],
    )
    assert (b.principal, b.correction, b.fine, b.interest) == (
        D("247.54"),
        D("0.99"),
        D("0.00"),
        D("2.48"),
    )
    assert b.total == D("251.01")


# --- refusals ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"fine_percent": D("2.01")}, "fine_percent"),
        ({"fine_percent": D("-1")}, "fine_percent"),
        ({"fine_percent": 2.0}, "fine_percent"),
        ({"fine_percent": D("NaN")}, "fine_percent"),
        ({"monthly_interest_percent": D("10.5")}, "monthly_interest_percent"),
        ({"monthly_interest_percent": D("-0.1")}, "monthly_interest_percent"),
        ({"correction_index": "igpm"}, "correction_index"),
        ({"discount_percent": D("100.01")}, "discount_percent"),
        ({"discount_days_before_due": -1}, "discount_days_before_due"),
        ({"version": 0}, "version"),
        ({"version": True}, "version"),
        ({"business_day_grace": 1}, "business_day_grace"),
    ],
)
def test_fee_rule_refuses(changes: dict[str, object], field: str) -> None:
    arguments: dict[str, object] = {"version": 1, **changes}
    with pytest.raises(InvalidValue) as caught:
        FeeRule(**arguments)  # type: ignore[arg-type]
    assert field in caught.value.reason


def test_fine_cap_cites_the_law() -> None:
    with pytest.raises(InvalidValue) as caught:
        FeeRule(version=1, fine_percent=D("3"))
    assert "CDC art. 52" in caught.value.reason


def test_fee_rule_limits_are_inclusive() -> None:
    rule = FeeRule(
        version=1,
        fine_percent=D("2"),
        monthly_interest_percent=D("10"),
        discount_percent=D("100"),
        correction_index="ipca",
    )
    rule.validate()


@pytest.mark.parametrize(
    ("principal", "payments"),
    [
        (D("250.001"), []),
        (D("-1"), []),
        (D("Infinity"), []),
        (D("250"), [(date(2025, 3, 20), D("0"))]),
        (D("250"), [(date(2025, 3, 20), D("-5"))]),
        (D("250"), [(date(2025, 3, 20), D("1.001"))]),
    ],
)
def test_compute_balance_refuses_bad_amounts(
    principal: Decimal, payments: list[tuple[date, Decimal]]
) -> None:
    with pytest.raises(InvalidValue):
        compute_balance(
            principal=principal,
            due_date=date(2025, 3, 10),
            as_of=date(2025, 4, 24),
            rule=DEFAULT,
            payments=payments,
        )


def test_compute_balance_refuses_floats_datetimes_and_unknown_ufs() -> None:
    with pytest.raises(InvalidValue):
        compute_balance(
            principal=250.0,  # type: ignore[arg-type]
            due_date=date(2025, 3, 10),
            as_of=date(2025, 4, 24),
            rule=DEFAULT,
        )
    with pytest.raises(TypeError):
        compute_balance(
            principal=D("250"),
            due_date=datetime(2025, 3, 10, 12, 0),
            as_of=date(2025, 4, 24),
            rule=DEFAULT,
        )
    with pytest.raises(InvalidValue):
        balance(date(2025, 3, 10), date(2025, 4, 24), uf="XX")


# --- properties ----------------------------------------------------------------------------

money = st.decimals(min_value=D("0.01"), max_value=D("100000"), places=2)
percent = st.decimals(min_value=D("0"), max_value=D("2"), places=2)
interest_percent = st.decimals(min_value=D("0"), max_value=D("10"), places=2)
due_dates = st.dates(min_value=date(2024, 1, 1), max_value=date(2027, 12, 31))
ufs = st.sampled_from([None, "SP", "RJ", "AM"])
nonnegative_rates = st.decimals(min_value=D("0"), max_value=D("0.02"), places=4)
any_rates = st.decimals(min_value=D("-0.01"), max_value=D("0.02"), places=4)


@st.composite
def rules(draw: st.DrawFn) -> FeeRule:
    return FeeRule(
        version=1,
        fine_percent=draw(percent),
        monthly_interest_percent=draw(interest_percent),
        correction_index=draw(st.sampled_from([None, "ipca"])),
        discount_percent=draw(st.sampled_from([D("0"), D("5"), D("12.5")])),
        discount_days_before_due=draw(st.integers(min_value=0, max_value=10)),
        business_day_grace=draw(st.booleans()),
    )


def index_for(
    due: date, rates: st.SearchStrategy[Decimal]
) -> st.SearchStrategy[dict[tuple[int, int], Decimal]]:
    """Rates for the 30 months from the due date's month (covers any as_of drawn below)."""
    months = [divmod(due.year * 12 + due.month - 1 + k, 12) for k in range(30)]
    return st.fixed_dictionaries({(year, month + 1): rates for year, month in months})


@dataclass(frozen=True)
class Scenario:
    principal: Decimal
    due: date
    as_of: date
    rule: FeeRule
    uf: str | None
    payments: tuple[tuple[date, Decimal], ...]
    index_rates: dict[tuple[int, int], Decimal]

    def run(self, payments: tuple[tuple[date, Decimal], ...] | None = None) -> Balance:
        return compute_balance(
            principal=self.principal,
            due_date=self.due,
            as_of=self.as_of,
            rule=self.rule,
            uf=self.uf,
            payments=self.payments if payments is None else payments,
            index_rates=self.index_rates,
        )


@st.composite
def scenarios(draw: st.DrawFn, rates: st.SearchStrategy[Decimal] = any_rates) -> Scenario:
    due = draw(due_dates)
    as_of = due + timedelta(days=draw(st.integers(min_value=-15, max_value=800)))
    offsets = st.integers(min_value=-15, max_value=max(-15, (as_of - due).days))
    payment = st.tuples(offsets.map(lambda days: due + timedelta(days=days)), money)
    return Scenario(
        principal=draw(money),
        due=due,
        as_of=as_of,
        rule=draw(rules()),
        uf=draw(ufs),
        payments=tuple(draw(st.lists(payment, max_size=3))),
        index_rates=draw(index_for(due, rates)),
    )


PROPERTY = settings(max_examples=200, deadline=None)


@PROPERTY
@given(scenarios())
def test_components_are_never_negative_and_add_up(scenario: Scenario) -> None:
    b = scenario.run()
    for amount in (b.principal, b.correction, b.fine, b.interest, b.discount, b.total, b.overpaid):
        assert amount >= 0
    assert b.total == components_sum(b)
    applied = [amount for paid_on, amount in scenario.payments if paid_on <= scenario.as_of]
    assert b.paid == sum(applied, D(0))
    assert b.days_overdue >= 0


@PROPERTY
@given(money, percent, st.integers(min_value=1, max_value=900), due_dates)
def test_fine_is_at_most_two_percent(
    principal: Decimal, fine: Decimal, days: int, due: date
) -> None:
    rule = FeeRule(version=1, fine_percent=fine)
    as_of = due + timedelta(days=days)
    b = compute_balance(principal=principal, due_date=due, as_of=as_of, rule=rule)
    if b.days_overdue:
        assert b.fine == round_money(principal * fine / 100)
    assert b.fine <= round_money(principal * D("0.02"))


@PROPERTY
@given(
    money,
    interest_percent,
    st.integers(min_value=1, max_value=400),
    st.integers(min_value=1, max_value=400),
    due_dates,
)
def test_interest_is_simple_and_linear_in_days(
    principal: Decimal, rate: Decimal, d1: int, d2: int, due: date
) -> None:
    rule = FeeRule(version=1, monthly_interest_percent=rate, business_day_grace=False)

    def interest(days: int) -> Decimal:
        as_of = due + timedelta(days=days)
        return compute_balance(principal=principal, due_date=due, as_of=as_of, rule=rule).interest

    for days in (d1, d2, d1 + d2):
        assert interest(days) == round_money(principal * rate / 100 * days / 30)
    assert abs(interest(d1 + d2) - (interest(d1) + interest(d2))) <= D("0.01")


@PROPERTY
@given(scenarios())
def test_without_payments_the_formulas_hold(scenario: Scenario) -> None:
    b = scenario.run(payments=())
    assert b.paid == 0
    assert b.total == b.principal + b.correction + b.fine + b.interest - b.discount - b.paid
    assert b.principal == scenario.principal
    if b.days_overdue:
        corrected = b.principal + b.correction
        rule = scenario.rule
        assert b.fine == round_money(corrected * rule.fine_percent / 100)
        expected = corrected * rule.monthly_interest_percent / 100 * b.days_overdue / 30
        assert b.interest == round_money(expected)
        assert b.discount == 0
    else:
        assert b.correction == b.fine == b.interest == 0


@PROPERTY
@given(scenarios())
def test_paying_the_total_on_as_of_settles(scenario: Scenario) -> None:
    b = scenario.run()
    assume(b.total > 0)
    settled = scenario.run(payments=(*scenario.payments, (scenario.as_of, b.total)))
    assert settled.total == 0
    assert settled.overpaid == b.overpaid
    assert settled.days_overdue == 0


@PROPERTY
@given(scenarios(rates=nonnegative_rates), st.integers(min_value=-15, max_value=800), money)
def test_a_further_payment_never_increases_the_total(
    scenario: Scenario, day: int, amount: Decimal
) -> None:
    paid_on = min(scenario.due + timedelta(days=day), scenario.as_of)
    before = scenario.run()
    after = scenario.run(payments=(*scenario.payments, (paid_on, amount)))
    assert after.total <= before.total
    assert after.paid == before.paid + amount


@PROPERTY
@given(st.decimals(min_value=D("2.0001"), max_value=D("100"), places=4))
def test_fines_above_two_percent_are_refused(fine: Decimal) -> None:
    with pytest.raises(InvalidValue) as caught:
        FeeRule(version=1, fine_percent=fine)
    assert "fine_percent" in caught.value.reason
