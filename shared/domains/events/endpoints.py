"""A tenant's webhook endpoints: create (the secret shown once), change, enable and disable,
rotate the secret with overlap, delete; the delivery log and manual replay.

Secrets are encrypted at rest (``shared.crypto``), bound to the endpoint's id.  Every change is
audited, never with a secret in it.  Another tenant's endpoint answers 404.
"""

from __future__ import annotations

import ipaddress
import uuid
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from sqlalchemy import func, select, text, tuple_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from shared import clock, crypto
from shared.config import Environment, get_settings
from shared.domains.audit.service import Actor, record_by
from shared.domains.events import schemas, signing
from shared.domains.events.service import EVENT_TYPES, wake
from shared.errors import Conflict, FieldError, NotFound, ValidationFailed
from shared.models import (
    DeliveryState,
    EndpointStatus,
    TenantEvent,
    WebhookDelivery,
    WebhookEndpoint,
)
from shared.models.outbound import QUEUED
from shared.pagination import decode_cursor, encode_cursor, invalid_cursor

MAX_ENDPOINTS = 20
MAX_REPLAY = 10_000  # events one ``replay?since=`` queues at most (ask again for more)
DISABLED_BY_TENANT = "disabled by the tenant"


class TooManyEndpoints(Conflict):
    code = "too_many_endpoints"


# --- secrets -------------------------------------------------------------------------------------


def _context(endpoint_id: uuid.UUID, which: str) -> str:
    return f"webhook_endpoint:{endpoint_id}:{which}"


def _seal(endpoint_id: uuid.UUID, secret: str, which: str = "current") -> str:
    return crypto.encrypt(secret, context=_context(endpoint_id, which))


def signing_secrets(endpoint: WebhookEndpoint, now: datetime) -> list[str]:
    """The secrets that sign a request sent ``now``: the current one, and the previous one
    while its overlap lasts."""
    found = [crypto.decrypt(endpoint.secret, context=_context(endpoint.id, "current")).decode()]
    until = endpoint.previous_secret_expires_at
    if endpoint.previous_secret and until is not None and until > now:
        previous = crypto.decrypt(
            endpoint.previous_secret, context=_context(endpoint.id, "previous")
        )
        found.append(previous.decode())
    return found


# --- validation ----------------------------------------------------------------------------------


def _url_problem(url: str) -> str | None:
    """Why ``url`` cannot receive webhooks, or ``None``.  Outside dev and test: https only, and
    never a loopback, private or link-local address (the request leaves from our network)."""
    production = get_settings().env is Environment.PROD
    if url != url.strip() or any(c.isspace() for c in url):
        return "must not contain spaces"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises on a bad port)
    except ValueError:
        return "is not a valid URL"
    allowed = ("https",) if production else ("https", "http")
    if parts.scheme not in allowed:
        return "must be an https:// URL"
    if not parts.hostname:
        return "must name a host"
    if parts.username or parts.password:
        return "must not carry a user or password (use the signature to authenticate us)"
    if parts.fragment:
        return "must not have a #fragment"
    if production and _internal_host(parts.hostname):
        return "must be reachable on the public internet"
    return None


def _internal_host(host: str) -> bool:
    if host == "localhost" or host.endswith((".localhost", ".local", ".internal")):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return not address.is_global


def _types(given: list[str], errors: list[FieldError]) -> list[str]:
    chosen: list[str] = []
    for i, name in enumerate(given):
        if name not in EVENT_TYPES:
            errors.append(
                FieldError(
                    f"event_types[{i}]",
                    f"unknown event type {name!r}; known: {', '.join(EVENT_TYPES)}",
                    "unknown_event_type",
                )
            )
        elif name not in chosen:
            chosen.append(name)
    return chosen


def _checked(url: str | None, types: list[str] | None) -> list[str] | None:
    errors: list[FieldError] = []
    if url is not None and (problem := _url_problem(url)) is not None:
        errors.append(FieldError("url", problem))
    chosen = _types(types, errors) if types is not None else None
    if errors:
        raise ValidationFailed("The webhook endpoint is not valid.", errors=errors)
    return chosen


# --- endpoints -----------------------------------------------------------------------------------


async def _audit(
    session: AsyncSession, action: str, endpoint: WebhookEndpoint, actor: Actor, **data: object
) -> None:
    await record_by(
        session,
        actor,
        action,
        tenant_id=endpoint.tenant_id,
        subject=("webhook_endpoint", endpoint.id),
        data=dict(data),
    )


class IdempotencyConflict(Conflict):
    code = "idempotency_conflict"


