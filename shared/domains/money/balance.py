"""The balance of one installment on a date, from what is stored: its fee-rule version, its
payments and, when the rule corrects for inflation, the index's monthly rates.  The API, the
messages and the Pix codes all come through here, so they can never disagree."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.brazil.calendar import timezone_for
from shared.domains.money import rules
from shared.domains.money.fees import Balance, compute_balance
from shared.models import CorrectionIndexRate, Customer, FeeRuleVersion, Installment, Payment


def local_date(at: datetime, customer: Customer) -> date:
    """The calendar date of an instant where the debtor lives (payments, "today")."""
    return at.astimezone(ZoneInfo(timezone_for(customer.state, customer.city))).date()


async def index_rates(
    session: AsyncSession, index: str, start: date, end: date
) -> dict[tuple[int, int], Decimal]:
    rows = await session.execute(
        select(CorrectionIndexRate.month, CorrectionIndexRate.percent).where(
            CorrectionIndexRate.index == index,
            CorrectionIndexRate.month >= start.replace(day=1),
            CorrectionIndexRate.month <= end,
        )
    )
    return {(m.year, m.month): pct / 100 for m, pct in rows.all()}


async def balance_of(
    session: AsyncSession,
    inst: Installment,
    customer: Customer,
    as_of: date,
    *,
    exclude_payment_ids: frozenset[object] = frozenset(),
    versions: Sequence[FeeRuleVersion] | None = None,
) -> Balance:
    """``versions``: the tenant's fee-rule versions when the caller has them already."""
    if versions is None:
        versions = await rules.versions(session, inst.tenant_id)
    version = rules.in_force(versions, inst.due_date)
    payments: list[tuple[date, Decimal]] = []
    if inst.amount_paid:  # the sum of its payments: nothing to read when nothing was paid
        payments = [
            (local_date(p.paid_at, customer), p.applied)
            for p in await session.scalars(
                select(Payment)
                .where(Payment.installment_id == inst.id, Payment.applied > 0)
                .order_by(Payment.paid_at, Payment.created_at)
            )
            if p.id not in exclude_payment_ids
        ]
    payments = [(d, amount) for d, amount in payments if d <= as_of]
    rates = None
    if version.correction_index:
        rates = await index_rates(session, version.correction_index, inst.due_date, as_of)
    return compute_balance(
        principal=inst.principal,
        due_date=inst.due_date,
        as_of=as_of,
        rule=rules.as_rule(version),
        uf=customer.state,
        payments=payments,
        index_rates=rates,
    )
