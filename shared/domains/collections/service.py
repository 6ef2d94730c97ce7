"""The collection engine's settings, réguas and pins, as the API changes them (holds and "send
now" are in ``holds.py``; attempts and previews in ``reports.py``).

Every write validates the whole input first (all field errors at once) and is audited in the
caller's transaction.  Replacing a régua's steps keeps history attached: a step whose
``offset_days`` is kept is the same row, updated in place (attempts and their items point at
it, and ``(installment_id, step_id)`` is what stops a step from firing twice); only the steps
that are gone are deleted.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import time
from decimal import Decimal
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db import flush_unique
from shared.domains.audit.service import Actor, record_by
from shared.domains.collections import schemas
from shared.domains.collections.cadences import window_of
from shared.domains.collections.window import DEFAULT as LAWFUL
from shared.domains.collections.window import WindowTooWide
from shared.domains.portfolio.service import money
from shared.errors import Conflict, FieldError, NotFound, ValidationFailed
from shared.models import (
    AttemptState,
    Cadence,
    CadenceKind,
    CadenceStep,
    CollectionSettings,
    Customer,
    HoldKind,
    MessageTemplate,
    TemplateStatus,
)

CHANNELS = ("whatsapp", "sms", "email")
SMALLINT = 32767
# What an operator or the retailer's system may open; "já paguei" and promises come from the
# conversations and the negotiation.
OPERATOR_HOLDS = (HoldKind.PAUSE, HoldKind.DISPUTE, HoldKind.PROMISE)
# Held messages that have not gone yet; a customer-level hold makes them pointless.
UNSENT = (AttemptState.PLANNED, AttemptState.QUEUED)


async def audit(
    session: AsyncSession,
    action: str,
    tenant_id: uuid.UUID,
    actor: Actor,
    subject: tuple[str, uuid.UUID],
    data: dict[str, Any],
) -> None:
    await record_by(session, actor, action, tenant_id=tenant_id, subject=subject, data=data)


# --- settings -----------------------------------------------------------------------------------

# field: (lowest, highest), as the database's checks have them
_LIMITS = {
    "daily_cap": (1, 3),
    "weekly_cap": (1, 7),
    "catch_up_days": (0, 15),
    "paid_hold_days": (0, 30),
    "fallback_after_hours": (1, 168),
}


async def settings_of(session: AsyncSession, tenant_id: uuid.UUID) -> CollectionSettings:
    row = await session.get(CollectionSettings, tenant_id)
    if row is None:
        raise NotFound("This tenant has no collection settings; only retailers collect.")
    return row


def settings_out(row: CollectionSettings) -> schemas.SettingsOut:
    data = row.window or {}
    return schemas.SettingsOut(
        window=schemas.WindowOut(
            weekdays=_stored(data, "weekdays", LAWFUL.weekdays),
            saturday=_stored(data, "saturday", LAWFUL.saturday),
            avoid_carnival=bool(data.get("avoid_carnival", False)),
        ),
        daily_cap=row.daily_cap,
        weekly_cap=row.weekly_cap,
        catch_up_days=row.catch_up_days,
        paid_hold_days=row.paid_hold_days,
        fallback_after_hours=row.fallback_after_hours,
        updated_at=row.updated_at,
    )


def _stored(data: dict[str, Any], name: str, default: tuple[time, time] | None) -> list[str] | None:
    if name in data:
        return None if data[name] is None else list(data[name])
    return None if default is None else [f"{t:%H:%M}" for t in default]


def _hours(raw: list[str] | None, field: str, errors: list[FieldError]) -> tuple[time, time] | None:
    if raw is None:
        return None
    try:
        start, end = (time.fromisoformat(v) for v in raw)
    except ValueError:
        errors.append(FieldError(field, 'must be two times such as ["08:00", "20:00"]'))
        return None
    return start, end


def validate_window(data: schemas.WindowIn, errors: list[FieldError]) -> dict[str, Any]:
    """The window as stored, checked against the law one kind of day at a time (a wider window
    is refused naming the field and the lawful limit)."""
    stored: dict[str, Any] = {"avoid_carnival": data.avoid_carnival}
    for name in ("weekdays", "saturday"):
        field = f"window.{name}"
        bad = len(errors)
        hours = _hours(getattr(data, name), field, errors)
        if len(errors) > bad:
            continue
        try:
            narrowed = (
                replace(LAWFUL, weekdays=hours)
                if name == "weekdays"
                else replace(LAWFUL, saturday=hours)
            )
            narrowed.check_within(LAWFUL)
        except WindowTooWide as exc:
            errors.append(FieldError(field, str(exc).split(": ", 1)[-1], code="too_wide"))
            continue
        stored[name] = None if hours is None else [f"{t:%H:%M}" for t in hours]
    return stored


def validate_settings(data: schemas.SettingsIn) -> dict[str, Any]:
    errors: list[FieldError] = []
    values: dict[str, Any] = {"window": validate_window(data.window, errors)}
    for name, (low, high) in _LIMITS.items():
        value = getattr(data, name)
        if not low <= value <= high:
            errors.append(FieldError(name, f"must be between {low} and {high}"))
        values[name] = value
    if data.weekly_cap < data.daily_cap:
        errors.append(FieldError("weekly_cap", "must not be lower than daily_cap"))
    if errors:
        raise ValidationFailed("The collection settings are not valid.", errors=errors)
    window_of(CollectionSettings(window=values["window"]))  # as the planner will read it
    return values


async def save_settings(
    session: AsyncSession, tenant_id: uuid.UUID, data: schemas.SettingsIn, actor: Actor
) -> CollectionSettings:
    values = validate_settings(data)
    row = await settings_of(session, tenant_id)
    before = {k: getattr(row, k) for k in values}
    changed = sorted(k for k, v in values.items() if before[k] != v)
    if not changed:
        return row
    for key in changed:
        setattr(row, key, values[key])
    row.updated_at = func.now()
    await session.flush()
    await audit(
        session,
        "collection_settings.updated",
        tenant_id,
        actor,
        ("tenant", tenant_id),
        {"before": {k: before[k] for k in changed}, "after": {k: values[k] for k in changed}},
    )
    await session.refresh(row)
    return row


# --- cadences -----------------------------------------------------------------------------------


class DuplicateCadence(Conflict):
    code = "duplicate_cadence"


class DefaultCadence(Conflict):
    code = "default_cadence"


def clean_tags(raw: list[str]) -> list[str]:
    return list(dict.fromkeys(t.strip() for t in raw if t.strip()))


async def template_statuses(
    session: AsyncSession, tenant_id: uuid.UUID
) -> dict[tuple[str, str], bool]:
    """``(channel_kind, name)`` → whether some language of it is approved."""
    rows = await session.execute(
        select(MessageTemplate.channel_kind, MessageTemplate.name, MessageTemplate.status).where(
            MessageTemplate.tenant_id == tenant_id
        )
    )
    found: dict[tuple[str, str], bool] = {}
    for kind, name, status in rows:
        found[(kind, name)] = found.get((kind, name), False) or status == TemplateStatus.APPROVED
    return found


def template_problem(
    name: str, channels: list[str], templates: dict[tuple[str, str], bool]
) -> str | None:
    """Why ``name`` cannot be sent on one of ``channels`` (``None`` when it can on all)."""
    for kind in channels:
        if (kind, name) not in templates:
            return f"no {kind} template is named {name!r}"
        if kind == "whatsapp" and not templates[(kind, name)]:
            return f"the whatsapp template {name!r} is not APPROVED yet (submit it for review)"
    return None


@dataclass(frozen=True, slots=True)
class StepFields:
    offset_days: int
    channel: str
    fallback_channel: str | None
    variants: list[dict[str, Any]]
    holdout_percent: int
    min_amount: Decimal | None
    tags_any: list[str]
    max_days_overdue: int | None


def _check_step(
    i: int,
    step: schemas.StepIn,
    templates: dict[tuple[str, str], bool],
    errors: list[FieldError],
) -> StepFields:
    at = f"steps[{i}]"
    if not -30 <= step.offset_days <= 365:
        errors.append(FieldError(f"{at}.offset_days", "must be between -30 and 365"))
    if step.channel not in CHANNELS:
        errors.append(FieldError(f"{at}.channel", "must be whatsapp, sms or email"))
    if step.fallback_channel is not None:
        if step.fallback_channel not in CHANNELS:
            errors.append(FieldError(f"{at}.fallback_channel", "must be whatsapp, sms or email"))
        elif step.fallback_channel == step.channel:
            errors.append(FieldError(f"{at}.fallback_channel", "must differ from channel"))
    channels = [c for c in (step.channel, step.fallback_channel) if c in CHANNELS]
    if not step.variants:
        errors.append(FieldError(f"{at}.variants", "a step needs at least one template"))
    for j, variant in enumerate(step.variants):
        if variant.weight < 0:
            errors.append(FieldError(f"{at}.variants[{j}].weight", "must not be negative"))
        problem = template_problem(variant.template, channels, templates)
        if problem:
            errors.append(
                FieldError(f"{at}.variants[{j}].template", problem, code="unknown_template")
            )
    if step.variants and sum(max(v.weight, 0) for v in step.variants) == 0:
        errors.append(FieldError(f"{at}.variants", "the weights must add up to more than 0"))
    if not 0 <= step.holdout_percent <= 50:
        errors.append(FieldError(f"{at}.holdout_percent", "must be between 0 and 50"))
    minimum = None
    if step.min_amount is not None:
        minimum = money(step.min_amount, f"{at}.min_amount", errors, positive=False)
        if minimum < 0:
            errors.append(FieldError(f"{at}.min_amount", "must not be negative"))
    if step.max_days_overdue is not None and not 0 <= step.max_days_overdue <= SMALLINT:
        errors.append(FieldError(f"{at}.max_days_overdue", f"must be between 0 and {SMALLINT}"))
    return StepFields(
        offset_days=step.offset_days,
        channel=step.channel,
        fallback_channel=step.fallback_channel,
        variants=[{"template": v.template, "weight": v.weight} for v in step.variants],
        holdout_percent=step.holdout_percent,
        min_amount=minimum,
        tags_any=clean_tags(step.tags_any),
        max_days_overdue=step.max_days_overdue,
    )


async def validate_cadence(
    session: AsyncSession, tenant_id: uuid.UUID, data: schemas.CadenceIn
) -> tuple[str, list[StepFields]]:
    """The cleaned name and steps, or every field error at once."""
    errors: list[FieldError] = []
    name = " ".join(data.name.split())
    if not name:
        errors.append(FieldError("name", "must not be blank"))
    if not 0 <= data.priority <= SMALLINT:
        errors.append(FieldError("priority", f"must be between 0 and {SMALLINT}"))
    if not data.steps:
        errors.append(FieldError("steps", "a régua needs at least one step"))
    templates = await template_statuses(session, tenant_id)
    steps: list[StepFields] = []
    seen: dict[int, int] = {}
    for i, step in enumerate(data.steps):
        steps.append(_check_step(i, step, templates, errors))
        if step.offset_days in seen:
            errors.append(
                FieldError(
                    f"steps[{i}].offset_days",
                    f"repeats the offset of steps[{seen[step.offset_days]}]",
                    code="duplicate",
                )
            )
        seen.setdefault(step.offset_days, i)
    if errors:
        raise ValidationFailed("The régua is not valid.", errors=errors)
    return name, sorted(steps, key=lambda s: s.offset_days)


async def list_cadences(
    session: AsyncSession, tenant_id: uuid.UUID, kind: str | None = None
) -> list[Cadence]:
    """The tenant's réguas (of ``kind``, or every kind: the installments' first), each kind's
    default first."""
    stmt = select(Cadence).where(Cadence.tenant_id == tenant_id)
    if kind is not None:
        stmt = stmt.where(Cadence.kind == kind)
    return list(
        await session.scalars(
            stmt.order_by(
                Cadence.kind == CadenceKind.AGREEMENT,
                Cadence.is_default.desc(),
                Cadence.priority,
                Cadence.name,
            )
        )
    )


async def get_cadence(
    session: AsyncSession, tenant_id: uuid.UUID, cadence_id: uuid.UUID, *, for_update: bool = False
) -> Cadence:
    stmt = select(Cadence).where(Cadence.id == cadence_id, Cadence.tenant_id == tenant_id)
    found = await session.scalar(stmt.with_for_update() if for_update else stmt)
    if found is None:
        raise NotFound("The régua was not found.")
    return found


async def steps_of(
    session: AsyncSession, cadence_ids: list[uuid.UUID]
) -> dict[uuid.UUID, list[CadenceStep]]:
    out: dict[uuid.UUID, list[CadenceStep]] = {i: [] for i in cadence_ids}
    if cadence_ids:
        rows = await session.scalars(
            select(CadenceStep)
            .where(CadenceStep.cadence_id.in_(cadence_ids))
            .order_by(CadenceStep.cadence_id, CadenceStep.offset_days)
        )
        for s in rows:
            out[s.cadence_id].append(s)
    return out


def step_out(s: CadenceStep) -> schemas.StepOut:
    return schemas.StepOut(
        id=s.id,
        offset_days=s.offset_days,
        channel=s.channel,
        fallback_channel=s.fallback_channel,
        variants=[
            schemas.VariantOut(template=str(v["template"]), weight=int(v.get("weight", 1)))
            for v in s.variants
        ],
        holdout_percent=s.holdout_percent,
        min_amount=s.min_amount,
        tags_any=list(s.tags_any),
        max_days_overdue=s.max_days_overdue,
    )


async def cadences_out(session: AsyncSession, rows: list[Cadence]) -> list[schemas.CadenceOut]:
    steps = await steps_of(session, [c.id for c in rows])
    return [
        schemas.CadenceOut(
            id=c.id,
            name=c.name,
            kind=c.kind,
            is_default=c.is_default,
            tags_any=list(c.tags_any),
            priority=c.priority,
            active=c.active,
            steps=[step_out(s) for s in steps[c.id]],
            created_at=c.created_at,
            updated_at=c.updated_at,
        )
        for c in rows
    ]


def _step_values(fields: StepFields) -> dict[str, Any]:
    return {
        "offset_days": fields.offset_days,
        "channel": fields.channel,
        "fallback_channel": fields.fallback_channel,
        "variants": fields.variants,
        "holdout_percent": fields.holdout_percent,
        "min_amount": fields.min_amount,
        "tags_any": fields.tags_any,
        "max_days_overdue": fields.max_days_overdue,
    }


async def create_cadence(
    session: AsyncSession, tenant_id: uuid.UUID, data: schemas.CadenceIn, actor: Actor
) -> Cadence:
    name, steps = await validate_cadence(session, tenant_id, data)
    cadence = Cadence(
        id=uuid.uuid4(),
        tenant_id=tenant_id,
        name=name,
        kind=CadenceKind(data.kind),
        tags_any=clean_tags(data.tags_any),
        priority=data.priority,
        active=data.active,
    )
    session.add(cadence)
    for fields in steps:
        session.add(CadenceStep(tenant_id=tenant_id, cadence_id=cadence.id, **_step_values(fields)))
    await flush_unique(session, DuplicateCadence("A régua with this name already exists."))
    await audit(
        session,
        "cadence.created",
        tenant_id,
        actor,
        ("cadence", cadence.id),
        {"name": name, "kind": data.kind, "offsets": [s.offset_days for s in steps]},
    )
    await session.refresh(cadence)
    return cadence


async def _replace_steps(
    session: AsyncSession, cadence: Cadence, steps: list[StepFields]
) -> dict[str, list[int]]:
    """Make ``steps`` the régua's steps, keeping the row of every offset that stays."""
    stored = {s.offset_days: s for s in (await steps_of(session, [cadence.id]))[cadence.id]}
    wanted = {s.offset_days: s for s in steps}
    gone = sorted(set(stored) - set(wanted))
    if gone:
        await session.execute(
            delete(CadenceStep).where(
                CadenceStep.cadence_id == cadence.id, CadenceStep.offset_days.in_(gone)
            )
        )
    changed: list[int] = []
    for offset, fields in wanted.items():
        values = _step_values(fields)
        row = stored.get(offset)
        if row is None:
            session.add(CadenceStep(tenant_id=cadence.tenant_id, cadence_id=cadence.id, **values))
        elif any(getattr(row, k) != v for k, v in values.items()):
            for key, value in values.items():
                setattr(row, key, value)
            changed.append(offset)
    await session.flush()
    return {
        "added": sorted(set(wanted) - set(stored)),
        "removed": gone,
        "changed": sorted(changed),
    }


