from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, SmallInteger, Text, UniqueConstraint, func
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import Base, Timestamps, UUIDPrimaryKey

DEFAULT_CAPACITY = 20


class ConversationNote(UUIDPrimaryKey, Base):
    """An operator's internal note on a conversation: never sent, never shown to the debtor.

    Kept apart from ``conversation_messages`` because a note is not a message either way (no
    direction, no provider id, no delivery status); ``author_id`` is null when an API client
    wrote it.
    """

    __tablename__ = "conversation_notes"
    __table_args__ = (Index("ix_conversation_notes_timeline", "conversation_id", "created_at"),)

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    conversation_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE")
    )
    author_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class InboxOperator(UUIDPrimaryKey, Timestamps, Base):
    """How much of the inbox one person of a tenant takes: at most ``capacity`` conversations
    assigned and not resolved, and none while ``available`` is false.  A member without a row
    takes up to ``DEFAULT_CAPACITY``.  With ``auto_assign`` the person is handed waiting
    conversations in turn (the one handed one longest ago, ``last_assigned_at``, first)."""

    __tablename__ = "inbox_operators"
    __table_args__ = (UniqueConstraint("tenant_id", "user_id"),)

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    capacity: Mapped[int] = mapped_column(SmallInteger, server_default=str(DEFAULT_CAPACITY))
    available: Mapped[bool] = mapped_column(server_default="true")
    auto_assign: Mapped[bool] = mapped_column(server_default="false")
    last_assigned_at: Mapped[datetime | None]
