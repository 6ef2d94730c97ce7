"""Running one job: the same code path in the worker and in tests.

The job's outbox row is locked for the run, so a duplicate delivery waits and then finds it done.
Success marks the row done in the job's own transaction; a failure is recorded on the row and
rescheduled with backoff (Postgres, not Redis, holds retries), or marked failed for good.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import structlog
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db import SessionMaker
from shared.queue.registry import REGISTRY, JobContext, RetryLater
from shared.tenancy.scope import SYSTEM, tenant_scope, use_scope

log = structlog.get_logger("quita.jobs")

_MAX_ERROR = 2000


class Outcome(StrEnum):
    DONE = "done"
    SKIPPED = "skipped"  # missing, already done or failed: a duplicate delivery
    RETRY = "retry"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class _Row:
    id: int
    actor: str
    args: dict[str, Any]
    tenant_id: Any
    attempts: int
    correlation_id: str | None
    finished: bool


async def _lock(session: AsyncSession, job_id: int) -> _Row | None:
    result = await session.execute(
        text(
            """SELECT id, actor, args, tenant_id, attempts, correlation_id,
                      (done_at IS NOT NULL OR failed_at IS NOT NULL) AS finished
               FROM outbox WHERE id = :id FOR UPDATE"""
        ),
        {"id": job_id},
    )
    row = result.one_or_none()
    return _Row(*row) if row is not None else None


async def run_job(maker: SessionMaker, job_id: int) -> Outcome:
    """Run outbox job ``job_id`` once, idempotently."""
    async with maker() as session:
        row = await _lock(session, job_id)
        if row is None or row.finished:
            await session.rollback()
            return Outcome.SKIPPED
        # A job sees what its tenant sees; a job of no tenant is a platform job.
        await use_scope(session, tenant_scope(row.tenant_id) if row.tenant_id else SYSTEM)
        with structlog.contextvars.bound_contextvars(
            job_id=row.id,
            actor=row.actor,
            tenant_id=str(row.tenant_id) if row.tenant_id else None,
            request_id=row.correlation_id,
        ):
            return await _execute(maker, session, row)


async def _execute(maker: SessionMaker, session: AsyncSession, row: _Row) -> Outcome:
    spec = REGISTRY.get(row.actor)
    if spec is None:
        await session.rollback()
        await _finish_failed(maker, row.id, f"no job named {row.actor!r} is registered")
        log.error("job.unknown")
        return Outcome.FAILED
    ctx = JobContext(
        session=session,
        job_id=row.id,
        actor=row.actor,
        tenant_id=row.tenant_id,
        attempt=row.attempts + 1,
        correlation_id=row.correlation_id,
    )
    try:
        await spec.fn(ctx, **row.args)
        await session.execute(
            text("UPDATE outbox SET done_at = now(), attempts = attempts + 1 WHERE id = :id"),
            {"id": row.id},
        )
        await session.commit()
    except RetryLater as wait:
        await session.rollback()
        await _reschedule(maker, row.id, wait.delay_s, wait.reason, count_attempt=False)
        log.info("job.deferred", delay_s=wait.delay_s, reason=wait.reason)
        return Outcome.RETRY
    except Exception as exc:
        await session.rollback()
        error = f"{type(exc).__name__}: {exc}"[:_MAX_ERROR]
        attempts = row.attempts + 1
        if attempts >= spec.max_attempts:
            await _finish_failed(maker, row.id, error, count_attempt=True)
            log.error("job.failed", attempts=attempts, exc_info=True)
            return Outcome.FAILED
        delay = spec.backoff_seconds(attempts) * random.uniform(1.0, 1.25)  # noqa: S311
        await _reschedule(maker, row.id, delay, error, count_attempt=True)
        log.warning("job.retry", attempts=attempts, delay_s=round(delay, 1), exc_info=True)
        return Outcome.RETRY
    log.debug("job.done")
    return Outcome.DONE


async def _reschedule(
    maker: SessionMaker, job_id: int, delay_s: float, error: str, *, count_attempt: bool
) -> None:
    async with maker() as session:
        await session.execute(
            text(
                """UPDATE outbox SET dispatched_at = NULL,
                          not_before = now() + make_interval(secs => :delay),
                          attempts = attempts + :inc, last_error = :error
                   WHERE id = :id AND done_at IS NULL"""
            ),
            {"id": job_id, "delay": delay_s, "inc": int(count_attempt), "error": error},
        )
        await session.commit()


async def _finish_failed(
    maker: SessionMaker, job_id: int, error: str, *, count_attempt: bool = False
) -> None:
    async with maker() as session:
        await session.execute(
            text(
                """UPDATE outbox SET failed_at = now(), last_error = :error,
                          attempts = attempts + :inc
                   WHERE id = :id AND done_at IS NULL"""
            ),
            {"id": job_id, "error": error[:_MAX_ERROR], "inc": int(count_attempt)},
        )
        await session.commit()
