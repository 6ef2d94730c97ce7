"""Background work of outbound webhooks.

- ``events.deliver`` (queue ``webhooks_out``, apart from sending reminders): one endpoint's
  due deliveries, in order (``delivery.run_endpoint``).
- ``events.notify_disabled``: the e-mail to a tenant whose endpoint Quita disabled.
- Every minute a safety net re-queues active endpoints whose next delivery has been due for a
  while with no run taking it (a lost job, a worker that died mid-run).
- Every hour, events older than the retention period go, with their finished deliveries.
- A settled installment becomes an ``installment.settled`` event.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

import structlog
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from shared import clock
from shared.domains.events import delivery, notices
from shared.domains.events.service import DELIVER_JOB, DELIVER_QUEUE, emit, queue_job
from shared.domains.portfolio.tasks import on_settled
from shared.models import Installment, Payment
from shared.queue import JobContext, job
from shared.queue.scheduler import periodic

log = structlog.get_logger("quita.events")

STALLED = timedelta(minutes=2)
RETENTION_DAYS = 30


@job(DELIVER_JOB, queue=DELIVER_QUEUE, max_attempts=10, min_backoff_s=5.0)
async def deliver(ctx: JobContext, *, endpoint: str) -> None:
    await delivery.run_endpoint(ctx.session, uuid.UUID(endpoint))


@job(delivery.NOTIFY_JOB, queue="default", max_attempts=8, min_backoff_s=30.0)
async def notify_disabled(ctx: JobContext, *, endpoint: str, reason: str) -> None:
    await notices.send_disabled_notice(ctx, uuid.UUID(endpoint), reason)


_STALLED = text(
    """
    SELECT e.id, e.tenant_id FROM webhook_endpoints e
    CROSS JOIN LATERAL (
        SELECT d.next_attempt_at FROM webhook_deliveries d
        WHERE d.endpoint_id = e.id AND d.state IN ('pending', 'failed')
        ORDER BY d.occurred_at, d.event_seq, d.created_at, d.id
        LIMIT 1
    ) head
    WHERE e.status = 'active' AND head.next_attempt_at < :stalled
    """
)


@periodic("events.requeue", every=timedelta(minutes=1))
async def requeue_stalled(session: AsyncSession) -> None:
    """Queue a run for every active endpoint whose next delivery has waited past its time."""
    rows = (await session.execute(_STALLED, {"stalled": clock.now() - STALLED})).all()
    minute = clock.now().strftime("%Y%m%d%H%M")
    for endpoint_id, tenant_id in rows:
        await queue_job(
            session,
            DELIVER_JOB,
            DELIVER_QUEUE,
            tenant_id,
            {"endpoint": str(endpoint_id)},
            dedupe_key=f"events.requeue:{endpoint_id}:{minute}",
        )
    if rows:
        log.info("events.requeued", endpoints=len(rows))


_PRUNE = text(
    """
    DELETE FROM tenant_events WHERE id IN (
        SELECT ev.id FROM tenant_events ev
        WHERE ev.created_at < now() - make_interval(days => :days)
          AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d
                          WHERE d.event_id = ev.id AND d.state IN ('pending', 'failed'))
        LIMIT 10000)
    """
)


@periodic("events.prune", every=timedelta(hours=1))
async def prune(session: AsyncSession) -> None:
    """Forget events (and their delivery log) past the retention period, unless a delivery of
    one still waits; a bounded batch per tick."""
    await session.execute(_PRUNE, {"days": RETENTION_DAYS})


@on_settled
async def installment_settled(
    ctx: JobContext, installment_id: uuid.UUID, payment_id: uuid.UUID | None
) -> None:
    """Tell the retailer's systems: the installment is paid in full."""
    inst = await ctx.session.get(Installment, installment_id)
    if inst is None:
        return
    payment = await ctx.session.get(Payment, payment_id) if payment_id else None
    data = {
        "installment_id": inst.id,
        "installment_external_id": inst.external_id,
        "principal": inst.principal,
        "amount_paid": inst.amount_paid,
        "settled_at": inst.settled_at,
        "payment": None
        if payment is None
        else {
            "id": payment.id,
            "external_id": payment.external_id,
            "amount": payment.amount,
            "method": payment.method,
            "paid_at": payment.paid_at,
            "txid": payment.txid,
        },
    }
    await emit(
        ctx.session,
        inst.tenant_id,
        "installment.settled",
        data,
        inst.settled_at,
        customer_id=inst.customer_id,
    )
