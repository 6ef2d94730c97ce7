from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import ForeignKey, Numeric, String, UniqueConstraint, func
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import Base, UUIDPrimaryKey


class FeeRuleVersion(UUIDPrimaryKey, Base):
    """One version of a tenant's late-fee rule.  Versions are never edited: a change is a new
    version with an effective date, and an installment is charged by the version in force on
    its due date, so an old balance can always be explained."""

    __tablename__ = "fee_rules"
    __table_args__ = (UniqueConstraint("tenant_id", "version"),)

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    version: Mapped[int]
    effective_from: Mapped[date]
    fine_percent: Mapped[Decimal] = mapped_column(Numeric(5, 2))
    monthly_interest_percent: Mapped[Decimal] = mapped_column(Numeric(6, 3))
    correction_index: Mapped[str | None] = mapped_column(String(16))
    discount_percent: Mapped[Decimal] = mapped_column(Numeric(5, 2))
    discount_days_before_due: Mapped[int]
    business_day_grace: Mapped[bool]
    created_by: Mapped[str | None] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class CorrectionIndexRate(Base):
    """A monetary-correction index's monthly change (e.g. IPCA, BCB SGS series 433), in %."""

    __tablename__ = "correction_index_rates"

    index: Mapped[str] = mapped_column(String(16), primary_key=True)
    month: Mapped[date] = mapped_column(primary_key=True)
    percent: Mapped[Decimal] = mapped_column(Numeric(8, 4))
