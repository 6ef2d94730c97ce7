"""The whole WhatsApp loop over real HTTP: a retailer connects its number, submits a default
template (the sandbox reviews it and says so by a signed webhook), checks the channel with a
real send, and the ``sent``/``delivered``/``read`` statuses arrive signed at the webhooks
service — served by uvicorn on a real port — which journals them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
from sqlalchemy import select

from services.api.app import create_app as api_app
from services.sandbox.app import create_app as sandbox_app
from services.sandbox.state import SandboxState
from services.webhooks.app import create_app as webhooks_app
from shared.config import Settings
from shared.db import SessionMaker
from shared.domains.channels.senders import using_clients
from shared.integrations.whatsapp import WhatsAppClient
from shared.models import MessageTemplate, WebhookReceipt
from shared.tenancy import SYSTEM, use_scope
from tests.conftest import run_lifespan
from tests.support.identity import Identities, bearer
from tests.support.jobs import drain
from tests.support.serve import serve

PHONE_ID, WABA_ID = "551100000001", "551100000099"
TOKEN, SECRET, VERIFY = "EAAG-e2e-token", "e2e-app-secret", "e2e-verify"


class World:
    def __init__(self, api: httpx.AsyncClient, sandbox: httpx.AsyncClient, maker: SessionMaker):
        self.api, self.sandbox, self.maker = api, sandbox, maker

    async def settle(self) -> None:
        """Let the sandbox deliver what it scheduled, then run the jobs that caused."""
        await self.sandbox.get(f"/_sandbox/whatsapp/numbers/{PHONE_ID}", params={"wait": "true"})
        await drain(self.maker)


@pytest.fixture
async def world(
    committed: SessionMaker, settings: Settings, redis: aioredis.Redis
) -> AsyncIterator[World]:
    async with AsyncExitStack() as stack:
        hooks = webhooks_app(settings, sessionmaker=committed, redis=redis)
        await stack.enter_async_context(run_lifespan(hooks))
        hooks_url = await stack.enter_async_context(serve(hooks))
        api = api_app(settings, sessionmaker=committed, redis=redis)
        await stack.enter_async_context(run_lifespan(api))
        box = sandbox_app(settings, sessionmaker=committed, redis=redis, whatsapp=SandboxState(3))
        await stack.enter_async_context(run_lifespan(box))
        sandbox = await stack.enter_async_context(
            httpx.AsyncClient(transport=httpx.ASGITransport(app=box), base_url="http://sandbox")
        )
        client = WhatsAppClient(base_url="http://sandbox", transport=sandbox._transport)
        stack.enter_context(using_clients(client, sms_transport=sandbox._transport))
        registered = await sandbox.post(
            "/_sandbox/whatsapp/numbers",
            json={
                "phone_number_id": PHONE_ID,
                "waba_id": WABA_ID,
                "display_phone_number": "551140000001",
                "access_token": TOKEN,
                "app_secret": SECRET,
                "verify_token": VERIFY,
                "webhook_url": f"{hooks_url}/whatsapp",
                "sent_delay_ms": 5,
                "delivered_delay_ms": 15,
                "read_delay_ms": 25,
            },
        )
        assert registered.status_code == 201, registered.text
        await sandbox.post(f"/_sandbox/whatsapp/wabas/{WABA_ID}", json={"review_delay_ms": 10})
        api_client = await stack.enter_async_context(
            httpx.AsyncClient(transport=httpx.ASGITransport(app=api), base_url="http://api")
        )
        yield World(api_client, sandbox, committed)


async def _owner(world: World, settings: Settings) -> dict[str, str]:
    async with world.maker() as session:
        ids = Identities(session, settings)
        token = await ids.token(await ids.party("Loja Ponta a Ponta"))
        await session.commit()
    return bearer(token)


async def _template(world: World, headers: dict[str, str], key: str) -> dict[str, Any]:
    rows = (await world.api.get("/v1/templates/", params={"key": key}, headers=headers)).json()
    return next(r for r in rows if r["channel_kind"] == "whatsapp")


async def test_a_reminder_goes_out_and_its_statuses_arrive_signed_at_the_webhooks_service(
    world: World, settings: Settings
) -> None:
    headers = await _owner(world, settings)
    connected = await world.api.post(
        "/v1/channels",
        headers=headers,
        json={
            "kind": "whatsapp",
            "name": "WhatsApp da loja",
            "phone_number_id": PHONE_ID,
            "waba_id": WABA_ID,
            "display_number": "+55 11 4000-0001",
            "access_token": TOKEN,
            "app_secret": SECRET,
            "verify_token": VERIFY,
        },
    )
    assert connected.status_code == 201, connected.text
    channel_id = connected.json()["id"]

    # Meta's handshake, as the sandbox performs it against our real webhooks URL
    handshake = await world.sandbox.post(f"/_sandbox/whatsapp/numbers/{PHONE_ID}/verify-webhook")
    assert handshake.status_code == 200 and handshake.json()["verified"] is True

    # not approved yet: the channel check refuses to send a draft
    early = await world.api.post(
        f"/v1/channels/{channel_id}/test", json={"to": "11 98765-4321"}, headers=headers
    )
    assert early.status_code == 409

    template = await _template(world, headers, "vence_hoje")
    submitted = await world.api.post(f"/v1/templates/{template['id']}/submit", headers=headers)
    assert submitted.status_code == 202 and submitted.json()["status"] == "PENDING"
    await drain(world.maker)  # the submission job calls the sandbox's template API
    await asyncio.sleep(0.05)  # the sandbox's review
    await world.settle()  # the verdict arrives by signed webhook and is applied
    template = await _template(world, headers, "vence_hoje")
    assert template["status"] == "APPROVED"

    checked = await world.api.post(
        f"/v1/channels/{channel_id}/test",
        json={"to": "(11) 98765-4321", "template_id": template["id"]},
        headers=headers,
    )
    assert checked.status_code == 200, checked.text
    result = checked.json()
    assert result["accepted"] is True and result["refusal"] is None
    assert result["to"] == "+5511987654321"
    assert result["message_id"].startswith("wamid.")

    await world.settle()
    heard = await world.api.get(
        f"/v1/channels/{channel_id}/tests",
        params={"message_id": result["message_id"]},
        headers=headers,
    )
    assert heard.status_code == 200, heard.text
    assert [s["status"] for s in heard.json()] == ["sent", "delivered", "read"]

    # what the sandbox delivered is exactly what was journaled, and it was signed
    activity = (await world.sandbox.get(f"/_sandbox/whatsapp/numbers/{PHONE_ID}")).json()
    assert all(d["outcome"] == 200 for d in activity["deliveries"])
    async with world.maker() as session:
        await use_scope(session, SYSTEM)
        receipts = list(await session.scalars(select(WebhookReceipt)))
        assert len(receipts) == len(activity["deliveries"])
        row = await session.scalar(
            select(MessageTemplate).where(MessageTemplate.id == template["id"])
        )
        assert row is not None and row.provider_template_id


async def test_the_channel_check_reports_a_refusal_with_what_quita_would_do(
    world: World, settings: Settings
) -> None:
    headers = await _owner(world, settings)
    connected = await world.api.post(
        "/v1/channels",
        headers=headers,
        json={
            "kind": "whatsapp",
            "name": "WhatsApp com token velho",
            "phone_number_id": PHONE_ID,
            "waba_id": WABA_ID,
            "display_number": "+55 11 4000-0001",
            "access_token": "EAAG-expired",
            "app_secret": SECRET,
            "verify_token": VERIFY,
        },
    )
    channel_id = connected.json()["id"]
    async with world.maker() as session:
        await use_scope(session, SYSTEM)
        row = await session.scalar(
            select(MessageTemplate).where(
                MessageTemplate.channel_kind == "whatsapp", MessageTemplate.key == "vence_hoje"
            )
        )
        assert row is not None
        row.status = "APPROVED"
        await session.commit()
    await world.sandbox.post(
        f"/_sandbox/whatsapp/wabas/{WABA_ID}",
        json={"templates": [{"name": row.name, "body": "Olá {{1}}"}]},
    )

    checked = await world.api.post(
        f"/v1/channels/{channel_id}/test", json={"to": "+55 11 98765-4321"}, headers=headers
    )

    assert checked.status_code == 200, checked.text
    refusal = checked.json()["refusal"]
    assert checked.json()["accepted"] is False
    assert refusal["error_class"] == "auth" and refusal["code"] == 190
    assert refusal["stop_channel"] is True and refusal["retry"] is False


ACCOUNT_SID = "AC" + "e2e0" * 8


async def test_an_sms_channel_check_goes_out_through_the_twilio_compatible_sandbox(
    world: World, settings: Settings
) -> None:
    headers = await _owner(world, settings)
    account = await world.sandbox.post(
        "/_sandbox/sms/accounts",
        json={"account_sid": ACCOUNT_SID, "auth_token": "sms-token", "numbers": ["+5511940001234"]},
    )
    assert account.status_code == 201, account.text
    connected = await world.api.post(
        "/v1/channels",
        headers=headers,
        json={
            "kind": "sms",
            "name": "SMS da loja",
            "account_sid": ACCOUNT_SID,
            "auth_token": "sms-token",
            "from_number": "+5511940001234",
            "base_url": "http://sandbox",
        },
    )
    assert connected.status_code == 201, connected.text

    checked = await world.api.post(
        f"/v1/channels/{connected.json()['id']}/test", json={"to": "11 98765-4321"}, headers=headers
    )

    assert checked.status_code == 200, checked.text
    assert checked.json()["accepted"] is True and checked.json()["message_id"].startswith("SM")
    sent = (await world.sandbox.get(f"/_sandbox/sms/accounts/{ACCOUNT_SID}/messages")).json()
    (message,) = sent["messages"]
    assert message["to"] == "+5511987654321"
    assert "Loja Exemplo" in message["body"] and "R$" in message["body"]

    refused = await world.api.post(
        f"/v1/channels/{connected.json()['id']}/test",
        json={"to": "não é telefone"},
        headers=headers,
    )
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["field"] == "to"


async def test_an_email_channel_check_lands_in_the_sandbox_smtp_sink(
    world: World, settings: Settings
) -> None:
    headers = await _owner(world, settings)
    sink = (await world.sandbox.get("/_sandbox/email/")).json()
    connected = await world.api.post(
        "/v1/channels",
        headers=headers,
        json={
            "kind": "email",
            "name": "E-mail da loja",
            "host": sink["host"],
            "port": sink["port"],
            "from_address": "cobranca@lojademo.com.br",
            "from_name": "Loja Demo",
            "starttls": False,
        },
    )
    assert connected.status_code == 201, connected.text

    checked = await world.api.post(
        f"/v1/channels/{connected.json()['id']}/test",
        json={"to": "maria@exemplo.com.br"},
        headers=headers,
    )

    assert checked.status_code == 200, checked.text
    assert checked.json()["accepted"] is True
    listed = (await world.sandbox.get("/_sandbox/email/messages")).json()["messages"]
    (mail,) = listed
    assert mail["rcpt_tos"] == ["maria@exemplo.com.br"]
    assert "Loja Exemplo" in mail["text"]
    assert checked.json()["message_id"] == mail["headers"]["Message-ID"]
