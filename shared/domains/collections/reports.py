"""What the engine did and would do: attempts listed and detailed (agencies see those of the
customers their mandate covers) and the campaign preview, which writes nothing."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Select, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from shared.domains.collections import planner, schemas
from shared.domains.collections.cadences import window_of
from shared.domains.collections.service import clean_tags, settings_of
from shared.domains.collections.window import ContactWindow
from shared.domains.portfolio.scoping import as_uuid, visible_customers
from shared.domains.portfolio.service import money
from shared.errors import FieldError, NotFound, ValidationFailed
from shared.models import (
    AgreementInstallment,
    AttemptState,
    CollectionSettings,
    ContactAttempt,
    ContactAttemptItem,
    Customer,
    Installment,
    Tenant,
)
from shared.pagination import encode_cursor, older_than
from shared.tenancy import Principal

# --- attempts -------------------------------------------------------------------------------------


def visible_attempts() -> Select[ContactAttempt, str]:
    return select(ContactAttempt, Customer.external_id).join(
        Customer, Customer.id == ContactAttempt.customer_id
    )


def _fields_of(a: ContactAttempt, external_id: str) -> dict[str, Any]:
    return {
        "id": a.id,
        "customer_id": a.customer_id,
        "customer_external_id": external_id,
        "kind": a.kind,
        "state": a.state,
        "reason": a.reason,
        "cadence_id": a.cadence_id,
        "step_id": a.step_id,
        "offset_days": a.offset_days,
        "template_name": a.template_name,
        "channel": a.channel,
        "fallback_channel": a.fallback_channel,
        "recipient": a.recipient,
        "contact_day": a.contact_day,
        "planned_for": a.planned_for,
        "queued_at": a.queued_at,
        "sending_at": a.sending_at,
        "sent_at": a.sent_at,
        "delivered_at": a.delivered_at,
        "read_at": a.read_at,
        "failed_at": a.failed_at,
        "tries": a.tries,
        "provider_message_id": a.provider_message_id,
        "error_class": a.error_class,
        "error_code": a.error_code,
        "created_at": a.created_at,
    }


def attempt_out(a: ContactAttempt, external_id: str) -> schemas.AttemptOut:
    return schemas.AttemptOut(**_fields_of(a, external_id))


async def attempt_detail(
    session: AsyncSession, a: ContactAttempt, external_id: str
) -> schemas.AttemptDetail:
    items = await session.execute(
        select(
            ContactAttemptItem.installment_id,
            Installment.external_id,
            ContactAttemptItem.step_id,
            ContactAttemptItem.agreement_installment_id,
            AgreementInstallment.number,
        )
        .outerjoin(Installment, Installment.id == ContactAttemptItem.installment_id)
        .outerjoin(
            AgreementInstallment,
            AgreementInstallment.id == ContactAttemptItem.agreement_installment_id,
        )
        .where(ContactAttemptItem.attempt_id == a.id)
        .order_by(
            func.coalesce(Installment.due_date, AgreementInstallment.due_date),
            ContactAttemptItem.id,
        )
    )
    return schemas.AttemptDetail(
        **_fields_of(a, external_id),
        fallback_of=a.fallback_of,
        items=[
            schemas.AttemptItemOut(
                installment_id=i,
                installment_external_id=e,
                step_id=s,
                agreement_installment_id=g,
                agreement_installment_number=n,
            )
            for i, e, s, g, n in items
        ],
        decisions=list(a.decisions),
        amounts=a.amounts,
        rendered_sha256=a.rendered_sha256,
        pricing=a.pricing,
    )


async def find_attempt(
    session: AsyncSession, principal: Principal, attempt_id: uuid.UUID
) -> tuple[ContactAttempt, str]:
    row = (
        await session.execute(
            visible_attempts().where(ContactAttempt.id == attempt_id, visible_customers(principal))
        )
    ).one_or_none()
    if row is None:
        raise NotFound("The attempt was not found.")
    return row[0], row[1]


@dataclass(frozen=True, slots=True)
class AttemptFilter:
    states: list[str]
    reason: str | None = None
    kind: str | None = None
    channel: str | None = None
    customer: str | None = None
    offset_days: int | None = None
    day_from: date | None = None
    day_to: date | None = None


def _filtered(stmt: Select[ContactAttempt, str], f: AttemptFilter) -> Select[ContactAttempt, str]:
    if f.states:
        stmt = stmt.where(ContactAttempt.state.in_(f.states))
    if f.reason:
        stmt = stmt.where(ContactAttempt.reason == f.reason)
    if f.kind:
        stmt = stmt.where(ContactAttempt.kind == f.kind)
    if f.channel:
        stmt = stmt.where(ContactAttempt.channel == f.channel)
    if f.customer:
        ident = as_uuid(f.customer)
        stmt = stmt.where(Customer.id == ident if ident else Customer.external_id == f.customer)
    if f.offset_days is not None:
        stmt = stmt.where(ContactAttempt.offset_days == f.offset_days)
    if f.day_from:
        stmt = stmt.where(ContactAttempt.contact_day >= f.day_from)
    if f.day_to:
        stmt = stmt.where(ContactAttempt.contact_day <= f.day_to)
    return stmt


def _after(cursor: str) -> Any:
    return older_than(cursor, ContactAttempt.planned_for, ContactAttempt.id)


async def list_attempts(
    session: AsyncSession,
    principal: Principal,
    f: AttemptFilter,
    *,
    cursor: str | None,
    limit: int,
) -> schemas.AttemptPage:
    """Attempts of the customers ``principal`` may see, newest planned first."""
    stmt = _filtered(visible_attempts().where(visible_customers(principal)), f)
    if cursor:
        stmt = stmt.where(_after(cursor))
    rows = (
        await session.execute(
            stmt.order_by(ContactAttempt.planned_for.desc(), ContactAttempt.id.desc()).limit(
                limit + 1
            )
        )
    ).all()
    more = len(rows) > limit
    rows = rows[:limit]
    return schemas.AttemptPage(
        items=[attempt_out(a, ext) for a, ext in rows],
        next_cursor=encode_cursor(rows[-1][0].planned_for.isoformat(), rows[-1][0].id)
        if more
        else None,
    )


# --- campaign preview -------------------------------------------------------------------------

CAMPAIGN_SEGMENT = text(
    """
    SELECT i.id, i.customer_id, i.due_date, i.principal - i.amount_paid AS open_amount
    FROM installments i
    JOIN customers c ON c.id = i.customer_id
    WHERE i.tenant_id = :tenant
      AND i.status IN ('open', 'partially_paid')
      AND (CAST(:tags AS varchar[]) IS NULL OR c.tags && CAST(:tags AS varchar[]))
      AND (CAST(:first_due AS date) IS NULL OR i.due_date >= CAST(:first_due AS date))
      AND (CAST(:last_due AS date) IS NULL OR i.due_date <= CAST(:last_due AS date))
      AND (CAST(:min_amount AS numeric) IS NULL
           OR i.principal - i.amount_paid >= CAST(:min_amount AS numeric))
    ORDER BY i.customer_id, i.due_date
    """
)


def check_campaign(data: schemas.CampaignIn) -> Decimal | None:
    errors: list[FieldError] = []
    for name in ("min_days_overdue", "max_days_overdue"):
        value = getattr(data, name)
        if value is not None and not -30 <= value <= 3650:
            errors.append(FieldError(name, "must be between -30 and 3650"))
    if (
        data.min_days_overdue is not None
        and data.max_days_overdue is not None
        and data.max_days_overdue < data.min_days_overdue
    ):
        errors.append(FieldError("max_days_overdue", "must not be lower than min_days_overdue"))
    minimum = None
    if data.min_amount is not None:
        minimum = money(data.min_amount, "min_amount", errors, positive=False)
    if errors:
        raise ValidationFailed("The campaign is not valid.", errors=errors)
    return minimum


async def preview_campaign(
    session: AsyncSession, tenant_id: uuid.UUID, data: schemas.CampaignIn, at: datetime
) -> schemas.CampaignPreview:
    """How many customers a campaign selects and what governance would do with each right now
    (the same rules as the régua's and reminders'); nothing is written."""
    minimum = check_campaign(data)
    settings = await settings_of(session, tenant_id)
    tenant = await session.get_one(Tenant, tenant_id)
    today = at.astimezone(ZoneInfo(tenant.time_zone)).date()
    rows = list(
        await session.execute(
            CAMPAIGN_SEGMENT,
            {
                "tenant": tenant_id,
                "tags": clean_tags(data.tags_any) or None,
                "first_due": date.fromordinal(today.toordinal() - data.max_days_overdue)
                if data.max_days_overdue is not None
                else None,
                "last_due": date.fromordinal(today.toordinal() - data.min_days_overdue)
                if data.min_days_overdue is not None
                else None,
                "min_amount": minimum,
            },
        )
    )
    by_customer: dict[uuid.UUID, list[Any]] = {}
    for r in rows:
        by_customer.setdefault(r.customer_id, []).append(r)
    reasons: dict[str, int] = {}
    contacted = 0
    if by_customer:
        debtors = await planner._debtors(session, tenant_id, set(by_customer), today, at)
        kinds = await planner._channel_kinds(session, tenant_id)
        window = window_of(settings)
        for customer_id, owed in by_customer.items():
            why = await _governance(
                session, settings, window, kinds, debtors[customer_id], owed, today, at
            )
            if why is None:
                contacted += 1
            else:
                reasons[why] = reasons.get(why, 0) + 1
    return schemas.CampaignPreview(
        customers=len(by_customer),
        would_contact=contacted,
        held_back=len(by_customer) - contacted,
        reasons=dict(sorted(reasons.items())),
    )


async def _governance(
    session: AsyncSession,
    settings: CollectionSettings,
    window: ContactWindow,
    kinds: set[str],
    debtor: planner.Debtor,
    owed: list[Any],
    today: date,
    at: datetime,
) -> str | None:
    """Why the planner would hold a message to ``debtor`` about ``owed`` back now (``None``:
    it would go), decided by the planner's own rules, written nowhere."""
    try:
        step = await planner._step_for(
            session, settings.tenant_id, debtor.id, (today - owed[0].due_date).days
        )
    except planner.NothingToRemind:
        return "no_regua"
    candidates = [planner.Candidate(r.id, debtor.id, r.due_date, r.open_amount, step) for r in owed]
    rows = planner._one_message(
        debtor, candidates, kinds, settings, window, today, at, planner.PlanResult()
    )
    message = rows[-1].attempt
    return None if message["state"] == AttemptState.QUEUED else str(message["reason"])
