"""A tenant's senders: WhatsApp numbers, SMS and e-mail.  Owners and admins manage them;
credentials are write-only."""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Controller, Request, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody
from sqlalchemy.ext.asyncio import AsyncSession

from services.api.auth.guards import principal_of, requires
from shared.domains.audit.service import Actor
from shared.domains.channels import checks, schemas, service
from shared.errors import NotFound
from shared.models import Role
from shared.tenancy import Principal, Scopes

MANAGERS = (Role.OWNER, Role.ADMIN)


def own_tenant(principal: Principal) -> uuid.UUID:
    """Channels are the caller's own tenant's (an agency's mandate never reaches them)."""
    if principal.tenant_id is None:
        raise NotFound("This token acts for no tenant.")
    return principal.tenant_id


class ChannelController(Controller):
    path = "/v1/channels"
    tags = ["channels"]

    @post(
        "/",
        summary="Connect a WhatsApp number, an SMS sender or an e-mail sender",
        description="`kind` is `whatsapp`, `sms` or `email`. Tokens, secrets and passwords are "
        "stored encrypted and never returned; the answer lists which ones the channel holds. "
        "`throughput_per_s` is what the WhatsApp number (80 by default) or the SMS account (10) "
        "takes per second; Quita sends at 75 % of it, across all its workers.",
        guards=[requires(Scopes.SETTINGS_WRITE, roles=MANAGERS)],
        status_code=201,
    )
    async def create(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[AsyncSession],
        data: JSONBody[schemas.ChannelIn],
    ) -> schemas.ChannelOut:
        principal = principal_of(request)
        channel = await service.create(db, own_tenant(principal), data, Actor.of(principal))
        return service.channel_out(channel)

    @get("/", summary="This tenant's channels", guards=[requires(Scopes.SETTINGS_READ)])
    async def list_channels(
        self, request: Request[Any, Any, Any], db: NamedDependency[AsyncSession]
    ) -> list[schemas.ChannelOut]:
        rows = await service.list_for(db, own_tenant(principal_of(request)))
        return [service.channel_out(c) for c in rows]

    @get("/{channel_id:uuid}", summary="One channel", guards=[requires(Scopes.SETTINGS_READ)])
    async def get_channel(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[AsyncSession],
        channel_id: FromPath[uuid.UUID],
    ) -> schemas.ChannelOut:
        channel = await service.get(db, own_tenant(principal_of(request)), channel_id)
        return service.channel_out(channel)

    @patch(
        "/{channel_id:uuid}",
        summary="Rename, pause or resume a channel, or replace its credentials",
        description="`throughput_per_s` changes a WhatsApp number's or an SMS account's rate "
        "(when Meta raises a number's limit, say); it is ignored for e-mail.",
        guards=[requires(Scopes.SETTINGS_WRITE, roles=MANAGERS)],
    )
    async def update(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[AsyncSession],
        channel_id: FromPath[uuid.UUID],
        data: JSONBody[schemas.ChannelUpdate],
    ) -> schemas.ChannelOut:
        principal = principal_of(request)
        channel = await service.get(db, own_tenant(principal), channel_id)
        return service.channel_out(await service.update(db, channel, data, Actor.of(principal)))

    @post(
        "/{channel_id:uuid}/test",
        summary="Send a test message through the channel and report the provider's answer",
        description="Sends an approved template (the first one, or `template_id`) with sample "
        "values to `to`. The answer says whether the provider accepted it (with its message "
        "id) or how it refused (error class, code, and whether Quita would retry, fall back or "
        "stop the channel). Delivery arrives later by webhook: see `GET .../tests?message_id=`.",
        guards=[requires(Scopes.SETTINGS_WRITE, roles=MANAGERS)],
        status_code=200,
    )
    async def test(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[AsyncSession],
        channel_id: FromPath[uuid.UUID],
        data: JSONBody[checks.ChannelTestIn],
    ) -> checks.ChannelTestOut:
        principal = principal_of(request)
        channel = await service.get(db, own_tenant(principal), channel_id)
        return await checks.run(db, channel, data, Actor.of(principal))

    @get(
        "/{channel_id:uuid}/tests",
        summary="Statuses heard for a test message (sent, delivered, read or failed)",
        guards=[requires(Scopes.SETTINGS_READ)],
    )
    async def test_statuses(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[AsyncSession],
        channel_id: FromPath[uuid.UUID],
        message_id: FromQuery[str],
    ) -> list[checks.StatusHeard]:
        channel = await service.get(db, own_tenant(principal_of(request)), channel_id)
        return await checks.statuses_of(db, channel, message_id)


CHANNEL_CONTROLLERS = [ChannelController]
