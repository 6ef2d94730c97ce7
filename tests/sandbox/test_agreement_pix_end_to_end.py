"""An agreement's down payment paid over real HTTP: the operator records the agreement, the
debtor pays its Pix code in the sandbox PSP, which posts the BCB webhook to the webhooks service
(a real port); the ``inbound`` job applies it to the down payment, and the originals stay
``renegotiated``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import redis.asyncio as aioredis

from services.api.app import create_app as api_app
from services.sandbox.app import create_app as sandbox_app
from shared.config import Settings
from shared.db import SessionMaker
from tests.conftest import run_lifespan
from tests.support.identity import Identities, bearer
from tests.support.jobs import drain
from tests.support.pix import hooks_app
from tests.support.serve import serve

PIX_KEY = "11222333000181"


class Loop:
    """The api and the sandbox as HTTP clients, the webhooks service on a real port."""

    def __init__(
        self, api: httpx.AsyncClient, sandbox: httpx.AsyncClient, hooks_url: str, maker: Any
    ) -> None:
        self.api, self.sandbox, self.hooks_url, self.maker = api, sandbox, hooks_url, maker


@pytest.fixture
async def loop(
    committed: SessionMaker, settings: Settings, redis: aioredis.Redis
) -> AsyncIterator[Loop]:
    async with AsyncExitStack() as stack:
        hooks = hooks_app(settings, sessionmaker=committed, redis=redis)
        await stack.enter_async_context(run_lifespan(hooks))
        hooks_url = await stack.enter_async_context(serve(hooks))
        for factory, name in ((api_app, "api"), (sandbox_app, "sandbox")):
            app = factory(settings, sessionmaker=committed, redis=redis)
            await stack.enter_async_context(run_lifespan(app))
            client = httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url=f"http://{name}"
            )
            if name == "api":
                api = await stack.enter_async_context(client)
            else:
                sandbox = await stack.enter_async_context(client)
        yield Loop(api, sandbox, hooks_url, committed)


async def test_the_down_payment_paid_in_the_sandbox_pays_the_agreement(
    loop: Loop, settings: Settings
) -> None:
    async with loop.maker() as session:
        ids = Identities(session, settings)
        party = await ids.party("Loja Acordo Pix")
        headers = bearer(await ids.token(party))
        await session.commit()

    async def call(method: str, path: str, data: Any = None) -> httpx.Response:
        return await loop.api.request(method, path, json=data, headers=headers)

    pix = {"key": PIX_KEY, "merchant_name": "Loja Acordo Pix", "city": "Recife"}
    assert (await call("PUT", "/v1/settings/pix", pix)).status_code == 200
    assert (await call("PUT", "/v1/customers/C-1", {"name": "Cliente Teste"})).status_code == 201
    for ext, due in (("P-1", "2026-05-10"), ("P-2", "2026-06-10")):
        body = {"customer_external_id": "C-1", "principal": "300.00", "due_date": due}
        assert (await call("PUT", f"/v1/installments/{ext}", body)).status_code == 201
    connection = await call("POST", "/v1/pix/connections", {"name": "PSP", "psp": "Sandbox"})
    hook = loop.hooks_url + urlsplit(connection.json()["webhook_url"]).path
    registered = await loop.sandbox.post(
        "/_sandbox/pix/connections",
        json={"key": PIX_KEY, "webhook_url": hook, "retry_base_ms": 5},
    )
    assert registered.status_code == 201, registered.text

    offer = (await call("POST", "/v1/customers/C-1/offers")).json()
    plan = next(o for o in offer["options"] if o["kind"] == "installments")
    made = await call("POST", f"/v1/offers/{offer['id']}/accept", {"option_id": plan["id"]})
    assert made.status_code == 201, made.text
    agreement = made.json()
    code = await call("GET", f"/v1/agreements/{agreement['id']}/installments/0/pix")
    assert code.status_code == 200, code.text

    paid = await loop.sandbox.post(
        "/_sandbox/pix/pay",
        json={"copia_e_cola": code.json()["payload"], "payer": {"nome": "Pagador Teste"}},
    )
    assert paid.status_code == 201, paid.text
    assert [d["outcome"] for d in paid.json()["deliveries"]] == [200]
    await drain(loop.maker)

    after = (await call("GET", f"/v1/agreements/{agreement['id']}")).json()
    down, first, *_ = after["installments"]
    assert down["status"] == "paid" and down["amount_paid"] == plan["down_payment"]["amount"]
    assert first["status"] == "open" and after["status"] == "active"
    statuses = {
        (await call("GET", f"/v1/installments/{e}")).json()["status"] for e in ("P-1", "P-2")
    }
    assert statuses == {"renegotiated"}
    received = (await call("GET", "/v1/pix/received")).json()["items"]
    assert [r["state"] for r in received] == ["applied"]
