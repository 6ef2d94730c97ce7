from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ARRAY, ForeignKey, String
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import Base, Timestamps, UUIDPrimaryKey


class MandateAction(StrEnum):
    READ = "read"
    MESSAGE = "message"
    NEGOTIATE = "negotiate"


class Mandate(UUIDPrimaryKey, Timestamps, Base):
    """A retailer's grant to an agency: which customers (all, or those with any of ``tags``),
    which actions, within which negotiation limits, for how long.  Revocable at any moment."""

    __tablename__ = "mandates"

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    agency_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), index=True
    )
    tags: Mapped[list[str] | None] = mapped_column(ARRAY(String(64)))
    actions: Mapped[list[str]] = mapped_column(ARRAY(String(16)))
    limits: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    valid_from: Mapped[datetime]
    valid_until: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
