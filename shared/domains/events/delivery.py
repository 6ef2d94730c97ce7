"""Sending one endpoint's queue: in event order, one request at a time, signed per Standard
Webhooks; a failure stops the queue and retries with backoff; a long failure disables.

One runner per endpoint at a time: each step holds a transaction-level advisory lock on the
endpoint while it sends the head of the queue and records the answer, then commits (letting go).
A run that finds the lock taken ends at once — the holder looks for due work again after it lets
go, so nothing waits for the safety net.  A run stops after ``RUN_BUDGET_S`` and queues its own
continuation, well inside the job's time limit.

At-least-once: a crash between the receiver's 2xx and our commit sends that event again, with
the same ``webhook-id`` (receivers deduplicate by it).
"""

from __future__ import annotations

import json
import random
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import structlog
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from shared import clock
from shared.domains.audit.service import record
from shared.domains.events import signing
from shared.domains.events.endpoints import signing_secrets
from shared.domains.events.service import queue_job, wake
from shared.models import (
    DeliveryState,
    EndpointStatus,
    TenantEvent,
    WebhookDelivery,
    WebhookEndpoint,
)
from shared.models.outbound import QUEUED

log = structlog.get_logger("quita.events")

# The wait after the n-th failed attempt of a delivery; once they are all spent (about three
# days of failing), the delivery is given up on.
SCHEDULE = tuple(
    timedelta(seconds=s)
    for s in (30, 60, 300, 1800, 7200, 18000, 36000, 36000, 36000, 36000, 36000, 36000)
)
FAILING_FOR = timedelta(days=3)  # an endpoint failing this long is disabled
TIMEOUT_S = 10.0
RUN_BUDGET_S = 30.0
USER_AGENT = "Quita-Webhooks/1"
NOTIFY_JOB = "events.notify_disabled"


def backoff(attempts: int) -> timedelta:
    """The wait after ``attempts`` failed attempts, jittered (so endpoints recovering together
    are not hit together)."""
    base = SCHEDULE[min(attempts, len(SCHEDULE)) - 1]
    return base * random.uniform(1.0, 1.2)  # noqa: S311


@dataclass(frozen=True, slots=True)
class Answer:
    """What one request got: the HTTP status, or why there was none (short, no body)."""

    status: int | None
    error: str | None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def body_of(event: TenantEvent) -> bytes:
    """The request body: ``{"type", "timestamp", "data"}`` (Standard Webhooks' shape)."""
    stamp = event.occurred_at.astimezone(UTC).isoformat().replace("+00:00", "Z")
    payload = {"type": event.type, "timestamp": stamp, "data": event.data}
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


async def post(client: httpx.AsyncClient, endpoint: WebhookEndpoint, event: TenantEvent) -> Answer:
    """Send ``event`` to ``endpoint`` once; never raises for what the network or the receiver
    did.  The response body is not read."""
    body = body_of(event)
    # The signature's timestamp is the moment of sending (receivers refuse stale ones), taken
    # from the wall clock even where a test fixes "now".
    sent_at = datetime.now(UTC)
    headers = signing.headers(str(event.id), sent_at, body, signing_secrets(endpoint, sent_at))
    headers |= {"content-type": "application/json", "user-agent": USER_AGENT}
    try:
        async with client.stream("POST", endpoint.url, content=body, headers=headers) as response:
            status = response.status_code
    except httpx.TimeoutException:
        return Answer(None, f"timeout after {TIMEOUT_S:g} s")
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        return Answer(None, f"{type(exc).__name__}"[:300])
    return Answer(status, None if 200 <= status < 300 else f"HTTP {status}")


def new_client() -> httpx.AsyncClient:
    """Short timeouts, no redirects followed (a 3xx is a failure the tenant must fix)."""
    return httpx.AsyncClient(timeout=TIMEOUT_S, follow_redirects=False)


async def _lock(session: AsyncSession, endpoint_id: uuid.UUID) -> bool:
    got = await session.scalar(
        text("SELECT pg_try_advisory_xact_lock(hashtextextended(:key, 0))"),
        {"key": f"webhooks-out:{endpoint_id}"},
    )
    return bool(got)


async def _head(
    session: AsyncSession, endpoint_id: uuid.UUID
) -> tuple[WebhookDelivery, TenantEvent] | None:
    """The endpoint's next delivery in event order, with its event."""
    row = (
        await session.execute(
            select(WebhookDelivery, TenantEvent)
            .join(TenantEvent, TenantEvent.id == WebhookDelivery.event_id)
            .where(WebhookDelivery.endpoint_id == endpoint_id, WebhookDelivery.state.in_(QUEUED))
            .order_by(
                WebhookDelivery.occurred_at,
                WebhookDelivery.event_seq,
                WebhookDelivery.created_at,
                WebhookDelivery.id,
            )
            .limit(1)
            .execution_options(populate_existing=True)
        )
    ).one_or_none()
    return (row[0], row[1]) if row is not None else None