async def _by_key(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    key: str,
    data: schemas.EndpointIn,
    types: list[str],
) -> tuple[WebhookEndpoint, str] | None:
    """The endpoint an earlier request with the same ``Idempotency-Key`` created, with its
    secret (the retrying client lost the first answer), or ``None``."""
    found = await session.scalar(
        select(WebhookEndpoint).where(
            WebhookEndpoint.tenant_id == tenant_id, WebhookEndpoint.idempotency_key == key
        )
    )
    if found is None:
        return None
    if (found.url, found.description, list(found.event_types)) != (
        data.url,
        data.description,
        types,
    ):
        raise IdempotencyConflict("This Idempotency-Key was used for a different endpoint.")
    secret = crypto.decrypt(found.secret, context=_context(found.id, "current")).decode()
    return found, secret


async def create(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    data: schemas.EndpointIn,
    actor: Actor,
    *,
    idempotency_key: str | None = None,
) -> tuple[WebhookEndpoint, str]:
    """A new endpoint and its signing secret (returned here only — and to a retry with the
    same ``idempotency_key``, which creates nothing)."""
    types = _checked(data.url, data.event_types) or []
    if idempotency_key is not None:
        earlier = await _by_key(session, tenant_id, idempotency_key, data, types)
        if earlier is not None:
            return earlier
    count = await session.scalar(
        select(func.count(WebhookEndpoint.id)).where(WebhookEndpoint.tenant_id == tenant_id)
    )
    if (count or 0) >= MAX_ENDPOINTS:
        raise TooManyEndpoints(f"A tenant has at most {MAX_ENDPOINTS} webhook endpoints.")
    secret = signing.new_secret()
    endpoint = WebhookEndpoint(
        id=uuid.uuid4(),
        tenant_id=tenant_id,
        url=data.url,
        description=data.description,
        event_types=types,
        idempotency_key=idempotency_key,
    )
    endpoint.secret = _seal(endpoint.id, secret)
    session.add(endpoint)
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError:  # the same key, created by a concurrent request: answer that one
        earlier = await _by_key(session, tenant_id, idempotency_key or "", data, types)
        if earlier is None:
            raise
        return earlier
    await _audit(
        session, "webhook_endpoint.created", endpoint, actor, url=data.url, event_types=types
    )
    await session.refresh(endpoint)
    return endpoint, secret


async def get(
    session: AsyncSession, tenant_id: uuid.UUID, endpoint_id: uuid.UUID
) -> WebhookEndpoint:
    endpoint = await session.scalar(
        select(WebhookEndpoint).where(
            WebhookEndpoint.id == endpoint_id, WebhookEndpoint.tenant_id == tenant_id
        )
    )
    if endpoint is None:
        raise NotFound(f"Webhook endpoint {endpoint_id} was not found.")
    return endpoint


async def list_for(session: AsyncSession, tenant_id: uuid.UUID) -> list[WebhookEndpoint]:
    return list(
        await session.scalars(
            select(WebhookEndpoint)
            .where(WebhookEndpoint.tenant_id == tenant_id)
            .order_by(WebhookEndpoint.created_at, WebhookEndpoint.id)
        )
    )


async def update_endpoint(
    session: AsyncSession, endpoint: WebhookEndpoint, data: schemas.EndpointUpdate, actor: Actor
) -> WebhookEndpoint:
    types = _checked(data.url, data.event_types)
    changed: list[str] = []
    if data.url is not None and data.url != endpoint.url:
        endpoint.url = data.url
        changed.append("url")
    if data.description is not None and data.description != endpoint.description:
        endpoint.description = data.description
        changed.append("description")
    if types is not None and types != endpoint.event_types:
        endpoint.event_types = types
        changed.append("event_types")
    if data.enabled is not None:
        now = clock.now()
        if data.enabled and endpoint.status != EndpointStatus.ACTIVE:
            await _enable(session, endpoint, now)
            changed.append("enabled")
        elif not data.enabled and endpoint.status == EndpointStatus.ACTIVE:
            endpoint.status = EndpointStatus.DISABLED
            endpoint.disabled_reason = DISABLED_BY_TENANT
            endpoint.disabled_at = now
            changed.append("disabled")
    if changed:
        await session.flush()
        await _audit(session, "webhook_endpoint.updated", endpoint, actor, fields=changed)
        await session.refresh(endpoint)
    return endpoint


