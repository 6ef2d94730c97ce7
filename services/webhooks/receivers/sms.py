"""SMS (Twilio-compatible) webhooks: message status callbacks and inbound messages.

``POST /sms/{channel_id}/status`` is the ``StatusCallback`` every send names
(``shared.domains.inbound.sms.status_callback_url``); ``POST /sms/{channel_id}/inbound`` is set
on the retailer's Twilio number.  Both are form-encoded and signed with ``X-Twilio-Signature``
under the channel's auth token; a POST is answered once it is journaled, nothing is acted on
here (the ``inbound`` queue does that).

Answers: 200 when journaled (a redelivery too: it inserts nothing); 401 for a missing or
forged signature *and* for a channel id that is no SMS channel — the same answer, so the
endpoint tells a caller without the token nothing about which channels exist; 400 for a body
that is not Twilio's form; 413 past the body limit.  Inbound messages are answered with empty
TwiML, so Twilio sends no automatic reply and logs no error.
"""

from __future__ import annotations

import uuid
from typing import Any

import msgspec
import structlog
from litestar import Request, Response, Router, post
from litestar.di import NamedDependency
from litestar.params import FromPath
from sqlalchemy.ext.asyncio import AsyncSession

from services.common.http import resources
from services.webhooks.writer import keep
from shared import clock
from shared.domains.inbound import journal
from shared.domains.inbound import sms as twilio
from shared.errors import BadRequest, Unauthorized
from shared.models import Channel

log = structlog.get_logger("quita.webhooks.sms")

FORM = "application/x-www-form-urlencoded"
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'


class Received(msgspec.Struct):
    """What was journaled: ``new`` events queued for processing, ``duplicates`` already known."""

    received: int
    new: int
    duplicates: int


async def _verified(
    request: Request[Any, Any, Any], db: AsyncSession, channel_id: uuid.UUID
) -> tuple[Channel, bytes, list[tuple[str, str]]]:
    """The channel whose token signed the POST, the raw body and its form fields."""
    header = request.headers.get(twilio.SIGNATURE_HEADER)
    if not header:
        raise Unauthorized("X-Twilio-Signature is missing.")
    content_type = request.headers.get("content-type", "")
    if content_type.split(";")[0].strip().lower() != FORM:
        raise BadRequest(f"Twilio callbacks are {FORM}.")
    body = await request.body()
    try:
        params = twilio.parse_form(body)
    except twilio.MalformedCallback as exc:
        raise BadRequest(f"The body is not a Twilio callback: {exc}.") from None
    channel = await twilio.sms_channel(db, channel_id)
    public = resources(request.app.state).settings.public_base_url
    urls = twilio.signed_urls(str(request.url), public)
    if channel is None or not twilio.signed_by(channel, urls, params, header):
        # an unknown channel answers exactly like a forged signature (see the module docstring)
        log.warning("webhooks.sms.unverified", channel_known=channel is not None)
        raise Unauthorized("The signature does not match.")
    return channel, body, params


async def _journal(
    request: Request[Any, Any, Any], db: AsyncSession, channel: Channel, body: bytes, event: Any
) -> Received:
    done = await keep(
        request,
        db,
        journal.post(
            provider=twilio.PROVIDER,
            body=body,
            content_type=request.headers.get("content-type"),
            events=[event],
            channel_id=channel.id,
            tenant_id=channel.tenant_id,
        ),
    )
    log.info("webhooks.sms.journaled", kind=event.kind, new=done.new, duplicates=done.duplicates)
    return Received(received=1, new=done.new, duplicates=done.duplicates)


@post(
    "/{channel_id:uuid}/status",
    summary="Signed SMS status callback (Twilio StatusCallback)",
    status_code=200,
)
async def status(
    request: Request[Any, Any, Any],
    db: NamedDependency[AsyncSession],
    channel_id: FromPath[uuid.UUID],
) -> Received:
    channel, body, params = await _verified(request, db, channel_id)
    try:
        event = twilio.status_event(
            channel,
            params,
            attempt=request.query_params.get(twilio.ATTEMPT_PARAM),
            received_at=clock.now(),
        )
    except twilio.MalformedCallback as exc:
        raise BadRequest(f"The status callback is incomplete: {exc}.") from None
    return await _journal(request, db, channel, body, event)


@post("/{channel_id:uuid}/inbound", summary="Signed inbound SMS (Twilio messaging webhook)")
async def inbound(
    request: Request[Any, Any, Any],
    db: NamedDependency[AsyncSession],
    channel_id: FromPath[uuid.UUID],
) -> Response[str]:
    channel, body, params = await _verified(request, db, channel_id)
    try:
        event = twilio.message_event(channel, params, received_at=clock.now())
    except twilio.MalformedCallback as exc:
        raise BadRequest(f"The inbound message is incomplete: {exc}.") from None
    await _journal(request, db, channel, body, event)
    return Response(EMPTY_TWIML, status_code=200, media_type="text/xml")


sms_router = Router(path="/sms", route_handlers=[status, inbound], tags=["sms"])
