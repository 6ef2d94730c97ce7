from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Identity, Index, String, Text, func, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import Base

_OUTBOX_NS = uuid.UUID("6f1d8c1e-4b7a-4f57-9a51-6d0f2a8f7c10")


def redis_message_id(job_id: int, dispatch_count: int) -> str:
    """Stable per (job, dispatch): lets the relay and the sweeper find the message in Redis."""
    return str(uuid.uuid5(_OUTBOX_NS, f"{job_id}:{dispatch_count}"))


class OutboxJob(Base):
    """A job, written in the same transaction as the change that caused it.

    Postgres is the source of truth for every job: the relay moves due rows to Redis, the worker
    marks them done in the job's own transaction, failures are rescheduled here (not in Redis), and
    a job whose message Redis lost is dispatched again.
    """

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    actor: Mapped[str] = mapped_column(String(120))
    queue: Mapped[str] = mapped_column(String(40))
    args: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    tenant_id: Mapped[uuid.UUID | None]
    correlation_id: Mapped[str | None] = mapped_column(String(64))
    # Makes an enqueue idempotent: a second job with the same key is not created.
    dedupe_key: Mapped[str | None] = mapped_column(String(200))
    not_before: Mapped[datetime] = mapped_column(server_default=func.now())
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    dispatched_at: Mapped[datetime | None]
    dispatch_count: Mapped[int] = mapped_column(server_default=text("0"))
    attempts: Mapped[int] = mapped_column(server_default=text("0"))
    done_at: Mapped[datetime | None]
    failed_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        Index(
            "ix_outbox_due",
            "not_before",
            "id",
            postgresql_where=text(
                "dispatched_at IS NULL AND done_at IS NULL AND failed_at IS NULL"
            ),
        ),
        Index(
            "ix_outbox_in_flight",
            "dispatched_at",
            postgresql_where=text(
                "dispatched_at IS NOT NULL AND done_at IS NULL AND failed_at IS NULL"
            ),
        ),
        Index(
            "uq_outbox_dedupe_key",
            "dedupe_key",
            unique=True,
            postgresql_where=text("dedupe_key IS NOT NULL"),
        ),
        Index("ix_outbox_done_at", "done_at", postgresql_where=text("done_at IS NOT NULL")),
    )

    @property
    def redis_message_id(self) -> str:
        return redis_message_id(self.id, self.dispatch_count)