async def _enable(session: AsyncSession, endpoint: WebhookEndpoint, now: datetime) -> None:
    """Back on: the streak is forgotten and what waited is due now, in order."""
    endpoint.status = EndpointStatus.ACTIVE
    endpoint.disabled_reason = None
    endpoint.disabled_at = None
    endpoint.failure_streak = 0
    endpoint.failing_since = None
    await session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.endpoint_id == endpoint.id, WebhookDelivery.state.in_(QUEUED))
        .values(next_attempt_at=now)
    )
    await wake(session, endpoint)


async def rotate_secret(
    session: AsyncSession, endpoint: WebhookEndpoint, overlap: timedelta, actor: Actor
) -> tuple[WebhookEndpoint, str]:
    """A new secret; the current one keeps signing beside it for ``overlap``."""
    now = clock.now()
    current = crypto.decrypt(endpoint.secret, context=_context(endpoint.id, "current")).decode()
    secret = signing.new_secret()
    endpoint.secret = _seal(endpoint.id, secret)
    if overlap > timedelta(0):
        endpoint.previous_secret = _seal(endpoint.id, current, "previous")
        endpoint.previous_secret_expires_at = now + overlap
    else:
        endpoint.previous_secret = None
        endpoint.previous_secret_expires_at = None
    await session.flush()
    await _audit(
        session,
        "webhook_endpoint.secret_rotated",
        endpoint,
        actor,
        overlap_hours=overlap.total_seconds() / 3600,
    )
    await session.refresh(endpoint)
    return endpoint, secret


async def delete(session: AsyncSession, endpoint: WebhookEndpoint, actor: Actor) -> None:
    """The endpoint and its delivery log go; the events stay (other endpoints may need them)."""
    await _audit(session, "webhook_endpoint.deleted", endpoint, actor, url=endpoint.url)
    await session.delete(endpoint)
    await session.flush()


def endpoint_out(endpoint: WebhookEndpoint) -> schemas.EndpointOut:
    until = endpoint.previous_secret_expires_at
    return schemas.EndpointOut(
        id=endpoint.id,
        url=endpoint.url,
        description=endpoint.description,
        event_types=list(endpoint.event_types),
        status=endpoint.status,
        disabled_reason=endpoint.disabled_reason,
        disabled_at=endpoint.disabled_at,
        failure_streak=endpoint.failure_streak,
        failing_since=endpoint.failing_since,
        last_success_at=endpoint.last_success_at,
        previous_secret_valid_until=until if endpoint.previous_secret else None,
        created_at=endpoint.created_at,
        updated_at=endpoint.updated_at,
    )


def with_secret(endpoint: WebhookEndpoint, secret: str) -> schemas.EndpointWithSecret:
    out = endpoint_out(endpoint)
    fields = {f: getattr(out, f) for f in out.__struct_fields__}
    return schemas.EndpointWithSecret(**fields, secret=secret)


# --- the delivery log ----------------------------------------------------------------------------


def _page_after(cursor: str) -> object:
    instant, seq, ident = decode_cursor(cursor, 3)
    try:
        key = (datetime.fromisoformat(instant), int(seq), uuid.UUID(ident))
    except ValueError:
        raise invalid_cursor() from None
    return tuple_(WebhookDelivery.occurred_at, WebhookDelivery.event_seq, WebhookDelivery.id) < key


async def deliveries(
    session: AsyncSession,
    endpoint: WebhookEndpoint,
    *,
    states: list[str],
    cursor: str | None,
    limit: int,
) -> schemas.DeliveryPage:
    """The endpoint's deliveries, newest event first; ``states`` filters (any of them)."""
    unknown = [s for s in states if s not in {d.value for d in DeliveryState}]
    if unknown:
        raise ValidationFailed(
            "Unknown delivery state.",
            errors=[FieldError("state", f"one of {', '.join(d.value for d in DeliveryState)}")],
        )
    stmt = (
        select(WebhookDelivery, TenantEvent.type)
        .join(TenantEvent, TenantEvent.id == WebhookDelivery.event_id)
        .where(WebhookDelivery.endpoint_id == endpoint.id)
    )
    if states:
        stmt = stmt.where(WebhookDelivery.state.in_(states))
    if cursor:
        stmt = stmt.where(_page_after(cursor))  # type: ignore[arg-type]
    rows = (
        await session.execute(
            stmt.order_by(
                WebhookDelivery.occurred_at.desc(),
                WebhookDelivery.event_seq.desc(),
                WebhookDelivery.id.desc(),
            ).limit(limit + 1)
        )
    ).all()
    more = len(rows) > limit
    rows = rows[:limit]
    last = rows[-1][0] if rows else None
    return schemas.DeliveryPage(
        items=[delivery_out(d, kind) for d, kind in rows],
        next_cursor=encode_cursor(last.occurred_at.isoformat(), last.event_seq, last.id)
        if more and last is not None
        else None,
    )


