from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, LargeBinary, SmallInteger, String, Text, func
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import Base


class IdempotencyKey(Base):
    """A POST made with an ``Idempotency-Key``: in flight (``status`` null, until
    ``locked_until``), or done, with the answer a retry gets (encrypted: it may hold a secret
    shown once).  Kept a day.  Reached only by the exact caller that made it — ``owner`` is the
    verified token's tenant, kind and subject — so it needs no row-level policy."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (Index("ix_idempotency_keys_created_at", "created_at"),)

    owner: Mapped[str] = mapped_column(String(200), primary_key=True)
    key: Mapped[str] = mapped_column(String(120), primary_key=True)
    request: Mapped[str] = mapped_column(Text)  # method, path and query
    fingerprint: Mapped[bytes | None] = mapped_column(LargeBinary)  # sha256 of the body read
    status: Mapped[int | None] = mapped_column(SmallInteger)
    response: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    locked_until: Mapped[datetime | None]
