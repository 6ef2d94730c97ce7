"""The sandbox chat page, under ``/_sandbox/chat``: each debtor phone a business number talked to,
shown as a WhatsApp chat, so a person in the demo reads the reminders as the debtor would and
answers them.

The page (``chat.html``, one self-contained file) polls the JSON routes here.  They render what
the sandbox keeps — the send payloads, the approved template they name, the debtor's messages —
into bubbles: text, header, footer, buttons, interactive options and the status tick as it stands
now (each status shows once its webhook delay has passed).  Every tappable thing carries the
exact body the page posts to the control API's ``replies`` route, so an answer goes through the
same machinery, and the same signed webhook, as any debtor reply.
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

import msgspec
from litestar import MediaType, Request, Router, get
from litestar.params import FromPath

from services.sandbox.control import Reply, number_of
from services.sandbox.state import (
    PLACEHOLDER,
    NumberState,
    Outbound,
    SandboxState,
    canonical,
    digits,
)
from services.sandbox.whatsapp import dispatcher_of
from shared.errors import ValidationFailed

PAGE = Path(__file__).with_name("chat.html").read_text(encoding="utf-8")
SAO_PAULO = ZoneInfo("America/Sao_Paulo")
MEDIA_LABELS = {
    "image": "📷 Foto",
    "video": "🎥 Vídeo",
    "audio": "🎵 Áudio",
    "sticker": "Figurinha",
    "document": "📄 Documento",
}

Status = Literal["pending", "sent", "delivered", "read", "failed"]
PROGRESSION: tuple[Status, ...] = ("sent", "delivered", "read")


class Button(msgspec.Struct, kw_only=True):
    """A template button: quick replies answer, ``url`` opens a link, the others only show."""

    type: str
    text: str
    payload: str | None = None
    url: str | None = None
    answer: Reply | None = None


class Option(msgspec.Struct, kw_only=True):
    """An interactive reply button or list row the debtor can pick."""

    id: str
    title: str
    description: str | None = None
    section: str | None = None
    answer: Reply


class Attachment(msgspec.Struct, kw_only=True):
    """A media message or header, shown by its kind and file name."""

    kind: str
    filename: str | None = None
    link: str | None = None


class ChatMessage(msgspec.Struct, kw_only=True):
    """One bubble.  ``business`` messages sit on the left, the debtor's own on the right."""

    id: str
    direction: Literal["business", "debtor"]
    type: str
    text: str
    header: str | None = None
    attachment: Attachment | None = None
    footer: str | None = None
    buttons: list[Button] = msgspec.field(default_factory=list)
    options: list[Option] = msgspec.field(default_factory=list)
    list_button: str | None = None
    template: str | None = None
    context_id: str | None = None
    status: Status
    timestamp: float
    time: str
    date: str


class ContactSummary(msgspec.Struct, kw_only=True):
    wa_id: str
    display: str
    name: str
    last_text: str
    last_direction: Literal["business", "debtor"]
    last_status: Status
    last_time: str
    last_date: str
    last_timestamp: float


class NumberSummary(msgspec.Struct, kw_only=True):
    phone_number_id: str
    display: str
    waba_id: str
    contacts: list[ContactSummary]


class Conversation(msgspec.Struct, kw_only=True):
    phone_number_id: str
    number_display: str
    wa_id: str
    display: str
    name: str
    window_open: bool
    messages: list[ChatMessage]


def display_phone(number: str) -> str:
    """``+55 11 98765-4321`` for a Brazilian number (12 or 13 digits), else ``+`` and digits."""
    number = digits(number)
    if number.startswith("55") and len(number) in (12, 13):
        local = number[4:]
        return f"+55 {number[2:4]} {local[:-4]}-{local[-4:]}"
    return "+" + number


def local_time(timestamp: float) -> tuple[str, str]:
    """(``HH:MM``, ``dd/mm/aaaa``) in São Paulo, as the debtor's phone shows them."""
    moment = datetime.fromtimestamp(timestamp, SAO_PAULO)
    return moment.strftime("%H:%M"), moment.strftime("%d/%m/%Y")


def safe_url(url: Any) -> str | None:
    """Only web links become clickable; anything else (``javascript:``…) is dropped."""
    text = str(url or "")
    return text if re.match(r"https?://", text, re.IGNORECASE) else None


