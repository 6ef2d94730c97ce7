"""Pix payment webhooks from PSPs, in the Banco Central's Pix API shape.

The retailer registers ``{webhooks}/pix/{token}`` with its PSP (``POST /v1/pix/connections``
shows it once); per the BCB spec the PSP posts to that URL + ``/pix``, and both paths are
served.  A POST is answered once it is journaled: 200 with how many Pix were new.  Nothing is
applied here; the ``inbound`` queue does that.

Answers: 200 when journaled (a redelivery too: it inserts nothing); 401 for a token that names
no active connection, or when the connection expects a client-certificate subject and the
trusted proxy header does not carry it — nothing is stored then; 400 for a body that is not the
BCB's (each bad field named); 413 past the body limit.
"""

from __future__ import annotations

from typing import Any

import msgspec
import structlog
from litestar import Request, Router, post
from litestar.di import NamedDependency
from litestar.params import FromPath
from sqlalchemy.ext.asyncio import AsyncSession

from services.common.http import resources
from services.webhooks.writer import keep
from shared.domains.inbound import journal
from shared.domains.portfolio import pix_connections as connections
from shared.domains.portfolio import pix_webhooks as pix
from shared.errors import BadRequest, Unauthorized
from shared.models.pix_connection import PixConnection, PixConnectionStatus

log = structlog.get_logger("quita.webhooks.pix")


class Received(msgspec.Struct):
    """What was journaled: ``new`` events queued for processing, ``duplicates`` already known
    (a Pix carrying devoluções counts one event per devolução state)."""

    received: int
    new: int
    duplicates: int


async def _connection(
    request: Request[Any, Any, Any], db: AsyncSession, token: str
) -> PixConnection:
    connection = await connections.by_token(db, token)
    if connection is None or connection.status != PixConnectionStatus.ACTIVE:
        log.warning("webhooks.pix.unknown_token", known=connection is not None)
        raise Unauthorized("This webhook URL names no active Pix connection.")
    if connection.client_cert_subject:
        header = connections.cert_header(resources(request.app.state).settings)
        presented = request.headers.get(header) if header else None
        if not connections.subject_matches(connection.client_cert_subject, presented):
            log.warning(
                "webhooks.pix.certificate_mismatch",
                connection_id=str(connection.id),
                header_trusted=header is not None,
                presented=presented is not None,
            )
            raise Unauthorized("The client certificate is not the one this connection expects.")
    return connection


async def _receive(request: Request[Any, Any, Any], db: AsyncSession, token: str) -> Received:
    connection = await _connection(request, db, token)
    body = await request.body()
    try:
        items = pix.parse(body)
    except pix.MalformedPix as exc:
        raise BadRequest("The body is not a Pix webhook.", errors=exc.errors) from None
    events = pix.events_for(connection, items)
    done = await keep(
        request,
        db,
        journal.post(
            provider=pix.PROVIDER,
            body=body,
            content_type=request.headers.get("content-type"),
            events=events,
            tenant_id=connection.tenant_id,
        ),
    )
    log.info(
        "webhooks.pix.journaled",
        connection_id=str(connection.id),
        new=done.new,
        duplicates=done.duplicates,
    )
    return Received(received=len(events), new=done.new, duplicates=done.duplicates)


_DESCRIPTION = (
    'Body: `{"pix": [{"endToEndId", "txid", "valor", "horario", ...}]}` (BCB Pix API). '
    "Each Pix is journaled once by its endToEndId and applied to the installment its txid "
    "names. 401: unknown or disabled token, or client-certificate subject mismatch; 400: bad "
    "shape, field by field; 413: body too large."
)


@post(
    "/{token:str}",
    summary="Pix payments reported by a PSP (the registered URL)",
    description=_DESCRIPTION,
    status_code=200,
)
async def receive(
    request: Request[Any, Any, Any], db: NamedDependency[AsyncSession], token: FromPath[str]
) -> Received:
    return await _receive(request, db, token)


@post(
    "/{token:str}/pix",
    summary="Pix payments reported by a PSP (BCB spec: registered URL + /pix)",
    description=_DESCRIPTION,
    status_code=200,
)
async def receive_bcb(
    request: Request[Any, Any, Any], db: NamedDependency[AsyncSession], token: FromPath[str]
) -> Received:
    return await _receive(request, db, token)


pix_router = Router(path="/pix", route_handlers=[receive, receive_bcb], tags=["pix"])
