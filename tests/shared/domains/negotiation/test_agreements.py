"""Agreements: their installments add up to the agreed total to the centavo; ending one puts the
originals back exactly (void and cancel: as they were; a break: minus what was paid on the
agreement, oldest first, never below zero); reviewing twice changes nothing."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from shared.domains.audit.service import Actor
from shared.domains.money.balance import balance_of, local_date
from shared.domains.negotiation import agreement_pay, agreements, lifecycle, offers
from shared.domains.negotiation import service as negotiation
from shared.domains.portfolio import payments
from shared.domains.portfolio import schemas as pschemas
from shared.domains.portfolio import service as portfolio
from shared.models import (
    Agreement,
    AgreementInstallment,
    AgreementStatus,
    Customer,
    Installment,
    Payment,
    TenantEvent,
)
from shared.tenancy import SYSTEM, Principal, use_scope
from tests.shared.domains.negotiation.test_offers import debts, policies
from tests.support.identity import Identities, principal_for_party

ACTOR = Actor("cli", None)
TODAY = date(2026, 12, 7)
ZERO = Decimal("0.00")


def _cents(low: int, high: int) -> st.SearchStrategy[Decimal]:
    return st.integers(low, high).map(lambda c: Decimal(c).scaleb(-2).quantize(Decimal("0.01")))


# --- pure: the plan, the allocation, the decision ----------------------------------------------


@hypothesis_settings(max_examples=200, deadline=None)
@given(debts=debts, limits=policies)
def test_an_agreements_installments_sum_to_the_agreed_total_plus_interest(
    debts: list[offers.Debt], limits: Any
) -> None:
    for option in offers.menu(debts, limits, TODAY):
        stored = option.as_json()
        plan = agreements.plan_of(stored)
        total = sum((amount for _, _, amount in plan), ZERO)
        assert total == Decimal(stored["negotiated_total"]) + Decimal(stored["interest"])
        first = 0 if option.down_payment > 0 else 1  # number 0 is the down payment
        assert [n for n, _, _ in plan] == list(range(first, first + len(plan)))
        assert all(amount > 0 for _, _, amount in plan)


@given(paid=_cents(0, 1_000_000), owed=st.lists(_cents(0, 500_000), min_size=1, max_size=6))
def test_what_was_paid_goes_to_the_oldest_originals_first_and_never_below_zero(
    paid: Decimal, owed: list[Decimal]
) -> None:
    parts = lifecycle.allocate(paid, owed)

    left = [o - p for o, p in zip(owed, parts, strict=True)]
    assert all(0 <= p <= o for p, o in zip(parts, owed, strict=True))
    assert sum(parts, ZERO) == min(paid, sum(owed, ZERO))
    assert sum(left, ZERO) == max(sum(owed, ZERO) - paid, ZERO)
    # oldest first: an original is touched only once every older one is covered
    for i, part in enumerate(parts):
        if part > 0:
            assert all(parts[j] == owed[j] for j in range(i))


def _inst(number: int, due: date, paid: bool) -> AgreementInstallment:
    return AgreementInstallment(
        number=number,
        due_date=due,
        amount=Decimal("10.00"),
        amount_paid=Decimal("10.00") if paid else ZERO,
        status="paid" if paid else "open",
    )


def test_an_unpaid_down_payment_voids_the_agreement_only_after_the_grace() -> None:
    plan = [_inst(0, TODAY, False), _inst(1, TODAY + timedelta(days=30), False)]
    grace = lifecycle.DOWN_PAYMENT_GRACE_DAYS

    assert lifecycle.decide(plan, TODAY + timedelta(days=grace), TODAY) is None
    decided = lifecycle.decide(plan, TODAY + timedelta(days=grace + 1), TODAY)
    assert decided is not None and decided[0] is AgreementStatus.VOID


def test_the_down_payment_deadline_counts_from_a_later_acceptance() -> None:
    plan = [_inst(0, TODAY, False)]
    accepted = TODAY + timedelta(days=2)

    assert lifecycle.decide(plan, accepted + timedelta(days=1), accepted) is None


def test_a_later_installment_unpaid_past_the_limit_breaks_the_agreement() -> None:
    due = TODAY - timedelta(days=lifecycle.BREAK_AFTER_DAYS)
    plan = [_inst(0, due - timedelta(days=30), True), _inst(1, due, False)]

    assert lifecycle.decide(plan, TODAY, due) is None
    decided = lifecycle.decide(plan, TODAY + timedelta(days=1), due)
    assert decided is not None and decided[0] is AgreementStatus.BROKEN


def test_everything_paid_completes_it_and_an_open_future_plan_runs() -> None:
    assert lifecycle.decide([_inst(0, TODAY, True), _inst(1, TODAY, True)], TODAY, TODAY) == (
        AgreementStatus.COMPLETED,
        "every installment paid",
    )
    running = [_inst(0, TODAY, True), _inst(1, TODAY + timedelta(days=30), False)]
    assert lifecycle.decide(running, TODAY + timedelta(days=40), TODAY) is None


# --- with the database -------------------------------------------------------------------------


async def _debtor(
    session: AsyncSession, ids: Identities, paid_before: list[Decimal]
) -> tuple[Principal, Customer, list[Installment]]:
    """A retailer's customer with one overdue installment per ``paid_before`` (that much of
    each already paid)."""
    party = await ids.party(f"Loja {uuid.uuid4().hex[:8]}")
    principal = await principal_for_party(party, ids)
    customer, _ = await portfolio.upsert_customer(
        session, principal, "C-1", pschemas.CustomerIn(name="Cliente Teste", state="SP"), ACTOR
    )
    rows = []
    for n, paid in enumerate(paid_before):
        inst, _ = await portfolio.upsert_installment(
            session,
            principal,
            f"P-{n}",
            pschemas.InstallmentIn(
                customer_external_id="C-1",
                principal=Decimal("300.00"),
                due_date=date(2026, 3 + n, 10),
            ),
            ACTOR,
        )
        if paid > 0:
            await payments.record_payment(
                session,
                principal,
                pschemas.PaymentIn(
                    external_id=f"PG-{n}",
                    installment_id=inst.id,
                    amount=paid,
                    paid_at=datetime(2026, 4, 1, tzinfo=UTC),
                    method="cash",
                ),
                ACTOR,
            )
        rows.append(inst)
    return principal, customer, rows


async def _agree(session: AsyncSession, principal: Principal, kind: str) -> Agreement:
    offer = await negotiation.make_offer(
        session, principal, "C-1", installment_ids=None, terms=None, actor=ACTOR
    )
    option = next(o for o in offer.options if o["kind"] == kind)
    agreement, _ = await agreements.accept(session, principal, offer.id, option["id"], ACTOR)
    return agreement


async def _state(session: AsyncSession, rows: list[Installment]) -> list[tuple[str, Decimal]]:
    await use_scope(session, SYSTEM)
    for inst in rows:
        await session.refresh(inst)
    return [(str(i.status), i.amount_paid) for i in rows]


@hypothesis_settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    paid_before=st.lists(
        st.sampled_from([ZERO, Decimal("0.01"), Decimal("120.50")]), min_size=1, max_size=3
    )
)
async def test_a_void_agreement_restores_the_originals_exactly_as_they_were(
    session: AsyncSession, ids: Identities, paid_before: list[Decimal]
) -> None:
    principal, _, rows = await _debtor(session, ids, paid_before)
    before = await _state(session, rows)
    agreement = await _agree(session, principal, "installments")
    assert {s for s, _ in await _state(session, rows)} == {"renegotiated"}

    later = datetime.now(UTC) + timedelta(days=lifecycle.DOWN_PAYMENT_GRACE_DAYS + 2)
    outcome = await lifecycle.review(session, agreement.id, later)
    again = await lifecycle.review(session, agreement.id, later)

    assert outcome == "void" and again == "not active"
    assert await _state(session, rows) == before
    assert agreement.voided_at is not None and agreement.end_reason


async def test_a_running_agreement_is_left_alone(session: AsyncSession, ids: Identities) -> None:
    principal, _, rows = await _debtor(session, ids, [ZERO])
    agreement = await _agree(session, principal, "installments")

    assert await lifecycle.review(session, agreement.id) == "active"
    assert {s for s, _ in await _state(session, rows)} == {"renegotiated"}


async def _pay(session: AsyncSession, agreement: Agreement, number: int, amount: Decimal) -> None:
    inst = await agreement_pay.installment_of(session, agreement, number)
    await agreement_pay.record_payment(
        session,
        inst,
        external_id=f"E2E-{agreement.id.hex[:8]}-{number}",
        amount=amount,
        paid_at=datetime.now(UTC),
        method="pix",
        source="pix_webhook",
        txid=None,
        actor=ACTOR,
    )


@hypothesis_settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    paid_before=st.lists(st.sampled_from([ZERO, Decimal("80.00")]), min_size=1, max_size=3),
    share=st.sampled_from([Decimal("0"), Decimal("0.3"), Decimal("0.99")]),
)
async def test_a_broken_agreement_restores_the_originals_minus_what_was_paid_on_it(
    session: AsyncSession, ids: Identities, paid_before: list[Decimal], share: Decimal
) -> None:
    principal, customer, rows = await _debtor(session, ids, paid_before)
    agreement = await _agree(session, principal, "installments")
    plan = await agreements.installments_of(session, agreement.id)
    await _pay(session, agreement, 0, plan[0].amount)  # the down payment
    extra = (plan[1].amount * share).quantize(Decimal("0.01"))
    if extra > 0:
        await _pay(session, agreement, 1, extra)
    paid_on_agreement = plan[0].amount + extra
    # the first installment fell due long ago and was never paid in full
    await session.execute(
        update(AgreementInstallment)
        .where(AgreementInstallment.id == plan[1].id)
        .values(due_date=date.today() - timedelta(days=lifecycle.BREAK_AFTER_DAYS + 5))
    )
    today = local_date(datetime.now(UTC), customer)
    await _state(session, rows)
    owed_before = []
    for inst in rows:  # what each would owe today had there been no agreement
        owed_before.append((await balance_of(session, inst, customer, today)).total)

    assert await lifecycle.review(session, agreement.id) == "broken"
    assert await lifecycle.review(session, agreement.id) == "not active"

    owed_after = [(await balance_of(session, i, customer, today)).total for i in rows]
    assert all(o >= 0 for o in owed_after)
    assert sum(owed_after, ZERO) == max(sum(owed_before, ZERO) - paid_on_agreement, ZERO)
    assert all(s != "renegotiated" for s, _ in await _state(session, rows))
    applied = list(
        await session.scalars(
            select(Payment.applied).where(
                Payment.installment_id.in_([i.id for i in rows]), Payment.source == "agreement"
            )
        )
    )
    assert sum(applied, ZERO) == min(paid_on_agreement, sum(owed_before, ZERO))
    event = await session.scalar(
        select(TenantEvent).where(
            TenantEvent.tenant_id == agreement.tenant_id, TenantEvent.type == "agreement.broken"
        )
    )
    assert event is not None and Decimal(event.data["paid_on_agreement"]) == paid_on_agreement


async def test_the_scheduler_queues_a_review_only_for_agreements_with_something_due(
    session: AsyncSession, ids: Identities
) -> None:
    principal, _, _ = await _debtor(session, ids, [ZERO])
    agreement = await _agree(session, principal, "new_date")  # one installment in 15 days
    await use_scope(session, SYSTEM)

    soon = await lifecycle.due_for_review(session, date.today())
    late = await lifecycle.due_for_review(session, date.today() + timedelta(days=16))

    assert agreement.id not in {a for _, a in soon}
    assert (agreement.tenant_id, agreement.id) in late


async def test_the_hourly_review_voids_an_agreement_whose_down_payment_never_came(
    session: AsyncSession, ids: Identities, run_jobs: Any
) -> None:
    principal, _, rows = await _debtor(session, ids, [ZERO])
    agreement = await _agree(session, principal, "installments")
    long_ago = datetime.now(UTC) - timedelta(days=10)
    await session.execute(
        update(Agreement).where(Agreement.id == agreement.id).values(created_at=long_ago)
    )
    await session.execute(
        update(AgreementInstallment)
        .where(AgreementInstallment.agreement_id == agreement.id, AgreementInstallment.number == 0)
        .values(due_date=long_ago.date())
    )
    await use_scope(session, SYSTEM)

    await lifecycle.schedule_reviews(session)
    await lifecycle.schedule_reviews(session)  # the same hour: one job
    await session.flush()
    outcomes = await run_jobs()

    await session.refresh(agreement)
    assert agreement.status == "void"
    assert len(outcomes) == 1
    assert await _state(session, rows) == [("open", ZERO)]