def fill(text: str, parameters: list[Any]) -> str:
    """``text`` with its ``{{1}}`` / ``{{name}}`` placeholders replaced by text parameters."""
    params = [p for p in parameters if isinstance(p, dict)]
    named = {str(p.get("parameter_name")): str(p.get("text", "")) for p in params}

    def value(match: re.Match[str]) -> str:
        key = match.group(1)
        if key.isdigit() and 0 < int(key) <= len(params):
            return str(params[int(key) - 1].get("text", ""))
        return named.get(key, match.group(0))

    return PLACEHOLDER.sub(value, text)


def status_at(message: Outbound, number: NumberState, now: float) -> Status:
    """The tick the message shows at ``now``: each status once its delay has passed, in the
    order a phone shows them (a webhook arriving out of order does not move a tick back)."""
    config = number.config
    delays = message.status_delays_ms or (
        config.sent_delay_ms,
        config.delivered_delay_ms,
        config.read_delay_ms,
    )
    elapsed_ms = (now - message.created_at) * 1000
    if "failed" in message.statuses:
        return "failed" if elapsed_ms >= delays[0] else "pending"
    reached = [s for s in PROGRESSION if s in message.statuses]
    status: Status = "pending"
    for name, delay in zip(reached, sorted(delays[: len(reached)]), strict=True):
        if elapsed_ms >= delay:
            status = name
    return status


def quick_reply(wa_id: str, context_id: str, text: str, payload: str | None) -> Reply:
    return Reply(from_=wa_id, type="button", text=text, payload=payload, context_id=context_id)


def interactive_reply(
    wa_id: str, context_id: str, kind: Literal["button_reply", "list_reply"], row: dict[str, Any]
) -> Reply:
    return Reply(
        from_=wa_id,
        type="interactive",
        interactive_type=kind,
        reply_id=str(row.get("id", "")),
        reply_title=str(row.get("title", "")),
        context_id=context_id,
    )


def attachment(kind: str, media: Any) -> Attachment:
    media = obj(media)
    filename = media.get("filename")
    return Attachment(
        kind=kind,
        filename=str(filename) if filename else None,
        link=safe_url(media.get("link")),
    )


def parameters_of(components: list[Any], kind: str, index: int | None = None) -> list[Any]:
    """The parameters a send gave to one component (a button by its ``index``)."""
    for component in components:
        if not isinstance(component, dict) or str(component.get("type", "")).lower() != kind:
            continue
        if index is not None and str(component.get("index", "")) != str(index):
            continue
        parameters = component.get("parameters")
        return parameters if isinstance(parameters, list) else []
    return []


def template_buttons(
    spec: list[Any], components: list[Any], wa_id: str, wamid: str
) -> list[Button]:
    buttons: list[Button] = []
    for index, button in enumerate(map(obj, spec)):
        kind, text = str(button.get("type", "")).lower(), str(button.get("text", ""))
        params = parameters_of(components, "button", index)
        if kind == "quick_reply":
            payload = next((str(p["payload"]) for p in map(obj, params) if "payload" in p), None)
            answer = quick_reply(wa_id, wamid, text, payload)
            buttons.append(Button(type=kind, text=text, payload=payload, answer=answer))
        elif kind == "url":
            url = safe_url(fill(str(button.get("url", "")), params))
            buttons.append(Button(type=kind, text=text, url=url))
        else:
            buttons.append(Button(type=kind, text=text))
    return buttons


def obj(value: Any) -> dict[str, Any]:
    """``value`` if it is a JSON object, else an empty one (send payloads are loosely checked)."""
    return value if isinstance(value, dict) else {}


