from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import Base, Timestamps, UUIDPrimaryKey


class PixConnectionStatus(StrEnum):
    ACTIVE = "active"
    DISABLED = "disabled"  # by the retailer: its webhook URL answers 401


class PixConnection(UUIDPrimaryKey, Timestamps, Base):
    """A retailer's Pix PSP account posting payment webhooks to Quita.

    The PSP calls ``{webhooks}/pix/{token}``; only the SHA-256 of the token is kept (the token is
    shown once, on creation or rotation), so a database reader cannot forge a payment.  When
    ``client_cert_subject`` is set, the TLS proxy's client-certificate header must name it too.
    """

    __tablename__ = "pix_connections"
    __table_args__ = (Index("ix_pix_connections_tenant_id", "tenant_id"),)

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    psp: Mapped[str] = mapped_column(String(60))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    client_cert_subject: Mapped[str | None] = mapped_column(String(500))
    status: Mapped[PixConnectionStatus] = mapped_column(
        String(16), server_default=PixConnectionStatus.ACTIVE
    )
    rotated_at: Mapped[datetime | None]
