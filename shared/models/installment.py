from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum

from sqlalchemy import ForeignKey, Index, Numeric, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import Base, Timestamps, UUIDPrimaryKey

MONEY = Numeric(14, 2)


class InstallmentStatus(StrEnum):
    OPEN = "open"
    PARTIALLY_PAID = "partially_paid"
    PAID = "paid"
    RENEGOTIATED = "renegotiated"
    DISPUTED = "disputed"
    WRITTEN_OFF = "written_off"
    CANCELLED = "cancelled"


class Installment(UUIDPrimaryKey, Timestamps, Base):
    """One installment (parcela) of a crediário contract: "3 de 10", its principal and due
    date.  ``amount_paid`` is the sum of its payments; the balance on any date is computed,
    never stored (shared.domains.money.fees)."""

    __tablename__ = "installments"
    __table_args__ = (
        UniqueConstraint("tenant_id", "external_id"),
        Index("ix_installments_tenant_id_status_due_date", "tenant_id", "status", "due_date"),
        Index("ix_installments_customer_id", "customer_id"),
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    customer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    external_id: Mapped[str] = mapped_column(String(64))
    contract: Mapped[str | None] = mapped_column(String(64))
    number: Mapped[int | None]
    count: Mapped[int | None]
    principal: Mapped[Decimal] = mapped_column(MONEY)
    due_date: Mapped[date]
    status: Mapped[InstallmentStatus] = mapped_column(
        String(16), server_default=InstallmentStatus.OPEN
    )
    status_reason: Mapped[str | None] = mapped_column(String(200))
    status_changed_at: Mapped[datetime | None]
    amount_paid: Mapped[Decimal] = mapped_column(MONEY, server_default="0")
    settled_at: Mapped[datetime | None]
    boleto_line: Mapped[str | None] = mapped_column(String(48))
    payment_url: Mapped[str | None] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(String(300))
