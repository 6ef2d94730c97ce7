"""The Pix loop over real HTTP: a retailer connects its PSP and gets a webhook URL; a debtor
pays the installment's Pix code in the sandbox PSP, which posts the BCB webhook to the webhooks
service (uvicorn, a real port); the journaled Pix is applied by the ``inbound`` job, the
installment is settled and its pending reminder cancelled."""

from __future__ import annotations

import uuid
from decimal import Decimal

from sqlalchemy import func, select
from standardwebhooks import Webhook

from shared.config import Settings
from shared.domains.portfolio import pix_connections
from shared.models import ContactAttempt, WebhookReceipt
from shared.tenancy import SYSTEM, use_scope
from tests.sandbox.receiver import Receiver
from tests.support.jobs import drain
from tests.support.pix_world import CNPJ_KEY, World, message_about, pix_shop

EVP_KEY = "123e4567-e89b-42d3-a456-426614174000"


async def _attempt_state(world: World, attempt_id: uuid.UUID) -> tuple[str, str | None]:
    async with world.maker() as session:
        await use_scope(session, SYSTEM)
        attempt = await session.get_one(ContactAttempt, attempt_id)
        return str(attempt.state), attempt.reason


async def _receipts(world: World) -> int:
    async with world.maker() as session:
        await use_scope(session, SYSTEM)
        return int(await session.scalar(select(func.count()).select_from(WebhookReceipt)) or 0)


async def test_a_pix_paid_in_the_sandbox_settles_the_installment_and_cancels_its_reminder(
    world: World, settings: Settings
) -> None:
    shop = await pix_shop(world, settings, "Loja Pix Ponta", CNPJ_KEY)
    inst = await shop.installment("P-1", "250.00")
    await shop.connect_psp(CNPJ_KEY)
    reminder = await message_about(world, shop, inst)

    paid = await world.sandbox.post(
        "/_sandbox/pix/pay",
        json={"copia_e_cola": await shop.code(inst["id"]), "payer": {"nome": "Pagador Teste"}},
    )
    assert paid.status_code == 201, paid.text
    pix = paid.json()["pix"]
    assert len(pix["endToEndId"]) == 32 and pix["endToEndId"].startswith("E12345678")
    assert pix["valor"] == "250.00" and pix["txid"]
    assert [d["outcome"] for d in paid.json()["deliveries"]] == [200]
    assert paid.json()["deliveries"][0]["url"].endswith("/pix")

    await drain(world.maker)  # the inbound job, then the settled installment's listeners

    got = (await shop.call("GET", f"/v1/installments/{inst['id']}")).json()
    assert got["status"] == "paid"
    payments = (await shop.call("GET", f"/v1/installments/{inst['id']}/payments")).json()
    assert [(p["external_id"], p["amount"], p["method"]) for p in payments] == [
        (pix["endToEndId"], "250.00", "pix")
    ]
    assert await _attempt_state(world, reminder) == ("cancelled", "paid")
    received = (await shop.call("GET", "/v1/pix/received")).json()["items"]
    assert [(r["state"], r["installment_id"]) for r in received] == [("applied", inst["id"])]

    # the PSP refunds it: journaled, nothing reversed
    refunded = await world.sandbox.post(
        f"/_sandbox/pix/payments/{pix['endToEndId']}/refund", json={}
    )
    assert refunded.status_code == 201 and refunded.json()["deliveries"][-1]["outcome"] == 200
    await drain(world.maker)
    assert (await shop.call("GET", f"/v1/installments/{inst['id']}")).json()["status"] == "paid"


async def test_the_retailers_system_hears_the_settlement_signed_per_standard_webhooks(
    world: World, settings: Settings
) -> None:
    """Issue #7's loop: a Pix paid in the sandbox settles the installment, and the retailer's
    own system receives ``installment.settled``, whose signature its library verifies."""
    receiver = Receiver()
    await receiver.start()
    try:
        shop = await pix_shop(world, settings, "Loja Pix Aviso", CNPJ_KEY)
        inst = await shop.installment("P-1", "250.00")
        await shop.connect_psp(CNPJ_KEY)
        created = await shop.call(
            "POST",
            "/v1/webhook-endpoints",
            json={"url": receiver.url, "event_types": ["installment.settled"]},
        )
        assert created.status_code == 201, created.text
        secret = created.json()["secret"]

        paid = await world.sandbox.post(
            "/_sandbox/pix/pay", json={"copia_e_cola": await shop.code(inst["id"])}
        )
        assert paid.status_code == 201, paid.text
        await drain(world.maker)  # the Pix, the settlement's listeners, then the delivery

        [(headers, body)] = receiver.posts
        event = Webhook(secret).verify(body, headers)
        assert event["type"] == "installment.settled"
        assert event["data"]["installment_id"] == inst["id"]
        assert event["data"]["installment_external_id"] == "P-1"
        assert headers["webhook-id"] and headers["webhook-signature"].startswith("v1,")
    finally:
        await receiver.stop()


