"""Quita's own pieces end to end: a default template, compiled for Meta and filled with pt-BR
values, goes out through the WhatsApp client to the sandbox, whose signed status webhooks come
back; the sandbox's refusals reach the client as the right error classes."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

import httpx
import pytest

from shared.domains.channels import templating
from shared.domains.channels.defaults import DEFAULTS
from shared.domains.channels.templates import SAMPLE
from shared.integrations.whatsapp import ErrorClass, WhatsAppClient, WhatsAppError
from tests.sandbox.receiver import Receiver
from tests.sandbox.support import DEBTOR, PHONE_ID, SECRET, TOKEN, WABA_ID

REMINDER = next(d for d in DEFAULTS if d.key == "atraso_d5")


@pytest.fixture
async def client(sandbox: httpx.AsyncClient) -> WhatsAppClient:
    """Our client, speaking HTTP to the sandbox app (its ASGI transport, lifespan running)."""
    compiled = templating.compile_body(REMINDER.body)
    seeded = await sandbox.post(
        f"/_sandbox/whatsapp/wabas/{WABA_ID}",
        json={"templates": [{"name": REMINDER.name, "body": compiled.text}]},
    )
    assert seeded.status_code == 200, seeded.text
    transport = sandbox._transport  # the same in-process app the fixture started
    return WhatsAppClient(base_url=str(sandbox.base_url), transport=transport)


async def _statuses(
    sandbox: httpx.AsyncClient, receiver: Receiver, want: int
) -> list[dict[str, Any]]:
    await sandbox.get(f"/_sandbox/whatsapp/numbers/{PHONE_ID}", params={"wait": "true"})
    deadline = time.monotonic() + 5
    while len(receiver.statuses_received()) < want and time.monotonic() < deadline:
        await sandbox.get(f"/_sandbox/whatsapp/numbers/{PHONE_ID}", params={"wait": "true"})
    return receiver.statuses_received()


async def test_a_default_reminder_goes_out_and_its_statuses_come_back_signed(
    client: WhatsAppClient, sandbox: httpx.AsyncClient, receiver: Receiver
) -> None:
    compiled = templating.compile_body(REMINDER.body)
    result = await client.send_template(
        PHONE_ID,
        TOKEN,
        DEBTOR,
        REMINDER.name,
        "pt_BR",
        callback_data="attempt:42",
        body=templating.parameters(compiled, SAMPLE),
    )
    assert result.message_id.startswith("wamid.")
    statuses = await _statuses(sandbox, receiver, 3)
    assert [s["status"] for s in statuses] == ["sent", "delivered", "read"]
    assert {s["biz_opaque_callback_data"] for s in statuses} == {"attempt:42"}
    assert {s["id"] for s in statuses} == {result.message_id}
    for headers, body in receiver.posts:
        expected = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        assert headers["x-hub-signature-256"] == f"sha256={expected}"
    sent = (await sandbox.get(f"/_sandbox/whatsapp/numbers/{PHONE_ID}")).json()
    rendered = json.dumps(sent, ensure_ascii=False)
    assert "Total hoje: R$\u00a0258,75" in rendered  # what the debtor read, itemized


async def test_the_sandbox_refusals_arrive_as_error_classes(client: WhatsAppClient) -> None:
    compiled = templating.compile_body(REMINDER.body)
    params = templating.parameters(compiled, SAMPLE)

    with pytest.raises(WhatsAppError) as outside:
        await client.send_text(PHONE_ID, TOKEN, DEBTOR, "Oi", callback_data="a:1")
    assert outside.value.error_class is ErrorClass.REENGAGE

    with pytest.raises(WhatsAppError) as bad_token:
        await client.send_template(
            PHONE_ID, "wrong", DEBTOR, REMINDER.name, "pt_BR", callback_data="a:2", body=params
        )
    assert bad_token.value.error_class is ErrorClass.AUTH

    with pytest.raises(WhatsAppError) as short:
        await client.send_template(
            PHONE_ID, TOKEN, DEBTOR, REMINDER.name, "pt_BR", callback_data="a:3", body=params[:-1]
        )
    assert short.value.error_class is ErrorClass.TEMPLATE_PROBLEM
    assert short.value.code == 132000
