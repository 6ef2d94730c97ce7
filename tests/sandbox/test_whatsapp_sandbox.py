"""The WhatsApp sandbox behaves like Meta's Cloud API as the handbook contract describes it:
real HTTP into the sandbox app, and a real HTTP receiver on 127.0.0.1 for its webhooks."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Awaitable, Callable
from typing import Any, cast

import httpx
import pytest

from services.sandbox.app import create_app
from services.sandbox.state import SandboxState
from shared.config import Settings
from shared.db import SessionMaker
from tests.conftest import run_lifespan
from tests.sandbox.receiver import Receiver
from tests.sandbox.support import (
    BODY,
    DEBTOR,
    PHONE_ID,
    SECRET,
    TOKEN,
    WABA_ID,
    register,
)

Client = Callable[..., Awaitable[httpx.AsyncClient]]


async def configure(client: httpx.AsyncClient, **changes: Any) -> None:
    response = await client.post(f"/_sandbox/whatsapp/numbers/{PHONE_ID}/config", json=changes)
    assert response.status_code == 200, response.text


def reminder(
    to: str = DEBTOR, params: int = 4, name: str = "lembrete_vencimento_v1"
) -> dict[str, Any]:
    values = ["Maria", "Loja Exemplo", "R$ 150,00", "10/05/2026", "extra"][:params]
    return {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": to,
        "type": "template",
        "biz_opaque_callback_data": "inv_8841:att_2",
        "template": {
            "name": name,
            "language": {"policy": "deterministic", "code": "pt_BR"},
            "components": [
                {"type": "body", "parameters": [{"type": "text", "text": v} for v in values]}
            ],
        },
    }


def text(to: str = DEBTOR) -> dict[str, Any]:
    return {"messaging_product": "whatsapp", "to": to, "type": "text", "text": {"body": "Oi"}}


async def send(
    client: httpx.AsyncClient, body: dict[str, Any], token: str = TOKEN, version: str = "v24.0"
) -> httpx.Response:
    return await client.post(
        f"/{version}/{PHONE_ID}/messages",
        json=body,
        headers={"Authorization": f"Bearer {token}"},
    )


async def settle(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get(f"/_sandbox/whatsapp/numbers/{PHONE_ID}", params={"wait": "true"})
    result: dict[str, Any] = response.json()
    return result


def error_code(response: httpx.Response) -> int:
    code: int = response.json()["error"]["code"]
    return code


async def test_accepted_template_answers_with_the_contract_success_body(
    sandbox: httpx.AsyncClient,
) -> None:
    response = await send(sandbox, reminder())

    assert response.status_code == 200
    body = response.json()
    assert body["messaging_product"] == "whatsapp"
    assert body["contacts"] == [{"input": DEBTOR, "wa_id": DEBTOR}]
    assert body["messages"][0]["id"].startswith("wamid.")
    assert body["messages"][0]["message_status"] == "accepted"


async def test_statuses_arrive_signed_in_order_with_the_callback_data(
    sandbox: httpx.AsyncClient, receiver: Receiver
) -> None:
    wamid = (await send(sandbox, reminder(), version="v23.0")).json()["messages"][0]["id"]

    await settle(sandbox)

    for headers, raw in receiver.posts:
        expected = hmac.new(SECRET.encode(), raw, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(headers["x-hub-signature-256"], f"sha256={expected}")
    payload = receiver.payloads()[0]
    assert payload["object"] == "whatsapp_business_account"
    assert payload["entry"][0]["id"] == WABA_ID
    assert payload["entry"][0]["changes"][0]["value"]["metadata"]["phone_number_id"] == PHONE_ID
    statuses = receiver.statuses_received()
    assert [s["status"] for s in statuses] == ["sent", "delivered", "read"]
    assert {s["id"] for s in statuses} == {wamid}
    assert {s["biz_opaque_callback_data"] for s in statuses} == {"inv_8841:att_2"}
    assert all(isinstance(s["timestamp"], str) for s in statuses)
    assert statuses[0]["pricing"] == {
        "billable": True,
        "pricing_model": "PMP",
        "type": "regular",
        "category": "utility",
    }
    assert statuses[0]["conversation"]["origin"] == {"type": "utility"}
    assert "pricing" not in statuses[2]


async def test_v24_statuses_carry_no_conversation(
    sandbox: httpx.AsyncClient, receiver: Receiver
) -> None:
    await send(sandbox, reminder(), version="v24.0")
    await settle(sandbox)

    assert all("conversation" not in s for s in receiver.statuses_received())


async def test_wrong_token_is_190_with_401(sandbox: httpx.AsyncClient) -> None:
    response = await send(sandbox, reminder(), token="stolen")

    assert response.status_code == 401
    error = response.json()["error"]
    assert error["code"] == 190
    assert error["type"] == "OAuthException"
    assert error["fbtrace_id"]


async def test_unknown_phone_number_id_is_graph_error_100(sandbox: httpx.AsyncClient) -> None:
    response = await sandbox.post(
        "/v24.0/999/messages", json=reminder(), headers={"Authorization": f"Bearer {TOKEN}"}
    )

    assert response.status_code == 400
    assert response.json()["error"]["code"] == 100
    assert response.json()["error"]["error_subcode"] == 33


async def test_messaging_product_must_be_whatsapp(sandbox: httpx.AsyncClient) -> None:
    response = await send(sandbox, {**reminder(), "messaging_product": "sms"})

    assert (response.status_code, error_code(response)) == (400, 100)


async def test_malformed_recipient_is_131009(sandbox: httpx.AsyncClient) -> None:
    response = await send(sandbox, reminder(to="11-abc"))

    assert error_code(response) == 131009


@pytest.mark.parametrize("name", ["nao_existe", "em_revisao"])
async def test_unknown_or_unapproved_template_is_132001(
    sandbox: httpx.AsyncClient, name: str
) -> None:
    response = await send(sandbox, reminder(name=name, params=1 if name == "em_revisao" else 4))

    assert (response.status_code, error_code(response)) == (400, 132001)
    assert response.json()["error"]["message"].startswith("(#132001)")


async def test_template_in_another_language_is_132001(sandbox: httpx.AsyncClient) -> None:
    body = reminder()
    body["template"]["language"]["code"] = "pt"

    assert error_code(await send(sandbox, body)) == 132001


@pytest.mark.parametrize("params", [3, 5])
async def test_wrong_parameter_count_is_132000(sandbox: httpx.AsyncClient, params: int) -> None:
    response = await send(sandbox, reminder(params=params))

    assert (response.status_code, error_code(response)) == (400, 132000)


def with_parameter(text: str | None, at: int = 2) -> dict[str, Any]:
    """The reminder with its body parameter ``at`` holding ``text`` (``None``: no text at all)."""
    body = reminder()
    parameter = body["template"]["components"][0]["parameters"][at]
    if text is None:
        del parameter["text"]
    else:
        parameter["text"] = text
    return body


@pytest.mark.parametrize("value", ["", "   ", " \n ", None])
async def test_empty_or_blank_body_parameter_is_131008_naming_it(
    sandbox: httpx.AsyncClient, value: str | None
) -> None:
    response = await send(sandbox, with_parameter(value))

    assert (response.status_code, error_code(response)) == (400, 131008)
    error = response.json()["error"]
    assert error["message"] == "(#131008) Required parameter is missing"
    assert error["type"] == "OAuthException"
    assert "body.parameters[2]" in error["error_data"]["details"]
    assert (await settle(sandbox))["sent"] == []


@pytest.mark.parametrize("kind", ["header", "button"])
async def test_empty_header_or_button_parameter_is_131008(
    sandbox: httpx.AsyncClient, kind: str
) -> None:
    body = reminder()
    component: dict[str, Any] = {"type": kind, "parameters": [{"type": "text", "text": " "}]}
    if kind == "button":
        component |= {"sub_type": "url", "index": "0"}
    body["template"]["components"].append(component)

    response = await send(sandbox, body)

    assert (response.status_code, error_code(response)) == (400, 131008)
    expected = "button[0].parameters[0]" if kind == "button" else "header.parameters[0]"
    assert expected in response.json()["error"]["error_data"]["details"]


@pytest.mark.parametrize("value", ["R$ 150,00\nvence hoje", "R$\t150,00", "R$     150,00"])
async def test_body_parameter_with_a_line_break_tab_or_five_spaces_is_refused(
    sandbox: httpx.AsyncClient, value: str
) -> None:
    response = await send(sandbox, with_parameter(value))

    assert (response.status_code, error_code(response)) == (400, 100)
    assert "body.parameters[2]" in response.json()["error"]["error_data"]["details"]
    assert (await settle(sandbox))["sent"] == []


async def test_a_hyphen_and_four_spaces_in_a_row_are_accepted(sandbox: httpx.AsyncClient) -> None:
    body = with_parameter("R$    150,00")
    body["template"]["components"][0]["parameters"][1]["text"] = "-"

    response = await send(sandbox, body)

    assert response.status_code == 200, response.text
    (message,) = (await settle(sandbox))["sent"]
    assert message["payload"]["rendered"] == (
        "Olá Maria, sua compra na - no valor de R$    150,00 vence em 10/05/2026."
    )


async def test_free_text_outside_the_window_is_131047(sandbox: httpx.AsyncClient) -> None:
    response = await send(sandbox, text())

    assert (response.status_code, error_code(response)) == (400, 131047)


async def test_debtor_reply_opens_the_window_and_arrives_signed(
    sandbox: httpx.AsyncClient, receiver: Receiver
) -> None:
    wamid = (await send(sandbox, reminder())).json()["messages"][0]["id"]
    reply = await sandbox.post(
        f"/_sandbox/whatsapp/numbers/{PHONE_ID}/replies",
        json={"from": DEBTOR, "type": "button", "payload": "PAID:8841", "context_id": wamid},
    )
    assert reply.status_code == 201

    response = await send(sandbox, text())
    await settle(sandbox)

    assert response.status_code == 200
    assert "message_status" not in response.json()["messages"][0]
    inbound = [
        change["value"]
        for payload in receiver.payloads()
        for change in payload["entry"][0]["changes"]
        if "messages" in change["value"]
    ]
    assert len(inbound) == 1
    message = inbound[0]["messages"][0]
    assert message["button"] == {"payload": "PAID:8841", "text": "PAID:8841"}
    assert message["context"]["id"] == wamid
    assert inbound[0]["contacts"][0]["wa_id"] == DEBTOR
    free = [
        s for s in receiver.statuses_received() if s["id"] == response.json()["messages"][0]["id"]
    ]
    assert free[0]["pricing"]["type"] == "free_customer_service"


async def test_reply_older_than_24_hours_leaves_the_window_closed(
    sandbox: httpx.AsyncClient,
) -> None:
    await sandbox.post(
        f"/_sandbox/whatsapp/numbers/{PHONE_ID}/replies",
        json={"from": DEBTOR, "text": "oi", "timestamp": int(time.time()) - 25 * 3600},
    )

    assert error_code(await send(sandbox, text())) == 131047


async def test_interactive_reply_carries_the_button_id(
    sandbox: httpx.AsyncClient, receiver: Receiver
) -> None:
    await sandbox.post(
        f"/_sandbox/whatsapp/numbers/{PHONE_ID}/replies",
        json={
            "from": DEBTOR,
            "type": "interactive",
            "reply_id": "PAY_PIX:8841",
            "reply_title": "PIX",
        },
    )
    await settle(sandbox)

    message = receiver.payloads()[0]["entry"][0]["changes"][0]["value"]["messages"][0]
    assert message["interactive"] == {
        "type": "button_reply",
        "button_reply": {"id": "PAY_PIX:8841", "title": "PIX"},
    }


async def test_81st_message_within_one_second_is_130429(
    sandbox: httpx.AsyncClient, state: SandboxState
) -> None:
    await configure(sandbox, webhook_url=None)
    state.clock = lambda: 1_800_000_000.0  # every send inside the same second, however slow
    codes = []
    for i in range(81):
        response = await send(sandbox, reminder(to=f"55119{i:08d}"))
        codes.append(response.status_code)

    assert codes[:80] == [200] * 80
    assert codes[80] == 429
    assert error_code(response) == 130429
    state.clock = lambda: 1_800_000_001.0
    assert (await send(sandbox, reminder(to="5511900000000"))).status_code == 200


async def test_pair_limit_is_131056_for_that_recipient_only(sandbox: httpx.AsyncClient) -> None:
    await configure(sandbox, webhook_url=None, pair_burst=3)
    for _ in range(3):
        assert (await send(sandbox, reminder())).status_code == 200

    limited = await send(sandbox, reminder())
    other = await send(sandbox, reminder(to="5521999998888"))

    assert error_code(limited) == 131056
    assert other.status_code == 200


async def test_undeliverable_recipient_fails_with_131026_status(
    sandbox: httpx.AsyncClient, receiver: Receiver
) -> None:
    await sandbox.post("/_sandbox/whatsapp/contacts", json={"phone": DEBTOR, "undeliverable": True})

    response = await send(sandbox, reminder())
    await settle(sandbox)

    assert response.status_code == 200
    [failed] = receiver.statuses_received()
    assert failed["status"] == "failed"
    assert failed["errors"][0]["code"] == 131026
    assert failed["biz_opaque_callback_data"] == "inv_8841:att_2"
    assert "pricing" not in failed


async def test_undeliverable_recipient_can_be_refused_synchronously(
    sandbox: httpx.AsyncClient,
) -> None:
    await sandbox.post(
        "/_sandbox/whatsapp/contacts",
        json={"phone": DEBTOR, "undeliverable": True, "undeliverable_sync": True},
    )

    response = await send(sandbox, reminder())

    assert (response.status_code, error_code(response)) == (400, 131026)


async def test_legacy_brazilian_account_answers_with_the_12_digit_wa_id(
    sandbox: httpx.AsyncClient,
) -> None:
    await sandbox.post("/_sandbox/whatsapp/contacts", json={"phone": DEBTOR, "legacy_wa_id": True})

    response = await send(sandbox, reminder())

    assert response.json()["contacts"] == [{"input": DEBTOR, "wa_id": "551187654321"}]


async def test_duplicates_option_repeats_every_status(
    sandbox: httpx.AsyncClient, receiver: Receiver
) -> None:
    await configure(sandbox, duplicate_probability=1.0)

    await send(sandbox, reminder())
    await settle(sandbox)

    assert sorted(s["status"] for s in receiver.statuses_received()) == [
        "delivered",
        "delivered",
        "read",
        "read",
        "sent",
        "sent",
    ]


async def test_out_of_order_option_delivers_sent_after_delivered(
    sandbox: httpx.AsyncClient, receiver: Receiver
) -> None:
    await configure(sandbox, out_of_order_probability=1.0)

    await send(sandbox, reminder())
    await settle(sandbox)

    assert [s["status"] for s in receiver.statuses_received()] == ["delivered", "sent", "read"]


async def test_batching_option_puts_several_statuses_in_one_post(
    sandbox: httpx.AsyncClient, receiver: Receiver
) -> None:
    await configure(sandbox, batch_size=3)

    await send(sandbox, reminder())
    await settle(sandbox)

    assert len(receiver.posts) == 1
    assert len(receiver.statuses_received()) == 3


async def test_non_2xx_answers_are_retried(sandbox: httpx.AsyncClient, receiver: Receiver) -> None:
    await configure(sandbox, batch_size=3)
    receiver.statuses = [500, 503]

    await send(sandbox, reminder())
    activity = await settle(sandbox)

    assert [d["outcome"] for d in activity["deliveries"]] == [500, 503, 200]
    assert len(receiver.posts) == 3


async def test_injected_fault_answers_with_its_code(sandbox: httpx.AsyncClient) -> None:
    await sandbox.post(
        f"/_sandbox/whatsapp/numbers/{PHONE_ID}/faults",
        json={"errors": [{"code": 131000, "probability": 1.0}]},
    )

    response = await send(sandbox, reminder())

    assert (response.status_code, error_code(response)) == (500, 131000)


async def test_injected_async_fault_becomes_a_failed_status(
    sandbox: httpx.AsyncClient, receiver: Receiver
) -> None:
    await sandbox.post(
        f"/_sandbox/whatsapp/numbers/{PHONE_ID}/faults",
        json={"errors": [{"code": 131049, "probability": 1.0, "async_": True}]},
    )

    assert (await send(sandbox, reminder())).status_code == 200
    await settle(sandbox)

    [failed] = receiver.statuses_received()
    assert (failed["status"], failed["errors"][0]["code"]) == ("failed", 131049)


async def test_created_template_is_pending_then_approved_with_a_webhook(
    sandbox: httpx.AsyncClient, receiver: Receiver
) -> None:
    created = await sandbox.post(
        f"/v24.0/{WABA_ID}/message_templates",
        headers={"Authorization": f"Bearer {TOKEN}"},
        json={
            "name": "segunda_via",
            "language": "pt_BR",
            "category": "UTILITY",
            "components": [{"type": "BODY", "text": "Olá {{1}}, segue a 2ª via."}],
        },
    )
    assert created.json() == {
        "id": created.json()["id"],
        "status": "PENDING",
        "category": "UTILITY",
    }
    await settle(sandbox)

    listed = await sandbox.get(
        f"/v24.0/{WABA_ID}/message_templates",
        params={"name": "segunda_via"},
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    assert listed.json()["data"][0]["status"] == "APPROVED"
    [payload] = receiver.payloads()
    assert isinstance(payload["entry"][0]["time"], int)
    change = payload["entry"][0]["changes"][0]
    assert change["field"] == "message_template_status_update"
    assert change["value"]["event"] == "APPROVED"
    assert change["value"]["message_template_id"] == int(created.json()["id"])
    body = reminder(name="segunda_via", params=1)
    assert (await send(sandbox, body)).status_code == 200


async def test_template_with_a_rejected_word_is_rejected(
    sandbox: httpx.AsyncClient, receiver: Receiver
) -> None:
    await sandbox.post(
        f"/v24.0/{WABA_ID}/message_templates",
        headers={"Authorization": f"Bearer {TOKEN}"},
        json={
            "name": "cobranca_dura",
            "language": "pt_BR",
            "category": "UTILITY",
            "components": [{"type": "BODY", "text": "Pague {{1}} ou sofra a AMEAÇA."}],
        },
    )
    await settle(sandbox)

    value = receiver.payloads()[0]["entry"][0]["changes"][0]["value"]
    assert (value["event"], value["reason"]) == ("REJECTED", "ABUSIVE_CONTENT")


async def test_template_is_deleted_by_name(sandbox: httpx.AsyncClient) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    path = f"/v24.0/{WABA_ID}/message_templates"

    deleted = await sandbox.delete(path, params={"name": "lembrete_vencimento_v1"}, headers=auth)
    again = await sandbox.delete(path, params={"name": "lembrete_vencimento_v1"}, headers=auth)

    assert deleted.json() == {"success": True}
    assert again.status_code == 404


async def test_verify_webhook_runs_the_subscription_handshake(sandbox: httpx.AsyncClient) -> None:
    response = await sandbox.post(f"/_sandbox/whatsapp/numbers/{PHONE_ID}/verify-webhook")

    assert response.json() == {"verified": True, "status": 200}


async def test_activity_lists_what_the_number_sent_and_received(
    sandbox: httpx.AsyncClient,
) -> None:
    await sandbox.post(
        f"/_sandbox/whatsapp/numbers/{PHONE_ID}/replies", json={"from": DEBTOR, "text": "oi"}
    )
    await send(sandbox, reminder())

    activity = await settle(sandbox)

    assert activity["received"][0]["text"] == {"body": "oi"}
    assert activity["sent"][0]["payload"]["rendered"] == (
        "Olá Maria, sua compra na Loja Exemplo no valor de R$ 150,00 vence em 10/05/2026."
    )
    assert activity["sent"][0]["statuses"] == ["sent", "delivered", "read"]


async def test_reset_forgets_numbers(sandbox: httpx.AsyncClient) -> None:
    await sandbox.post("/_sandbox/whatsapp/reset", json={"seed": 1})

    assert (await send(sandbox, reminder())).status_code == 401


async def test_inbound_message_can_be_marked_read(sandbox: httpx.AsyncClient) -> None:
    reply = await sandbox.post(
        f"/_sandbox/whatsapp/numbers/{PHONE_ID}/replies", json={"from": DEBTOR, "text": "oi"}
    )

    response = await send(
        sandbox,
        {"messaging_product": "whatsapp", "status": "read", "message_id": reply.json()["id"]},
    )

    assert response.json() == {"success": True}


async def test_shutdown_cancels_pending_deliveries(
    settings: Settings, sessionmaker: SessionMaker, redis: Any, receiver: Receiver
) -> None:
    state = SandboxState()
    app = create_app(settings, sessionmaker=sessionmaker, redis=redis, whatsapp=state)
    started = time.monotonic()
    async with run_lifespan(app):
        transport = httpx.ASGITransport(app=cast(Any, app))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            await register(client, webhook_url=receiver.url, sent_delay_ms=60_000)
            await client.post(
                f"/_sandbox/whatsapp/wabas/{WABA_ID}",
                json={"templates": [{"name": "lembrete_vencimento_v1", "body": BODY}]},
            )
            assert (await send(client, reminder())).status_code == 200
            dispatcher = app.state.whatsapp
            assert dispatcher.tasks

    assert not dispatcher.tasks
    assert time.monotonic() - started < 5
    assert receiver.posts == []


async def test_openapi_schema_documents_the_sandbox(sandbox: httpx.AsyncClient) -> None:
    paths = (await sandbox.get("/schema/openapi.json")).json()["paths"]

    assert "/_sandbox/whatsapp/numbers" in paths
    assert "/{version}/{phone_number_id}/messages" in paths


async def test_duplicates_option_repeats_inbound_messages_too(
    sandbox: httpx.AsyncClient, receiver: Receiver
) -> None:
    await configure(sandbox, duplicate_probability=1.0)

    await sandbox.post(
        f"/_sandbox/whatsapp/numbers/{PHONE_ID}/replies", json={"from": DEBTOR, "text": "oi"}
    )
    await settle(sandbox)

    ids = [p["entry"][0]["changes"][0]["value"]["messages"][0]["id"] for p in receiver.payloads()]
    assert len(ids) == 2
    assert ids[0] == ids[1]
