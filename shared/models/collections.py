from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    ForeignKey,
    Identity,
    Index,
    Numeric,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import Base, Timestamps, UUIDPrimaryKey


class CollectionSettings(Base):
    """A tenant's contact governance: its window (never wider than the law's default), the
    frequency caps (never off), and how far back a missed step may still be sent."""

    __tablename__ = "collection_settings"

    tenant_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    # {"weekdays": ["08:00", "20:00"] | null, "saturday": [...] | null, "avoid_carnival": bool}
    window: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")
    daily_cap: Mapped[int] = mapped_column(SmallInteger, server_default="1")
    weekly_cap: Mapped[int] = mapped_column(SmallInteger, server_default="3")
    catch_up_days: Mapped[int] = mapped_column(SmallInteger, server_default="2")
    paid_hold_days: Mapped[int] = mapped_column(SmallInteger, server_default="3")
    fallback_after_hours: Mapped[int] = mapped_column(SmallInteger, server_default="24")
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())


class CadenceKind(StrEnum):
    REGUA = "regua"  # around the due dates of the retailer's installments
    AGREEMENT = "agreement"  # around the due dates of an agreement's installments (gentler)


class Cadence(UUIDPrimaryKey, Timestamps, Base):
    """A régua: the steps a tenant's customers go through around each due date.

    Each ``kind`` has its own default: ``regua`` for the retailer's installments, ``agreement``
    for the installments of active agreements.  The default cadence of a kind serves every
    customer; a segment cadence serves customers carrying any of ``tags_any`` (the lowest
    ``priority`` first); a customer may be pinned to one ``regua`` cadence.
    """

    __tablename__ = "cadences"
    __table_args__ = (
        UniqueConstraint("tenant_id", "name"),
        Index(
            "uq_cadences_default",
            "tenant_id",
            "kind",
            unique=True,
            postgresql_where=text("is_default"),
        ),
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    kind: Mapped[CadenceKind] = mapped_column(String(16), server_default=CadenceKind.REGUA)
    is_default: Mapped[bool] = mapped_column(server_default="false")
    tags_any: Mapped[list[str]] = mapped_column(ARRAY(String(64)), server_default="{}")
    priority: Mapped[int] = mapped_column(SmallInteger, server_default="100")
    active: Mapped[bool] = mapped_column(server_default="true")


class CadenceStep(UUIDPrimaryKey, Timestamps, Base):
    """One moment of a régua: ``offset_days`` from the due date (-3, 0, +5 ...), the channel and
    its fallback, the template (or weighted ``variants``, picked per customer deterministically),
    a hold-out share that receives nothing, and the conditions that must hold."""

    __tablename__ = "cadence_steps"
    __table_args__ = (UniqueConstraint("cadence_id", "offset_days"),)

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    cadence_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("cadences.id", ondelete="CASCADE"))
    offset_days: Mapped[int] = mapped_column(SmallInteger)
    channel: Mapped[str] = mapped_column(String(16))
    fallback_channel: Mapped[str | None] = mapped_column(String(16))
    # [{"template": "<name>", "weight": 1}, ...] — a template name exists per channel kind
    variants: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)
    holdout_percent: Mapped[int] = mapped_column(SmallInteger, server_default="0")
    min_amount: Mapped[Decimal | None] = mapped_column(Numeric(14, 2))
    tags_any: Mapped[list[str]] = mapped_column(ARRAY(String(64)), server_default="{}")
    max_days_overdue: Mapped[int | None] = mapped_column(SmallInteger)


class HoldKind(StrEnum):
    PAUSE = "pause"  # an operator or the retailer paused collection
    PAID_CLAIM = "paid_claim"  # the debtor said "já paguei": wait for the payment to land
    PROMISE = "promise"  # a promise to pay (negotiation)
    DISPUTE = "dispute"


class CollectionHold(UUIDPrimaryKey, Timestamps, Base):
    """Collection paused for a customer (``installment_id`` null) or one installment, until a
    date or until released, with the reason recorded."""

    __tablename__ = "collection_holds"
    __table_args__ = (
        Index(
            "ix_collection_holds_active",
            "tenant_id",
            "customer_id",
            postgresql_where=text("released_at IS NULL"),
        ),
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    customer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    installment_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("installments.id", ondelete="CASCADE")
    )
    kind: Mapped[HoldKind] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(300))
    until: Mapped[datetime | None]
    released_at: Mapped[datetime | None]
    created_by: Mapped[str | None] = mapped_column(String(100))


class AttemptState(StrEnum):
    PLANNED = "planned"  # written by the planner, waiting for its instant
    QUEUED = "queued"  # its send job is due
    SENDING = "sending"  # committed before the provider call
    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"
    FAILED = "failed"
    UNKNOWN = "unknown"  # the call's outcome is unknown; a status webhook will tell
    CANCELLED = "cancelled"  # made pointless before it went (paid, opted out …)
    SKIPPED = "skipped"  # held back by a governance rule, recorded with its reason


