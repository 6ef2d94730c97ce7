"""Background work of the collection engine.

- Every minute the scheduler queues one ``collections.plan`` job per retailer; each plans its
  tenant under the tenant's advisory lock (so workers plan tenants in parallel, never one twice).
- ``collections.send`` (``sending.py``) sends a batch of one tenant's attempts.
- WhatsApp and SMS status webhooks (``whatsapp.status`` and ``sms.status`` events of the
  journal) move attempts forward through one function (``apply_status``), resolving ``unknown``
  ones by the attempt id each send carries, and queue the fallback channel when the provider
  reports a failure that calls for it.
- A settled installment cancels the queued attempts that have nothing left to ask for.
- Every two minutes a sweeper moves on what no job will: queued attempts whose send job is
  gone, ``sending`` ones whose worker died, ``unknown`` ones the provider never received (sent
  again: see ``_UNREACHED``) or that no webhook resolved, and messages sent but not delivered in
  time (fallback channel).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from shared import clock
from shared.domains import events
from shared.domains.audit.service import Actor, record_many
from shared.domains.collections import holds, sending
from shared.domains.collections.attempts import IllegalTransition, next_state
from shared.domains.collections.planner import plan_tenant
from shared.domains.collections.service import UNSENT
from shared.domains.inbound import replies, sms
from shared.domains.inbound.journal import Outcome, handles
from shared.domains.inbound.whatsapp import STATUS
from shared.domains.portfolio.tasks import on_settled
from shared.integrations.errors import ErrorClass
from shared.integrations.sms import OurStatus, SmsError, map_status
from shared.integrations.sms import classify as sms_classify
from shared.integrations.whatsapp import advice, classify
from shared.models import (
    AttemptState,
    ContactAttempt,
    Tenant,
    TenantKind,
    WebhookEvent,
)
from shared.queue import JobContext, enqueue, job
from shared.queue.scheduler import periodic

log = structlog.get_logger("quita.collections")

S = AttemptState
_STATUS = {"sent": S.SENT, "delivered": S.DELIVERED, "read": S.READ, "failed": S.FAILED}
# Twilio's statuses (``map_status``) in our states.  "queued" means Twilio holds the message,
# which is what our own ``sent`` records when a send call is answered: it settles an attempt
# whose answer was lost, and never moves one that got further.
_SMS_STATUS: dict[OurStatus, AttemptState] = {
    "queued": S.SENT,
    "sent": S.SENT,
    "delivered": S.DELIVERED,
    "undelivered": S.FAILED,
    "failed": S.FAILED,
}
_PRICING = ("billable", "pricing_model", "category", "type")
_STAMP = {S.SENT: "sent_at", S.DELIVERED: "delivered_at", S.READ: "read_at", S.FAILED: "failed_at"}


@periodic("collections.plan", every=timedelta(minutes=1))
async def schedule_planning(session: AsyncSession) -> None:
    """One planning job per active retailer, at most one per tenant and minute."""
    minute = clock.now().strftime("%Y%m%d%H%M")
    tenants = await session.scalars(
        select(Tenant.id).where(Tenant.kind == TenantKind.RETAILER, Tenant.status == "active")
    )
    for tenant_id in tenants:
        await enqueue(
            session,
            plan,
            tenant_id=tenant_id,
            dedupe_key=f"collections.plan:{tenant_id}:{minute}",
            tenant=str(tenant_id),
        )


@job("collections.plan", queue="default", max_attempts=3, min_backoff_s=10.0)
async def plan(ctx: JobContext, *, tenant: str) -> None:
    await plan_tenant(ctx.session, uuid.UUID(tenant), clock.now())


@dataclass(frozen=True, slots=True)
class Failure:
    """Why the provider says a message failed, and whether the step's other channel should
    try (the provider's error table decides: an unreachable number yes, a glitch no)."""

    error_class: ErrorClass
    code: int | None
    fallback: bool


async def apply_status(
    session: AsyncSession,
    attempt: ContactAttempt,
    reported: AttemptState,
    *,
    at: datetime | None,
    failure: Failure | None = None,
) -> Outcome:
    """Move ``attempt`` by a status its provider reported — forward only, whatever the channel
    (``next_state``) — stamping when it happened; a failure records its error and queues the
    fallback channel when it calls for it."""
    try:
        after = next_state(attempt.state, reported, provider=True)
    except IllegalTransition as exc:
        return Outcome.ignored(str(exc))
    if after == attempt.state:
        # out of order (read before delivered): the earlier step still happened, and when
        if reported != S.FAILED:
            _stamp(attempt, reported, at)
        return Outcome.done(f"{reported} after {attempt.state}: kept")
    before = attempt.state
    attempt.state = after
    _stamp(attempt, after, at)
    if after == S.FAILED and failure is not None:
        attempt.error_class, attempt.error_code = str(failure.error_class), failure.code
        attempt.reason = str(failure.error_class)
        if failure.fallback:
            await sending.queue_fallback(session, attempt)
    elif before == S.FAILED:
        # reached them after all (another device): the fallback it called for is pointless
        attempt.reason = None
        await _cancel_fallbacks(session, attempt)
    await events.emit(
        session,
        attempt.tenant_id,
        "attempt.status_changed",
        {"attempt_id": attempt.id, "channel": attempt.channel, "from": before, "to": after},
        at,
        customer_id=attempt.customer_id,
    )
    await session.flush()
    return Outcome.done(f"{before} → {after}")


def _stamp(attempt: ContactAttempt, state: AttemptState, at: datetime | None) -> None:
    """Record when ``state`` happened, unless it is already known."""
    column = _STAMP.get(state)
    if column and at is not None and getattr(attempt, column) is None:
        setattr(attempt, column, at)


async def _cancel_fallbacks(session: AsyncSession, attempt: ContactAttempt) -> None:
    """Cancel the fallback messages ``attempt`` queued that have not gone yet."""
    pending = await session.scalars(
        select(ContactAttempt)
        .where(
            ContactAttempt.tenant_id == attempt.tenant_id,
            ContactAttempt.fallback_of == attempt.id,
            ContactAttempt.state.in_(UNSENT),
        )
        .with_for_update()
    )
    for fallback in pending:
        fallback.state = next_state(AttemptState(fallback.state), S.CANCELLED)
        fallback.reason = "delivered"
        fallback.decisions = [*fallback.decisions, {"rule": "delivered", "held": True}]


async def _attempt_by_message(
    session: AsyncSession, event: WebhookEvent, message_id: str, attempt_id: uuid.UUID | None
) -> ContactAttempt | None:
    """The event's tenant's attempt that sent ``message_id``, else the one the send named (an
    ``unknown`` attempt never got the message id: it is recorded now)."""
    attempt = await session.scalar(
        select(ContactAttempt)
        .where(ContactAttempt.provider_message_id == message_id)
        .with_for_update()
    )
    if attempt is None and attempt_id is not None:
        attempt = await session.scalar(
            select(ContactAttempt).where(ContactAttempt.id == attempt_id).with_for_update()
        )
        if attempt is not None and attempt.provider_message_id is None:
            attempt.provider_message_id = message_id
    if attempt is None or attempt.tenant_id != event.tenant_id:
        return None
    if message_id and attempt.provider_message_id != message_id:
        # a second message carrying this attempt's id: the one presumed never received (and
        # sent again by the sweeper) had arrived after all.  Kept on the attempt; its statuses
        # are not the attempt's.
        if not any(d.get("provider_message_id") == message_id for d in attempt.decisions):
            attempt.decisions = [
                *attempt.decisions,
                {"rule": "second_message", "provider_message_id": message_id},
            ]
            log.warning("collections.second_message", attempt_id=str(attempt.id))
        return None
    return attempt


@handles(STATUS)
async def on_status(session: AsyncSession, event: WebhookEvent) -> Outcome:
    """Apply a WhatsApp status to its attempt: by the message id, else by the attempt id the
    send carried in ``biz_opaque_callback_data``."""
    payload = event.payload
    reported = _STATUS.get(str(payload.get("status")))
    if reported is None:
        return Outcome.ignored(f"status {payload.get('status')!r}")
    attempt = await _attempt_by_message(
        session,
        event,
        str(payload.get("id")),
        sending.attempt_of_callback(payload.get("biz_opaque_callback_data")),
    )
    if attempt is None:
        # not a reminder: perhaps a reply sent in a conversation
        if event.tenant_id is not None and await replies.apply_status(
            session, event.tenant_id, payload
        ):
            return Outcome.done("conversation message")
        return Outcome.ignored("no attempt of this tenant sent that message")
    pricing = payload.get("pricing")
    if isinstance(pricing, dict) and pricing != attempt.pricing:
        # sent with delivered/read carry it (contract §5.5): what this message is charged as
        attempt.pricing = {k: pricing[k] for k in _PRICING if k in pricing}
    failure = None
    if reported == S.FAILED:
        errors = payload.get("errors")
        error = errors[0] if isinstance(errors, list) and errors else {}
        code = replies.int_or_none(error.get("code") if isinstance(error, dict) else None)
        error_class = classify(None, code)
        failure = Failure(error_class, code, advice(error_class, 0, code).fallback)
    return await apply_status(session, attempt, reported, at=event.occurred_at, failure=failure)


@handles(sms.STATUS)
async def on_sms_status(session: AsyncSession, event: WebhookEvent) -> Outcome:
    """Apply a Twilio status callback to its attempt: by the message SID, else by the attempt
    the callback URL named.  ``undelivered`` and ``failed`` fail it with Twilio's
    ``ErrorCode``; 21610 (the recipient had texted STOP) also opts the customer out of SMS."""
    payload = event.payload
    status = str(payload.get("MessageStatus") or payload.get("SmsStatus") or "")
    try:
        reported = _SMS_STATUS[map_status(status)]
    except ValueError:
        return Outcome.ignored(f"status {status!r}")
    sid = str(payload.get("MessageSid") or payload.get("SmsSid") or "")
    attempt = await _attempt_by_message(session, event, sid, sms.attempt_of(payload))
    if attempt is None:
        return Outcome.ignored("no attempt of this tenant sent that message")
    failure = None
    if reported == S.FAILED:
        code = replies.int_or_none(payload.get("ErrorCode"))
        error = SmsError(error_class=sms_classify(None, code), message=status, code=code)
        failure = Failure(error.error_class, code, error.advice(0).fallback)
        if error.opted_out and attempt.recipient:
            await sms.opt_out_of_sms(
                session,
                attempt.tenant_id,
                attempt.recipient,
                source="sms_error_21610",
                evidence={"message_sid": sid},
            )
    return await apply_status(session, attempt, reported, at=event.occurred_at, failure=failure)


@on_settled
async def cancel_when_settled(
    ctx: JobContext, installment_id: uuid.UUID, payment_id: uuid.UUID | None
) -> None:
    """A payment landed: queued attempts with nothing else left to ask for are cancelled."""
    if await holds.cancel_pointless(ctx.session, [installment_id], "paid"):
        log.info("collections.cancelled_on_payment", installment_id=str(installment_id))


SWEEPER = Actor("system", "collections.sweep")
SWEEP_BATCH = 1000
STUCK_QUEUED = timedelta(minutes=5)
STUCK_SENDING = timedelta(minutes=10)
UNREACHED_AFTER = timedelta(minutes=30)
UNRESOLVED = timedelta(hours=24)

# ``unknown`` attempts the provider never received.  Meta has no lookup by our id, so the proof
# is its silence: every message accepted gets a status webhook within seconds (``sent``, carrying
# our attempt id), and this one got none in half an hour, while a message of the same number that
# left after it has been delivered — statuses were flowing, and for messages younger than this
# one.  A worker killed between committing ``sending`` and its request leaving, a request that
# timed out before reaching the provider: sent again, under the same checks as any send.
_UNREACHED = text(
    """
    SELECT a.id, later.id AS evidence_id FROM contact_attempts a
    CROSS JOIN LATERAL (
        SELECT b.id FROM contact_attempts b
        WHERE b.channel_id = a.channel_id AND b.sending_at > a.sending_at
          AND b.delivered_at IS NOT NULL
        LIMIT 1
    ) later
    WHERE a.state = 'unknown' AND a.provider_message_id IS NULL
      AND a.channel IN ('whatsapp', 'sms') AND a.channel_id IS NOT NULL
      AND a.sending_at < :before AND a.sending_at > :since
    ORDER BY a.sending_at
    LIMIT :batch
    """
)

# queued attempts overdue for sending, with whether a send job (pending or given up) names them;
# send jobs carry ``attempt_ids`` (batches) or, from before batching, ``attempt_id``
_ORPHANS = text(
    """
    WITH stuck AS (
        SELECT a.id, a.tenant_id, a.planned_for FROM contact_attempts a
        WHERE a.state = 'queued' AND a.planned_for < :stuck
        ORDER BY a.planned_for
        LIMIT :batch
    ), jobs AS (
        SELECT ids.attempt_id, o.failed_at IS NOT NULL AS failed
        FROM outbox o
        CROSS JOIN LATERAL jsonb_array_elements_text(
            COALESCE(o.args -> 'attempt_ids', jsonb_build_array(o.args ->> 'attempt_id'))
        ) AS ids (attempt_id)
        WHERE o.actor = 'collections.send' AND o.done_at IS NULL
    )
    SELECT s.id, s.tenant_id, s.planned_for,
           COALESCE(bool_or(j.failed), false) AS job_failed,
           COALESCE(bool_or(NOT j.failed), false) AS job_pending
    FROM stuck s LEFT JOIN jobs j ON j.attempt_id = s.id::text
    GROUP BY s.id, s.tenant_id, s.planned_for
    ORDER BY s.planned_for
    """
)


@periodic("collections.promises", every=timedelta(minutes=15))
async def judge_promises(session: AsyncSession) -> None:
    """Promises whose time ran out: kept, or broken (a reminder now)."""
    counts = await holds.judge_promises(session)
    if any(counts.values()):
        log.info("collections.promises_judged", **counts)


@periodic("collections.sweep", every=timedelta(minutes=2))
async def sweep(session: AsyncSession) -> None:
    await sweep_attempts(session, clock.now())


async def sweep_attempts(session: AsyncSession, now: datetime) -> dict[str, int]:
    """Attempts no job will move on their own: a queued attempt without a pending send job is
    queued again (or failed, when its job gave up); a ``sending`` one whose job is long gone
    becomes ``unknown``; an ``unknown`` one the provider never received is queued again
    (``_UNREACHED``), and one no webhook resolved in a day is flagged; a WhatsApp message sent but
    not delivered within the tenant's time gets the step's fallback."""
    counts = {"requeued": 0, "failed": 0, "unknown": 0, "resent": 0, "unresolved": 0}
    rows = await session.execute(_ORPHANS, {"stuck": now - STUCK_QUEUED, "batch": SWEEP_BATCH})
    for row in rows.all():
        if row.job_pending:
            continue
        attempt = await session.get(ContactAttempt, row.id, with_for_update=True)
        if attempt is None or attempt.state != S.QUEUED:
            continue
        if row.job_failed:
            attempt.state = next_state(attempt.state, S.FAILED)
            attempt.reason = "send_job_failed"
            counts["failed"] += 1
        else:
            await sending.enqueue_send(session, attempt)
            counts["requeued"] += 1
    sending_rows = await session.scalars(
        select(ContactAttempt)
        .where(ContactAttempt.state == S.SENDING, ContactAttempt.sending_at < now - STUCK_SENDING)
        .limit(SWEEP_BATCH)
        .with_for_update(skip_locked=True)
    )
    for attempt in sending_rows:
        attempt.state = next_state(attempt.state, S.UNKNOWN)
        attempt.reason = "outcome_lost"
        counts["unknown"] += 1
    counts["resent"] = await _resend_unreached(session, now)
    unresolved = await session.execute(
        update(ContactAttempt)
        .where(
            ContactAttempt.state == S.UNKNOWN,
            ContactAttempt.sending_at < now - UNRESOLVED,
            ContactAttempt.reason != "unresolved",
        )
        .values(reason="unresolved")
    )
    counts["unresolved"] = unresolved.rowcount or 0  # type: ignore[attr-defined]
    counts["fallbacks"] = await _fallback_undelivered(session, now)
    await session.flush()
    if any(counts.values()):
        log.info("collections.swept", **counts)
    return counts


async def _resend_unreached(session: AsyncSession, now: datetime) -> int:
    """Queue again the ``unknown`` attempts the provider never received (``_UNREACHED``),
    each with the evidence in its decisions and the audit trail."""
    rows = (
        await session.execute(
            _UNREACHED,
            {"before": now - UNREACHED_AFTER, "since": now - UNRESOLVED, "batch": SWEEP_BATCH},
        )
    ).all()
    resent: list[ContactAttempt] = []
    for row in rows:
        attempt = await session.get(ContactAttempt, row.id, with_for_update=True)
        if attempt is None or attempt.state != S.UNKNOWN or attempt.provider_message_id:
            continue  # a status came meanwhile
        evidence = {"later_delivered": str(row.evidence_id), "lost_as": attempt.reason}
        attempt.state = next_state(attempt.state, S.QUEUED)
        attempt.reason = "unreached"
        attempt.decisions = [*attempt.decisions, {"rule": "unreached", **evidence}]
        await sending.enqueue_send(session, attempt)
        resent.append(attempt)
        log.warning("collections.unreached_resent", attempt_id=str(attempt.id))
    await record_many(
        session,
        SWEEPER,
        [
            (
                "attempt.unreached",
                a.tenant_id,
                ("contact_attempt", a.id),
                {"customer_id": str(a.customer_id), "channel": a.channel, **a.decisions[-1]},
            )
            for a in resent
        ],
    )
    return len(resent)


_UNDELIVERED = text(
    """
    SELECT a.id FROM contact_attempts a
    JOIN collection_settings s ON s.tenant_id = a.tenant_id
    WHERE a.state = 'sent' AND a.fallback_channel IS NOT NULL
      AND a.sent_at < CAST(:now AS timestamptz) - make_interval(hours => s.fallback_after_hours)
      AND NOT EXISTS (SELECT 1 FROM contact_attempts f WHERE f.fallback_of = a.id)
    LIMIT :batch
    """
)


async def _fallback_undelivered(session: AsyncSession, now: datetime) -> int:
    """Sent, never delivered within the tenant's time: the step's other channel, once."""
    done = 0
    for attempt_id in (
        await session.execute(_UNDELIVERED, {"now": now, "batch": SWEEP_BATCH})
    ).scalars():
        attempt = await session.get(ContactAttempt, attempt_id, with_for_update=True)
        if attempt is None or attempt.state != S.SENT:
            continue
        attempt.reason = "not_delivered"
        if await sending.queue_fallback(session, attempt) is not None:
            done += 1
    return done
