from __future__ import annotations

import uuid
from enum import StrEnum
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import Base, Timestamps, UUIDPrimaryKey


class ChannelKind(StrEnum):
    WHATSAPP = "whatsapp"
    SMS = "sms"
    EMAIL = "email"


class ChannelStatus(StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"  # by the retailer
    STOPPED = "stopped"  # by Quita: the provider refused its credentials or its policy


class Channel(UUIDPrimaryKey, Timestamps, Base):
    """A sender of one tenant: a WhatsApp Business number, an SMS sender or an SMTP sender.

    ``config`` holds what may be shown (ids, display number, limits, hosts); ``secrets`` the
    ciphertext (AES-GCM under the key-encryption keyring, ``shared.crypto``) of the JSON object
    of credentials — access token, app secret and verify token, SMS auth token, SMTP password.
    The API never returns it.  A WhatsApp ``phone_number_id`` belongs to one channel across all
    tenants: provider webhooks are routed by it.
    """

    __tablename__ = "channels"
    __table_args__ = (
        Index(
            "uq_channels_whatsapp_phone_number_id",
            text("(config ->> 'phone_number_id')"),
            unique=True,
            postgresql_where=text("kind = 'whatsapp'"),
        ),
        Index("ix_channels_tenant_id", "tenant_id"),
        # Template webhooks name the WABA, not the number.
        Index(
            "ix_channels_whatsapp_waba_id",
            text("(config ->> 'waba_id')"),
            postgresql_where=text("kind = 'whatsapp'"),
        ),
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    kind: Mapped[ChannelKind] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(100))
    status: Mapped[ChannelStatus] = mapped_column(String(16), server_default=ChannelStatus.ACTIVE)
    status_reason: Mapped[str | None] = mapped_column(String(300))
    config: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")
    secrets: Mapped[str] = mapped_column(Text)