class Campaign(UUIDPrimaryKey, Base):
    """A one-off message to a segment: who (``filter``, the fields the preview takes), what
    (one template on a channel and its fallback), and what governance did with it when it was
    created (``counts``: matched, queued, held by reason).  Its attempts point back at it."""

    __tablename__ = "campaigns"
    __table_args__ = (Index("ix_campaigns_tenant_created", "tenant_id", "created_at"),)

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    # {"tags_any": [...], "min_days_overdue": n | null, "max_days_overdue": n | null,
    #  "min_amount": "100.00" | null}
    filter: Mapped[dict[str, Any]] = mapped_column(JSONB)
    template_name: Mapped[str] = mapped_column(String(512))
    channel: Mapped[str] = mapped_column(String(16))
    fallback_channel: Mapped[str | None] = mapped_column(String(16))
    created_by: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    # {"matched": n, "queued": n, "held": {"<reason>": n}}
    counts: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")


class ContactAttempt(UUIDPrimaryKey, Timestamps, Base):
    """One message to one debtor: what was planned, what governance decided, what was sent
    (template, amounts, Pix, the rendered text's hash) and what the provider said."""

    __tablename__ = "contact_attempts"
    __table_args__ = (
        Index("ix_contact_attempts_customer", "tenant_id", "customer_id", "planned_for"),
        Index("ix_contact_attempts_fallback_of", "fallback_of"),
        Index(
            "ix_contact_attempts_open",
            "state",
            "planned_for",
            postgresql_where=text("state IN ('planned', 'queued', 'sending', 'unknown')"),
        ),
        Index(
            "uq_contact_attempts_provider_message",
            "provider_message_id",
            unique=True,
            postgresql_where=text("provider_message_id IS NOT NULL"),
        ),
        Index("ix_contact_attempts_campaign", "tenant_id", "campaign_id"),
        Index(
            "ix_contact_attempts_offer",
            "offer_id",
            postgresql_where=text("offer_id IS NOT NULL"),
        ),
        # the sweeper's proof that statuses flow for a channel (``collections.tasks``)
        Index(
            "ix_contact_attempts_channel_delivered",
            "channel_id",
            "sending_at",
            postgresql_where=text("delivered_at IS NOT NULL"),
        ),
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    customer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    # regua | manual | campaign | agreement (about an agreement's installments)
    kind: Mapped[str] = mapped_column(String(16), server_default="regua")
    cadence_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("cadences.id", ondelete="SET NULL")
    )
    step_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("cadence_steps.id", ondelete="SET NULL")
    )
    campaign_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("campaigns.id", ondelete="SET NULL")
    )
    # an offer sent as a template outside the window: its link opens the offer's options
    offer_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("offers.id", ondelete="SET NULL"))
    offset_days: Mapped[int | None] = mapped_column(SmallInteger)
    template_name: Mapped[str | None] = mapped_column(String(512))
    channel: Mapped[str] = mapped_column(String(16))
    fallback_channel: Mapped[str | None] = mapped_column(String(16))
    fallback_of: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("contact_attempts.id", ondelete="SET NULL")
    )
    channel_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("channels.id", ondelete="SET NULL")
    )
    template_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("message_templates.id", ondelete="SET NULL")
    )
    recipient: Mapped[str | None] = mapped_column(String(254))
    state: Mapped[AttemptState] = mapped_column(String(16), server_default=AttemptState.PLANNED)
    reason: Mapped[str | None] = mapped_column(String(64))
    contact_day: Mapped[date]
    planned_for: Mapped[datetime]
    queued_at: Mapped[datetime | None]
    sending_at: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
    delivered_at: Mapped[datetime | None]
    read_at: Mapped[datetime | None]
    failed_at: Mapped[datetime | None]
    tries: Mapped[int] = mapped_column(SmallInteger, server_default="0")
    provider_message_id: Mapped[str | None] = mapped_column(String(128))
    error_class: Mapped[str | None] = mapped_column(String(32))
    error_code: Mapped[int | None]
    # what the provider said it charges (WhatsApp ``pricing``: billable, model, category, type)
    pricing: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    amounts: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    rendered_text: Mapped[str | None] = mapped_column(Text)  # as the debtor reads it
    rendered_sha256: Mapped[str | None] = mapped_column(String(64))
    decisions: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, server_default="[]")


class ContactAttemptItem(Base):
    """An installment an attempt is about: the retailer's (``installment_id``) or an
    agreement's (``agreement_installment_id``), exactly one of them.  ``(installment_id,
    step_id)`` and ``(agreement_installment_id, step_id)`` are unique: a step of a régua fires
    once per installment, whatever re-runs, schedulers or catch-ups happen."""

    __tablename__ = "contact_attempt_items"
    __table_args__ = (
        UniqueConstraint("installment_id", "step_id"),
        UniqueConstraint("agreement_installment_id", "step_id"),
        Index("ix_contact_attempt_items_attempt_id", "attempt_id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    attempt_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("contact_attempts.id", ondelete="CASCADE")
    )
    installment_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("installments.id", ondelete="CASCADE")
    )
    agreement_installment_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("agreement_installments.id", ondelete="CASCADE")
    )
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    step_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("cadence_steps.id", ondelete="SET NULL")
    )
