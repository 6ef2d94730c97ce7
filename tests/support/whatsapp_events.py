"""The webhook payload examples of the WhatsApp contract (handbook
``reference/whatsapp-cloud-api.md`` §5.6 a to l), built with what a test has — its channel's phone
number id and WABA id, its attempts' wamids, its customers' wa_ids, timestamps near now — and
the example's shape kept key for key; signed and posted to the webhooks service as Meta would;
and a snapshot of every row processing an event may change, to prove a second pass changes
nothing."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.domains.inbound.whatsapp import signature
from shared.models import (
    AuditEvent,
    CollectionHold,
    ContactAttempt,
    Conversation,
    ConversationMessage,
    Customer,
    CustomerPhone,
    Installment,
    MessageTemplate,
)
from shared.tenancy import SYSTEM, use_scope

Payload = dict[str, Any]

# the contract's error object of a failed status, example (d), for any code
_ERRORS = {
    131049: (
        "This message was not delivered to maintain healthy ecosystem engagement.",
        "In order to maintain a healthy ecosystem engagement, the message failed to be delivered.",
    ),
    131026: (
        "Message undeliverable",
        "Message failed to send because the recipient is not a WhatsApp user.",
    ),
}


@dataclass(frozen=True, slots=True)
class Number:
    """Our channel as Meta names it in a webhook."""

    phone_number_id: str
    waba_id: str
    display_phone_number: str = "551140028922"

    def metadata(self) -> Payload:
        return {
            "display_phone_number": self.display_phone_number,
            "phone_number_id": self.phone_number_id,
        }


def envelope(number: Number, *changes: Payload) -> Payload:
    """``{"object": …, "entry": [one entry of this WABA with these changes]}``."""
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": number.waba_id, "changes": list(changes)}],
    }


def messages_change(
    number: Number,
    *,
    contacts: list[Payload] | None = None,
    messages: list[Payload] | None = None,
    statuses: list[Payload] | None = None,
) -> Payload:
    """One ``field: "messages"`` change, its value's keys in the contract's order."""
    value: Payload = {"messaging_product": "whatsapp", "metadata": number.metadata()}
    if contacts is not None:
        value["contacts"] = contacts
    if messages is not None:
        value["messages"] = messages
    if statuses is not None:
        value["statuses"] = statuses
    return {"field": "messages", "value": value}


def contact(wa_id: str, name: str) -> Payload:
    return {"profile": {"name": name}, "wa_id": wa_id}


# --- statuses: examples a to d -----------------------------------------------------------------


def status_item(wamid: str, status: str, timestamp: int, recipient: str, **extra: Any) -> Payload:
    return {
        "id": wamid,
        "status": status,
        "timestamp": str(timestamp),
        "recipient_id": recipient,
        **extra,
    }


def sent(number: Number, wamid: str, recipient: str, timestamp: int, callback: str) -> Payload:
    """(a) sent — a utility template, billable, carrying our ``biz_opaque_callback_data``."""
    item = status_item(
        wamid,
        "sent",
        timestamp,
        recipient,
        biz_opaque_callback_data=callback,
        pricing={
            "billable": True,
            "pricing_model": "PMP",
            "type": "regular",
            "category": "utility",
        },
    )
    return envelope(number, messages_change(number, statuses=[item]))


def delivered(number: Number, wamid: str, recipient: str, timestamp: int) -> Payload:
    """(b) delivered — the pre-v24 shape, with ``conversation`` and the pricing repeated."""
    item = status_item(
        wamid,
        "delivered",
        timestamp,
        recipient,
        conversation={"id": "f5fdae39" + wamid[-8:], "origin": {"type": "utility"}},
        pricing={"billable": True, "pricing_model": "CBP", "category": "utility"},
    )
    return envelope(number, messages_change(number, statuses=[item]))


def read(number: Number, wamid: str, recipient: str, timestamp: int) -> Payload:
    """(c) read — no pricing (v24+)."""
    item = status_item(wamid, "read", timestamp, recipient)
    return envelope(number, messages_change(number, statuses=[item]))


def failed(
    number: Number, wamid: str, recipient: str, timestamp: int, code: int = 131049
) -> Payload:
    """(d) failed — with the error object of ``code`` (131049 as in the contract)."""
    title, details = _ERRORS[code]
    error = {
        "code": code,
        "title": title,
        "message": title,
        "error_data": {"details": details},
        "href": "/documentation/business-messaging/whatsapp/support/error-codes",
    }
    item = status_item(wamid, "failed", timestamp, recipient, errors=[error])
    return envelope(number, messages_change(number, statuses=[item]))


# --- inbound messages: examples e to i ---------------------------------------------------------


def inbound(number: Number, message: Payload, *, name: str | None = "Sheena Nelson") -> Payload:
    """A ``messages`` change carrying one inbound message (``contacts`` only when ``name``)."""
    contacts = [contact(message["from"], name)] if name is not None else None
    return envelope(number, messages_change(number, contacts=contacts, messages=[message]))


def text(
    number: Number,
    wa_id: str,
    wamid: str,
    timestamp: int,
    body: str = "Does it come in another color?",
) -> Payload:
    """(e) an inbound text."""
    message = {
        "from": wa_id,
        "id": wamid,
        "timestamp": str(timestamp),
        "type": "text",
        "text": {"body": body},
    }
    return inbound(number, message)


def button(
    number: Number,
    wa_id: str,
    wamid: str,
    timestamp: int,
    *,
    context_id: str,
    payload: str,
    title: str,
) -> Payload:
    """(f) a template's quick-reply tap, quoting the reminder (``context.id``)."""
    message = {
        "context": {"from": number.display_phone_number, "id": context_id},
        "from": wa_id,
        "id": wamid,
        "timestamp": str(timestamp),
        "type": "button",
        "button": {"payload": payload, "text": title},
    }
    return inbound(number, message)


