from __future__ import annotations

import uuid
from enum import StrEnum
from typing import Any

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import Base, Timestamps, UUIDPrimaryKey


class TemplateStatus(StrEnum):
    DRAFT = "DRAFT"  # not submitted to the provider yet (SMS and e-mail templates stay here)
    PENDING = "PENDING"
    APPROVED = "APPROVED"
    REJECTED = "REJECTED"
    PAUSED = "PAUSED"
    DISABLED = "DISABLED"


class MessageTemplate(UUIDPrimaryKey, Timestamps, Base):
    """A message a tenant sends: its text with named variables (``{{primeiro_nome}}``), for one
    channel kind and language.  WhatsApp templates carry the provider's review status; the
    body's named variables are sent to Meta as positional parameters in order of first use.
    ``key`` names the régua moment a default template serves (``lembrete_d3``…)."""

    __tablename__ = "message_templates"
    __table_args__ = (UniqueConstraint("tenant_id", "channel_kind", "name", "language"),)

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    channel_kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(512))
    language: Mapped[str] = mapped_column(String(16), server_default="pt_BR")
    category: Mapped[str] = mapped_column(String(16), server_default="UTILITY")
    key: Mapped[str | None] = mapped_column(String(64))
    header: Mapped[str | None] = mapped_column(String(60))
    body: Mapped[str] = mapped_column(Text)
    footer: Mapped[str | None] = mapped_column(String(60))
    buttons: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, server_default="[]")
    subject: Mapped[str | None] = mapped_column(String(200))  # e-mail
    html: Mapped[str | None] = mapped_column(Text)  # e-mail HTML part (sandboxed Jinja)
    status: Mapped[TemplateStatus] = mapped_column(String(16), server_default=TemplateStatus.DRAFT)
    rejected_reason: Mapped[str | None] = mapped_column(String(100))
    provider_template_id: Mapped[str | None] = mapped_column(String(64))
