"""The tenant's fee-rule versions: the market default for a new retailer, new versions from an
effective date, and which version charges a given installment (the one in force on its due
date, so a balance computed last year comes out the same today)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date
from decimal import Decimal

import msgspec
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.brazil import InvalidValue
from shared.domains.audit.service import Actor, record
from shared.domains.money.fees import FeeRule
from shared.domains.portfolio import schemas
from shared.errors import FieldError, ValidationFailed
from shared.models import FeeRuleVersion

DEFAULT_EFFECTIVE_FROM = date(2000, 1, 1)


async def ensure_default(session: AsyncSession, tenant_id: uuid.UUID) -> None:
    """A new retailer starts with the market default: multa 2 %, juros 1 % a.m."""
    exists = await session.scalar(
        select(func.count())
        .select_from(FeeRuleVersion)
        .where(FeeRuleVersion.tenant_id == tenant_id)
    )
    if not exists:
        session.add(
            FeeRuleVersion(
                tenant_id=tenant_id,
                version=1,
                effective_from=DEFAULT_EFFECTIVE_FROM,
                fine_percent=Decimal("2"),
                monthly_interest_percent=Decimal("1"),
                correction_index=None,
                discount_percent=Decimal("0"),
                discount_days_before_due=0,
                business_day_grace=True,
                created_by="system",
            )
        )
        await session.flush()


async def versions(session: AsyncSession, tenant_id: uuid.UUID) -> list[FeeRuleVersion]:
    return list(
        await session.scalars(
            select(FeeRuleVersion)
            .where(FeeRuleVersion.tenant_id == tenant_id)
            .order_by(FeeRuleVersion.version)
        )
    )


def in_force(rules: Sequence[FeeRuleVersion], due_date: date) -> FeeRuleVersion:
    """The version charging an installment due on ``due_date``: the latest effective by then
    (the first version when the installment is older than every version)."""
    eligible = [r for r in rules if r.effective_from <= due_date] or [
        min(rules, key=lambda r: r.version)
    ]
    return max(eligible, key=lambda r: (r.effective_from, r.version))


def as_rule(row: FeeRuleVersion) -> FeeRule:
    return FeeRule(
        version=row.version,
        fine_percent=row.fine_percent,
        monthly_interest_percent=row.monthly_interest_percent,
        correction_index=row.correction_index,
        discount_percent=row.discount_percent,
        discount_days_before_due=row.discount_days_before_due,
        business_day_grace=row.business_day_grace,
    )


async def create_version(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    data: schemas.FeeRuleIn,
    actor: Actor,
    *,
    today: date,
) -> FeeRuleVersion:
    errors: list[FieldError] = []
    if data.effective_from < today:
        errors.append(
            FieldError(
                "effective_from",
                "must be today or later: balances already computed never change",
            )
        )
    current = await versions(session, tenant_id)
    next_version = max((r.version for r in current), default=0) + 1
    try:
        rule = FeeRule(
            version=next_version,
            fine_percent=data.fine_percent,
            monthly_interest_percent=data.monthly_interest_percent,
            correction_index=data.correction_index,
            discount_percent=data.discount_percent,
            discount_days_before_due=data.discount_days_before_due,
            business_day_grace=data.business_day_grace,
        )
    except InvalidValue as exc:
        errors.append(FieldError(_field_of(exc.reason), exc.reason))
        rule = None
    if errors or rule is None:
        raise ValidationFailed("The fee rule is not valid.", errors=errors)
    row = FeeRuleVersion(
        tenant_id=tenant_id,
        version=next_version,
        effective_from=data.effective_from,
        fine_percent=rule.fine_percent,
        monthly_interest_percent=rule.monthly_interest_percent,
        correction_index=rule.correction_index,
        discount_percent=rule.discount_percent,
        discount_days_before_due=rule.discount_days_before_due,
        business_day_grace=rule.business_day_grace,
        created_by=f"{actor.type}:{actor.id}" if actor.id else actor.type,
    )
    session.add(row)
    await session.flush()
    await record(
        session,
        "fee_rule.created",
        tenant_id=tenant_id,
        actor_type=actor.type,
        actor_id=actor.id,
        subject_type="fee_rule",
        subject_id=str(next_version),
        data=msgspec.to_builtins(rule_out(row)),
    )
    return row


def _field_of(reason: str) -> str:
    for name in (
        "fine_percent",
        "monthly_interest_percent",
        "discount_percent",
        "discount_days_before_due",
        "correction_index",
    ):
        if name in reason:
            return name
    return "rule"


def rule_out(row: FeeRuleVersion) -> schemas.FeeRuleOut:
    return schemas.FeeRuleOut(
        version=row.version,
        effective_from=row.effective_from,
        fine_percent=row.fine_percent,
        monthly_interest_percent=row.monthly_interest_percent,
        correction_index=row.correction_index,
        discount_percent=row.discount_percent,
        discount_days_before_due=row.discount_days_before_due,
        business_day_grace=row.business_day_grace,
        created_by=row.created_by,
        created_at=row.created_at,
    )
