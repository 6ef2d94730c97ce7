"""The sandbox chat page shows each debtor phone as a WhatsApp chat and answers through the
control API's reply route: real HTTP into the sandbox app, a real HTTP receiver for webhooks."""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest_asyncio

from services.sandbox.state import SandboxState
from tests.sandbox.receiver import Receiver
from tests.sandbox.support import BODY, DEBTOR, PHONE_ID, SECRET, TOKEN, WABA_ID

CHAT = f"/_sandbox/chat/api/numbers/{PHONE_ID}/contacts/{DEBTOR}"
REPLIES = f"/_sandbox/whatsapp/numbers/{PHONE_ID}/replies"
T0 = 1_800_000_000.0  # 2027-01-15 08:00 UTC, 05:00 in São Paulo
REMINDER_COMPONENTS = [
    {"type": "HEADER", "format": "TEXT", "text": "Lembrete de {{1}}"},
    {"type": "BODY", "text": BODY},
    {"type": "FOOTER", "text": "Quita · mensagem automática"},
    {
        "type": "BUTTONS",
        "buttons": [
            {"type": "QUICK_REPLY", "text": "Já paguei"},
            {"type": "QUICK_REPLY", "text": "Quero negociar"},
            {"type": "URL", "text": "Pagar com Pix", "url": "https://pague.quita.dev/{{1}}"},
        ],
    },
]


def reminder() -> dict[str, Any]:
    """A send of ``lembrete_com_botoes`` with its header, body and button parameters."""
    values = ["Maria", "Loja Exemplo", "R$ 150,00", "10/05/2026"]
    return {
        "messaging_product": "whatsapp",
        "to": DEBTOR,
        "type": "template",
        "template": {
            "name": "lembrete_com_botoes",
            "language": {"code": "pt_BR"},
            "components": [
                {"type": "header", "parameters": [{"type": "text", "text": "pagamento"}]},
                {"type": "body", "parameters": [{"type": "text", "text": v} for v in values]},
                {
                    "type": "button",
                    "sub_type": "quick_reply",
                    "index": "0",
                    "parameters": [{"type": "payload", "payload": "PAID:8841"}],
                },
                {
                    "type": "button",
                    "sub_type": "url",
                    "index": "2",
                    "parameters": [{"type": "text", "text": "inv_8841"}],
                },
            ],
        },
    }


def reminder_body_only(name: str = "Maria") -> dict[str, Any]:
    """The fixture's body-only template (``lembrete_vencimento_v1``)."""
    values = [name, "Loja Exemplo", "R$ 150,00", "10/05/2026"]
    return {
        "messaging_product": "whatsapp",
        "to": DEBTOR,
        "type": "template",
        "template": {
            "name": "lembrete_vencimento_v1",
            "language": {"code": "pt_BR"},
            "components": [
                {"type": "body", "parameters": [{"type": "text", "text": v} for v in values]}
            ],
        },
    }


def interactive_list() -> dict[str, Any]:
    return {
        "messaging_product": "whatsapp",
        "to": DEBTOR,
        "type": "interactive",
        "interactive": {
            "type": "list",
            "header": {"type": "text", "text": "Formas de pagamento"},
            "body": {"text": "Como você prefere pagar?"},
            "footer": {"text": "Loja Exemplo"},
            "action": {
                "button": "Ver opções",
                "sections": [
                    {
                        "title": "À vista",
                        "rows": [
                            {"id": "PAY_PIX:8841", "title": "Pix", "description": "Na hora"},
                            {"id": "PAY_BOLETO:8841", "title": "Boleto"},
                        ],
                    }
                ],
            },
        },
    }


