from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint, func
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import Base, UUIDPrimaryKey
from shared.models.installment import MONEY


class Payment(UUIDPrimaryKey, Base):
    """Money received for an installment.  Immutable: a payment is recorded once (idempotent
    by the caller's ``external_id``) and never edited; ``applied`` is the part that went to
    the installment, ``overpaid`` what exceeded its balance."""

    __tablename__ = "payments"
    __table_args__ = (
        UniqueConstraint("tenant_id", "external_id"),
        Index("ix_payments_installment_id", "installment_id"),
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    installment_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("installments.id", ondelete="CASCADE")
    )
    external_id: Mapped[str] = mapped_column(String(64))
    amount: Mapped[Decimal] = mapped_column(MONEY)
    applied: Mapped[Decimal] = mapped_column(MONEY)
    overpaid: Mapped[Decimal] = mapped_column(MONEY)
    balance_before: Mapped[Decimal] = mapped_column(MONEY)
    paid_at: Mapped[datetime]
    method: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(String(16))
    txid: Mapped[str | None] = mapped_column(String(35))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
