from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    ForeignKey,
    Identity,
    Index,
    LargeBinary,
    String,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import Base, UUIDPrimaryKey


class WebhookReceipt(UUIDPrimaryKey, Base):
    """One accepted provider POST, kept byte for byte as it was signed.

    The raw body is the evidence (the signature can be checked again) and the source for a
    replay; the events split from it live in ``webhook_events``.  Only POSTs whose signature
    verified are stored: an unsigned or forged body is refused before anything is written.
    """

    __tablename__ = "webhook_receipts"
    __table_args__ = (Index("ix_webhook_receipts_received_at", "received_at"),)

    provider: Mapped[str] = mapped_column(String(16))
    received_at: Mapped[datetime] = mapped_column(server_default=func.now())
    channel_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("channels.id", ondelete="SET NULL")
    )
    tenant_id: Mapped[uuid.UUID | None]
    content_type: Mapped[str | None] = mapped_column(String(100))
    body: Mapped[bytes] = mapped_column(LargeBinary)
    events: Mapped[int] = mapped_column(server_default=text("0"))
    duplicates: Mapped[int] = mapped_column(server_default=text("0"))


class WebhookEventState(StrEnum):
    PENDING = "pending"  # journaled; its processing job is queued or being retried
    PROCESSED = "processed"
    IGNORED = "ignored"  # an event type we do not act on (answered 200 all the same)


class WebhookEvent(Base):
    """One event of a provider POST (a status, an inbound message, a template review …).

    ``event_key`` is the provider's natural key for the event (``wamid`` + status, inbound
    ``wamid`` …): the unique constraint makes a redelivered or duplicated event insert nothing,
    so each one is processed once however often the provider sends it.
    """

    __tablename__ = "webhook_events"
    __table_args__ = (
        UniqueConstraint("provider", "event_key"),
        Index("ix_webhook_events_received_at", "received_at"),
        Index(
            "ix_webhook_events_unfinished",
            "received_at",
            postgresql_where=text("state = 'pending'"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    receipt_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("webhook_receipts.id", ondelete="CASCADE")
    )
    provider: Mapped[str] = mapped_column(String(16))
    event_key: Mapped[str] = mapped_column(String(400))
    kind: Mapped[str] = mapped_column(String(60))
    tenant_id: Mapped[uuid.UUID | None]
    channel_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("channels.id", ondelete="SET NULL")
    )
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    occurred_at: Mapped[datetime | None]
    received_at: Mapped[datetime] = mapped_column(server_default=func.now())
    state: Mapped[WebhookEventState] = mapped_column(
        String(16), server_default=WebhookEventState.PENDING
    )
    result: Mapped[str | None] = mapped_column(String(300))
    processed_at: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(server_default=text("0"))