async def update_cadence(
    session: AsyncSession, cadence: Cadence, data: schemas.CadenceIn, actor: Actor
) -> Cadence:
    if data.kind != cadence.kind:
        raise ValidationFailed(
            "The régua is not valid.",
            errors=[
                FieldError("kind", f"a régua's kind cannot change (this one is {cadence.kind})")
            ],
        )
    name, steps = await validate_cadence(session, cadence.tenant_id, data)
    values = {
        "name": name,
        "tags_any": clean_tags(data.tags_any),
        "priority": data.priority,
        "active": data.active,
    }
    fields = [k for k, v in values.items() if getattr(cadence, k) != v]
    for key in fields:
        setattr(cadence, key, values[key])
    await flush_unique(session, DuplicateCadence("A régua with this name already exists."))
    moves = await _replace_steps(session, cadence, steps)
    if fields or any(moves.values()):
        cadence.updated_at = func.now()
        await session.flush()
        await audit(
            session,
            "cadence.updated",
            cadence.tenant_id,
            actor,
            ("cadence", cadence.id),
            {"fields": sorted(fields), "steps": moves},
        )
    await session.refresh(cadence)
    return cadence


async def delete_cadence(session: AsyncSession, cadence: Cadence, actor: Actor) -> None:
    """Remove a segment régua; its pinned customers return to their segment's or the default
    (the pin is cleared by the database), its attempts keep their history without the step."""
    if cadence.is_default:
        raise DefaultCadence("The default régua serves every customer; it cannot be deleted.")
    pinned = await session.scalar(
        select(func.count()).select_from(Customer).where(Customer.cadence_id == cadence.id)
    )
    await audit(
        session,
        "cadence.deleted",
        cadence.tenant_id,
        actor,
        ("cadence", cadence.id),
        {"name": cadence.name, "pinned_customers": pinned or 0},
    )
    await session.delete(cadence)
    await session.flush()


