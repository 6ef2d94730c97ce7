"""When Quita turns an endpoint off, the retailer's owners and admins read why, in Portuguese,
in their mailbox (the sandbox's SMTP sink, over real SMTP through the tenant's e-mail channel)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from services.sandbox.app import create_app as create_sandbox
from shared.domains import events
from shared.domains.channels import schemas as channel_schemas
from shared.domains.channels import service as channels
from shared.models import Role
from shared.tenancy import SYSTEM, use_scope
from tests.shared.domains.events.conftest import OWNER, Receiver, Shop
from tests.support.identity import Identities

Jobs = Callable[[], Awaitable[list[Any]]]


async def _mailbox(sink: httpx.AsyncClient, to: str) -> list[dict[str, Any]]:
    response = await sink.get("/_sandbox/email/messages", params={"to": to})
    assert response.status_code == 200, response.text
    messages: list[dict[str, Any]] = response.json()["messages"]
    return messages


async def test_the_owners_are_emailed_when_an_endpoint_is_disabled(
    shop: Shop,
    receiver: Receiver,
    run_jobs: Jobs,
    session: AsyncSession,
    ids: Identities,
    http_client: Callable[..., Awaitable[httpx.AsyncClient]],
) -> None:
    sink = await http_client(create_sandbox)
    address = (await sink.get("/_sandbox/email/")).json()
    admin = await ids.user()
    operator = await ids.user()
    await ids.member(shop.party.tenant, admin, Role.ADMIN)
    await ids.member(shop.party.tenant, operator, Role.OPERATOR)
    await use_scope(session, SYSTEM)
    email = channel_schemas.EmailIn(
        name="E-mail da loja",
        host=address["host"],
        port=address["port"],
        from_address="avisos@loja-eventos.example.com",
        starttls=False,
    )
    await channels.create(session, shop.tenant_id, email, OWNER)
    endpoint, _ = await shop.endpoint(receiver.url)
    receiver.status = 410
    await events.emit(session, shop.tenant_id, "customer.opted_out", {"channels": ["sms"]})
    await run_jobs()

    [to_owner] = await _mailbox(sink, shop.party.owner.email)
    [to_admin] = await _mailbox(sink, admin.email)
    assert await _mailbox(sink, operator.email) == []
    assert to_owner["subject"] == "Quita: webhook para 127.0.0.1 desativado"
    assert "foi desativado pela Quita" in to_owner["text"]
    assert "410 (Gone)" in to_owner["text"]
    assert f"/v1/webhook-endpoints/{endpoint.id}" in to_owner["text"]
    assert to_admin["text"] == to_owner["text"]
