"""Messages to the person of a conversation: free text inside the 24-hour window, sent once.

:func:`record_outbound` records the message (``queued``) and queues the ``conversations.send``
job, so it leaves only if the caller's transaction commits.  The job marks it ``sending`` and
commits before the provider call — a message found ``sending`` again becomes ``unknown`` and is
never resent blindly — then records ``sent`` with the provider's id, a retry only for errors
that prove nothing was sent, or ``failed``.  :func:`apply_status` moves a sent message on from
the provider's status webhooks, never backwards (contract §5.7).
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from shared import clock
from shared.domains.channels import senders
from shared.domains.channels.service import secrets_of
from shared.errors import Conflict
from shared.integrations.errors import ProviderError
from shared.integrations.whatsapp import ListRow, ListSection
from shared.models import (
    Channel,
    ChannelKind,
    ChannelStatus,
    Conversation,
    ConversationMessage,
    ConversationState,
    MessageDirection,
    OutboundStatus,
)
from shared.queue import JobContext, RetryLater, enqueue, job

log = structlog.get_logger("quita.conversations")

WINDOW = timedelta(hours=24)
PAUSED_WAIT_S = 300.0


class WindowClosed(Conflict):
    """Free text only inside the 24-hour window; outside it, a template."""

    code = "window_closed"
    title = "The 24-hour window is closed"


# --- the small functions the intent layer and the inbox use ------------------------------------


def window_open(conversation: Conversation, now: datetime | None = None) -> bool:
    """May free text (not only templates) be sent in this conversation at ``now``?"""
    expires = conversation.window_expires_at
    return expires is not None and (now or clock.now()) < expires


async def record_outbound(
    session: AsyncSession,
    conversation: Conversation,
    *,
    text: str,
    sent_by: uuid.UUID | None = None,
    reply_to: str | None = None,
    dedupe_key: str | None = None,
    now: datetime | None = None,
    interactive: dict[str, Any] | None = None,
    details: dict[str, Any] | None = None,
) -> ConversationMessage:
    """Record a message to the person — free text, or with ``interactive`` a list whose body is
    ``text`` — and queue its send (after the caller's commit).  Inside the window only
    (``WindowClosed`` otherwise).  The same ``dedupe_key`` returns the message already recorded
    instead of a second one."""
    now = now or clock.now()
    if not window_open(conversation, now):
        raise WindowClosed("the last message from this person is more than 24 hours old")
    message_id = uuid.uuid4()
    inserted = await session.scalar(
        insert(ConversationMessage)
        .values(
            id=message_id,
            tenant_id=conversation.tenant_id,
            conversation_id=conversation.id,
            direction=MessageDirection.OUT,
            kind="interactive" if interactive else "text",
            text=text,
            context_message_id=reply_to,
            sent_by=sent_by,
            status=OutboundStatus.QUEUED,
            dedupe_key=dedupe_key,
            details={**(details or {}), **({"interactive": interactive} if interactive else {})},
            occurred_at=now,
        )
        .on_conflict_do_nothing(index_elements=["tenant_id", "dedupe_key"])
        .returning(ConversationMessage.id)
    )
    if inserted is None:  # recorded already under this key
        existing = await session.scalar(
            select(ConversationMessage).where(
                ConversationMessage.tenant_id == conversation.tenant_id,
                ConversationMessage.dedupe_key == dedupe_key,
            )
        )
        assert existing is not None
        return existing
    if sent_by is not None and conversation.state == ConversationState.OPEN:
        conversation.state = ConversationState.PENDING  # a person answered: the debtor's turn
    await enqueue(session, send, tenant_id=conversation.tenant_id, message_id=str(message_id))
    await session.flush()
    message = await session.get(ConversationMessage, message_id)
    assert message is not None
    return message


def clip(value: Any, limit: int) -> str | None:
    """``value`` as text of at most ``limit`` characters; ``None`` when absent or empty."""
    if value is None or value == "":
        return None
    return str(value)[:limit]


def as_dict(value: Any) -> dict[str, Any]:
    """``value`` when it is an object; an empty one for anything else (odd payload shapes)."""
    return value if isinstance(value, dict) else {}


def int_or_none(value: Any) -> int | None:
    """A provider's number that may come as text, empty or missing (error codes)."""
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def later(current: datetime | None, candidate: datetime) -> datetime:
    """The later of two instants (``current`` may be unset)."""
    return candidate if current is None or candidate > current else current


# --- sending what was recorded -----------------------------------------------------------------


def callback_data(message_id: uuid.UUID) -> str:
    """What a conversation message's status webhooks carry back."""
    return f"conversation:{message_id}"


def message_of_callback(value: str | None) -> uuid.UUID | None:
    if not value or not value.startswith("conversation:"):
        return None
    try:
        return uuid.UUID(value.removeprefix("conversation:"))
    except ValueError:
        return None


@job("conversations.send", queue="send", max_attempts=8, min_backoff_s=5.0)
async def send(ctx: JobContext, *, message_id: str) -> None:
    await send_message(ctx.session, uuid.UUID(message_id), attempt=ctx.attempt)


def _status(message: ConversationMessage) -> OutboundStatus | None:
    """The message's status as last read (a function, so a refresh is not narrowed away)."""
    return message.status


async def _sender(
    session: AsyncSession, conversation: Conversation
) -> tuple[Channel | None, str | None]:
    channel = (
        await session.get(Channel, conversation.channel_id) if conversation.channel_id else None
    )
    if channel is None or channel.kind != ChannelKind.WHATSAPP:
        return None, "no_channel"
    if channel.status == ChannelStatus.STOPPED:
        return None, "channel_stopped"
    if not (conversation.wa_id or conversation.bsuid):
        return None, "no_recipient"
    return channel, None


async def send_message(
    session: AsyncSession,
    message_id: uuid.UUID,
    *,
    attempt: int = 1,
    now: datetime | None = None,
) -> OutboundStatus | None:
    """Send one recorded outbound message, once: ``sending`` is committed before the call, and
    a message found ``sending`` becomes ``unknown`` (never resent blindly)."""
    message = await session.scalar(
        select(ConversationMessage).where(ConversationMessage.id == message_id).with_for_update()
    )
    if message is None:
        return None
    if message.status == OutboundStatus.SENDING:
        message.status = OutboundStatus.UNKNOWN
        await session.flush()
        log.warning("conversations.outcome_lost", message_id=str(message.id))
        return message.status
    if message.status != OutboundStatus.QUEUED:
        return message.status
    conversation = await session.get(Conversation, message.conversation_id)
    assert conversation is not None
    channel, refusal = await _sender(session, conversation)
    if refusal is None and not window_open(conversation, now or clock.now()):
        refusal = "window_closed"  # free text outside the window is refused by Meta (131047)
    if channel is None or refusal is not None:
        return await _give_up(session, message, refusal or "no_channel")
    if channel.status == ChannelStatus.PAUSED:
        raise RetryLater(PAUSED_WAIT_S, "channel paused")
    message.status = OutboundStatus.SENDING
    await session.commit()  # the point of no blind return
    try:
        answer = await _call(channel, conversation, message)
    except ProviderError as exc:
        await session.refresh(message, with_for_update=True)
        if _status(message) == OutboundStatus.SENDING:
            await _failed(session, message, exc, attempt)
        return message.status
    await session.refresh(message, with_for_update=True)
    if _status(message) == OutboundStatus.SENDING:
        message.status = OutboundStatus.SENT
    message.provider_message_id = message.provider_message_id or answer.message_id
    await session.refresh(conversation, with_for_update=True)
    conversation.last_outbound_at = later(conversation.last_outbound_at, clock.now())
    await session.flush()
    log.info("conversations.sent", message_id=str(message.id))
    return message.status


async def _call(channel: Channel, conversation: Conversation, message: ConversationMessage) -> Any:
    """The provider call for one recorded message: its text, or its interactive list."""
    client = senders.whatsapp_client()
    number, token = channel.config["phone_number_id"], secrets_of(channel)["access_token"]
    to = conversation.wa_id or conversation.bsuid or ""
    interactive = (message.details or {}).get("interactive")
    if message.kind == "interactive" and interactive:
        action = interactive["action"]
        sections = [
            ListSection(
                rows=[ListRow(r["id"], r["title"], r.get("description")) for r in sec["rows"]],
                title=sec.get("title"),
            )
            for sec in action["sections"]
        ]
        return await client.send_interactive_list(
            number,
            token,
            to,
            interactive["body"]["text"],
            action["button"],
            sections,
            callback_data=callback_data(message.id),
            reply_to=message.context_message_id,
        )
    return await client.send_text(
        number,
        token,
        to,
        message.text or "",
        callback_data=callback_data(message.id),
        reply_to=message.context_message_id,
    )


async def _give_up(
    session: AsyncSession, message: ConversationMessage, reason: str
) -> OutboundStatus:
    message.status = OutboundStatus.FAILED
    message.details = {**message.details, "reason": reason}
    await session.flush()
    log.info("conversations.not_sent", message_id=str(message.id), reason=reason)
    return OutboundStatus.FAILED


async def _failed(
    session: AsyncSession, message: ConversationMessage, exc: ProviderError, attempt: int
) -> None:
    """A refused or lost call: retried only when the error proves nothing was sent."""
    message.error_code = getattr(exc, "code", None)
    if exc.maybe_sent:
        message.status = OutboundStatus.UNKNOWN
        await session.flush()
        return
    advice = exc.advice(max(0, attempt - 1))
    if advice.retry and advice.delay_s is not None:
        message.status = OutboundStatus.QUEUED
        await session.flush()
        await session.commit()
        raise RetryLater(advice.delay_s, f"provider {exc.error_class}")
    await _give_up(session, message, str(exc.error_class))


# --- statuses of what we sent ------------------------------------------------------------------

# §5.7: never downgrade; a failure after a delivery (another device) does not undo it, and a
# delivery after a failure does.
_RANK = {
    OutboundStatus.QUEUED: 0,
    OutboundStatus.SENDING: 0,
    OutboundStatus.UNKNOWN: 0,
    OutboundStatus.SENT: 1,
    OutboundStatus.FAILED: 1.5,
    OutboundStatus.DELIVERED: 2,
    OutboundStatus.READ: 3,
}
_REPORTED = {
    "sent": OutboundStatus.SENT,
    "delivered": OutboundStatus.DELIVERED,
    "read": OutboundStatus.READ,
    "failed": OutboundStatus.FAILED,
}


def next_status(current: OutboundStatus | None, reported: OutboundStatus) -> OutboundStatus:
    """The status after a provider report: the further of the two, whatever the order."""
    if current is None or _RANK[reported] > _RANK[current]:
        return reported
    return current


async def apply_status(
    session: AsyncSession, tenant_id: uuid.UUID, payload: dict[str, Any]
) -> bool:
    """Apply a WhatsApp status webhook to the conversation message it concerns (by the
    provider's id, else by the id its send carried).  ``False``: not one of ours."""
    reported = _REPORTED.get(str(payload.get("status")))
    if reported is None:
        return False
    wamid = clip(payload.get("id"), 128)
    message = await session.scalar(
        select(ConversationMessage)
        .where(
            ConversationMessage.tenant_id == tenant_id,
            ConversationMessage.direction == MessageDirection.OUT,
            ConversationMessage.provider_message_id == wamid,
        )
        .with_for_update()
    )
    if message is None:
        own = message_of_callback(payload.get("biz_opaque_callback_data"))
        if own is not None:
            message = await session.scalar(
                select(ConversationMessage)
                .where(ConversationMessage.id == own, ConversationMessage.tenant_id == tenant_id)
                .with_for_update()
            )
            if message is not None and message.provider_message_id is None:
                message.provider_message_id = wamid
    if message is None:
        return False
    message.status = next_status(message.status, reported)
    if message.status == OutboundStatus.FAILED:
        errors = payload.get("errors")
        first = as_dict(errors[0]) if isinstance(errors, list) and errors else {}
        message.error_code = int_or_none(first.get("code"))
    await session.flush()
    return True
