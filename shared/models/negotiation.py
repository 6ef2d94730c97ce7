from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    ARRAY,
    ForeignKey,
    Index,
    Numeric,
    SmallInteger,
    String,
    UniqueConstraint,
    Uuid,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import Base, Timestamps, UUIDPrimaryKey

PERCENT = Numeric(5, 2)
MONEY = Numeric(14, 2)


class NegotiationPolicy(UUIDPrimaryKey, Base):
    """One version of a retailer's negotiation policy.  Never edited: a change is a new
    version, and every offer names the version it was computed under."""

    __tablename__ = "negotiation_policies"
    __table_args__ = (UniqueConstraint("tenant_id", "version"),)

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    version: Mapped[int]
    max_discount_fees_percent: Mapped[Decimal] = mapped_column(PERCENT)
    max_discount_principal_percent: Mapped[Decimal] = mapped_column(PERCENT)
    min_down_payment_percent: Mapped[Decimal] = mapped_column(PERCENT)
    max_installments: Mapped[int] = mapped_column(SmallInteger)
    min_installment_amount: Mapped[Decimal] = mapped_column(MONEY)
    monthly_interest_percent: Mapped[Decimal] = mapped_column(Numeric(6, 3))
    offer_validity_hours: Mapped[int] = mapped_column(SmallInteger)
    max_broken_agreements: Mapped[int] = mapped_column(SmallInteger)
    created_by: Mapped[str | None] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class MandateNegotiationLimits(UUIDPrimaryKey, Timestamps, Base):
    """The limits a retailer sets for the agency holding ``mandate_id``; a null field leaves
    the retailer's policy in force, a set one may only be tighter than it."""

    __tablename__ = "mandate_negotiation_limits"

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    mandate_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("mandates.id", ondelete="CASCADE"), unique=True
    )
    max_discount_fees_percent: Mapped[Decimal | None] = mapped_column(PERCENT)
    max_discount_principal_percent: Mapped[Decimal | None] = mapped_column(PERCENT)
    min_down_payment_percent: Mapped[Decimal | None] = mapped_column(PERCENT)
    max_installments: Mapped[int | None] = mapped_column(SmallInteger)
    min_installment_amount: Mapped[Decimal | None] = mapped_column(MONEY)
    monthly_interest_percent: Mapped[Decimal | None] = mapped_column(Numeric(6, 3))
    offer_validity_hours: Mapped[int | None] = mapped_column(SmallInteger)
    max_broken_agreements: Mapped[int | None] = mapped_column(SmallInteger)
    updated_by: Mapped[str | None] = mapped_column(String(80))


class Offer(UUIDPrimaryKey, Base):
    """A menu of negotiation options (or one operator-built option) for a customer's overdue
    installments, as computed on ``as_of``.  An agreement is later made from ``(id, option id)``;
    ``basis`` keeps each installment's itemized balance the options were computed from."""

    __tablename__ = "offers"
    __table_args__ = (Index("ix_offers_tenant_id_created_at", "tenant_id", "created_at"),)

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    customer_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(16))  # menu | custom
    policy_version: Mapped[int]
    mandate_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("mandates.id", ondelete="SET NULL")
    )
    installment_ids: Mapped[list[uuid.UUID]] = mapped_column(ARRAY(Uuid))
    as_of: Mapped[date]
    limits: Mapped[dict[str, Any]] = mapped_column(JSONB)
    basis: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)
    options: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)
    created_by: Mapped[str | None] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    expires_at: Mapped[datetime]
