from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum

from sqlalchemy import BigInteger, ForeignKey, Identity, Index, Integer, String, Text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import Base, Timestamps, UUIDPrimaryKey
from shared.models.installment import MONEY


class ImportStatus(StrEnum):
    RECEIVING = "receiving"
    QUEUED = "queued"
    MERGING = "merging"
    DONE = "done"
    FAILED = "failed"


class DataImport(UUIDPrimaryKey, Timestamps, Base):
    """A bulk import of customers and installments from one CSV or JSON Lines file."""

    __tablename__ = "imports"

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    status: Mapped[ImportStatus] = mapped_column(String(16))
    format: Mapped[str] = mapped_column(String(8))
    filename: Mapped[str | None] = mapped_column(String(255))
    sha256: Mapped[str | None] = mapped_column(String(64))
    created_by: Mapped[str | None] = mapped_column(String(80))
    rows_total: Mapped[int] = mapped_column(Integer, server_default="0")
    rows_valid: Mapped[int] = mapped_column(Integer, server_default="0")
    rows_rejected: Mapped[int] = mapped_column(Integer, server_default="0")
    rows_merged: Mapped[int] = mapped_column(Integer, server_default="0")
    customers_created: Mapped[int] = mapped_column(Integer, server_default="0")
    customers_updated: Mapped[int] = mapped_column(Integer, server_default="0")
    installments_created: Mapped[int] = mapped_column(Integer, server_default="0")
    installments_updated: Mapped[int] = mapped_column(Integer, server_default="0")
    installments_unchanged: Mapped[int] = mapped_column(Integer, server_default="0")
    error: Mapped[str | None] = mapped_column(Text)
    finished_at: Mapped[datetime | None]


class ImportError_(Base):
    """One problem with one row of an import: the file's line number, the field, the reason."""

    __tablename__ = "import_errors"
    __table_args__ = (Index("ix_import_errors_import_id_line", "import_id", "line"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    import_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("imports.id", ondelete="CASCADE"))
    line: Mapped[int]
    field: Mapped[str | None] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(String(300))


class ImportRow(Base):
    """Staging: the validated, normalized rows of an import, loaded with COPY and merged into
    customers and installments by set-based SQL.  Unlogged; emptied once an import is done."""

    __tablename__ = "import_rows"
    __table_args__ = {"prefixes": ["UNLOGGED"]}

    import_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    line: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[uuid.UUID]
    customer_external_id: Mapped[str] = mapped_column(String(64))
    name: Mapped[str | None] = mapped_column(String(200))
    document: Mapped[str | None] = mapped_column(String(14))
    phones: Mapped[list[str] | None] = mapped_column(ARRAY(String(20)))
    email: Mapped[str | None] = mapped_column(String(254))
    state: Mapped[str | None] = mapped_column(String(2))
    city: Mapped[str | None] = mapped_column(String(100))
    tags: Mapped[list[str] | None] = mapped_column(ARRAY(String(64)))
    external_id: Mapped[str | None] = mapped_column(String(64))
    contract: Mapped[str | None] = mapped_column(String(64))
    number: Mapped[int | None]
    count: Mapped[int | None]
    principal: Mapped[Decimal | None] = mapped_column(MONEY)
    due_date: Mapped[date | None]
    boleto_line: Mapped[str | None] = mapped_column(String(48))
    payment_url: Mapped[str | None] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(String(300))
