from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Identity,
    Index,
    LargeBinary,
    String,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import Base


class AuditEvent(Base):
    """Append-only record of who did what to whom (the app role may only insert and read).

    Partitioned by month of ``created_at`` (partitions in the ``audit_partitions`` schema).
    ``txid`` is the inserting transaction's id, the watermark sealing goes by
    (``shared.domains.audit.seal``).
    """

    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_events_tenant_id_id", "tenant_id", "id"),
        Index(
            "ix_audit_events_txid",
            "txid",
            postgresql_using="brin",
            postgresql_with={"autosummarize": "on"},
        ),
        {"postgresql_partition_by": "RANGE (created_at)"},
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    tenant_id: Mapped[uuid.UUID | None]
    actor_type: Mapped[str] = mapped_column(
        String(16)
    )  # user | client | system | provider | debtor
    actor_id: Mapped[str | None] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    subject_type: Mapped[str | None] = mapped_column(String(32))
    subject_id: Mapped[str | None] = mapped_column(String(64))
    data: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    request_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now(), primary_key=True)
    txid: Mapped[int] = mapped_column(
        BigInteger, server_default=text("(pg_current_xact_id())::text::bigint")
    )


class AuditSeal(Base):
    """One sealed batch of one tenant's audit chain (``tenant_id`` NULL: the platform's chain).

    It holds the events of the chain whose transaction id is in ``[from_txid, to_txid)``: their
    ids, their leaf hashes (32 bytes each, in id order), the Merkle root of those (``digest``)
    and ``seal_hash`` = H(previous seal hash, digest, seq, ranges), which chains the batches.
    """

    __tablename__ = "audit_seals"
    __table_args__ = (
        UniqueConstraint("tenant_id", "seq", postgresql_nulls_not_distinct=True),
        Index("ix_audit_seals_to_txid", "to_txid"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    tenant_id: Mapped[uuid.UUID | None]
    seq: Mapped[int] = mapped_column(BigInteger)
    from_txid: Mapped[int] = mapped_column(BigInteger)
    to_txid: Mapped[int] = mapped_column(BigInteger)
    first_event_id: Mapped[int] = mapped_column(BigInteger)
    last_event_id: Mapped[int] = mapped_column(BigInteger)
    event_count: Mapped[int]
    event_ids: Mapped[list[int]] = mapped_column(ARRAY(BigInteger))
    leaves: Mapped[bytes] = mapped_column(LargeBinary)
    digest: Mapped[bytes] = mapped_column(LargeBinary)
    prev_hash: Mapped[bytes] = mapped_column(LargeBinary)
    seal_hash: Mapped[bytes] = mapped_column(LargeBinary)
    sealed_at: Mapped[datetime] = mapped_column(server_default=func.now())