def delivery_out(d: WebhookDelivery, event_type: str) -> schemas.DeliveryOut:
    queued = d.state in QUEUED
    return schemas.DeliveryOut(
        id=d.id,
        event_id=d.event_id,
        event_type=event_type,
        occurred_at=d.occurred_at,
        state=d.state,
        attempts=d.attempts,
        next_attempt_at=d.next_attempt_at if queued else None,
        last_attempt_at=d.last_attempt_at,
        last_status=d.last_status,
        last_error=d.last_error,
        delivered_at=d.delivered_at,
        replay=d.replay,
        created_at=d.created_at,
    )


# --- replay --------------------------------------------------------------------------------------

_REPLAY = text(
    """
    INSERT INTO webhook_deliveries (id, tenant_id, event_id, endpoint_id, occurred_at, event_seq,
                                    replay)
    SELECT gen_random_uuid(), ev.tenant_id, ev.id, :endpoint, ev.occurred_at, ev.seq, true
    FROM tenant_events ev
    WHERE ev.tenant_id = :tenant AND ev.occurred_at >= :since
      AND (CAST(:event AS uuid) IS NULL OR ev.id = CAST(:event AS uuid))
      AND (cardinality(CAST(:types AS varchar[])) = 0 OR ev.type = ANY (CAST(:types AS varchar[])))
      AND NOT EXISTS (
          SELECT 1 FROM webhook_deliveries d
          WHERE d.endpoint_id = :endpoint AND d.event_id = ev.id
            AND (d.state IN ('pending', 'failed') OR (d.state = 'delivered' AND NOT :everything)))
    ORDER BY ev.occurred_at, ev.seq
    LIMIT :cap
    """
)


async def _replay(
    session: AsyncSession,
    endpoint: WebhookEndpoint,
    *,
    since: datetime,
    event_id: uuid.UUID | None,
    everything: bool,
    types: list[str],
) -> int:
    result = await session.execute(
        _REPLAY,
        {
            "endpoint": endpoint.id,
            "tenant": endpoint.tenant_id,
            "since": since,
            "event": str(event_id) if event_id else None,
            "types": types,
            "everything": everything,
            "cap": MAX_REPLAY,
        },
    )
    queued: int = result.rowcount  # type: ignore[attr-defined]
    if queued:
        await wake(session, endpoint)
    return queued


async def replay_delivery(
    session: AsyncSession, endpoint: WebhookEndpoint, delivery_id: uuid.UUID, actor: Actor
) -> schemas.ReplayOut:
    """Send a delivery's event to the endpoint again, with the same ``webhook-id`` (nothing new
    when it is still waiting to be sent)."""
    delivery = await session.scalar(
        select(WebhookDelivery).where(
            WebhookDelivery.id == delivery_id, WebhookDelivery.endpoint_id == endpoint.id
        )
    )
    if delivery is None:
        raise NotFound(f"Delivery {delivery_id} was not found.")
    queued = await _replay(
        session,
        endpoint,
        since=delivery.occurred_at,
        event_id=delivery.event_id,
        everything=True,
        types=[],
    )
    await _audit(
        session,
        "webhook_endpoint.replayed",
        endpoint,
        actor,
        delivery_id=str(delivery_id),
        queued=queued,
    )
    return schemas.ReplayOut(queued=queued)


async def replay_since(
    session: AsyncSession,
    endpoint: WebhookEndpoint,
    since: datetime,
    actor: Actor,
    *,
    everything: bool = False,
) -> schemas.ReplayOut:
    """Queue again every event since ``since`` (of the types the endpoint takes now) that it
    has not received — given up on, or missed while disabled; ``everything``: received ones
    too.  Oldest first, at most ``MAX_REPLAY`` a call."""
    if since.tzinfo is None:
        raise ValidationFailed(
            "The replay is not valid.",
            errors=[FieldError("since", "must carry a time zone offset (e.g. Z or -03:00)")],
        )
    queued = await _replay(
        session,
        endpoint,
        since=since,
        event_id=None,
        everything=everything,
        types=list(endpoint.event_types),
    )
    await _audit(
        session,
        "webhook_endpoint.replayed",
        endpoint,
        actor,
        since=since.isoformat(),
        all=everything,
        queued=queued,
    )
    return schemas.ReplayOut(queued=queued)
