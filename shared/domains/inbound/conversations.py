"""Inbound WhatsApp messages: matched to the customer, threaded, with the 24-hour window.

Each ``whatsapp.message`` event of the journal is handled here, in its tenant's scope:

1. the sender is matched to a customer of *this* tenant — by the reminder the message quotes
   (``context.id`` → the attempt), the business-scoped user id (BSUID) learned before, and the
   ``wa_id`` with or without the Brazilian ninth digit (the phones' ``wa_key``); a phone marked
   as a wrong person never matches.  What is learned (the ``wa_id``, the BSUID) is kept;
2. the message is recorded once in the customer's conversation (one per customer; a sender
   no customer matches gets its own, keyed by its number, so an operator can see it): the
   provider's id is unique per tenant, so an event processed twice records one message;
3. the customer service window is opened or extended to the message's own time + 24 h
   (contract §4.9: any inbound user message opens it — a reaction too; a ``system`` notice
   is not the user writing).  Messages arriving out of order never shorten it;
4. a sender we do not know gets, at most once a day, a generic answer that says nothing about
   any debt or store relation (LGPD; DESIGN rule 9).  It is recorded first and sent by the
   ``conversations.send`` job, so processing the event twice never sends it twice;
5. what a known customer writes (not a reaction, not a system notice) is read for its intent
   and acted on (``actions.py``: opt-out, hold, Pix, hand-off to an operator …) — a message
   older than one already read (Meta does not deliver in order) is *superseded*: it restricts
   but is not answered (``actions.py``);
6. WhatsApp's notice that a customer changed number (a ``system`` message,
   ``user_changed_number``) moves the customer to the new number (``actions.change_number``).

``user_preferences`` events (the customer stopped or resumed *marketing* messages in WhatsApp,
contract §7) are kept in the customer's conversation as evidence; Quita's reminders are utility
messages, which that setting does not cover.

:func:`window_open`, :func:`conversation_of` and :func:`record_outbound` are what the intent
layer and the operator inbox build on; sending and the statuses of what was sent live in
``replies.py``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from shared import clock
from shared.brazil.errors import InvalidValue
from shared.brazil.phones import whatsapp_key
from shared.domains import events
from shared.domains.inbound import actions
from shared.domains.inbound.journal import Outcome, handles
from shared.domains.inbound.replies import (
    WINDOW,
    WindowClosed,
    apply_status,
    as_dict,
    clip,
    later,
    record_outbound,
    window_open,
)
from shared.domains.inbound.whatsapp import MESSAGE, USER_PREFERENCES
from shared.models import (
    ContactAttempt,
    Conversation,
    ConversationMessage,
    ConversationState,
    CustomerPhone,
    MessageDirection,
    PhoneStatus,
    WebhookEvent,
)

__all__ = [
    "WindowClosed",
    "apply_status",
    "conversation_of",
    "match_sender",
    "on_message",
    "read_inbound",
    "record_outbound",
    "window_open",
]

log = structlog.get_logger("quita.conversations")

AUTO_REPLY_EVERY = timedelta(hours=24)

# What a sender no customer matches receives: nothing about a debt, a purchase or the store's
# relation with anyone, and no request for personal data (never a CPF over chat).
UNKNOWN_SENDER_REPLY = (
    "Olá! Recebemos sua mensagem. Este canal é usado apenas para avisos automáticos; "
    "se precisar de atendimento, procure a loja pelos canais oficiais de atendimento."
)

MEDIA = ("image", "video", "audio", "document", "sticker")
KINDS = frozenset(
    {"text", "button", "interactive", "location", "contacts", "reaction", "order", "system"}
    | set(MEDIA)
    | {"unsupported"}
)
# a notice about the account, not the user writing: opens no window, asks for nothing
NOT_FROM_USER = frozenset({"system"})
NUMBER_CHANGED = "user_changed_number"
# an answer that needs no answer back (a 👍 on a reminder): opens the window (§4.9) but
# neither reopens the conversation nor earns the unknown sender's reply
ACKNOWLEDGEMENT = frozenset({"reaction"})


# --- the conversation of a customer ------------------------------------------------------------


async def conversation_of(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    customer_id: uuid.UUID,
    *,
    create: bool = False,
    lock: bool = False,
) -> Conversation | None:
    """The customer's conversation (``None`` when there is none and ``create`` is false)."""
    if create:
        await session.execute(
            insert(Conversation)
            .values(id=uuid.uuid4(), tenant_id=tenant_id, customer_id=customer_id)
            .on_conflict_do_nothing(
                index_elements=["tenant_id", "customer_id"],
                index_where=Conversation.customer_id.isnot(None),
            )
        )
    query = select(Conversation).where(
        Conversation.tenant_id == tenant_id, Conversation.customer_id == customer_id
    )
    if lock:
        query = query.with_for_update()
    found: Conversation | None = await session.scalar(
        query.execution_options(populate_existing=True)
    )
    return found


