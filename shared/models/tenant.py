from __future__ import annotations

from enum import StrEnum

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import Base, Timestamps, UUIDPrimaryKey


class TenantKind(StrEnum):
    RETAILER = "retailer"
    AGENCY = "agency"


class Tenant(UUIDPrimaryKey, Timestamps, Base):
    """A retailer (the creditor) or a collection agency working for retailers."""

    __tablename__ = "tenants"

    slug: Mapped[str] = mapped_column(String(63), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[TenantKind] = mapped_column(String(16))
