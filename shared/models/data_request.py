from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Index, String, Text, func
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import Base, UUIDPrimaryKey


class DataRequestStatus(StrEnum):
    OPEN = "open"
    FULFILLED = "fulfilled"


class DataRequest(UUIDPrimaryKey, Base):
    """A data subject's request about their own data (LGPD art. 18), tracked against its
    deadline: an access request is answered within 15 days (art. 19 II) with the dossier, whose
    digest is kept as the proof of what was handed over."""

    __tablename__ = "data_requests"
    __table_args__ = (Index("ix_data_requests_open", "tenant_id", "status", "due_at"),)

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    customer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16), server_default="access")
    status: Mapped[DataRequestStatus] = mapped_column(
        String(16), server_default=DataRequestStatus.OPEN
    )
    received_via: Mapped[str | None] = mapped_column(String(32))
    notes: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[datetime]
    due_at: Mapped[datetime]
    fulfilled_at: Mapped[datetime | None]
    export_sha256: Mapped[str | None] = mapped_column(String(64))
    created_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