async def test_the_same_webhook_twice_records_one_payment(world: World, settings: Settings) -> None:
    shop = await pix_shop(world, settings, "Loja Pix Duas Vezes", CNPJ_KEY)
    inst = await shop.installment("P-1", "99.90")
    await shop.connect_psp(CNPJ_KEY)

    paid = await world.sandbox.post(
        "/_sandbox/pix/pay",
        json={"copia_e_cola": await shop.code(inst["id"]), "deliver_twice": True},
    )
    assert [d["outcome"] for d in paid.json()["deliveries"]] == [200, 200]
    await drain(world.maker)

    payments = (await shop.call("GET", f"/v1/installments/{inst['id']}/payments")).json()
    assert len(payments) == 1
    got = (await shop.call("GET", f"/v1/installments/{inst['id']}")).json()
    assert got["status"] == "paid" and got["amount_paid"] == "99.90"
    assert await _receipts(world) == 2  # both POSTs kept as evidence


async def test_a_partial_pix_leaves_the_rest_to_pay(world: World, settings: Settings) -> None:
    shop = await pix_shop(world, settings, "Loja Pix Parcial", CNPJ_KEY)
    inst = await shop.installment("P-1", "250.00")
    await shop.connect_psp(CNPJ_KEY)

    paid = await world.sandbox.post(
        "/_sandbox/pix/pay",
        json={"copia_e_cola": await shop.code(inst["id"]), "amount": "100.00"},
    )
    assert paid.json()["pix"]["valor"] == "100.00"
    await drain(world.maker)

    got = (await shop.call("GET", f"/v1/installments/{inst['id']}")).json()
    assert got["status"] == "partially_paid"
    balance = (await shop.call("GET", f"/v1/installments/{inst['id']}/balance")).json()
    assert Decimal(balance["total"]) == Decimal("150.00")
    # the next code asks for the rest
    assert "5406150.00" in await shop.code(inst["id"])


async def test_an_unknown_token_is_refused_and_the_psp_retries_then_gives_up(
    world: World, settings: Settings
) -> None:
    shop = await pix_shop(world, settings, "Loja Pix Token", CNPJ_KEY)
    inst = await shop.installment("P-1", "10.00")
    await world.sandbox.post(
        "/_sandbox/pix/connections",
        json={
            "key": CNPJ_KEY,
            "webhook_url": f"{world.hooks_url}/pix/{pix_connections.new_token()}",
            "retries": 2,
            "retry_base_ms": 1,
        },
    )

    paid = await world.sandbox.post(
        "/_sandbox/pix/pay", json={"copia_e_cola": await shop.code(inst["id"])}
    )

    assert [d["outcome"] for d in paid.json()["deliveries"]] == [401, 401, 401]
    assert await _receipts(world) == 0
    await drain(world.maker)
    assert (await shop.call("GET", f"/v1/installments/{inst['id']}")).json()["status"] == "open"


async def test_another_retailers_code_sent_to_my_url_pays_nobody_and_shows_as_unmatched(
    world: World, settings: Settings
) -> None:
    mine = await pix_shop(world, settings, "Loja Pix Minha", CNPJ_KEY)
    theirs = await pix_shop(world, settings, "Loja Pix Alheia", EVP_KEY)
    their_inst = await theirs.installment("P-9", "75.00")
    my_url = await mine.connect_psp(CNPJ_KEY)
    # a PSP misconfigured to post the other retailer's key to my webhook URL
    await world.sandbox.post(
        "/_sandbox/pix/connections",
        json={"key": EVP_KEY, "webhook_url": my_url, "retry_base_ms": 5},
    )

    paid = await world.sandbox.post(
        "/_sandbox/pix/pay", json={"copia_e_cola": await theirs.code(their_inst["id"])}
    )
    assert paid.json()["deliveries"][-1]["outcome"] == 200
    await drain(world.maker)

    got = (await theirs.call("GET", f"/v1/installments/{their_inst['id']}")).json()
    assert got["status"] == "open" and got["amount_paid"] == "0.00"
    unmatched = (await mine.call("GET", "/v1/pix/received", params={"unmatched": "true"})).json()
    (item,) = unmatched["items"]
    assert item["state"] == "unmatched" and item["amount"] == "75.00"
    assert "no installment of this retailer" in item["reason"]
    assert (await theirs.call("GET", "/v1/pix/received")).json()["items"] == []
