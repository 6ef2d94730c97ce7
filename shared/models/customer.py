from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import Base, Timestamps, UUIDPrimaryKey


class Customer(UUIDPrimaryKey, Timestamps, Base):
    """A retailer's customer (the debtor), keyed by the retailer's own id.

    ``state`` (UF) and ``city`` decide the debtor's time zone and holidays; ``opted_out``
    lists the channels the customer asked not to be contacted on; ``do_not_contact`` stops
    every collection message (e.g. a dispute handled by the store, a court order).
    """

    __tablename__ = "customers"
    __table_args__ = (
        UniqueConstraint("tenant_id", "external_id"),
        Index("ix_customers_tags", "tags", postgresql_using="gin"),
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    external_id: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    document: Mapped[str | None] = mapped_column(String(14))
    email: Mapped[str | None] = mapped_column(String(254))
    state: Mapped[str | None] = mapped_column(String(2))
    city: Mapped[str | None] = mapped_column(String(100))
    tags: Mapped[list[str]] = mapped_column(ARRAY(String(64)), server_default="{}")
    opted_out: Mapped[list[str]] = mapped_column(ARRAY(String(16)), server_default="{}")
    do_not_contact: Mapped[bool] = mapped_column(server_default="false")
    do_not_contact_reason: Mapped[str | None] = mapped_column(String(200))
    attributes: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")
    # pins the customer to one régua (otherwise: the segment's, else the tenant's default)
    cadence_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("cadences.id", ondelete="SET NULL", use_alter=True)
    )
