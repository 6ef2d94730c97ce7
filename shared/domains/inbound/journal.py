"""The webhook journal: every verified provider POST kept raw, split into events that are
processed once each however often the provider delivers them.

The receiver (``services/webhooks``) calls :func:`journal` inside its request transaction:
one ``webhook_receipts`` row with the exact bytes, one ``webhook_events`` row per event with
the provider's natural key (a redelivered event inserts nothing), and one outbox job per new
event on the ``inbound`` queue.  Nothing is acted on here; handlers registered with
:func:`handles` do that in the job (``inbound.process``), in the event's tenant scope.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy import (
    DateTime,
    Integer,
    LargeBinary,
    String,
    bindparam,
    func,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import UUID as PG_UUID
from sqlalchemy.ext.asyncio import AsyncSession

from shared.models import WebhookEvent, WebhookEventState
from shared.queue import JobContext, enqueue, job

log = structlog.get_logger("quita.inbound")


@dataclass(frozen=True, slots=True)
class EventIn:
    """One event split from a provider POST, routed to its tenant and channel."""

    key: str
    kind: str
    payload: dict[str, Any]
    occurred_at: datetime | None = None
    tenant_id: uuid.UUID | None = None
    channel_id: uuid.UUID | None = None


@dataclass(frozen=True, slots=True)
class Journaled:
    receipt_id: uuid.UUID
    new: int
    duplicates: int


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a handler did: ``processed`` (with a short note) or ``ignored`` (with the reason)."""

    state: WebhookEventState
    note: str | None = None

    @classmethod
    def done(cls, note: str | None = None) -> Outcome:
        return cls(WebhookEventState.PROCESSED, note)

    @classmethod
    def ignored(cls, reason: str) -> Outcome:
        return cls(WebhookEventState.IGNORED, reason)


Handler = Callable[[AsyncSession, WebhookEvent], Awaitable[Outcome]]
_handlers: dict[str, Handler] = {}


def _handler_of(kind: str) -> Handler | None:
    if kind not in _handlers:
        # handlers live in the domains' task modules, which ``shared.tasks`` imports; a process
        # that has not loaded them yet gets them now rather than a false "no handler"
        import shared.tasks  # noqa: F401
    return _handlers.get(kind)


def handles(kind: str) -> Callable[[Handler], Handler]:
    """Register the handler of one event kind (``whatsapp.status`` …); one per kind."""

    def register(fn: Handler) -> Handler:
        existing = _handlers.get(kind)
        if existing is not None and existing is not fn:
            raise ValueError(f"{kind!r} already has a handler ({existing.__qualname__})")
        _handlers[kind] = fn
        return fn

    return register


_JOURNAL = text(
    """WITH fresh AS (
           INSERT INTO webhook_events (receipt_id, provider, event_key, kind, tenant_id,
                                       channel_id, payload, occurred_at)
           SELECT v.receipt, v.provider, v.key, v.kind, v.tenant_id, v.channel_id,
                  CAST(v.payload AS jsonb), v.occurred_at
           FROM unnest(:e_receipts, :e_providers, :keys, :kinds, :tenants, :channels, :payloads,
                       :occurred)
                AS v (receipt, provider, key, kind, tenant_id, channel_id, payload, occurred_at)
           ON CONFLICT (provider, event_key) DO NOTHING
           RETURNING id, tenant_id, receipt_id
       ), posts AS (
           SELECT * FROM unnest(:receipts, :providers, :r_channels, :r_tenants, :content_types,
                                :bodies, :totals, :correlations)
                AS r (id, provider, channel_id, tenant_id, content_type, body, total,
                      correlation)
       ), counted AS (
           SELECT receipt_id, count(*) AS new FROM fresh GROUP BY receipt_id
       ), jobs AS (
           INSERT INTO outbox (actor, queue, args, tenant_id, correlation_id)
           SELECT :actor, :queue, jsonb_build_object('event_id', f.id), f.tenant_id,
                  p.correlation
           FROM fresh f JOIN posts p ON p.id = f.receipt_id
       ), receipts AS (
           INSERT INTO webhook_receipts (id, provider, channel_id, tenant_id, content_type, body,
                                         events, duplicates)
           SELECT p.id, p.provider, p.channel_id, p.tenant_id, p.content_type, p.body,
                  coalesce(c.new, 0), p.total - coalesce(c.new, 0)
           FROM posts p LEFT JOIN counted c ON c.receipt_id = p.id
       )
       SELECT p.id, coalesce(c.new, 0) AS new
       FROM posts p LEFT JOIN counted c ON c.receipt_id = p.id"""
).bindparams(
    bindparam("e_receipts", type_=ARRAY(PG_UUID())),
    bindparam("e_providers", type_=ARRAY(String())),
    bindparam("keys", type_=ARRAY(String())),
    bindparam("kinds", type_=ARRAY(String())),
    bindparam("tenants", type_=ARRAY(PG_UUID())),
    bindparam("channels", type_=ARRAY(PG_UUID())),
    bindparam("payloads", type_=ARRAY(String())),
    bindparam("occurred", type_=ARRAY(DateTime(timezone=True))),
    bindparam("receipts", type_=ARRAY(PG_UUID())),
    bindparam("providers", type_=ARRAY(String())),
    bindparam("r_channels", type_=ARRAY(PG_UUID())),
    bindparam("r_tenants", type_=ARRAY(PG_UUID())),
    bindparam("content_types", type_=ARRAY(String())),
    bindparam("bodies", type_=ARRAY(LargeBinary())),
    bindparam("totals", type_=ARRAY(Integer())),
    bindparam("correlations", type_=ARRAY(String())),
)


