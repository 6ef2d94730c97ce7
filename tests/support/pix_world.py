"""A world for Pix tests over real HTTP: the api and the sandbox (ASGI clients) and the webhooks
service on a real port, and a retailer as its staff uses the API (owner token, Pix key, one
customer).  The ``world`` fixture lives in ``tests/sandbox/conftest.py``."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
import redis.asyncio as aioredis

from services.api.app import create_app as api_app
from services.sandbox.app import create_app as sandbox_app
from shared.config import Settings
from shared.db import SessionMaker
from shared.models import ContactAttempt, ContactAttemptItem
from shared.tenancy import tenant_scope, use_scope
from tests.conftest import run_lifespan
from tests.support.identity import Identities, bearer
from tests.support.pix import hooks_app
from tests.support.serve import serve

CNPJ_KEY = "11222333000181"


class World:
    def __init__(
        self,
        api: httpx.AsyncClient,
        sandbox: httpx.AsyncClient,
        hooks_url: str,
        maker: SessionMaker,
    ) -> None:
        self.api, self.sandbox, self.hooks_url, self.maker = api, sandbox, hooks_url, maker


class Shop:
    """A retailer as its staff uses the API: owner token, Pix key, one customer."""

    def __init__(self, world: World, tenant_id: uuid.UUID, token: str) -> None:
        self.world, self.tenant_id, self.headers = world, tenant_id, bearer(token)

    async def call(self, method: str, path: str, **kw: Any) -> httpx.Response:
        return await self.world.api.request(method, path, headers=self.headers, **kw)

    async def installment(self, ext: str, principal: str) -> dict[str, Any]:
        due = (date.today() + timedelta(days=10)).isoformat()
        r = await self.call(
            "PUT",
            f"/v1/installments/{ext}",
            json={"customer_external_id": "C-1", "principal": principal, "due_date": due},
        )
        assert r.status_code == 201, r.text
        return dict(r.json())

    async def connect_psp(self, key: str, **extra: Any) -> str:
        """Create the connection and register its URL in the sandbox PSP for ``key``."""
        r = await self.call("POST", "/v1/pix/connections", json={"name": "PSP", "psp": "Sandbox"})
        assert r.status_code == 201, r.text
        url = self.world.hooks_url + urlsplit(r.json()["webhook_url"]).path
        box = await self.world.sandbox.post(
            "/_sandbox/pix/connections",
            json={"key": key, "webhook_url": url, "retry_base_ms": 5, **extra},
        )
        assert box.status_code == 201, box.text
        return url

    async def code(self, installment_id: str) -> str:
        r = await self.call("GET", f"/v1/installments/{installment_id}/pix")
        assert r.status_code == 200, r.text
        return str(r.json()["payload"])


async def pix_shop(world: World, settings: Settings, name: str, key: str) -> Shop:
    async with world.maker() as session:
        ids = Identities(session, settings)
        party = await ids.party(name)
        token = await ids.token(party)
        await session.commit()
    shop = Shop(world, party.tenant.id, token)
    r = await shop.call(
        "PUT", "/v1/settings/pix", json={"key": key, "merchant_name": name, "city": "Recife"}
    )
    assert r.status_code == 200, r.text
    r = await shop.call("PUT", "/v1/customers/C-1", json={"name": "Cliente Teste", "state": "PE"})
    assert r.status_code == 201, r.text
    return shop


@asynccontextmanager
async def open_world(
    committed: SessionMaker, settings: Settings, redis: aioredis.Redis
) -> AsyncIterator[World]:
    async with AsyncExitStack() as stack:
        hooks = hooks_app(settings, sessionmaker=committed, redis=redis)
        await stack.enter_async_context(run_lifespan(hooks))
        hooks_url = await stack.enter_async_context(serve(hooks))
        api = api_app(settings, sessionmaker=committed, redis=redis)
        await stack.enter_async_context(run_lifespan(api))
        box = sandbox_app(settings, sessionmaker=committed, redis=redis)
        await stack.enter_async_context(run_lifespan(box))
        sandbox = await stack.enter_async_context(
            httpx.AsyncClient(transport=httpx.ASGITransport(app=box), base_url="http://sandbox")
        )
        api_client = await stack.enter_async_context(
            httpx.AsyncClient(transport=httpx.ASGITransport(app=api), base_url="http://api")
        )
        yield World(api_client, sandbox, hooks_url, committed)


async def message_about(world: World, shop: Shop, *installments: dict[str, Any]) -> uuid.UUID:
    """A reminder planned for an hour from now about ``installments`` (as the API answers
    them): with several, its Pix carries the message's id."""
    async with world.maker() as session:
        await use_scope(session, tenant_scope(shop.tenant_id))
        attempt = ContactAttempt(
            id=uuid.uuid4(),
            tenant_id=shop.tenant_id,
            customer_id=uuid.UUID(installments[0]["customer_id"]),
            kind="manual",
            channel="whatsapp",
            contact_day=date.today(),
            planned_for=datetime.now(UTC) + timedelta(hours=1),
        )
        session.add(attempt)
        await session.flush()
        session.add_all(
            ContactAttemptItem(
                attempt_id=attempt.id, installment_id=uuid.UUID(i["id"]), tenant_id=shop.tenant_id
            )
            for i in installments
        )
        await session.commit()
        return attempt.id
