"""Control API of the WhatsApp sandbox, under ``/_sandbox/whatsapp`` (JSON; not Meta's API).

Demo scripts and tests use it to register numbers, seed templates, play the debtor (replies that
open the 24-hour window), mark recipients undeliverable, inject faults and inspect what each
number sent and received.  Errors here are ordinary Quita problem+json.
"""

from __future__ import annotations

import dataclasses
import secrets
from typing import Any, Literal

import httpx
import msgspec
from litestar import Request, Router, get, post
from litestar.params import FromPath, FromQuery, JSONBody

from services.sandbox.state import Contact, FaultRule, NumberConfig, NumberState, canonical
from services.sandbox.whatsapp import dispatcher_of, inbound_webhook
from shared.errors import NotFound, ValidationFailed


class Reply(msgspec.Struct, kw_only=True):
    """A debtor's message to a business number (text, template quick reply or interactive)."""

    from_: str = msgspec.field(name="from")
    type: Literal["text", "button", "interactive"] = "text"
    text: str | None = None
    payload: str | None = None
    reply_id: str | None = None
    reply_title: str | None = None
    interactive_type: Literal["button_reply", "list_reply"] = "button_reply"
    context_id: str | None = None
    name: str | None = None
    timestamp: int | None = None


class Faults(msgspec.Struct, kw_only=True):
    errors: list[FaultRule] = msgspec.field(default_factory=list)
    latency_ms: int = 0


class SeedTemplate(msgspec.Struct, kw_only=True):
    name: str
    body: str
    language: str = "pt_BR"
    category: str = "UTILITY"
    status: str = "APPROVED"


class WabaSettings(msgspec.Struct, kw_only=True):
    review_delay_ms: int | None = None
    rejected_words: list[str] | None = None
    templates: list[SeedTemplate] = msgspec.field(default_factory=list)


class Reset(msgspec.Struct, kw_only=True):
    seed: int | None = None


def number_of(request: Request[Any, Any, Any], phone_number_id: str) -> NumberState:
    number = dispatcher_of(request).state.numbers.get(phone_number_id)
    if number is None:
        raise NotFound(f"No sandbox number {phone_number_id}.")
    return number


def public(config: NumberConfig) -> dict[str, Any]:
    return dataclasses.asdict(config)


@post("/numbers", status_code=201)
async def register_number(
    request: Request[Any, Any, Any], data: JSONBody[NumberConfig]
) -> dict[str, Any]:
    """Register (or replace) a business number with its token, app secret, webhook and quirks."""
    return public(dispatcher_of(request).state.register(data).config)


@post("/numbers/{phone_number_id:str}/config", status_code=200)
async def configure_number(
    request: Request[Any, Any, Any],
    phone_number_id: FromPath[str],
    data: JSONBody[dict[str, Any]],
) -> dict[str, Any]:
    """Change some settings of a number (delays, duplicates, out-of-order, batching, limits)."""
    number = number_of(request, phone_number_id)
    merged = {**public(number.config), **data, "phone_number_id": phone_number_id}
    try:
        config = msgspec.convert(merged, NumberConfig)
    except msgspec.ValidationError as exc:
        raise ValidationFailed(str(exc)) from None
    return public(dispatcher_of(request).state.register(config).config)


@get("/numbers/{phone_number_id:str}")
async def number_activity(
    request: Request[Any, Any, Any], phone_number_id: FromPath[str], wait: FromQuery[bool] = False
) -> dict[str, Any]:
    """What the number sent (with statuses), received, and each webhook delivery attempt.

    ``?wait=true`` first waits for every pending background delivery."""
    if wait:
        await dispatcher_of(request).idle()
    number = number_of(request, phone_number_id)
    return {
        "config": public(number.config),
        "sent": [m.as_dict() for m in number.sent],
        "received": number.received,
        "deliveries": number.deliveries,
    }


@post("/numbers/{phone_number_id:str}/faults", status_code=200)
async def inject_faults(
    request: Request[Any, Any, Any], phone_number_id: FromPath[str], data: JSONBody[Faults]
) -> dict[str, Any]:
    """Error codes answered with a probability (``async_``: as a failed status) and latency."""
    number = number_of(request, phone_number_id)
    number.config.faults = list(data.errors)
    number.config.latency_ms = data.latency_ms
    return public(number.config)


