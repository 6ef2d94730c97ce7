"""Campaigns: a retailer's one-off message to a segment, under the régua's governance.

The segment is the preview's (tags, overdue range, amount — ``reports.preview_campaign`` counts
the same customers without writing anything); the message is one template on a channel and its
fallback.  Creating a campaign writes one attempt per customer through the planner — queued with
its send job, or skipped with the reason, exactly as the régua and reminders are decided — and
keeps those counts; the detail adds how its messages are doing now.  Each creation is a new
campaign (a user's action, never deduplicated): the frequency caps are what stop a second one
from reaching the same people today.
"""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Select, func, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from shared.domains.audit.service import Actor
from shared.domains.collections import planner, reports, schemas
from shared.domains.collections.service import (
    CHANNELS,
    audit,
    clean_tags,
    settings_of,
    template_problem,
    template_statuses,
)
from shared.errors import FieldError, NotFound, ValidationFailed
from shared.models import AttemptState, Campaign, ContactAttempt, Tenant
from shared.pagination import encode_cursor, older_than

# --- validating ---------------------------------------------------------------------------------


def _check_filter(data: schemas.CampaignIn, errors: list[FieldError]) -> Decimal | None:
    """The preview's own checks, reported under ``filter.``."""
    try:
        return reports.check_campaign(data)
    except ValidationFailed as exc:
        errors.extend(FieldError(f"filter.{e.field}", e.message, e.code) for e in exc.errors)
        return None


def _check_channels(data: schemas.CampaignNew, errors: list[FieldError]) -> list[str]:
    if data.channel not in CHANNELS:
        errors.append(FieldError("channel", "must be whatsapp, sms or email"))
    if data.fallback_channel is not None:
        if data.fallback_channel not in CHANNELS:
            errors.append(FieldError("fallback_channel", "must be whatsapp, sms or email"))
        elif data.fallback_channel == data.channel:
            errors.append(FieldError("fallback_channel", "must differ from channel"))
    return [c for c in (data.channel, data.fallback_channel) if c in CHANNELS]


async def _validate(
    session: AsyncSession, tenant_id: uuid.UUID, data: schemas.CampaignNew
) -> tuple[str, Decimal | None]:
    """The cleaned name and minimum amount, or every field error at once."""
    errors: list[FieldError] = []
    name = " ".join(data.name.split())
    if not name:
        errors.append(FieldError("name", "must not be blank"))
    minimum = _check_filter(data.filter, errors)
    channels = _check_channels(data, errors)
    problem = template_problem(
        data.template_name, channels, await template_statuses(session, tenant_id)
    )
    if problem:
        errors.append(FieldError("template_name", problem, code="unknown_template"))
    if errors:
        raise ValidationFailed("The campaign is not valid.", errors=errors)
    return name, minimum


# --- creating -------------------------------------------------------------------------------------


async def _segment(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    data: schemas.CampaignIn,
    minimum: Decimal | None,
    today: date,
) -> dict[uuid.UUID, list[tuple[uuid.UUID, date, Any]]]:
    """The preview's selection: customer → its open installments the filter matches."""
    rows = await session.execute(
        reports.CAMPAIGN_SEGMENT,
        {
            "tenant": tenant_id,
            "tags": clean_tags(data.tags_any) or None,
            "first_due": today - timedelta(days=data.max_days_overdue)
            if data.max_days_overdue is not None
            else None,
            "last_due": today - timedelta(days=data.min_days_overdue)
            if data.min_days_overdue is not None
            else None,
            "min_amount": minimum,
        },
    )
    owed: dict[uuid.UUID, list[tuple[uuid.UUID, date, Any]]] = {}
    for r in rows:
        owed.setdefault(r.customer_id, []).append((r.id, r.due_date, r.open_amount))
    return owed


def _stored_filter(data: schemas.CampaignIn, minimum: Decimal | None) -> dict[str, Any]:
    return {
        "tags_any": clean_tags(data.tags_any),
        "min_days_overdue": data.min_days_overdue,
        "max_days_overdue": data.max_days_overdue,
        "min_amount": None if minimum is None else str(minimum),
    }


def _counts(matched: int, messages: list[planner.Row]) -> dict[str, Any]:
    held = Counter(
        str(m.attempt["reason"]) for m in messages if m.attempt["state"] != AttemptState.QUEUED
    )
    return {
        "matched": matched,
        "queued": len(messages) - sum(held.values()),
        "held": dict(sorted(held.items())),
    }


