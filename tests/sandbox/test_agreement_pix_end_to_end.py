"""An agreement's down payment paid over real HTTP: the operator records the agreement, the
debtor pays its Pix code in the sandbox PSP, which posts the BCB webhook to the webhooks service
(a real port); the ``inbound`` job applies it to the down payment, and the originals stay
``renegotiated``."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import httpx

from shared.config import Settings
from tests.support.identity import Identities, bearer
from tests.support.jobs import drain
from tests.support.pix_world import World

PIX_KEY = "11222333000181"


async def test_the_down_payment_paid_in_the_sandbox_pays_the_agreement(
    world: World, settings: Settings
) -> None:
    async with world.maker() as session:
        ids = Identities(session, settings)
        party = await ids.party("Loja Acordo Pix")
        headers = bearer(await ids.token(party))
        await session.commit()

    async def call(method: str, path: str, data: Any = None) -> httpx.Response:
        return await world.api.request(method, path, json=data, headers=headers)

    pix = {"key": PIX_KEY, "merchant_name": "Loja Acordo Pix", "city": "Recife"}
    assert (await call("PUT", "/v1/settings/pix", pix)).status_code == 200
    assert (await call("PUT", "/v1/customers/C-1", {"name": "Cliente Teste"})).status_code == 201
    for ext, due in (("P-1", "2026-05-10"), ("P-2", "2026-06-10")):
        body = {"customer_external_id": "C-1", "principal": "300.00", "due_date": due}
        assert (await call("PUT", f"/v1/installments/{ext}", body)).status_code == 201
    connection = await call("POST", "/v1/pix/connections", {"name": "PSP", "psp": "Sandbox"})
    hook = world.hooks_url + urlsplit(connection.json()["webhook_url"]).path
    registered = await world.sandbox.post(
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

    paid = await world.sandbox.post(
        "/_sandbox/pix/pay",
        json={"copia_e_cola": code.json()["payload"], "payer": {"nome": "Pagador Teste"}},
    )
    assert paid.status_code == 201, paid.text
    assert [d["outcome"] for d in paid.json()["deliveries"]] == [200]
    await drain(world.maker)

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