def interactive(
    number: Number,
    wa_id: str,
    wamid: str,
    timestamp: int,
    *,
    context_id: str,
    reply: Payload,
    subtype: str = "button_reply",
) -> Payload:
    """(g) a reply button (``button_reply``) or a list row (``list_reply``) tapped."""
    message = {
        "context": {"from": number.display_phone_number, "id": context_id},
        "from": wa_id,
        "id": wamid,
        "timestamp": str(timestamp),
        "type": "interactive",
        "interactive": {"type": subtype, subtype: reply},
    }
    return inbound(number, message)


def changed_number(
    number: Number, old_wa_id: str, new_wa_id: str, wamid: str, timestamp: int
) -> Payload:
    """(h) the user changed number: no ``contacts``, ``from`` the old number, the new one in
    ``system.wa_id``."""
    message = {
        "from": old_wa_id,
        "id": wamid,
        "timestamp": str(timestamp),
        "type": "system",
        "system": {
            "body": f"User Sheena Nelson changed from {old_wa_id} to {new_wa_id}",
            "wa_id": new_wa_id,
            "type": "user_changed_number",
        },
    }
    return inbound(number, message, name=None)


def unsupported(number: Number, wa_id: str, wamid: str, timestamp: int) -> Payload:
    """(i) a message type WhatsApp does not pass on (error 131051)."""
    message = {
        "from": wa_id,
        "id": wamid,
        "timestamp": str(timestamp),
        "type": "unsupported",
        "errors": [
            {
                "code": 131051,
                "title": "Message type unknown",
                "message": "Message type unknown",
                "error_data": {"details": "Message type is currently not supported."},
            }
        ],
    }
    return inbound(number, message)


# --- account-level fields: examples j and k ----------------------------------------------------


def preferences(number: Number, wa_id: str, value: str, timestamp: int) -> Payload:
    """(j) the user stopped (``stop``) or resumed (``resume``) marketing messages."""
    change = {
        "field": "user_preferences",
        "value": {
            "messaging_product": "whatsapp",
            "metadata": number.metadata(),
            "contacts": [contact(wa_id, "Maria")],
            "user_preferences": [
                {
                    "wa_id": wa_id,
                    "detail": "User requested to stop marketing messages",
                    "category": "marketing_messages",
                    "value": value,
                    "timestamp": timestamp,
                }
            ],
        },
    }
    return envelope(number, change)


