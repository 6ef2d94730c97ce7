"""Writing jobs: one outbox row in the caller's transaction.  Nothing reaches Redis here."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import DateTime, String, bindparam, func, literal_column, text
from sqlalchemy.dialects.postgresql import ARRAY, insert
from sqlalchemy.dialects.postgresql import UUID as PG_UUID
from sqlalchemy.ext.asyncio import AsyncSession

from shared.models import OutboxJob
from shared.queue.registry import JobSpec, get_job


async def enqueue(
    session: AsyncSession,
    job: JobSpec | str,
    *,
    tenant_id: uuid.UUID | None = None,
    delay: timedelta | None = None,
    not_before: datetime | None = None,
    dedupe_key: str | None = None,
    **kwargs: Any,
) -> int | None:
    """Record a job to run after the caller's transaction commits.

    Returns the job id, or ``None`` when ``dedupe_key`` matched an existing job.  ``kwargs`` must
    be JSON values; the job reloads what it needs from them.
    """
    spec = get_job(job) if isinstance(job, str) else get_job(job.name)
    when: Any = not_before if not_before is not None else func.now()
    if delay is not None:
        when = when + delay
    context = structlog.contextvars.get_contextvars()
    stmt = insert(OutboxJob).values(
        actor=spec.name,
        queue=spec.queue,
        args=kwargs,
        tenant_id=tenant_id,
        correlation_id=context.get("request_id") or context.get("correlation_id"),
        dedupe_key=dedupe_key,
        not_before=when,
    )
    if dedupe_key is not None:
        stmt = stmt.on_conflict_do_nothing(
            index_elements=[OutboxJob.dedupe_key],
            index_where=literal_column("dedupe_key").isnot(None),
        )
    result = await session.execute(stmt.returning(OutboxJob.id))
    return result.scalar_one_or_none()


_ENQUEUE_MANY = text(
    """INSERT INTO outbox (actor, queue, args, tenant_id, correlation_id, not_before)
       SELECT :actor, :queue, CAST(v.args AS jsonb), v.tenant_id, :correlation,
              COALESCE(v.not_before, now())
       FROM unnest(:args, :tenants, :whens) AS v (args, tenant_id, not_before)"""
).bindparams(
    bindparam("args", type_=ARRAY(String())),
    bindparam("tenants", type_=ARRAY(PG_UUID())),
    bindparam("whens", type_=ARRAY(DateTime(timezone=True))),
)


async def enqueue_many(
    session: AsyncSession,
    job: JobSpec | str,
    items: Sequence[tuple[uuid.UUID | None, datetime | None, dict[str, Any]]],
) -> int:
    """Record many jobs of one kind at once — ``(tenant_id, not_before, kwargs)`` each — in
    one array insert (a planner writing tens of thousands of sends).  Returns how many."""
    if not items:
        return 0
    spec = get_job(job) if isinstance(job, str) else get_job(job.name)
    context = structlog.contextvars.get_contextvars()
    await session.execute(
        _ENQUEUE_MANY,
        {
            "actor": spec.name,
            "queue": spec.queue,
            "correlation": context.get("request_id") or context.get("correlation_id"),
            "args": [json.dumps(kwargs) for _, _, kwargs in items],
            "tenants": [tenant for tenant, _, _ in items],
            "whens": [when for _, when, _ in items],
        },
    )
    return len(items)
