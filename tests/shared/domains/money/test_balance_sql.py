"""The set-based balance query agrees with the one Python definition, row by row."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession

from shared.domains.audit.service import Actor
from shared.domains.money.balance import balance_of
from shared.domains.money.balance_sql import balances, totals
from shared.domains.money.rules import create_version
from shared.domains.portfolio import payments, service
from shared.domains.portfolio import schemas as ps
from shared.models import Customer, Installment
from tests.support.identity import Identities, principal_for_party

STATES = ["SP", "RJ", "AC", "PE", "BA", None]


async def test_sql_balances_equal_the_python_ledger(ids: Identities, session: AsyncSession) -> None:
    party = await ids.party("Loja Balanços")
    principal = await principal_for_party(party, ids)
    actor = Actor.of(principal)
    rng = random.Random(20261123)
    # a second rule version with an early-payment discount, for installments due from 2025-06
    await create_version(
        session,
        party.id,
        ps.FeeRuleIn(
            effective_from=date(2025, 6, 1),
            fine_percent=Decimal("1.5"),
            monthly_interest_percent=Decimal("0.9"),
            discount_percent=Decimal("5"),
            discount_days_before_due=2,
        ),
        actor,
        today=date(2025, 1, 1),
    )
    for n, state in enumerate(STATES):
        await service.upsert_customer(
            session, principal, f"C{n}", ps.CustomerIn(name=f"Pessoa {n}", state=state), actor
        )
    for n in range(120):
        due = date(2025, 1, 1) + timedelta(days=rng.randrange(0, 400))  # weekends, holidays
        cents = rng.randrange(1, 500_000)
        await service.upsert_installment(
            session,
            principal,
            f"P{n}",
            ps.InstallmentIn(
                customer_external_id=f"C{rng.randrange(len(STATES))}",
                principal=Decimal(cents) / 100,
                due_date=due,
            ),
            actor,
        )
    # one partially paid installment goes through the Python ledger
    await payments.record_payment(
        session,
        principal,
        ps.PaymentIn(
            external_id="PG",
            installment_external_id="P0",
            amount=Decimal("0.01"),
            paid_at=datetime(2025, 1, 1, 15, tzinfo=UTC),
            method="pix",
        ),
        actor,
    )

    for as_of in (date(2025, 3, 4), date(2025, 11, 21), date(2026, 2, 18)):
        seen, summed = 0, Decimal(0)
        async for row, ident in balances(session, party.id, as_of):
            inst = await session.get_one(Installment, ident)
            customer = await session.get_one(Customer, inst.customer_id)
            expected = await balance_of(session, inst, customer, as_of)
            if row is None:
                assert inst.amount_paid > 0
                continue
            got = (row.fine, row.interest, row.discount, row.total, row.days_overdue)
            want = (
                expected.fine,
                expected.interest,
                expected.discount,
                expected.total,
                expected.days_overdue,
            )
            assert got == want, (inst.due_date, customer.state, as_of, inst.principal)
            assert row.fee_rule_version == expected.fee_rule_version
            if row.effective_due_date is not None:
                assert row.effective_due_date == expected.effective_due_date
            seen += 1
            summed += row.total
        assert seen == 119  # 120 installments, one of them partially paid
        assert await totals(session, party.id, as_of) == (119, 1, summed)
