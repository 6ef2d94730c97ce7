from __future__ import annotations

import uuid

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import Base, Timestamps


class PixSettings(Timestamps, Base):
    """The tenant's Pix receiving key and the merchant name and city its BR Codes carry."""

    __tablename__ = "pix_settings"

    tenant_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(77))
    key_type: Mapped[str] = mapped_column(String(8))
    merchant_name: Mapped[str] = mapped_column(String(25))
    city: Mapped[str] = mapped_column(String(15))