# --- reading an inbound message ----------------------------------------------------------------


@dataclass(slots=True)
class Inbound:
    """The parts of one inbound message (contract §5.5/§5.6) we keep."""

    wamid: str
    kind: str
    occurred_at: datetime
    wa_id: str | None
    bsuid: str | None
    profile_name: str | None = None
    text: str | None = None
    payload: str | None = None
    media_id: str | None = None
    media_mime: str | None = None
    context_id: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def sender_key(self) -> str:
        """How a sender no customer matches is keyed: its 9-insensitive number, else BSUID."""
        if self.wa_id:
            return "wa:" + _wa_key(self.wa_id)
        return f"bsuid:{self.bsuid}"


def _wa_key(wa_id: str) -> str:
    try:
        return whatsapp_key(wa_id)
    except InvalidValue:
        return wa_id


def _epoch(value: Any) -> datetime | None:
    try:
        return datetime.fromtimestamp(int(value), UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return None


def read_inbound(payload: dict[str, Any], received: datetime) -> Inbound | None:
    """The message of a ``whatsapp.message`` event; ``None`` when it names no sender."""
    contact = as_dict(payload.get("contact"))
    wa_id = clip(payload.get("from") or contact.get("wa_id"), 20)
    bsuid = clip(payload.get("from_user_id") or contact.get("user_id"), 128)
    wamid = clip(payload.get("id"), 128)
    if wamid is None or (wa_id is None and bsuid is None):
        return None
    kind = str(payload.get("type") or "")
    message = Inbound(
        wamid=wamid,
        kind=kind if kind in KINDS else "other",
        occurred_at=_epoch(payload.get("timestamp")) or received,
        wa_id=wa_id,
        bsuid=bsuid,
        profile_name=clip(as_dict(contact.get("profile")).get("name"), 200),
        context_id=clip(as_dict(payload.get("context")).get("id"), 128),
    )
    _read_content(message, payload, kind)
    if payload.get("referral"):
        message.details["referral"] = payload["referral"]
    if payload.get("errors"):
        message.details["errors"] = payload["errors"]
    if message.kind == "other":
        message.details["type"] = kind
    return message


def _read_content(message: Inbound, payload: dict[str, Any], kind: str) -> None:
    body = as_dict(payload.get(kind))
    if kind == "text":
        message.text = clip(body.get("body"), 4096)
    elif kind == "button":  # a template's quick reply (§5.6 f)
        message.text = clip(body.get("text"), 4096)
        message.payload = clip(body.get("payload"), 256)
    elif kind == "interactive":  # a reply button or a list row (§5.6 g): the id is what counts
        subtype = str(body.get("type") or "")
        reply = as_dict(body.get(subtype))
        message.text = clip(reply.get("title"), 4096)
        message.payload = clip(reply.get("id"), 256)
        message.details = {"interactive": subtype}
        if reply.get("description"):
            message.details["description"] = reply["description"]
    elif kind in MEDIA:  # recorded by id; downloading is someone else's decision
        message.media_id = clip(body.get("id"), 128)
        message.media_mime = clip(body.get("mime_type"), 100)
        message.text = clip(body.get("caption"), 4096)
        message.details = {k: body[k] for k in ("filename", "sha256", "voice") if k in body}
    elif kind == "reaction":
        # the reacted-to message is what it answers; an empty emoji takes a reaction back
        message.context_id = clip(body.get("message_id"), 128) or message.context_id
        message.text = clip(body.get("emoji"), 32)
        message.details = {"removed": not body.get("emoji")}
    elif kind == "location":
        message.text = clip(body.get("name") or body.get("address"), 4096)
        message.details = {"location": body}
    elif kind == "contacts":
        message.details = {"contacts": payload.get("contacts") or []}
    elif kind == "system":
        message.text = clip(body.get("body"), 4096)
        message.details = {k: body[k] for k in ("type", "wa_id", "user_id") if k in body}
    elif kind == "order":
        message.text = clip(body.get("text"), 4096)
        message.details = {"order": body}


# --- matching the sender -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Match:
    customer_id: uuid.UUID
    phone: CustomerPhone | None


async def _attempt_of(
    session: AsyncSession, tenant_id: uuid.UUID, wamid: str | None
) -> ContactAttempt | None:
    """The reminder of this tenant a message quotes (its ``context.id``)."""
    if wamid is None:
        return None
    found: ContactAttempt | None = await session.scalar(
        select(ContactAttempt).where(
            ContactAttempt.tenant_id == tenant_id, ContactAttempt.provider_message_id == wamid
        )
    )
    return found


async def _phones(session: AsyncSession, tenant_id: uuid.UUID, wa_id: str) -> list[CustomerPhone]:
    """The tenant's phones a ``wa_id`` may be, with or without the ninth digit; the customer
    contacted last first (two customers may share a number)."""
    last_contact = (
        select(func.max(ContactAttempt.sent_at))
        .where(ContactAttempt.customer_id == CustomerPhone.customer_id)
        .correlate(CustomerPhone)
        .scalar_subquery()
    )
    rows = await session.scalars(
        select(CustomerPhone)
        .where(
            CustomerPhone.tenant_id == tenant_id,
            CustomerPhone.wa_key == _wa_key(wa_id),
            CustomerPhone.active.is_(True),
            CustomerPhone.status != PhoneStatus.WRONG_PERSON,
        )
        .order_by(last_contact.desc().nulls_last(), CustomerPhone.position, CustomerPhone.id)
    )
    return list(rows)


async def match_sender(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    message: Inbound,
    attempt: ContactAttempt | None,
) -> Match | None:
    """The customer of ``tenant_id`` who sent ``message``, or ``None`` for an unknown sender."""
    if message.wa_id:
        phones = await _phones(session, tenant_id, message.wa_id)
        if phones:
            # the quoted reminder settles which of two customers sharing a number wrote
            chosen = next(
                (p for p in phones if attempt is not None and p.customer_id == attempt.customer_id),
                phones[0],
            )
            return Match(chosen.customer_id, chosen)
    if message.bsuid:
        known = await session.scalar(
            select(Conversation.customer_id).where(
                Conversation.tenant_id == tenant_id,
                Conversation.bsuid == message.bsuid,
                Conversation.customer_id.isnot(None),
            )
        )
        if known is not None:
            return Match(known, None)
        if not message.wa_id and attempt is not None:
            # no number to match (a username user): only the recipient of a reminder can quote it
            return Match(attempt.customer_id, None)
    return None


# --- the handler -------------------------------------------------------------------------------


async def _unknown_conversation(
    session: AsyncSession, tenant_id: uuid.UUID, message: Inbound
) -> Conversation:
    if message.bsuid:
        by_bsuid: Conversation | None = await session.scalar(
            select(Conversation)
            .where(
                Conversation.tenant_id == tenant_id,
                Conversation.customer_id.is_(None),
                Conversation.bsuid == message.bsuid,
            )
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        if by_bsuid is not None:
            return by_bsuid
    key = message.sender_key
    await session.execute(
        insert(Conversation)
        .values(id=uuid.uuid4(), tenant_id=tenant_id, sender_key=key)
        .on_conflict_do_nothing(
            index_elements=["tenant_id", "sender_key"],
            index_where=Conversation.customer_id.is_(None),
        )
    )
    found = await session.scalar(
        select(Conversation)
        .where(
            Conversation.tenant_id == tenant_id,
            Conversation.customer_id.is_(None),
            Conversation.sender_key == key,
        )
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    assert found is not None
    return found


async def _record_inbound(
    session: AsyncSession,
    conversation: Conversation,
    message: Inbound,
    attempt: ContactAttempt | None,
) -> bool:
    """Insert the message once; ``False`` when it was recorded before."""
    inserted = await session.scalar(
        insert(ConversationMessage)
        .values(
            id=uuid.uuid4(),
            tenant_id=conversation.tenant_id,
            conversation_id=conversation.id,
            direction=MessageDirection.IN,
            provider_message_id=message.wamid,
            kind=message.kind,
            text=message.text,
            payload=message.payload,
            media_id=message.media_id,
            media_mime=message.media_mime,
            context_message_id=message.context_id,
            attempt_id=attempt.id if attempt is not None else None,
            details=message.details,
            occurred_at=message.occurred_at,
        )
        .on_conflict_do_nothing(index_elements=["tenant_id", "provider_message_id"])
        .returning(ConversationMessage.id)
    )
    return inserted is not None


def _touch(conversation: Conversation, message: Inbound, channel_id: uuid.UUID | None) -> None:
    """What one inbound message changes on its conversation (order-independent: a late,
    older message never moves anything back)."""
    newest = conversation.last_inbound_at is None or message.occurred_at >= (
        conversation.last_inbound_at
    )
    if message.kind not in NOT_FROM_USER:
        conversation.last_inbound_at = later(conversation.last_inbound_at, message.occurred_at)
        conversation.window_expires_at = later(
            conversation.window_expires_at, message.occurred_at + WINDOW
        )
    if newest and message.kind not in NOT_FROM_USER | ACKNOWLEDGEMENT:
        # an older message read late reopens nothing a newer one closed (its intent may)
        conversation.state = ConversationState.OPEN
    elif message.kind in NOT_FROM_USER and conversation.last_inbound_at is None:
        conversation.state = ConversationState.RESOLVED  # only notices: no one to answer
    if newest:
        conversation.channel_id = channel_id or conversation.channel_id
        conversation.wa_id = message.wa_id or conversation.wa_id
        conversation.bsuid = message.bsuid or conversation.bsuid
        conversation.profile_name = message.profile_name or conversation.profile_name
        if conversation.customer_id is None:
            conversation.sender_key = conversation.sender_key or message.sender_key


def _learn(match: Match, message: Inbound) -> None:
    """Keep the WhatsApp id the phone really has (the ninth digit may differ)."""
    phone = match.phone
    if phone is not None and message.wa_id and phone.whatsapp_id != message.wa_id:
        phone.whatsapp_id = message.wa_id


def _should_greet(conversation: Conversation, message: Inbound, now: datetime) -> bool:
    """An unknown sender who wrote (not reacted) inside the window, not answered today."""
    if conversation.customer_id is not None:
        return False
    if message.kind in NOT_FROM_USER | ACKNOWLEDGEMENT or not window_open(conversation, now):
        return False
    last = conversation.last_auto_reply_at
    return last is None or now - last >= AUTO_REPLY_EVERY


def _changed_to(message: Inbound) -> str | None:
    """The new ``wa_id`` of a ``user_changed_number`` notice (contract §5.6 h), else ``None``."""
    if message.kind != "system" or message.details.get("type") != NUMBER_CHANGED:
        return None
    return clip(message.details.get("wa_id"), 20)


@handles(MESSAGE)
async def on_message(session: AsyncSession, event: WebhookEvent) -> Outcome:
    """Record one inbound WhatsApp message in its conversation (see the module docstring)."""
    if event.tenant_id is None:
        return Outcome.ignored("no tenant")
    now = clock.now()
    message = read_inbound(event.payload, event.occurred_at or now)
    if message is None:
        return Outcome.ignored("message without id or sender")
    tenant_id = event.tenant_id
    attempt = await _attempt_of(session, tenant_id, message.context_id)
    match = await match_sender(session, tenant_id, message, attempt)
    if match is not None:
        conversation = await conversation_of(
            session, tenant_id, match.customer_id, create=True, lock=True
        )
        assert conversation is not None
        _learn(match, message)
    else:
        conversation = await _unknown_conversation(session, tenant_id, message)
    if attempt is not None and attempt.customer_id != conversation.customer_id:
        attempt = None  # a quote of someone else's reminder threads to nothing
    if not await _record_inbound(session, conversation, message, attempt):
        return Outcome.done("already recorded")
    # an operator was already due to answer (a brand-new conversation starts "open" unread)
    waiting = (
        conversation.state == ConversationState.OPEN and conversation.last_inbound_at is not None
    )
    superseded = (
        conversation.last_inbound_at is not None
        and message.occurred_at < conversation.last_inbound_at
    )
    _touch(conversation, message, event.channel_id)
    acted, note = None, None
    if match is not None and message.kind not in NOT_FROM_USER | ACKNOWLEDGEMENT:
        acted = await actions.respond(
            session,
            conversation,
            message.wamid,
            now,
            phone=match.phone,
            waiting=waiting,
            superseded=superseded,
        )
    new_wa_id = _changed_to(message)
    if match is not None and new_wa_id is not None:
        note = await actions.change_number(
            session, conversation, match.phone, new_wa_id, message.wamid, now
        )
    greeted = _should_greet(conversation, message, now)
    if greeted:
        conversation.last_auto_reply_at = now
        await record_outbound(
            session,
            conversation,
            text=UNKNOWN_SENDER_REPLY,
            dedupe_key=f"unknown-sender:{message.wamid}",
            now=now,
        )
    if match is not None and message.kind not in NOT_FROM_USER:
        await events.emit(
            session,
            tenant_id,
            "conversation.replied",
            {
                "conversation_id": conversation.id,
                "channel": "whatsapp",
                "kind": message.kind,
                "attempt_id": attempt.id if attempt is not None else None,
                "intent": acted.intent if acted is not None else None,
            },
            message.occurred_at,
            customer_id=match.customer_id,
        )
    await session.flush()
    log.info(
        "conversations.inbound",
        conversation_id=str(conversation.id),
        kind=message.kind,
        matched=match is not None,
        threaded=attempt is not None,
        greeted=greeted,
        superseded=superseded,
    )
    if note is not None:
        return Outcome.done(note)
    if acted is not None:
        return Outcome.done(f"{message.kind} from customer: {acted.intent}, {acted.note}")
    return Outcome.done(f"{message.kind} {'from customer' if match else 'from unknown sender'}")


# --- marketing preferences ---------------------------------------------------------------------


@handles(USER_PREFERENCES)
async def on_user_preferences(session: AsyncSession, event: WebhookEvent) -> Outcome:
    """Keep a ``user_preferences`` change (marketing ``stop``/``resume``, contract §5.6 j) in
    the conversation of each customer with that number, once, as a system notice (evidence
    for LGPD); it opens no window and answers nothing."""
    payload = event.payload
    wa_id = clip(payload.get("wa_id"), 20)
    if event.tenant_id is None or wa_id is None:
        return Outcome.ignored("no tenant or no wa_id")
    choice: dict[str, Any] = {
        k: payload[k] for k in ("category", "value", "detail") if k in payload
    }
    customers = {phone.customer_id for phone in await _phones(session, event.tenant_id, wa_id)}
    recorded = 0
    for customer_id in sorted(customers):
        conversation = await conversation_of(
            session, event.tenant_id, customer_id, create=True, lock=True
        )
        assert conversation is not None
        notice = Inbound(
            # the journal's event, once per customer, however often it is replayed
            wamid=f"preference:{event.id}:{customer_id}",
            kind="system",
            occurred_at=event.occurred_at or clock.now(),
            wa_id=wa_id,
            bsuid=None,
            text=clip(payload.get("detail"), 4096),
            details={"type": "user_preferences", **choice},
        )
        if await _record_inbound(session, conversation, notice, None):
            _touch(conversation, notice, event.channel_id)
            recorded += 1
    await session.flush()
    if not customers:
        return Outcome.ignored("no customer with that number")
    return Outcome.done(f"{choice.get('category')} {choice.get('value')}: {recorded} recorded")
