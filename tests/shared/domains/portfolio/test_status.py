"""The installment status machine under any sequence of retailer requests and payments."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from shared.domains.portfolio import status
from shared.models import InstallmentStatus as S

PRINCIPAL = Decimal("100.00")

requests = st.sampled_from(sorted(status.SETTABLE)).map(lambda s: ("ask", s))
payments = st.decimals(min_value="0.01", max_value="150.00", places=2).map(lambda a: ("pay", a))


def run(ops: list[tuple[str, object]]) -> list[tuple[S, Decimal, bool]]:
    """Apply ``ops`` as the service does; the (status, paid, refused) after each one."""
    current, paid, trail = S.OPEN, Decimal(0), []
    for kind, value in ops:
        refused = False
        try:
            if kind == "ask":
                new = status.requested(
                    current, S(value), amount_paid=paid, settled_by_payments=paid > 0
                )
                current = new or current
            else:
                assert isinstance(value, Decimal)
                remaining = max(PRINCIPAL - paid, Decimal(0))
                if current is not S.PAID:
                    applied = min(value, remaining)
                    current = status.after_payment(current, remaining - applied)
                    paid += applied
        except status.StatusConflict:
            refused = True
        trail.append((current, paid, refused))
    return trail


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(requests, payments), max_size=12))
def test_invariants_hold_after_every_step(ops: list[tuple[str, object]]) -> None:
    trail = run(ops)
    cancelled = False
    paid_by_money = False
    for current, paid, _ in trail:
        # cancelled is final
        if cancelled:
            assert current is S.CANCELLED
        cancelled = cancelled or current is S.CANCELLED
        # money received is never undone by a status field
        if paid_by_money:
            assert current is S.PAID
        paid_by_money = paid_by_money or (current is S.PAID and paid >= PRINCIPAL)
        # partially paid means some money, and not all of it
        if current is S.PARTIALLY_PAID:
            assert Decimal(0) < paid < PRINCIPAL
        # an installment that received money is never cancelled
        if paid > 0:
            assert current is not S.CANCELLED


def test_a_cancelled_installment_refuses_payments() -> None:
    trail = run([("ask", "cancelled"), ("pay", Decimal("10.00"))])
    assert trail[-1] == (S.CANCELLED, Decimal(0), True)


def test_reopening_a_dispute_returns_to_the_status_payments_give() -> None:
    trail = run([("pay", Decimal("30.00")), ("ask", "disputed"), ("ask", "open")])
    assert [t[0] for t in trail] == [S.PARTIALLY_PAID, S.DISPUTED, S.PARTIALLY_PAID]


def test_a_paid_outside_installment_may_be_reopened_but_one_paid_in_quita_may_not() -> None:
    outside = run([("ask", "paid"), ("ask", "open")])
    assert [t[0] for t in outside] == [S.PAID, S.OPEN]
    inside = run([("pay", Decimal("100.00")), ("ask", "open")])
    assert [t[0] for t in inside] == [S.PAID, S.PAID]


def test_only_open_and_partially_paid_are_collected() -> None:
    assert {S.OPEN, S.PARTIALLY_PAID} == status.COLLECTABLE
