from __future__ import annotations

from enum import StrEnum

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import Base, Timestamps, UUIDPrimaryKey


class TenantKind(StrEnum):
    RETAILER = "retailer"
    AGENCY = "agency"


class TenantStatus(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"


class Tenant(UUIDPrimaryKey, Timestamps, Base):
    """A retailer (the creditor) or a collection agency working for retailers.

    ``legal_name`` and ``document`` (CNPJ) identify the creditor in every collection message
    (CDC art. 42-A).
    """

    __tablename__ = "tenants"

    slug: Mapped[str] = mapped_column(String(63), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[TenantKind] = mapped_column(String(16))
    legal_name: Mapped[str | None] = mapped_column(String(200))
    document: Mapped[str | None] = mapped_column(String(14), unique=True)
    address: Mapped[str | None] = mapped_column(String(300))
    city: Mapped[str | None] = mapped_column(String(100))
    state: Mapped[str | None] = mapped_column(String(2))
    time_zone: Mapped[str] = mapped_column(String(64), server_default="America/Sao_Paulo")
    status: Mapped[TenantStatus] = mapped_column(String(16), server_default=TenantStatus.ACTIVE)
