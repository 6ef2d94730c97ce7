"""WhatsApp Cloud API webhooks: the verification handshake and signed event POSTs.

Configure Meta's callback URL as ``{webhooks}/whatsapp`` (events are routed by the phone number
id or WABA id they carry) or ``{webhooks}/whatsapp/{channel_id}`` (one channel's override).
A POST is answered once it is journaled: 200 with how many events were new.  Nothing is acted
on here; the ``inbound`` queue does that.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import msgspec
import structlog
from litestar import MediaType, Request, Response, Router, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath
from sqlalchemy.ext.asyncio import AsyncSession

from services.webhooks.writer import keep
from shared.domains.inbound import journal
from shared.domains.inbound import whatsapp as meta
from shared.errors import BadRequest, Forbidden, Unauthorized

log = structlog.get_logger("quita.webhooks.whatsapp")


class Received(msgspec.Struct):
    """What was journaled: ``new`` events queued for processing, ``duplicates`` already known."""

    received: int
    new: int
    duplicates: int


def _routes(request: Request[Any, Any, Any]) -> meta.RouteCache:
    """This app's cache of the channels recent POSTs named (``meta.RouteCache``)."""
    state = request.app.state
    cache: meta.RouteCache | None = state.get("whatsapp_routes")
    if cache is None:
        cache = state["whatsapp_routes"] = meta.RouteCache()
    return cache


async def _handshake(
    request: Request[Any, Any, Any], db: AsyncSession, channel_id: uuid.UUID | None
) -> Response[str]:
    query = request.query_params
    # Some stacks rewrite "hub.mode" to "hub_mode"; accept both spellings (contract §5.2).
    mode = query.get("hub.mode") or query.get("hub_mode")
    token = query.get("hub.verify_token") or query.get("hub_verify_token") or ""
    challenge = query.get("hub.challenge") or query.get("hub_challenge") or ""
    if mode != "subscribe" or not await meta.verify_token_matches(db, token, channel_id):
        raise Forbidden("The verify token does not match.")
    return Response(challenge, media_type=MediaType.TEXT)


async def _receive(
    request: Request[Any, Any, Any], db: AsyncSession, channel_id: uuid.UUID | None
) -> Received:
    body = await request.body()
    header = request.headers.get(meta.SIGNATURE_HEADER)
    if not header:
        raise Unauthorized("X-Hub-Signature-256 is missing.")
    try:
        payload = json.loads(body)
    except ValueError:
        raise BadRequest("The body is not JSON.") from None
    raw = meta.split(payload)
    route = await meta.route(db, raw, body, header, channel_id=channel_id, cache=_routes(request))
    if not route.verified:
        log.warning("webhooks.whatsapp.unverified", channels=len(route.channels))
        raise Unauthorized("The signature does not match any connected number.")
    events, refused = meta.events_for(route, raw)
    if refused:
        log.warning("webhooks.whatsapp.unsigned_events", refused=refused)
    first = route.verified[0]
    done = await keep(
        request,
        db,
        journal.post(
            provider="whatsapp",
            body=body,
            content_type=request.headers.get("content-type"),
            events=events,
            channel_id=first.id if len(route.verified) == 1 else None,
            tenant_id=first.tenant_id if len({c.tenant_id for c in route.verified}) == 1 else None,
        ),
    )
    log.info("webhooks.whatsapp.journaled", new=done.new, duplicates=done.duplicates)
    return Received(received=len(events), new=done.new, duplicates=done.duplicates)


@get("/", summary="Webhook verification handshake (hub.challenge)", media_type=MediaType.TEXT)
async def handshake(
    request: Request[Any, Any, Any], db: NamedDependency[AsyncSession]
) -> Response[str]:
    return await _handshake(request, db, None)


@get("/{channel_id:uuid}", summary="Verification handshake for one channel's callback URL")
async def channel_handshake(
    request: Request[Any, Any, Any],
    db: NamedDependency[AsyncSession],
    channel_id: FromPath[uuid.UUID],
) -> Response[str]:
    return await _handshake(request, db, channel_id)


@post(
    "/", summary="Signed WhatsApp events (statuses, messages, template reviews …)", status_code=200
)
async def receive(request: Request[Any, Any, Any], db: NamedDependency[AsyncSession]) -> Received:
    return await _receive(request, db, None)


@post("/{channel_id:uuid}", summary="Signed WhatsApp events for one channel", status_code=200)
async def channel_receive(
    request: Request[Any, Any, Any],
    db: NamedDependency[AsyncSession],
    channel_id: FromPath[uuid.UUID],
) -> Received:
    return await _receive(request, db, channel_id)


whatsapp_router = Router(
    path="/whatsapp",
    route_handlers=[handshake, channel_handshake, receive, channel_receive],
    tags=["whatsapp"],
)
