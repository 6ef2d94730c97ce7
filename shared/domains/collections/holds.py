"""Holds (pause, dispute) an operator opens and releases, and "send now": the actions on one
customer's collection.  Audited in the caller's transaction."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from shared import clock
from shared.domains import events
from shared.domains.audit.service import Actor
from shared.domains.channels.defaults import BROKEN_PROMISE
from shared.domains.collections import planner, schemas
from shared.domains.collections.attempts import next_state
from shared.domains.collections.service import OPERATOR_HOLDS, UNSENT, audit
from shared.domains.portfolio.service import find_installment
from shared.errors import Conflict, FieldError, NotFound, ValidationFailed
from shared.models import (
    Agreement,
    AgreementInstallment,
    AgreementInstallmentStatus,
    AgreementStatus,
    AttemptState,
    CollectionHold,
    ContactAttempt,
    ContactAttemptItem,
    Customer,
    HoldKind,
    Installment,
    InstallmentStatus,
    Payment,
)
from shared.tenancy import Principal

# --- holds ----------------------------------------------------------------------------------------


def hold_out(h: CollectionHold, at: datetime, cancelled: int = 0) -> schemas.HoldOut:
    return schemas.HoldOut(
        id=h.id,
        customer_id=h.customer_id,
        installment_id=h.installment_id,
        kind=h.kind,
        reason=h.reason,
        until=h.until,
        released_at=h.released_at,
        active=h.released_at is None and (h.until is None or h.until > at),
        created_by=h.created_by,
        created_at=h.created_at,
        cancelled_attempts=cancelled,
    )


async def _validate_hold(
    session: AsyncSession,
    principal: Principal,
    customer: Customer,
    data: schemas.HoldIn,
    at: datetime,
) -> uuid.UUID | None:
    """The installment the hold is about (``None``: the whole customer), or every field error."""
    errors: list[FieldError] = []
    if data.kind not in OPERATOR_HOLDS:
        errors.append(FieldError("kind", "must be pause, dispute or promise"))
    if data.kind == HoldKind.PROMISE and data.until is None:
        errors.append(FieldError("until", "a promise holds until the promised day: required"))
    if not data.reason.strip():
        errors.append(FieldError("reason", "must not be blank"))
    if data.until is not None and (data.until.tzinfo is None or data.until <= at):
        errors.append(FieldError("until", "must be a future instant with its offset (UTC: Z)"))
    installment_id = None
    if data.installment_ref is not None:
        try:
            inst, _ = await find_installment(session, principal, data.installment_ref)
        except NotFound:
            inst = None
        if inst is None or inst.customer_id != customer.id:
            errors.append(
                FieldError("installment_ref", "no installment of this customer", code="not_found")
            )
        else:
            installment_id = inst.id
    if errors:
        raise ValidationFailed("The hold is not valid.", errors=errors)
    return installment_id


async def cancel_unsent(
    session: AsyncSession,
    customer: Customer,
    reason: str,
    *,
    channel: str | None = None,
    recipient: str | None = None,
) -> list[ContactAttempt]:
    """Cancel the customer's messages that have not gone yet — all of them, or those on one
    ``channel`` or to one ``recipient`` — recording why."""
    query = (
        select(ContactAttempt)
        .where(
            ContactAttempt.tenant_id == customer.tenant_id,
            ContactAttempt.customer_id == customer.id,
            ContactAttempt.state.in_(UNSENT),
        )
        .with_for_update()
    )
    if channel is not None:
        query = query.where(ContactAttempt.channel == channel)
    if recipient is not None:
        query = query.where(ContactAttempt.recipient == recipient)
    rows = list(await session.scalars(query))
    for attempt in rows:
        attempt.state = next_state(AttemptState(attempt.state), AttemptState.CANCELLED)
        attempt.reason = reason
        attempt.decisions = [*attempt.decisions, {"rule": reason, "held": True}]
    await session.flush()
    return rows


async def cancel_pointless(
    session: AsyncSession, installment_ids: list[uuid.UUID], reason: str
) -> int:
    """Cancel the messages not sent yet about these installments that have nothing else still
    in collection to ask for (a payment settled them, an agreement renegotiated them); how many
    were cancelled."""
    attempts = await _unsent_about(session, ContactAttemptItem.installment_id.in_(installment_ids))
    if not attempts:
        return 0
    still_asking = set(
        await session.scalars(
            select(ContactAttemptItem.attempt_id)
            .join(Installment, Installment.id == ContactAttemptItem.installment_id)
            .where(
                ContactAttemptItem.attempt_id.in_([a.id for a in attempts]),
                Installment.status.in_(_IN_COLLECTION),
            )
        )
    )
    return await _cancel_unless(session, attempts, still_asking, reason)


_IN_COLLECTION = (InstallmentStatus.OPEN, InstallmentStatus.PARTIALLY_PAID)


async def cancel_agreement_reminders(
    session: AsyncSession, agreement_installment_ids: list[uuid.UUID], reason: str
) -> int:
    """Cancel the agreement reminders not sent yet about these agreement installments that
    have nothing else left to ask for (paid, or their agreement ended); how many were
    cancelled."""
    attempts = await _unsent_about(
        session, ContactAttemptItem.agreement_installment_id.in_(agreement_installment_ids)
    )
    if not attempts:
        return 0
    still_asking = set(
        await session.scalars(
            select(ContactAttemptItem.attempt_id)
            .join(
                AgreementInstallment,
                AgreementInstallment.id == ContactAttemptItem.agreement_installment_id,
            )
            .join(Agreement, Agreement.id == AgreementInstallment.agreement_id)
            .where(
                ContactAttemptItem.attempt_id.in_([a.id for a in attempts]),
                AgreementInstallment.status != AgreementInstallmentStatus.PAID,
                Agreement.status == AgreementStatus.ACTIVE,
            )
        )
    )
    return await _cancel_unless(session, attempts, still_asking, reason)


async def _unsent_about(session: AsyncSession, items: ColumnElement[bool]) -> list[ContactAttempt]:
    """The messages not sent yet with an item matching ``items``, locked, each once."""
    rows = await session.scalars(
        select(ContactAttempt)
        .join(ContactAttemptItem, ContactAttemptItem.attempt_id == ContactAttempt.id)
        .where(items, ContactAttempt.state.in_(UNSENT))
        .with_for_update(of=ContactAttempt)
    )
    return list(dict.fromkeys(rows))


async def _cancel_unless(
    session: AsyncSession,
    attempts: list[ContactAttempt],
    still_asking: set[uuid.UUID],
    reason: str,
) -> int:
    """Cancel ``attempts`` but those ``still_asking`` for something; how many were."""
    cancelled = 0
    for attempt in attempts:
        if attempt.id not in still_asking:
            attempt.state = next_state(AttemptState(attempt.state), AttemptState.CANCELLED)
            attempt.reason = reason
            cancelled += 1
    await session.flush()
    return cancelled


async def create_hold(
    session: AsyncSession,
    principal: Principal,
    customer: Customer,
    data: schemas.HoldIn,
    actor: Actor,
) -> schemas.HoldOut:
    at = clock.now()
    installment_id = await _validate_hold(session, principal, customer, data, at)
    hold = CollectionHold(
        tenant_id=customer.tenant_id,
        customer_id=customer.id,
        installment_id=installment_id,
        kind=HoldKind(data.kind),
        reason=data.reason.strip(),
        until=data.until,
        created_by=f"{actor.type}:{actor.id}" if actor.id else actor.type,
    )
    session.add(hold)
    await session.flush()
    cancelled = []
    if installment_id is None:
        cancelled = await cancel_unsent(session, customer, f"hold_{data.kind}")
    await audit(
        session,
        "hold.created",
        customer.tenant_id,
        actor,
        ("customer", customer.id),
        {
            "hold_id": str(hold.id),
            "kind": data.kind,
            "installment_id": str(installment_id) if installment_id else None,
            "until": data.until.isoformat() if data.until else None,
            "cancelled_attempts": [str(a.id) for a in cancelled],
        },
    )
    await session.refresh(hold)
    return hold_out(hold, at, len(cancelled))


async def holds_of(session: AsyncSession, customer: Customer) -> list[CollectionHold]:
    return list(
        await session.scalars(
            select(CollectionHold)
            .where(
                CollectionHold.tenant_id == customer.tenant_id,
                CollectionHold.customer_id == customer.id,
            )
            .order_by(CollectionHold.created_at.desc(), CollectionHold.id)
        )
    )


async def release_hold(
    session: AsyncSession, customer: Customer, hold_id: uuid.UUID, actor: Actor
) -> CollectionHold:
    """Release the hold (releasing it again changes nothing)."""
    hold = await session.scalar(
        select(CollectionHold)
        .where(
            CollectionHold.id == hold_id,
            CollectionHold.tenant_id == customer.tenant_id,
            CollectionHold.customer_id == customer.id,
        )
        .with_for_update()
    )
    if hold is None:
        raise NotFound("The hold was not found.")
    if hold.released_at is None:
        hold.released_at = clock.now()
        await session.flush()
        await audit(
            session,
            "hold.released",
            customer.tenant_id,
            actor,
            ("customer", customer.id),
            {"hold_id": str(hold.id), "kind": hold.kind},
        )
    return hold


class NothingToRemind(Conflict):
    code = "nothing_to_remind"


async def remind(
    session: AsyncSession, customer: Customer, actor: Actor, at: datetime
) -> ContactAttempt:
    """A message now about what the customer owes, with the régua's governance: ``queued`` with
    its instant, or ``skipped`` with the reason."""
    try:
        attempt = await planner.remind(session, customer.tenant_id, customer.id, at)
    except planner.NothingToRemind as exc:
        raise NothingToRemind(str(exc)) from exc
    await audit(
        session,
        "customer.reminded",
        customer.tenant_id,
        actor,
        ("customer", customer.id),
        {"attempt_id": str(attempt.id), "state": attempt.state, "reason": attempt.reason},
    )
    return attempt


# --- promises: kept or broken ---------------------------------------------------------------


async def judge_promises(session: AsyncSession, now: datetime | None = None) -> dict[str, int]:
    """Judge the promises whose time ran out and that nobody released: ``kept`` when a payment
    of the customer's landed between the promise and its end, ``broken`` otherwise (the régua
    resumes by itself, and a reminder is asked for now — the broken-promise template, under the
    régua's governance).  Each
    promise is judged once (it is marked released at its end); audited and told to the
    retailer's systems.  The caller commits."""
    now = now or clock.now()
    due = list(
        await session.scalars(
            select(CollectionHold)
            .where(
                CollectionHold.kind == HoldKind.PROMISE,
                CollectionHold.released_at.is_(None),
                CollectionHold.until <= now,
            )
            .order_by(CollectionHold.until, CollectionHold.id)
            .limit(500)
            .with_for_update(skip_locked=True)
        )
    )
    counts = {"kept": 0, "broken": 0}
    for hold in due:
        assert hold.until is not None
        paid = await session.scalar(
            select(func.count())
            .select_from(Payment)
            .join(Installment, Installment.id == Payment.installment_id)
            .where(
                Installment.customer_id == hold.customer_id,
                Payment.paid_at >= hold.created_at,
                Payment.paid_at < hold.until,
            )
        )
        outcome = "kept" if paid else "broken"
        hold.released_at = hold.until
        counts[outcome] += 1
        data: dict[str, Any] = {"hold_id": str(hold.id), "until": hold.until.isoformat()}
        if outcome == "broken":
            customer = await session.get(Customer, hold.customer_id)
            if customer is not None:
                try:
                    attempt = await planner.remind(
                        session, hold.tenant_id, customer.id, now, template_key=BROKEN_PROMISE_KEY
                    )
                    data["attempt_id"] = str(attempt.id)
                except planner.NothingToRemind:
                    data["attempt_id"] = None
        await audit(
            session,
            f"promise.{outcome}",
            hold.tenant_id,
            PROMISES,
            ("customer", hold.customer_id),
            data,
        )
        await events.emit(
            session,
            hold.tenant_id,
            f"promise.{outcome}",
            data,
            hold.until,
            customer_id=hold.customer_id,
        )
    await session.flush()
    return counts


PROMISES = Actor("system", "collections.promises")
BROKEN_PROMISE_KEY = BROKEN_PROMISE.key  # the template a broken promise's reminder uses