# --- pins -----------------------------------------------------------------------------------------


async def pin(
    session: AsyncSession, customer: Customer, cadence_id: uuid.UUID | None, actor: Actor
) -> schemas.PinOut:
    """Pin the customer to one of its tenant's réguas (``None``: unpin)."""
    cadence = None
    if cadence_id is not None:
        cadence = await session.scalar(
            select(Cadence).where(Cadence.id == cadence_id, Cadence.tenant_id == customer.tenant_id)
        )
        if cadence is None:
            raise ValidationFailed(
                "The régua does not exist.",
                errors=[FieldError("cadence_id", "no régua of this retailer", code="not_found")],
            )
        if cadence.kind != CadenceKind.REGUA:
            raise ValidationFailed(
                "Only a régua of the installments can be pinned.",
                errors=[
                    FieldError(
                        "cadence_id",
                        "an agreement régua follows the customer's agreements; it cannot be pinned",
                    )
                ],
            )
    if customer.cadence_id != cadence_id:
        before = customer.cadence_id
        customer.cadence_id = cadence_id
        await session.flush()
        await audit(
            session,
            "customer.cadence_pinned" if cadence_id else "customer.cadence_unpinned",
            customer.tenant_id,
            actor,
            ("customer", customer.id),
            {"before": str(before) if before else None, "after": str(cadence_id or "") or None},
        )
    return schemas.PinOut(
        customer_id=customer.id,
        cadence_id=cadence_id,
        cadence_name=cadence.name if cadence else None,
    )
