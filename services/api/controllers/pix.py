"""Pix payment webhooks, the retailer's side: the PSP connections that post them (owners and
admins manage them; a webhook URL is shown once) and the Pix they reported — applied to an
installment, or unmatched with the reason."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter
from sqlalchemy.ext.asyncio import AsyncSession

from services.api.auth.guards import principal_of, requires
from services.common.http import resources
from shared.domains.audit.service import Actor
from shared.domains.portfolio import pix_connections as connections
from shared.domains.portfolio import pix_webhooks
from shared.domains.portfolio.scoping import writer_tenant
from shared.errors import NotFound
from shared.models import Role
from shared.tenancy import Principal, Scopes

MANAGERS = (Role.OWNER, Role.ADMIN)
MANAGE = requires(Scopes.SETTINGS_WRITE, roles=MANAGERS)
Limit = Annotated[int, QueryParameter(ge=1, le=500, description="Items per page (1-500)")]


def own_tenant(principal: Principal) -> uuid.UUID:
    """Connections and reported Pix are the caller's own tenant's (a mandate never reaches
    them): another tenant's connection is simply not found."""
    if principal.tenant_id is None:
        raise NotFound("This token acts for no tenant.")
    return principal.tenant_id


class PixConnectionController(Controller):
    path = "/v1/pix/connections"
    tags = ["pix"]

    @post(
        "/",
        summary="Connect a Pix PSP: get the webhook URL to register with it",
        description="Answers the webhook URL `{webhooks}/pix/{token}` once; Quita keeps only "
        "the token's SHA-256, so store it in the PSP now (PUT /webhook/{chave} in the BCB Pix "
        "API; the PSP posts to it + `/pix`). `client_cert_subject`: the subject DN of the "
        "PSP's mutual-TLS certificate, checked when the proxy passes it.",
        guards=[MANAGE],
        status_code=201,
    )
    async def create(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[AsyncSession],
        data: JSONBody[connections.PixConnectionIn],
    ) -> connections.PixConnectionOut:
        principal = principal_of(request)
        settings = resources(request.app.state).settings
        row, url = await connections.create(
            db, writer_tenant(principal), data, Actor.of(principal), settings
        )
        return connections.connection_out(row, url)

    @get(
        "/",
        summary="This retailer's Pix PSP connections (never their tokens)",
        guards=[requires(Scopes.SETTINGS_READ)],
    )
    async def list_connections(
        self, request: Request[Any, Any, Any], db: NamedDependency[AsyncSession]
    ) -> list[connections.PixConnectionOut]:
        rows = await connections.list_for(db, own_tenant(principal_of(request)))
        return [connections.connection_out(row) for row in rows]

    @post(
        "/{connection_id:uuid}/rotate",
        summary="Replace the webhook URL's token (the old URL answers 401 at once)",
        description="Answers the new webhook URL once; register it with the PSP.",
        guards=[MANAGE],
        status_code=200,
    )
    async def rotate(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[AsyncSession],
        connection_id: FromPath[uuid.UUID],
    ) -> connections.PixConnectionOut:
        principal = principal_of(request)
        settings = resources(request.app.state).settings
        row = await connections.get(db, own_tenant(principal), connection_id)
        url = await connections.rotate(db, row, Actor.of(principal), settings)
        return connections.connection_out(row, url)

    @post(
        "/{connection_id:uuid}/disable",
        summary="Stop accepting a PSP's webhooks (its URL answers 401)",
        guards=[MANAGE],
        status_code=200,
    )
    async def disable(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[AsyncSession],
        connection_id: FromPath[uuid.UUID],
    ) -> connections.PixConnectionOut:
        principal = principal_of(request)
        row = await connections.get(db, own_tenant(principal), connection_id)
        return connections.connection_out(await connections.disable(db, row, Actor.of(principal)))


class PixReceivedController(Controller):
    path = "/v1/pix/received"
    tags = ["pix"]

    @get(
        "/",
        summary="Pix reported by the PSPs, newest first: applied, unmatched or pending",
        description="`unmatched=true` lists the Pix Quita could not apply (no txid, a txid of "
        "no installment of yours, a cancelled installment ...) with the reason; apply one by "
        "hand with POST /v1/payments using its end_to_end_id as external_id.",
        guards=[requires(Scopes.PORTFOLIO_READ)],
    )
    async def received(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[AsyncSession],
        unmatched: FromQuery[bool] = False,
        cursor: FromQuery[str | None] = None,
        limit: Limit = 100,
    ) -> pix_webhooks.PixReceivedPage:
        return await pix_webhooks.received(
            db,
            own_tenant(principal_of(request)),
            unmatched_only=unmatched,
            cursor=cursor,
            limit=limit,
        )


PIX_CONTROLLERS = [PixConnectionController, PixReceivedController]