def seq(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def optional_text(value: Any) -> str | None:
    return None if value is None else str(value)


def template_bubble(
    bubble: ChatMessage, state: SandboxState, number: NumberState, message: Outbound
) -> None:
    """Header, footer and buttons of the approved template the send named, filled in."""
    spec = obj(message.payload.get("template"))
    key = (str(spec.get("name", "")), str(obj(spec.get("language")).get("code", "")))
    bubble.template = key[0]
    bubble.text = str(message.payload.get("rendered", ""))
    template = state.waba(number.config.waba_id).templates.get(key)
    if template is None:
        return  # deleted since: the rendered body is all the sandbox still knows
    sent = seq(spec.get("components"))
    for component in template.components:
        kind = str(component.get("type", "")).upper()
        if kind == "HEADER":
            header_format = str(component.get("format", "TEXT")).lower()
            params = parameters_of(sent, "header")
            if header_format == "text":
                bubble.header = fill(str(component.get("text", "")), params)
            else:
                media = next((obj(p).get(header_format) for p in params), None)
                bubble.attachment = attachment(header_format, media)
        elif kind == "FOOTER":
            bubble.footer = str(component.get("text", ""))
        elif kind == "BUTTONS":
            specs = seq(component.get("buttons"))
            bubble.buttons = template_buttons(specs, sent, message.wa_id, message.id)


def interactive_options(action: dict[str, Any], wa_id: str, wamid: str) -> list[Option]:
    """The reply buttons or list rows of an interactive message, each with its answer."""
    options = []
    for button in seq(action.get("buttons")):
        row = obj(obj(button).get("reply"))
        answer = interactive_reply(wa_id, wamid, "button_reply", row)
        options.append(
            Option(id=answer.reply_id or "", title=answer.reply_title or "", answer=answer)
        )
    for section in map(obj, seq(action.get("sections"))):
        for row in map(obj, seq(section.get("rows"))):
            answer = interactive_reply(wa_id, wamid, "list_reply", row)
            options.append(
                Option(
                    id=answer.reply_id or "",
                    title=answer.reply_title or "",
                    description=optional_text(row.get("description")),
                    section=optional_text(section.get("title")),
                    answer=answer,
                )
            )
    return options


def interactive_bubble(bubble: ChatMessage, body: dict[str, Any], wa_id: str) -> None:
    """Body, header, footer and the reply buttons, list rows or link of an interactive send."""
    header = obj(body.get("header"))
    kind = str(header.get("type", ""))
    if kind == "text":
        bubble.header = str(header.get("text", ""))
    elif kind:
        bubble.attachment = attachment(kind, header.get(kind))
    bubble.text = str(obj(body.get("body")).get("text", ""))
    bubble.footer = optional_text(obj(body.get("footer")).get("text"))
    action = obj(body.get("action"))
    bubble.options = interactive_options(action, wa_id, bubble.id)
    if body.get("type") == "list":
        bubble.list_button = str(action.get("button", "Ver opções"))
    parameters = obj(action.get("parameters"))
    if parameters.get("url"):
        text = str(parameters.get("display_text", "Abrir"))
        bubble.buttons.append(Button(type="url", text=text, url=safe_url(parameters["url"])))


def other_text(kind: str, body: dict[str, Any]) -> str:
    """A line for message types the page has no special bubble for."""
    if kind == "location":
        place = body.get("name") or body.get("address")
        return f"📍 {place}" if place else f"📍 {body.get('latitude')}, {body.get('longitude')}"
    if kind == "contacts":
        return "👤 Contato compartilhado"
    if kind == "reaction":
        return f"Reagiu com {body.get('emoji', '')}"
    return f"[{kind}]"


def business_bubble(
    state: SandboxState, number: NumberState, message: Outbound, now: float
) -> ChatMessage:
    time, date = local_time(message.created_at)
    bubble = ChatMessage(
        id=message.id,
        direction="business",
        type=message.type,
        text="",
        status=status_at(message, number, now),
        timestamp=message.created_at,
        time=time,
        date=date,
    )
    body = obj(message.payload.get(message.type))
    if message.type == "template":
        template_bubble(bubble, state, number, message)
    elif message.type == "text":
        bubble.text = str(body.get("body", ""))
    elif message.type == "interactive":
        interactive_bubble(bubble, body, message.wa_id)
    elif message.type in MEDIA_LABELS:
        bubble.attachment = attachment(message.type, body)
        bubble.text = str(body.get("caption", ""))
    else:
        bubble.text = other_text(message.type, body)
    return bubble


def debtor_bubble(number: NumberState, message: dict[str, Any]) -> ChatMessage:
    kind = str(message.get("type", "text"))
    content = obj(message.get(kind))
    if kind == "button":
        text = str(content.get("text", ""))
    elif kind == "interactive":
        text = str(obj(content.get(str(content.get("type")))).get("title", ""))
    else:
        text = str(content.get("body", f"[{kind}]"))
    timestamp = float(message["timestamp"])
    time, date = local_time(timestamp)
    return ChatMessage(
        id=message["id"],
        direction="debtor",
        type=kind,
        text=text,
        context_id=optional_text(obj(message.get("context")).get("id")),
        status="read" if message["id"] in number.read_by_business else "delivered",
        timestamp=timestamp,
        time=time,
        date=date,
    )


def conversations(state: SandboxState, number: NumberState) -> dict[str, list[ChatMessage]]:
    """Every chat of a number, keyed by the debtor's canonical phone, oldest message first."""
    now = state.clock()
    keyed: list[tuple[str, float, ChatMessage]] = [
        (canonical(m.wa_id), m.created_at, business_bubble(state, number, m, now))
        for m in number.sent
    ]
    for message in number.received:
        order = number.arrivals.get(message["id"], float(message["timestamp"]))
        keyed.append((canonical(message["from"]), order, debtor_bubble(number, message)))
    keyed.sort(key=lambda item: item[1])
    chats: dict[str, list[ChatMessage]] = {}
    for key, _, bubble in keyed:
        chats.setdefault(key, []).append(bubble)
    return chats


def wa_id_of(number: NumberState, key: str) -> str:
    """The debtor's WhatsApp id as the number saw it (12 digits for a legacy account)."""
    ids = [m.wa_id for m in number.sent if canonical(m.wa_id) == key]
    ids += [str(m["from"]) for m in number.received if canonical(str(m["from"])) == key]
    return ids[-1] if ids else key


def preview(bubble: ChatMessage) -> str:
    """The line under a contact in the chat list."""
    if bubble.text or bubble.header:
        return bubble.text or bubble.header or ""
    if bubble.attachment is not None:
        return bubble.attachment.filename or MEDIA_LABELS.get(bubble.attachment.kind, "📎")
    return f"[{bubble.type}]"


def summary(state: SandboxState, number: NumberState) -> NumberSummary:
    contacts = []
    for key, messages in conversations(state, number).items():
        last = messages[-1]
        contacts.append(
            ContactSummary(
                wa_id=wa_id_of(number, key),
                display=display_phone(key),
                name=state.contact(key).name,
                last_text=preview(last),
                last_direction=last.direction,
                last_status=last.status,
                last_time=last.time,
                last_date=last.date,
                last_timestamp=last.timestamp,
            )
        )
    contacts.sort(key=lambda c: c.last_timestamp, reverse=True)
    return NumberSummary(
        phone_number_id=number.config.phone_number_id,
        display=display_phone(number.config.display_phone_number),
        waba_id=number.config.waba_id,
        contacts=contacts,
    )


@get("/", media_type=MediaType.HTML, sync_to_thread=False, include_in_schema=False)
def chat_page() -> str:
    """The chat page (pt-BR); it loads everything else from the JSON routes below."""
    return PAGE


@get("/api/numbers")
async def list_numbers(request: Request[Any, Any, Any]) -> list[NumberSummary]:
    """Every registered business number with its chats, the most recent first."""
    state = dispatcher_of(request).state
    return [summary(state, number) for number in state.numbers.values()]


@get("/api/numbers/{phone_number_id:str}/contacts/{wa_id:str}")
async def conversation(
    request: Request[Any, Any, Any], phone_number_id: FromPath[str], wa_id: FromPath[str]
) -> Conversation:
    """One chat, oldest message first; a phone the number never talked to is an empty chat."""
    state = dispatcher_of(request).state
    number = number_of(request, phone_number_id)
    if not re.fullmatch(r"\d{8,15}", digits(wa_id)):
        raise ValidationFailed(f"Not a phone number: {wa_id}")
    key = canonical(wa_id)
    return Conversation(
        phone_number_id=phone_number_id,
        number_display=display_phone(number.config.display_phone_number),
        wa_id=wa_id_of(number, key),
        display=display_phone(key),
        name=state.contact(key).name,
        window_open=number.window_open(key, state.clock()),
        messages=conversations(state, number).get(key, []),
    )


chat_router = Router(
    path="/_sandbox/chat",
    route_handlers=[chat_page, list_numbers, conversation],
    tags=["sandbox chat"],
)