@post("/numbers/{phone_number_id:str}/replies", status_code=201)
async def debtor_reply(
    request: Request[Any, Any, Any], phone_number_id: FromPath[str], data: JSONBody[Reply]
) -> dict[str, Any]:
    """The debtor answers: a signed inbound ``messages`` webhook; opens the 24-hour window."""
    dispatcher = dispatcher_of(request)
    number = number_of(request, phone_number_id)
    contact = dispatcher.state.contact(data.from_)
    timestamp = data.timestamp or int(dispatcher.state.clock())
    message: dict[str, Any] = {
        "from": contact.wa_id,
        "id": "wamid." + secrets.token_urlsafe(32),
        "timestamp": str(timestamp),
        "type": data.type,
    }
    if data.context_id:
        message["context"] = {
            "from": number.config.display_phone_number,
            "id": data.context_id,
        }
    if data.type == "text":
        message["text"] = {"body": data.text or ""}
    elif data.type == "button":
        text = data.text or data.payload or ""
        message["button"] = {"payload": data.payload or text, "text": text}
    else:
        reply = {"id": data.reply_id or "", "title": data.reply_title or data.text or ""}
        message["interactive"] = {"type": data.interactive_type, data.interactive_type: reply}
    inbound_webhook(dispatcher, number, message, data.name or contact.name)
    return message


@post("/contacts", status_code=200)
async def upsert_contact(
    request: Request[Any, Any, Any], data: JSONBody[Contact]
) -> dict[str, Any]:
    """A WhatsApp user: 12-digit legacy wa_id, undeliverable (131026), read receipts."""
    data.phone = canonical(data.phone)
    dispatcher_of(request).state.contacts[data.phone] = data
    return {**dataclasses.asdict(data), "wa_id": data.wa_id}


@post("/wabas/{waba_id:str}", status_code=200)
async def configure_waba(
    request: Request[Any, Any, Any], waba_id: FromPath[str], data: JSONBody[WabaSettings]
) -> dict[str, Any]:
    """Review delay, words that get a template rejected, and templates seeded as given."""
    state = dispatcher_of(request).state
    waba = state.waba(waba_id)
    if data.review_delay_ms is not None:
        waba.review_delay_ms = data.review_delay_ms
    if data.rejected_words is not None:
        waba.rejected_words = data.rejected_words
    for seed in data.templates:
        state.add_template(
            waba,
            name=seed.name,
            language=seed.language,
            category=seed.category,
            components=[{"type": "BODY", "text": seed.body}],
            status=seed.status,
        )
    return {
        "waba_id": waba_id,
        "review_delay_ms": waba.review_delay_ms,
        "rejected_words": waba.rejected_words,
        "templates": [t.as_graph() for t in waba.templates.values()],
    }


@post("/numbers/{phone_number_id:str}/verify-webhook", status_code=200)
async def verify_webhook(
    request: Request[Any, Any, Any], phone_number_id: FromPath[str]
) -> dict[str, Any]:
    """Meta's subscription handshake against the number's webhook URL and verify token."""
    dispatcher = dispatcher_of(request)
    config = number_of(request, phone_number_id).config
    if not config.webhook_url:
        raise ValidationFailed("The number has no webhook_url.")
    challenge = str(secrets.randbelow(10**10))
    params = {
        "hub.mode": "subscribe",
        "hub.challenge": challenge,
        "hub.verify_token": config.verify_token or "",
    }
    try:
        response = await dispatcher.client.get(config.webhook_url, params=params)
    except httpx.HTTPError as exc:
        return {"verified": False, "error": type(exc).__name__}
    verified = response.status_code == 200 and response.text == challenge
    return {"verified": verified, "status": response.status_code}


@post("/reset", status_code=200)
async def reset(
    request: Request[Any, Any, Any], data: JSONBody[Reset | None] = None
) -> dict[str, str]:
    """Forget every number, WABA, contact and pending delivery (``seed`` fixes the dice)."""
    dispatcher = dispatcher_of(request)
    for task in list(dispatcher.tasks):
        task.cancel()
    dispatcher.state.reset(data.seed if data else None)
    return {"status": "reset"}


control_router = Router(
    path="/_sandbox/whatsapp",
    route_handlers=[
        register_number,
        configure_number,
        number_activity,
        inject_faults,
        debtor_reply,
        upsert_contact,
        configure_waba,
        verify_webhook,
        reset,
    ],
    tags=["sandbox control"],
)