@dataclass(frozen=True, slots=True)
class Post:
    """One verified provider POST to journal: its exact bytes and the events split from it."""

    provider: str
    body: bytes
    content_type: str | None
    events: Sequence[EventIn]
    channel_id: uuid.UUID | None = None
    tenant_id: uuid.UUID | None = None
    correlation_id: str | None = None


def post(
    *,
    provider: str,
    body: bytes,
    content_type: str | None,
    events: Sequence[EventIn],
    channel_id: uuid.UUID | None = None,
    tenant_id: uuid.UUID | None = None,
) -> Post:
    """A :class:`Post` carrying the request's correlation id (its jobs' correlation)."""
    context = structlog.contextvars.get_contextvars()
    return Post(
        provider,
        body,
        content_type,
        events,
        channel_id,
        tenant_id,
        context.get("request_id") or context.get("correlation_id"),
    )


async def journal(session: AsyncSession, one: Post) -> Journaled:
    """Store one verified POST (:func:`post`) and its events; enqueue the new ones.  The caller
    commits."""
    (done,) = await journal_many(session, [one])
    return done


async def journal_many(session: AsyncSession, posts: Sequence[Post]) -> list[Journaled]:
    """Store verified POSTs and their events in one statement (a receiver answers in
    milliseconds, and several POSTs share a round trip): the events go in by array, those the
    journal did not have yet get their ``inbound.process`` job, and each receipt records how
    many of its events were new (foreign keys are checked when the statement ends, so the
    receipts may be written last).  An event two POSTs of one call both carry is the first
    one's.  The caller commits."""
    receipts = [uuid.uuid4() for _ in posts]
    events = [(r, p, e) for r, p in zip(receipts, posts, strict=True) for e in _distinct(p.events)]
    rows = await session.execute(
        _JOURNAL,
        {
            "e_receipts": [r for r, _, _ in events],
            "e_providers": [p.provider for _, p, _ in events],
            "keys": [e.key for _, _, e in events],
            "kinds": [e.kind for _, _, e in events],
            "tenants": [e.tenant_id for _, _, e in events],
            "channels": [e.channel_id for _, _, e in events],
            "payloads": [json.dumps(e.payload) for _, _, e in events],
            "occurred": [e.occurred_at for _, _, e in events],
            "receipts": receipts,
            "providers": [p.provider for p in posts],
            "r_channels": [p.channel_id for p in posts],
            "r_tenants": [p.tenant_id for p in posts],
            "content_types": [p.content_type for p in posts],
            "bodies": [p.body for p in posts],
            "totals": [len(p.events) for p in posts],
            "correlations": [p.correlation_id for p in posts],
            "actor": process.name,
            "queue": process.queue,
        },
    )
    new = {receipt: int(count) for receipt, count in rows}
    return [
        Journaled(r, new.get(r, 0), len(p.events) - new.get(r, 0))
        for r, p in zip(receipts, posts, strict=True)
    ]


def _distinct(events: Sequence[EventIn]) -> list[EventIn]:
    """One row per key: a POST may carry the same event twice (Meta batches retries)."""
    seen: dict[str, EventIn] = {}
    for event in events:
        seen.setdefault(event.key, event)
    return list(seen.values())


@job("inbound.process", queue="inbound", max_attempts=12, min_backoff_s=5.0)
async def process(ctx: JobContext, *, event_id: int) -> None:
    await process_event(ctx.session, event_id, attempt=ctx.attempt)


async def process_event(session: AsyncSession, event_id: int, *, attempt: int = 1) -> None:
    """Run the handler of one journaled event, once: a processed event is left alone."""
    event = await session.scalar(
        select(WebhookEvent).where(WebhookEvent.id == event_id).with_for_update()
    )
    if event is None or event.state in (WebhookEventState.PROCESSED, WebhookEventState.IGNORED):
        return
    handler = _handler_of(event.kind)
    event.attempts = attempt
    if handler is None:
        outcome = Outcome.ignored(f"no handler for {event.kind}")
    else:
        outcome = await handler(session, event)
    event.state = outcome.state
    event.result = (outcome.note or "")[:300] or None
    event.processed_at = func.now()
    await session.flush()
    log.info("inbound.processed", event_id=event.id, kind=event.kind, state=str(outcome.state))


async def replay(session: AsyncSession, *, since: datetime, include_processed: bool = False) -> int:
    """Queue journaled events received since ``since`` for processing again (idempotently:
    handlers treat what is already applied as done).  Returns how many were queued."""
    query = select(WebhookEvent.id, WebhookEvent.tenant_id).where(WebhookEvent.received_at >= since)
    if not include_processed:
        query = query.where(WebhookEvent.state == WebhookEventState.PENDING)
    rows = list(await session.execute(query.order_by(WebhookEvent.id)))
    if include_processed and rows:
        await session.execute(
            update(WebhookEvent)
            .where(WebhookEvent.id.in_([row.id for row in rows]))
            .values(state=WebhookEventState.PENDING)
        )
    for row in rows:
        await enqueue(session, process, tenant_id=row.tenant_id, event_id=row.id)
    return len(rows)
