"""Agreements (acordos): an accepted offer option with its own installments, the original
installments it renegotiated (and what they were before), and the money paid on it."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum

from sqlalchemy import (
    ForeignKey,
    Index,
    SmallInteger,
    String,
    UniqueConstraint,
    Uuid,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import Base, UUIDPrimaryKey
from shared.models.installment import MONEY


class AgreementStatus(StrEnum):
    ACTIVE = "active"
    VOID = "void"  # the down payment was not paid in time: the originals are back as they were
    BROKEN = "broken"  # an installment went unpaid too long: originals back, minus what was paid
    COMPLETED = "completed"  # every installment paid
    CANCELLED = "cancelled"  # by an operator: originals back as they were


class AgreementInstallmentStatus(StrEnum):
    OPEN = "open"
    PARTIALLY_PAID = "partially_paid"
    PAID = "paid"


class Agreement(UUIDPrimaryKey, Base):
    """An offer's option, accepted: the amounts and dates are the option's, copied."""

    __tablename__ = "agreements"
    __table_args__ = (
        UniqueConstraint("offer_id"),
        Index("ix_agreements_tenant_id_created_at", "tenant_id", "created_at"),
        Index("ix_agreements_customer_id", "customer_id"),
        Index("ix_agreements_active", "tenant_id", postgresql_where=text("status = 'active'")),
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    customer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    offer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("offers.id", ondelete="RESTRICT"))
    option_id: Mapped[str] = mapped_column(String(40))
    mandate_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("mandates.id", ondelete="SET NULL")
    )
    policy_version: Mapped[int]
    status: Mapped[AgreementStatus] = mapped_column(String(16), server_default="active")
    original_total: Mapped[Decimal] = mapped_column(MONEY)
    negotiated_total: Mapped[Decimal] = mapped_column(MONEY)
    interest: Mapped[Decimal] = mapped_column(MONEY)
    down_payment_amount: Mapped[Decimal] = mapped_column(MONEY)
    down_payment_due: Mapped[date | None]
    created_by: Mapped[str | None] = mapped_column(String(80))
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    voided_at: Mapped[datetime | None]
    broken_at: Mapped[datetime | None]
    completed_at: Mapped[datetime | None]
    cancelled_at: Mapped[datetime | None]
    end_reason: Mapped[str | None] = mapped_column(String(200))


class AgreementInstallment(UUIDPrimaryKey, Base):
    """One installment of an agreement; number 0 is the down payment.  Its id names it in a
    Pix txid, as an original installment's does."""

    __tablename__ = "agreement_installments"
    __table_args__ = (UniqueConstraint("agreement_id", "number"),)

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    agreement_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("agreements.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(SmallInteger)
    due_date: Mapped[date]
    amount: Mapped[Decimal] = mapped_column(MONEY)
    amount_paid: Mapped[Decimal] = mapped_column(MONEY, server_default="0")
    status: Mapped[AgreementInstallmentStatus] = mapped_column(String(16), server_default="open")
    paid_at: Mapped[datetime | None]


class AgreementOriginal(UUIDPrimaryKey, Base):
    """An installment the agreement renegotiated, with what it was when the agreement began
    (restored on void or cancel) and what the agreement's payments settled of it on a break."""

    __tablename__ = "agreement_originals"
    __table_args__ = (UniqueConstraint("agreement_id", "installment_id"),)

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    agreement_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("agreements.id", ondelete="CASCADE"))
    installment_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("installments.id", ondelete="CASCADE"), index=True
    )
    amount_paid_before: Mapped[Decimal] = mapped_column(MONEY)
    status_before: Mapped[str] = mapped_column(String(16))
    applied_on_break: Mapped[Decimal | None] = mapped_column(MONEY)


class AgreementPayment(UUIDPrimaryKey, Base):
    """Money received for an agreement installment, recorded once by ``external_id`` (a Pix's
    endToEndId), like :class:`Payment` for original installments."""

    __tablename__ = "agreement_payments"
    __table_args__ = (UniqueConstraint("tenant_id", "external_id"),)

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    agreement_installment_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("agreement_installments.id", ondelete="CASCADE"), index=True
    )
    external_id: Mapped[str] = mapped_column(String(64))
    amount: Mapped[Decimal] = mapped_column(MONEY)
    applied: Mapped[Decimal] = mapped_column(MONEY)
    overpaid: Mapped[Decimal] = mapped_column(MONEY)
    paid_at: Mapped[datetime]
    method: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(String(16))
    txid: Mapped[str | None] = mapped_column(String(35))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
