from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ForeignKey, Index, SmallInteger, String, Text, UniqueConstraint, func, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import Base, Timestamps, UUIDPrimaryKey


class ConversationState(StrEnum):
    OPEN = "open"  # the debtor wrote and nobody has answered yet
    PENDING = "pending"  # answered; waiting for the debtor (or for a payment to land)
    RESOLVED = "resolved"  # closed by an operator or an action; a new message reopens it


class Conversation(UUIDPrimaryKey, Timestamps, Base):
    """The thread between a retailer and one person on WhatsApp.

    One per customer of the tenant; a sender no customer matches gets one too, with
    ``customer_id`` null and keyed by ``sender_key`` (``wa:<9-insensitive key>`` or
    ``bsuid:<id>``), so an operator can see who wrote.  ``window_expires_at`` is the end of
    the 24-hour customer service window (last inbound message + 24 h, by the message's own
    time): free text may be sent until then, templates only after.
    """

    __tablename__ = "conversations"
    __table_args__ = (
        Index(
            "uq_conversations_customer",
            "tenant_id",
            "customer_id",
            unique=True,
            postgresql_where=text("customer_id IS NOT NULL"),
        ),
        Index(
            "uq_conversations_unknown_sender",
            "tenant_id",
            "sender_key",
            unique=True,
            postgresql_where=text("customer_id IS NULL"),
        ),
        Index(
            "ix_conversations_bsuid",
            "tenant_id",
            "bsuid",
            postgresql_where=text("bsuid IS NOT NULL"),
        ),
        Index("ix_conversations_inbox", "tenant_id", "state", "last_inbound_at"),
        Index(
            "ix_conversations_assignee",
            "tenant_id",
            "assignee_id",
            "state",
            postgresql_where=text("assignee_id IS NOT NULL"),
        ),
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    customer_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE")
    )
    # the number the person last wrote to (replies leave from it)
    channel_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("channels.id", ondelete="SET NULL")
    )
    sender_key: Mapped[str | None] = mapped_column(String(160))
    wa_id: Mapped[str | None] = mapped_column(String(20))
    bsuid: Mapped[str | None] = mapped_column(String(128))
    profile_name: Mapped[str | None] = mapped_column(String(200))
    state: Mapped[ConversationState] = mapped_column(
        String(16), server_default=ConversationState.OPEN
    )
    assignee_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    priority: Mapped[int] = mapped_column(SmallInteger, server_default="0")
    intent: Mapped[str | None] = mapped_column(String(32))
    last_inbound_at: Mapped[datetime | None]
    last_outbound_at: Mapped[datetime | None]
    window_expires_at: Mapped[datetime | None]
    # the generic answer to a sender we do not know goes at most once a day
    last_auto_reply_at: Mapped[datetime | None]


class MessageDirection(StrEnum):
    IN = "in"
    OUT = "out"


class OutboundStatus(StrEnum):
    """Where an outbound message is; inbound messages have none."""

    QUEUED = "queued"  # recorded, its send job is due
    SENDING = "sending"  # committed before the provider call
    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"
    FAILED = "failed"
    UNKNOWN = "unknown"  # the call's outcome is unknown: never resent blindly


class ConversationMessage(UUIDPrimaryKey, Base):
    """One message of a conversation, either way.

    Inbound: what the person sent (text, the quick-reply ``payload`` or list/button id, media by
    id — never downloaded here), the message it answers (``context_message_id``) and, when that
    is one of our reminders, its ``attempt_id``.  ``provider_message_id`` is unique per tenant:
    an event processed twice records one message.  Outbound: who sent it (``sent_by``, null for
    Quita itself), its ``status``, and a ``dedupe_key`` so a retried request sends once.
    """

    __tablename__ = "conversation_messages"
    __table_args__ = (
        UniqueConstraint("tenant_id", "provider_message_id"),
        UniqueConstraint("tenant_id", "dedupe_key"),
        Index("ix_conversation_messages_timeline", "conversation_id", "occurred_at"),
        Index(
            "ix_conversation_messages_attempt",
            "attempt_id",
            postgresql_where=text("attempt_id IS NOT NULL"),
        ),
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    conversation_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE")
    )
    direction: Mapped[MessageDirection] = mapped_column(String(3))
    provider_message_id: Mapped[str | None] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(16))
    text: Mapped[str | None] = mapped_column(Text)
    payload: Mapped[str | None] = mapped_column(String(256))
    media_id: Mapped[str | None] = mapped_column(String(128))
    media_mime: Mapped[str | None] = mapped_column(String(100))
    context_message_id: Mapped[str | None] = mapped_column(String(128))
    attempt_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("contact_attempts.id", ondelete="SET NULL")
    )
    intent: Mapped[str | None] = mapped_column(String(32))
    sent_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    status: Mapped[OutboundStatus | None] = mapped_column(String(16))
    error_code: Mapped[int | None]
    dedupe_key: Mapped[str | None] = mapped_column(String(160))
    # what else the message carried: location, shared contacts, file name, reaction emoji …
    details: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")
    occurred_at: Mapped[datetime]
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
