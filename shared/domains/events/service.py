"""Emitting an event: one row in ``tenant_events`` and its fan-out to the tenant's endpoints, in
one statement of the caller's transaction.

An event exists exactly when the change that caused it commits (a rolled-back transaction
delivers nothing).  The fan-out is set-based — the event, one delivery per active endpoint whose
filter takes the type, and one ``events.deliver`` job per such endpoint, all in a single
``INSERT … SELECT`` chain — so a tenant with no endpoints pays one insert, and one with several
pays no extra round trip.
"""

from __future__ import annotations

import json
import uuid
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

import structlog
from sqlalchemy import text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from shared import clock
from shared.models import OutboxJob, WebhookEndpoint

# Everything a tenant's systems can subscribe to.
EVENT_TYPES = (
    "installment.settled",
    "attempt.status_changed",
    "conversation.replied",
    "customer.opted_out",
    "agreement.created",
    "agreement.broken",
    "agreement.voided",
    "agreement.cancelled",
    "agreement.completed",
    "promise.kept",
    "promise.broken",
)

DELIVER_JOB = "events.deliver"
DELIVER_QUEUE = "webhooks_out"

_EMIT = text(
    """
    WITH event AS (
        INSERT INTO tenant_events (id, tenant_id, type, occurred_at, data)
        VALUES (:id, :tenant, :type, :at,
                CAST(:data AS jsonb) || COALESCE(
                    (SELECT jsonb_build_object('customer_id', c.id::text,
                                               'customer_external_id', c.external_id)
                     FROM customers c WHERE c.id = CAST(:customer AS uuid)),
                    '{}'::jsonb))
        RETURNING id, seq, tenant_id, type, occurred_at
    ), fanned AS (
        INSERT INTO webhook_deliveries (id, tenant_id, event_id, endpoint_id, occurred_at,
                                        event_seq)
        SELECT gen_random_uuid(), event.tenant_id, event.id, e.id, event.occurred_at, event.seq
        FROM event JOIN webhook_endpoints e ON e.tenant_id = event.tenant_id
        WHERE e.status = 'active'
          AND (cardinality(e.event_types) = 0 OR event.type = ANY (e.event_types))
        RETURNING endpoint_id, tenant_id
    )
    INSERT INTO outbox (actor, queue, args, tenant_id, correlation_id)
    SELECT :actor, :queue, jsonb_build_object('endpoint', endpoint_id::text), tenant_id,
           :correlation
    FROM fanned
    """
)


async def queue_job(
    session: AsyncSession,
    actor: str,
    queue: str,
    tenant_id: uuid.UUID,
    args: dict[str, Any],
    *,
    at: datetime | None = None,
    dedupe_key: str | None = None,
) -> None:
    """Write an outbox row for one of this domain's jobs (by name: the emitting modules need
    not have imported the jobs)."""
    context = structlog.contextvars.get_contextvars()
    values: dict[str, Any] = {
        "actor": actor,
        "queue": queue,
        "args": args,
        "tenant_id": tenant_id,
        "dedupe_key": dedupe_key,
        "correlation_id": context.get("request_id") or context.get("correlation_id"),
    }
    if at is not None:
        values["not_before"] = at
    stmt = insert(OutboxJob).values(**values)
    if dedupe_key is not None:
        stmt = stmt.on_conflict_do_nothing(
            index_elements=[OutboxJob.dedupe_key], index_where=text("dedupe_key IS NOT NULL")
        )
    await session.execute(stmt)


async def wake(
    session: AsyncSession,
    endpoint: WebhookEndpoint,
    *,
    at: datetime | None = None,
    dedupe_key: str | None = None,
) -> None:
    """Queue a delivery run for ``endpoint`` (after the caller's commit; at ``at``)."""
    await queue_job(
        session,
        DELIVER_JOB,
        DELIVER_QUEUE,
        endpoint.tenant_id,
        {"endpoint": str(endpoint.id)},
        at=at,
        dedupe_key=dedupe_key,
    )


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal | uuid.UUID):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    raise TypeError(f"{type(value).__name__} is not an event value")


async def emit(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    type: str,
    data: dict[str, Any],
    occurred_at: datetime | None = None,
    *,
    customer_id: uuid.UUID | None = None,
) -> uuid.UUID:
    """Record event ``type`` of ``tenant_id`` (at ``occurred_at``, default now) and queue it for
    the tenant's endpoints; returns its id, the ``webhook-id`` receivers see.  ``customer_id``
    adds the customer's id and external id to ``data`` (looked up in the same statement).
    ``data`` carries ids, external ids and amounts — never names, numbers or message text."""
    if type not in EVENT_TYPES:
        raise ValueError(f"unknown event type {type!r}")
    event_id = uuid.uuid4()
    context = structlog.contextvars.get_contextvars()
    await session.flush()  # the customer looked up may have been created in this transaction
    await session.execute(
        _EMIT,
        {
            "id": event_id,
            "tenant": tenant_id,
            "type": type,
            "at": occurred_at or clock.now(),
            "data": json.dumps(data, default=_json_default),
            "customer": str(customer_id) if customer_id else None,
            "actor": DELIVER_JOB,
            "queue": DELIVER_QUEUE,
            "correlation": context.get("request_id") or context.get("correlation_id"),
        },
    )
    return event_id