def template_status(
    number: Number,
    name: str,
    language: str,
    template_id: int,
    time: int,
    event: str = "APPROVED",
) -> Payload:
    """(k) a template review's verdict — the contract's example has no ``object`` key."""
    value = {
        "event": event,
        "message_template_id": template_id,
        "message_template_name": name,
        "message_template_language": language,
        "reason": "NONE",
        "message_template_category": "UTILITY",
    }
    change = {"field": "message_template_status_update", "value": value}
    return {"entry": [{"id": number.waba_id, "time": time, "changes": [change]}]}


# --- example l: one POST, two changes, two statuses out of order ------------------------------


def batched(
    number: Number,
    *,
    wamid_a: str,
    recipient_a: str,
    timestamp: int,
    wa_id_b: str,
    wamid_b: str,
    body_b: str = "Já paguei",
) -> Payload:
    """(l) ``delivered`` before ``sent`` of message A, then a text from B, in one POST."""
    statuses = [
        status_item(wamid_a, "delivered", timestamp + 5, recipient_a),
        status_item(wamid_a, "sent", timestamp, recipient_a),
    ]
    message = {
        "from": wa_id_b,
        "id": wamid_b,
        "timestamp": str(timestamp + 10),
        "type": "text",
        "text": {"body": body_b},
    }
    return envelope(
        number,
        messages_change(number, statuses=statuses),
        messages_change(number, contacts=[contact(wa_id_b, "João")], messages=[message]),
    )


# --- posting and comparing ---------------------------------------------------------------------


async def post(
    client: httpx.AsyncClient, payload: Payload, app_secret: str, path: str = "/whatsapp"
) -> httpx.Response:
    """POST ``payload`` as Meta does: the exact bytes, signed with the app secret."""
    body = json.dumps(payload).encode()
    return await client.post(
        path,
        content=body,
        headers={
            "Content-Type": "application/json",
            "X-Hub-Signature-256": signature(body, app_secret),
        },
    )


def _rows(found: Any, *fields: str) -> list[tuple[Any, ...]]:
    return sorted((tuple(getattr(row, f) for f in fields) for row in found), key=lambda r: repr(r))


async def snapshot(session: AsyncSession, tenant_id: uuid.UUID) -> dict[str, list[Any]]:
    """Every row of the tenant that acting on a webhook may change, in a comparable form."""
    await use_scope(session, SYSTEM)

    async def rows(model: Any, *fields: str) -> list[tuple[Any, ...]]:
        query = select(model).where(model.tenant_id == tenant_id)
        found = await session.scalars(query.execution_options(populate_existing=True))
        return _rows(found, *fields)

    return {
        "attempts": await rows(
            ContactAttempt,
            "id",
            "state",
            "reason",
            "recipient",
            "provider_message_id",
            "sent_at",
            "delivered_at",
            "read_at",
            "failed_at",
            "error_class",
            "error_code",
            "fallback_of",
        ),
        "conversations": await rows(
            Conversation,
            "id",
            "customer_id",
            "state",
            "intent",
            "priority",
            "wa_id",
            "last_inbound_at",
            "window_expires_at",
            "last_auto_reply_at",
        ),
        "messages": await rows(
            ConversationMessage,
            "id",
            "direction",
            "provider_message_id",
            "kind",
            "text",
            "payload",
            "intent",
            "attempt_id",
            "status",
        ),
        "holds": await rows(CollectionHold, "id", "kind", "until", "released_at"),
        "customers": await rows(Customer, "id", "opted_out", "do_not_contact"),
        "phones": await rows(
            CustomerPhone, "id", "number", "active", "status", "whatsapp_id", "position"
        ),
        "installments": await rows(Installment, "id", "status"),
        "templates": await rows(MessageTemplate, "id", "status", "provider_template_id"),
        "audit": await rows(AuditEvent, "id", "action"),
    }
