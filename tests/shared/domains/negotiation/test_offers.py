"""Offers never go past a limit and always add up to the centavo (properties over random
balances, policies and mandate limits), plus a few worked examples."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.domains.negotiation import offers
from shared.domains.negotiation.limits import (
    DEFAULT,
    HIGHER_IS_TIGHTER,
    LIMIT_FIELDS,
    Limits,
    check_mandate_limits,
    check_policy,
    effective,
)
from shared.domains.negotiation.offers import Debt, Option, Terms
from shared.errors import ValidationFailed

TODAY = date(2026, 12, 7)
HUNDRED = Decimal(100)


def _cents(low: int, high: int) -> st.SearchStrategy[Decimal]:
    return st.integers(low, high).map(lambda c: Decimal(c).scaleb(-2).quantize(Decimal("0.01")))


def _percent() -> st.SearchStrategy[Decimal]:
    return st.integers(0, 10000).map(lambda c: Decimal(c).scaleb(-2))


debts = st.lists(
    st.builds(
        Debt,
        installment_id=st.uuids().map(str),
        principal=_cents(1, 5_000_000),
        correction=_cents(0, 50_000),
        fine=_cents(0, 100_000),
        interest=_cents(0, 300_000),
    ),
    min_size=1,
    max_size=4,
)

policies = st.builds(
    Limits,
    max_discount_fees_percent=_percent(),
    max_discount_principal_percent=_percent(),
    min_down_payment_percent=_percent(),
    max_installments=st.integers(0, 24),
    min_installment_amount=_cents(0, 50_000),
    monthly_interest_percent=st.integers(0, 10000).map(lambda c: Decimal(c).scaleb(-3)),
    offer_validity_hours=st.integers(1, 720),
    max_broken_agreements=st.integers(0, 20),
)


@st.composite
def mandates(draw: Any) -> dict[str, Any] | None:
    """Random agency limits: each field unset or any value (effective() keeps the tighter)."""
    if draw(st.booleans()):
        return None
    values = draw(policies)
    return {name: getattr(values, name) if draw(st.booleans()) else None for name in LIMIT_FIELDS}


def _limits_of(policy: Limits, mandate: dict[str, Any] | None) -> Limits:
    return effective(policy, mandate)


def _assert_adds_up(option: Option) -> None:
    paid = option.down_payment + sum((i.amount for i in option.installments), Decimal(0))
    assert paid == option.negotiated_total + option.interest
    assert all(i.amount > 0 for i in option.installments)
    assert option.down_payment >= 0
    assert option.negotiated_total > 0


def _assert_within(option: Option, limits: Limits) -> None:
    """What every option must respect: the ceilings on discounts, the floor on the down
    payment, the number and the size of installments."""
    fees_cap = option.fees * limits.max_discount_fees_percent / HUNDRED
    principal_cap = option.principal * limits.max_discount_principal_percent / HUNDRED
    assert 0 <= option.discount_fees <= fees_cap
    assert 0 <= option.discount_principal <= principal_cap
    assert option.discount_fees <= option.fees  # CDC: fees never below zero
    count = len(option.installments)
    if option.kind == "new_date":
        assert option.discount_fees == option.discount_principal == 0
        assert count == 1 and option.interest == 0
        return
    if count == 0:
        assert option.down_payment == option.negotiated_total
        return
    assert count <= limits.max_installments
    assert option.down_payment * HUNDRED >= (
        option.negotiated_total * limits.min_down_payment_percent
    )
    if count >= 2:
        assert min(i.amount for i in option.installments) >= limits.min_installment_amount


@settings(max_examples=300, deadline=None)
@given(debts, policies, mandates())
def test_no_menu_option_exceeds_a_limit_and_every_one_adds_up(
    items: list[Debt], policy: Limits, mandate: dict[str, Any] | None
) -> None:
    limits = _limits_of(policy, mandate)

    menu = offers.menu(items, limits, TODAY)

    assert menu[0].kind == "pay_today" and menu[-1].kind == "new_date"
    assert len({o.id for o in menu}) == len(menu)
    for option in menu:
        _assert_adds_up(option)
        _assert_within(option, limits)
        if option.kind == "installments":  # charged the interest in force, no less
            assert option.monthly_interest_percent == limits.monthly_interest_percent
        _assert_within(option, policy)  # the mandate never loosens the retailer's policy
        assert option.original_total == sum((d.total for d in items), Decimal(0))


@settings(max_examples=100, deadline=None)
@given(debts, policies, mandates())
def test_the_menu_is_deterministic(
    items: list[Debt], policy: Limits, mandate: dict[str, Any] | None
) -> None:
    limits = _limits_of(policy, mandate)

    first = [o.as_json() for o in offers.menu(items, limits, TODAY)]
    again = [o.as_json() for o in offers.menu(list(items), _limits_of(policy, mandate), TODAY)]

    assert first == again


@settings(max_examples=300, deadline=None)
@given(
    financed=_cents(1, 10_000_000),
    count=st.integers(1, 60),
    rate=st.integers(0, 10000).map(lambda c: Decimal(c).scaleb(-3)),
)
def test_a_schedule_pays_what_is_financed_plus_its_interest_to_the_centavo(
    financed: Decimal, count: int, rate: Decimal
) -> None:
    installments, interest = offers.schedule(financed, count, rate, TODAY)

    assert sum(i.amount for i in installments) == financed + interest
    assert [i.number for i in installments] == list(range(1, count + 1))
    assert all(i.amount == installments[0].amount for i in installments[:-1])
    assert interest >= 0 and (rate > 0 or interest == 0)


# --- an operator's terms ---------------------------------------------------------------------


def _violations(items: list[Debt], limits: Limits, terms: Terms) -> set[str]:
    """The rules ``terms`` break, restated independently of the code under test."""
    principal = sum((d.principal for d in items), Decimal(0))
    fees = sum((d.fees for d in items), Decimal(0))
    broken = set()
    if terms.discount_fees * HUNDRED > fees * limits.max_discount_fees_percent:
        broken.add("discount_fees")
    if terms.discount_principal * HUNDRED > principal * limits.max_discount_principal_percent:
        broken.add("discount_principal")
    if terms.installments > limits.max_installments:
        broken.add("installments")
    if broken:
        return broken
    negotiated = principal + fees - terms.discount_fees - terms.discount_principal
    if negotiated <= 0:
        return {"discount_principal"}
    if terms.installments == 0:
        ok = terms.down_payment is None or terms.down_payment == negotiated
        return set() if ok else {"down_payment"}
    down = terms.down_payment
    least = negotiated * limits.min_down_payment_percent / HUNDRED
    if down is None:
        down = offers.floor_of(negotiated, limits.min_down_payment_percent)
    if down < least or down >= negotiated:
        return {"down_payment"}
    assert terms.first_due_date is not None
    plan, _ = offers.schedule(
        negotiated - down,
        terms.installments,
        limits.monthly_interest_percent,
        terms.first_due_date,
    )
    smallest = min(i.amount for i in plan)
    if smallest <= 0 or (len(plan) >= 2 and smallest < limits.min_installment_amount):
        return {"installments"}
    return set()


@st.composite
def terms_for(draw: Any, items: list[Debt]) -> Terms:
    """Terms around the limits: often inside, often just past one."""
    principal = sum((d.principal for d in items), Decimal(0))
    fees = sum((d.fees for d in items), Decimal(0))
    total_cents = int((principal + fees) * 100)
    return Terms(
        discount_fees=draw(_cents(0, int(fees * 100))),
        discount_principal=draw(_cents(0, int(principal * 100)) | st.just(Decimal("0.00"))),
        down_payment=draw(st.none() | _cents(0, total_cents)),
        installments=draw(st.integers(0, 30)),
        first_due_date=TODAY + timedelta(days=draw(st.integers(1, 90))),
    )


@settings(max_examples=500, deadline=None)
@given(st.data(), debts, policies, mandates())
def test_custom_terms_outside_the_limits_are_refused_and_inside_accepted(
    data: st.DataObject, items: list[Debt], policy: Limits, mandate: dict[str, Any] | None
) -> None:
    limits = _limits_of(policy, mandate)
    terms = data.draw(terms_for(items))
    expected = _violations(items, limits, terms)

    try:
        option = offers.check_terms(items, limits, terms, TODAY)
    except ValidationFailed as refused:
        named = {e.field for e in refused.errors}
        assert expected, f"refused terms inside the limits: {refused.errors}"
        assert named & expected, (named, expected)
    else:
        assert not expected, f"accepted terms past {expected}"
        _assert_adds_up(option)
        _assert_within(option, limits)
        _assert_within(option, policy)


def test_an_agency_past_its_mandate_hears_which_limit_and_how_much() -> None:
    policy = Limits(**{**_values(DEFAULT), "max_discount_principal_percent": Decimal("20")})
    limits = effective(policy, {"max_discount_principal_percent": Decimal("10")})
    items = [Debt("a", Decimal("123.40"), Decimal("0"), Decimal("2.47"), Decimal("1.20"))]

    with pytest.raises(ValidationFailed) as refused:
        offers.check_terms(items, limits, Terms(discount_principal=Decimal("20.00")), TODAY)

    [error] = refused.value.errors
    assert error.field == "discount_principal"
    assert error.message == "at most 10% (R$\u00a012,34) under your mandate"


def _values(limits: Limits) -> dict[str, Any]:
    return {name: getattr(limits, name) for name in LIMIT_FIELDS}


def test_a_discount_over_the_policy_names_the_policy() -> None:
    items = [Debt("a", Decimal("100.00"), Decimal("0"), Decimal("2.00"), Decimal("3.00"))]

    with pytest.raises(ValidationFailed) as refused:
        offers.check_terms(items, DEFAULT, Terms(discount_fees=Decimal("2.51")), TODAY)

    assert [(e.field, e.message) for e in refused.value.errors] == [
        ("discount_fees", "at most 50% (R$\u00a02,50) under the retailer's policy")
    ]


def test_pay_today_takes_the_largest_discounts_and_a_plan_half_the_fee_discount() -> None:
    items = [Debt("a", Decimal("1000.00"), Decimal("0"), Decimal("20.00"), Decimal("10.00"))]
    limits = Limits(**{**_values(DEFAULT), "max_discount_principal_percent": Decimal("5")})

    menu = {o.id: o for o in offers.menu(items, limits, TODAY)}

    assert menu["pay_today"].down_payment == Decimal("965.00")  # 1030 - 15 - 50
    three = menu["installments_3"]
    assert (three.discount_fees, three.discount_principal) == (Decimal("7.50"), 0)
    assert three.down_payment == Decimal("102.25")  # 10 % of 1022.50
    assert [i.amount for i in three.installments] == [Decimal("306.75")] * 3
    assert [i.due_date for i in three.installments] == [
        date(2027, 1, 7),
        date(2027, 2, 7),
        date(2027, 3, 7),
    ]
    assert menu["new_date"].installments[0].due_date == date(2026, 12, 22)
    assert sorted(menu) == [
        "installments_2",
        "installments_3",
        "installments_6",
        "new_date",
        "pay_today",
    ]


def test_price_table_interest_and_the_last_installment_absorbs_the_rest() -> None:
    installments, interest = offers.schedule(Decimal("900.00"), 3, Decimal("2"), TODAY)

    assert [i.amount for i in installments] == [Decimal("312.08")] * 3
    assert interest == Decimal("36.24")
    uneven, none = offers.schedule(Decimal("100.00"), 3, Decimal("0"), TODAY)
    assert [i.amount for i in uneven] == [Decimal("33.33"), Decimal("33.33"), Decimal("33.34")]
    assert none == 0


def test_the_menu_offers_the_longest_plan_the_minimum_installment_allows() -> None:
    # 100.00 owed, 10 % down: 90.00 financed; R$ 20 minimum -> at most 4 installments
    items = [Debt("a", Decimal("100.00"), Decimal("0"), Decimal("0"), Decimal("0"))]
    limits = Limits(**{**_values(DEFAULT), "max_installments": 12})

    ids = [o.id for o in offers.menu(items, limits, TODAY)]

    assert ids == ["pay_today", "installments_2", "installments_3", "installments_4", "new_date"]


# --- limits ----------------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(policies, mandates())
def test_effective_limits_are_the_tighter_of_policy_and_mandate(
    policy: Limits, mandate: dict[str, Any] | None
) -> None:
    limits = effective(policy, mandate)

    for name in LIMIT_FIELDS:
        mine, theirs = getattr(policy, name), (mandate or {}).get(name)
        candidates = [mine] + ([theirs] if theirs is not None else [])
        tightest = max(candidates) if name in HIGHER_IS_TIGHTER else min(candidates)
        assert getattr(limits, name) == tightest


@settings(max_examples=200, deadline=None)
@given(policies, policies)
def test_a_mandate_limit_looser_than_the_policy_is_refused_naming_the_field(
    policy: Limits, proposed: Limits
) -> None:
    values = _values(proposed)

    named = {e.field for e in check_mandate_limits(values, policy)}

    looser = {
        name
        for name in LIMIT_FIELDS
        if (values[name] < getattr(policy, name)) == (name in HIGHER_IS_TIGHTER)
        and values[name] != getattr(policy, name)
    }
    assert named == looser


def test_the_default_policy_is_a_valid_policy() -> None:
    assert check_policy(_values(DEFAULT)) == []
