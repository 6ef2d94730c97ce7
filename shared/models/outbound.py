"""Outbound webhooks: what happened in a tenant (``tenant_events``), where the tenant's systems
want to hear it (``webhook_endpoints``) and each event's journey to each endpoint
(``webhook_deliveries``)."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    Identity,
    Index,
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


class EndpointStatus(StrEnum):
    ACTIVE = "active"
    DISABLED = "disabled"  # by the tenant, or by Quita (410 Gone, a long failure streak)


class DeliveryState(StrEnum):
    PENDING = "pending"  # not tried yet
    FAILED = "failed"  # tried and failed; tried again at ``next_attempt_at``
    DELIVERED = "delivered"  # the endpoint answered 2xx
    DEAD = "dead"  # the retry schedule ran out; only a manual replay sends it again


# What still waits to be sent, in the endpoint's queue.
QUEUED = (DeliveryState.PENDING, DeliveryState.FAILED)


class TenantEvent(Base):
    """One thing that happened in a tenant that its systems may want to hear about.

    ``seq`` only breaks ties between events of the same instant (the order they were emitted);
    the id is what receivers see, as ``webhook-id``.  ``data`` holds ids, external ids and
    amounts, never a debtor's name, number or message text.
    """

    __tablename__ = "tenant_events"
    __table_args__ = (Index("ix_tenant_events_tenant_id_occurred_at", "tenant_id", "occurred_at"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    seq: Mapped[int] = mapped_column(BigInteger, Identity())
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    type: Mapped[str] = mapped_column(String(60))
    occurred_at: Mapped[datetime]
    data: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class WebhookEndpoint(UUIDPrimaryKey, Timestamps, Base):
    """A URL of the tenant's systems that receives its events, signed per Standard Webhooks.

    ``event_types`` filters what it receives (empty: everything).  ``secret`` is the ciphertext
    (``shared.crypto``) of the ``whsec_`` signing secret; after a rotation the previous one keeps
    signing too until ``previous_secret_expires_at``.  ``failure_streak`` counts failed attempts
    since the last success (``failing_since`` when the streak began).
    """

    __tablename__ = "webhook_endpoints"
    __table_args__ = (
        Index("ix_webhook_endpoints_tenant_id", "tenant_id"),
        UniqueConstraint("tenant_id", "idempotency_key"),
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    url: Mapped[str] = mapped_column(String(2048))
    description: Mapped[str | None] = mapped_column(String(300))
    event_types: Mapped[list[str]] = mapped_column(ARRAY(String(60)), server_default="{}")
    secret: Mapped[str] = mapped_column(Text)
    previous_secret: Mapped[str | None] = mapped_column(Text)
    previous_secret_expires_at: Mapped[datetime | None]
    status: Mapped[EndpointStatus] = mapped_column(String(16), server_default=EndpointStatus.ACTIVE)
    disabled_reason: Mapped[str | None] = mapped_column(String(300))
    disabled_at: Mapped[datetime | None]
    failure_streak: Mapped[int] = mapped_column(server_default="0")
    failing_since: Mapped[datetime | None]
    last_success_at: Mapped[datetime | None]
    # The creating request's ``Idempotency-Key``: a retried creation answers the same endpoint.
    idempotency_key: Mapped[str | None] = mapped_column(String(120))


class WebhookDelivery(UUIDPrimaryKey, Timestamps, Base):
    """One event on its way to one endpoint: the delivery log's row.

    ``occurred_at`` and ``event_seq`` are the event's, copied so an endpoint's queue is read in
    event order from one index.  ``last_error`` is a short reason (``HTTP 503``, ``timeout``),
    never a response body.  A manual replay adds a new row (``replay``) for the same event, so
    the receiver sees the same ``webhook-id`` again.
    """

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        Index(
            "ix_webhook_deliveries_queue",
            "endpoint_id",
            "occurred_at",
            "event_seq",
            postgresql_where=text("state IN ('pending', 'failed')"),
        ),
        Index("ix_webhook_deliveries_log", "endpoint_id", "occurred_at", "event_seq"),
        Index("ix_webhook_deliveries_event_id", "event_id"),
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    event_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenant_events.id", ondelete="CASCADE"))
    endpoint_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("webhook_endpoints.id", ondelete="CASCADE")
    )
    occurred_at: Mapped[datetime]
    event_seq: Mapped[int] = mapped_column(BigInteger)
    state: Mapped[DeliveryState] = mapped_column(String(16), server_default=DeliveryState.PENDING)
    attempts: Mapped[int] = mapped_column(SmallInteger, server_default="0")
    next_attempt_at: Mapped[datetime] = mapped_column(server_default=func.now())
    last_attempt_at: Mapped[datetime | None]
    last_status: Mapped[int | None] = mapped_column(SmallInteger)
    last_error: Mapped[str | None] = mapped_column(String(300))
    delivered_at: Mapped[datetime | None]
    replay: Mapped[bool] = mapped_column(Boolean, server_default="false")