async def create_campaign(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    data: schemas.CampaignNew,
    actor: Actor,
    at: datetime,
) -> schemas.CampaignDetail:
    """Validate, then message every customer of the segment now under the régua's governance
    (one attempt each, queued or skipped with the reason); audited.  The caller commits."""
    name, minimum = await _validate(session, tenant_id, data)
    await settings_of(session, tenant_id)  # 404 for a tenant that collects nothing
    tenant = await session.get_one(Tenant, tenant_id)
    today = at.astimezone(ZoneInfo(tenant.time_zone)).date()
    campaign = Campaign(
        id=uuid.uuid4(),
        tenant_id=tenant_id,
        name=name,
        filter=_stored_filter(data.filter, minimum),
        template_name=data.template_name,
        channel=data.channel,
        fallback_channel=data.fallback_channel,
        created_by=f"{actor.type}:{actor.id}" if actor.id else actor.type,
        created_at=at,
        counts={},
    )
    session.add(campaign)
    await session.flush()
    owed = await _segment(session, tenant_id, data.filter, minimum, today)
    messages = await planner.plan_campaign(
        session,
        tenant_id,
        owed,
        data.template_name,
        data.channel,
        data.fallback_channel,
        at,
        campaign.id,
    )
    campaign.counts = _counts(len(owed), messages)
    await session.flush()
    await audit(
        session,
        "campaign.created",
        tenant_id,
        actor,
        ("campaign", campaign.id),
        {
            "name": name,
            "template_name": data.template_name,
            "channel": data.channel,
            "fallback_channel": data.fallback_channel,
            "filter": campaign.filter,
            "counts": campaign.counts,
        },
    )
    return await campaign_detail(session, campaign)


# --- reading --------------------------------------------------------------------------------------


def campaign_out(c: Campaign) -> schemas.CampaignOut:
    return schemas.CampaignOut(**_fields_of(c))


def _fields_of(c: Campaign) -> dict[str, Any]:
    stored = c.filter
    counts = c.counts
    return {
        "id": c.id,
        "name": c.name,
        "filter": schemas.CampaignIn(
            tags_any=list(stored.get("tags_any") or []),
            min_days_overdue=stored.get("min_days_overdue"),
            max_days_overdue=stored.get("max_days_overdue"),
            min_amount=Decimal(stored["min_amount"]) if stored.get("min_amount") else None,
        ),
        "template_name": c.template_name,
        "channel": c.channel,
        "fallback_channel": c.fallback_channel,
        "created_by": c.created_by,
        "created_at": c.created_at,
        "counts": schemas.CampaignCounts(
            matched=int(counts.get("matched", 0)),
            queued=int(counts.get("queued", 0)),
            held={str(k): int(v) for k, v in (counts.get("held") or {}).items()},
        ),
    }


def _attempts_of(c: Campaign) -> Select[tuple[str, str | None]]:
    """The campaign's attempts and the fallbacks they led to (the sender does not carry the
    campaign over to a fallback; it is found through ``fallback_of``, by customer)."""
    own = (
        select(ContactAttempt.id, ContactAttempt.customer_id)
        .where(ContactAttempt.tenant_id == c.tenant_id, ContactAttempt.campaign_id == c.id)
        .cte("own")
    )
    fallback = aliased(ContactAttempt)
    direct = select(ContactAttempt.state, ContactAttempt.reason).where(
        ContactAttempt.tenant_id == c.tenant_id, ContactAttempt.campaign_id == c.id
    )
    fallbacks = select(fallback.state, fallback.reason).join(
        own,
        (fallback.tenant_id == c.tenant_id)
        & (fallback.customer_id == own.c.customer_id)
        & (fallback.fallback_of == own.c.id)
        & fallback.campaign_id.is_(None),
    )
    every = union_all(direct, fallbacks).subquery("every")
    return select(every.c.state, every.c.reason)


async def campaign_detail(session: AsyncSession, c: Campaign) -> schemas.CampaignDetail:
    """The campaign with its messages counted now, by state and by reason."""
    every = _attempts_of(c).subquery("attempts")
    rows = await session.execute(
        select(every.c.state, every.c.reason, func.count().label("n")).group_by(
            every.c.state, every.c.reason
        )
    )
    states: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    for state, reason, n in rows:
        states[str(state)] += n
        if reason is not None:
            reasons[str(reason)] += n
    return schemas.CampaignDetail(
        **_fields_of(c),
        states=dict(sorted(states.items())),
        reasons=dict(sorted(reasons.items())),
    )


async def get_campaign(
    session: AsyncSession, tenant_id: uuid.UUID, campaign_id: uuid.UUID
) -> Campaign:
    found = await session.scalar(
        select(Campaign).where(Campaign.id == campaign_id, Campaign.tenant_id == tenant_id)
    )
    if found is None:
        raise NotFound("The campaign was not found.")
    return found


def _after(cursor: str) -> Any:
    return older_than(cursor, Campaign.created_at, Campaign.id)


async def list_campaigns(
    session: AsyncSession, tenant_id: uuid.UUID, *, cursor: str | None, limit: int
) -> schemas.CampaignPage:
    """The retailer's campaigns, newest first, with the counts of their creation."""
    stmt = select(Campaign).where(Campaign.tenant_id == tenant_id)
    if cursor:
        stmt = stmt.where(_after(cursor))
    rows = list(
        await session.scalars(
            stmt.order_by(Campaign.created_at.desc(), Campaign.id.desc()).limit(limit + 1)
        )
    )
    more = len(rows) > limit
    rows = rows[:limit]
    return schemas.CampaignPage(
        items=[campaign_out(c) for c in rows],
        next_cursor=encode_cursor(rows[-1].created_at.isoformat(), rows[-1].id) if more else None,
    )
