from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Index, SmallInteger, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import Base, Timestamps, UUIDPrimaryKey


class PhoneStatus(StrEnum):
    VALID = "valid"
    WRONG_PERSON = "wrong_person"
    UNREACHABLE = "unreachable"


class CustomerPhone(UUIDPrimaryKey, Timestamps, Base):
    """One phone of a customer, in E.164.

    A number the retailer stops sending is kept ``active = false`` rather than deleted, so what
    we learned about it (a wrong person, the WhatsApp id) survives the next upsert.
    ``wa_key`` is the 9-insensitive key inbound WhatsApp messages are matched on.
    ``no_call_list_since`` records enrolment in a do-not-contact list such as Procon-SP's
    "Não Me Ligue" (effective 30 days after enrolment).
    """

    __tablename__ = "customer_phones"
    __table_args__ = (
        UniqueConstraint("customer_id", "number"),
        Index("ix_customer_phones_tenant_id_wa_key", "tenant_id", "wa_key"),
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    customer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    number: Mapped[str] = mapped_column(String(20))
    position: Mapped[int] = mapped_column(SmallInteger)
    active: Mapped[bool] = mapped_column(server_default="true")
    wa_key: Mapped[str] = mapped_column(String(20))
    whatsapp_id: Mapped[str | None] = mapped_column(String(20))
    status: Mapped[PhoneStatus] = mapped_column(String(16), server_default=PhoneStatus.VALID)
    status_changed_at: Mapped[datetime | None]
    no_call_list_since: Mapped[date | None]