async def _due(session: AsyncSession, endpoint_id: uuid.UUID) -> bool:
    head = await _head(session, endpoint_id)
    return head is not None and head[0].next_attempt_at <= clock.now()


async def run_endpoint(
    session: AsyncSession,
    endpoint_id: uuid.UUID,
    *,
    client: httpx.AsyncClient | None = None,
    budget_s: float = RUN_BUDGET_S,
) -> int:
    """Send ``endpoint_id``'s due deliveries in order until one fails, none is due, or the
    budget is spent; returns how many were delivered.  Commits after each one."""
    started = time.monotonic()
    delivered = 0
    own = client is None
    http = client or new_client()
    try:
        while True:
            if not await _lock(session, endpoint_id):
                return delivered  # another run holds it, and looks again when it lets go
            endpoint = await session.get(WebhookEndpoint, endpoint_id, populate_existing=True)
            if endpoint is None or endpoint.status != EndpointStatus.ACTIVE:
                return delivered
            head = await _head(session, endpoint_id)
            if head is None or head[0].next_attempt_at > clock.now():
                await session.commit()  # lets go of the lock; then look once more
                if await _due(session, endpoint_id):
                    continue
                return delivered
            if time.monotonic() - started > budget_s:
                await wake(session, endpoint)
                return delivered
            delivery, event = head
            answer = await post(http, endpoint, event)
            await _record(session, endpoint, delivery, answer, clock.now())
            await session.commit()
            if not answer.ok:
                return delivered
            delivered += 1
    finally:
        if own:
            await http.aclose()


async def _record(
    session: AsyncSession,
    endpoint: WebhookEndpoint,
    delivery: WebhookDelivery,
    answer: Answer,
    now: datetime,
) -> None:
    delivery.attempts += 1
    delivery.last_attempt_at = now
    delivery.last_status = answer.status
    delivery.last_error = answer.error
    if answer.ok:
        delivery.state = DeliveryState.DELIVERED
        delivery.delivered_at = now
        endpoint.failure_streak = 0
        endpoint.failing_since = None
        endpoint.last_success_at = now
        await session.flush()
        log.debug("events.delivered", delivery_id=str(delivery.id), status=answer.status)
        return
    endpoint.failure_streak += 1
    endpoint.failing_since = endpoint.failing_since or now
    log.info(
        "events.delivery_failed",
        delivery_id=str(delivery.id),
        endpoint_id=str(endpoint.id),
        attempts=delivery.attempts,
        error=answer.error,
    )
    if answer.status == 410:
        delivery.state = DeliveryState.FAILED
        delivery.next_attempt_at = now  # first in line again if the endpoint is enabled
        await disable(session, endpoint, "gone", now)
    elif delivery.attempts > len(SCHEDULE):
        delivery.state = DeliveryState.DEAD
        await disable(session, endpoint, "failing", now)
    else:
        delivery.state = DeliveryState.FAILED
        delivery.next_attempt_at = now + backoff(delivery.attempts)
        if endpoint.failing_since <= now - FAILING_FOR:
            await disable(session, endpoint, "failing", now)
        else:
            await wake(
                session,
                endpoint,
                at=delivery.next_attempt_at,
                dedupe_key=f"events.deliver:{delivery.id}:{delivery.attempts}",
            )
    await session.flush()


REASONS = {
    "gone": "the endpoint answered 410 Gone",
    "failing": "deliveries kept failing",
}


async def disable(
    session: AsyncSession, endpoint: WebhookEndpoint, reason: str, now: datetime
) -> None:
    """Quita turns ``endpoint`` off (``reason``: ``gone`` or ``failing``), audits it and
    queues the e-mail to the tenant's owners and admins."""
    if endpoint.status != EndpointStatus.ACTIVE:
        return
    endpoint.status = EndpointStatus.DISABLED
    endpoint.disabled_reason = REASONS[reason]
    endpoint.disabled_at = now
    await session.flush()
    await record(
        session,
        "webhook_endpoint.disabled",
        tenant_id=endpoint.tenant_id,
        actor_type="system",
        actor_id="webhooks_out",
        subject_type="webhook_endpoint",
        subject_id=str(endpoint.id),
        data={
            "reason": reason,
            "failure_streak": endpoint.failure_streak,
            "failing_since": endpoint.failing_since.isoformat() if endpoint.failing_since else None,
        },
    )
    await queue_job(
        session,
        NOTIFY_JOB,
        "default",
        endpoint.tenant_id,
        {"endpoint": str(endpoint.id), "reason": reason},
    )
    log.warning("events.endpoint_disabled", endpoint_id=str(endpoint.id), reason=reason)