async def send(client: httpx.AsyncClient, body: dict[str, Any]) -> str:
    response = await client.post(
        f"/v24.0/{PHONE_ID}/messages", json=body, headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert response.status_code == 200, response.text
    wamid: str = response.json()["messages"][0]["id"]
    return wamid


async def settle(client: httpx.AsyncClient) -> None:
    await client.get(f"/_sandbox/whatsapp/numbers/{PHONE_ID}", params={"wait": "true"})


async def chat(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get(CHAT)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def reply(client: httpx.AsyncClient, body: dict[str, Any]) -> None:
    """What the page's JS does: post the given body to the control API's reply route."""
    response = await client.post(REPLIES, json=body)
    assert response.status_code == 201, response.text


def inbound_messages(receiver: Receiver) -> list[tuple[dict[str, str], bytes, dict[str, Any]]]:
    found = []
    for (headers, raw), payload in zip(receiver.posts, receiver.payloads(), strict=True):
        for change in payload["entry"][0]["changes"]:
            for message in change["value"].get("messages", []):
                found.append((headers, raw, message))
    return found


@pytest_asyncio.fixture
async def reminder_template(sandbox: httpx.AsyncClient) -> None:
    """An approved template with a text header, a footer, two quick replies and a URL button."""
    response = await sandbox.post(
        f"/v24.0/{WABA_ID}/message_templates",
        json={
            "name": "lembrete_com_botoes",
            "language": "pt_BR",
            "category": "UTILITY",
            "components": REMINDER_COMPONENTS,
        },
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    assert response.status_code == 200, response.text
    await settle(sandbox)  # the simulated review approves it


async def test_page_is_in_portuguese_and_linked_from_the_index(
    sandbox: httpx.AsyncClient,
) -> None:
    page = await sandbox.get("/_sandbox/chat")
    index = await sandbox.get("/")

    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    for text in ("Conversas", "Digite uma mensagem", "Enviar", 'lang="pt-BR"'):
        assert text in page.text
    assert "/_sandbox/chat" in index.text


async def test_template_shows_rendered_with_header_footer_and_buttons(
    sandbox: httpx.AsyncClient, reminder_template: None
) -> None:
    wamid = await send(sandbox, reminder())

    [message] = (await chat(sandbox))["messages"]

    assert message["id"] == wamid
    assert message["direction"] == "business"
    assert message["template"] == "lembrete_com_botoes"
    assert message["header"] == "Lembrete de pagamento"
    assert message["text"] == (
        "Olá Maria, sua compra na Loja Exemplo no valor de R$ 150,00 vence em 10/05/2026."
    )
    assert message["footer"] == "Quita · mensagem automática"
    buttons = [(b["type"], b["text"], b["payload"], b["url"]) for b in message["buttons"]]
    assert buttons == [
        ("quick_reply", "Já paguei", "PAID:8841", None),
        ("quick_reply", "Quero negociar", None, None),
        ("url", "Pagar com Pix", None, "https://pague.quita.dev/inv_8841"),
    ]


async def test_status_tick_advances_as_each_webhook_delay_passes(
    sandbox: httpx.AsyncClient, state: SandboxState
) -> None:
    now = [T0]
    state.clock = lambda: now[0]
    await send(sandbox, reminder_body_only())
    seen = []
    for elapsed_ms in (0, 6, 16, 26):  # the fixture number: sent 5, delivered 15, read 25 ms
        now[0] = T0 + elapsed_ms / 1000
        seen.append((await chat(sandbox))["messages"][0]["status"])

    assert seen == ["pending", "sent", "delivered", "read"]


async def test_status_is_read_once_the_webhooks_went_out(
    sandbox: httpx.AsyncClient, receiver: Receiver
) -> None:
    await send(sandbox, reminder_body_only())
    await settle(sandbox)

    assert [s["status"] for s in receiver.statuses_received()] == ["sent", "delivered", "read"]
    assert (await chat(sandbox))["messages"][0]["status"] == "read"


async def test_undeliverable_message_shows_failed(sandbox: httpx.AsyncClient) -> None:
    await sandbox.post("/_sandbox/whatsapp/contacts", json={"phone": DEBTOR, "undeliverable": True})
    await send(sandbox, reminder_body_only())
    await settle(sandbox)

    assert (await chat(sandbox))["messages"][0]["status"] == "failed"


async def test_quick_reply_tapped_on_the_page_reaches_quita_signed_with_the_context(
    sandbox: httpx.AsyncClient, receiver: Receiver, reminder_template: None
) -> None:
    wamid = await send(sandbox, reminder())
    paid = (await chat(sandbox))["messages"][0]["buttons"][0]

    await reply(sandbox, paid["answer"])
    await settle(sandbox)

    [(headers, raw, message)] = inbound_messages(receiver)
    expected = hmac.new(SECRET.encode(), raw, hashlib.sha256).hexdigest()
    assert headers["x-hub-signature-256"] == f"sha256={expected}"
    assert message["type"] == "button"
    assert message["button"] == {"payload": "PAID:8841", "text": "Já paguei"}
    assert message["context"]["id"] == wamid
    assert message["from"] == DEBTOR


async def test_answer_appears_on_the_debtor_side_after_the_reminder(
    sandbox: httpx.AsyncClient, reminder_template: None
) -> None:
    wamid = await send(sandbox, reminder())
    negotiate = (await chat(sandbox))["messages"][0]["buttons"][1]

    await reply(sandbox, negotiate["answer"])

    messages = (await chat(sandbox))["messages"]
    assert [(m["direction"], m["text"]) for m in messages][1:] == [("debtor", "Quero negociar")]
    assert messages[1]["context_id"] == wamid


async def test_list_option_picked_on_the_page_arrives_as_a_list_reply(
    sandbox: httpx.AsyncClient, receiver: Receiver
) -> None:
    await reply(sandbox, {"from": DEBTOR, "type": "text", "text": "Oi, quero pagar"})
    wamid = await send(sandbox, interactive_list())
    message = (await chat(sandbox))["messages"][1]
    assert (message["header"], message["text"], message["footer"]) == (
        "Formas de pagamento",
        "Como você prefere pagar?",
        "Loja Exemplo",
    )
    assert message["list_button"] == "Ver opções"
    assert [(o["section"], o["title"], o["description"]) for o in message["options"]] == [
        ("À vista", "Pix", "Na hora"),
        ("À vista", "Boleto", None),
    ]

    await reply(sandbox, message["options"][0]["answer"])
    await settle(sandbox)

    answer = inbound_messages(receiver)[-1][2]
    assert answer["interactive"] == {
        "type": "list_reply",
        "list_reply": {"id": "PAY_PIX:8841", "title": "Pix"},
    }
    assert answer["context"]["id"] == wamid


async def test_contact_list_shows_the_formatted_phone_and_last_message_in_sao_paulo_time(
    sandbox: httpx.AsyncClient, state: SandboxState
) -> None:
    state.clock = lambda: T0
    await send(sandbox, reminder_body_only())
    await reply(sandbox, {"from": DEBTOR, "type": "text", "text": "Vou pagar amanhã"})

    response = await sandbox.get("/_sandbox/chat/api/numbers")

    [number] = response.json()
    assert (number["phone_number_id"], number["display"]) == (PHONE_ID, "+55 11 4002-8922")
    [contact] = number["contacts"]
    local = datetime.fromtimestamp(T0, ZoneInfo("America/Sao_Paulo"))
    assert contact["wa_id"] == DEBTOR
    assert contact["display"] == "+55 11 98765-4321"
    assert (contact["last_text"], contact["last_direction"]) == ("Vou pagar amanhã", "debtor")
    assert (contact["last_time"], contact["last_date"]) == ("05:00", "15/01/2027")
    assert (local.hour, local.minute) == (5, 0)  # UTC-3, no daylight saving since 2019


async def test_message_text_comes_raw_and_the_page_writes_it_as_text_only(
    sandbox: httpx.AsyncClient,
) -> None:
    await send(sandbox, reminder_body_only(name="<script>alert(1)</script>"))

    text = (await chat(sandbox))["messages"][0]["text"]
    page = (await sandbox.get("/_sandbox/chat")).text

    assert text.startswith("Olá <script>alert(1)</script>, sua compra")
    assert "textContent" in page
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write"):
        assert sink not in page
    assert "alert(1)" not in page


async def test_unknown_number_is_404_problem(sandbox: httpx.AsyncClient) -> None:
    response = await sandbox.get(f"/_sandbox/chat/api/numbers/999/contacts/{DEBTOR}")

    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == "not_found"


async def test_phone_never_talked_to_is_an_empty_chat(sandbox: httpx.AsyncClient) -> None:
    response = await sandbox.get(f"/_sandbox/chat/api/numbers/{PHONE_ID}/contacts/5521999998888")

    assert response.status_code == 200
    assert response.json()["messages"] == []
    assert response.json()["display"] == "+55 21 99999-8888"


async def test_legacy_account_chat_answers_from_its_12_digit_wa_id(
    sandbox: httpx.AsyncClient, receiver: Receiver
) -> None:
    await sandbox.post("/_sandbox/whatsapp/contacts", json={"phone": DEBTOR, "legacy_wa_id": True})
    await reply(sandbox, {"from": DEBTOR, "type": "text", "text": "Oi"})
    await send(sandbox, reminder_body_only())

    conversation = await chat(sandbox)
    await reply(sandbox, {"from": conversation["wa_id"], "type": "text", "text": "Recebi"})
    await settle(sandbox)

    assert conversation["wa_id"] == "551187654321"
    assert [m["direction"] for m in conversation["messages"]] == ["debtor", "business"]
    assert [m["from"] for _, _, m in inbound_messages(receiver)] == ["551187654321"] * 2
