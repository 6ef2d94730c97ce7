from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db import SessionMaker
from shared.models import OutboxJob
from shared.queue import JobContext, Outcome, RetryLater, enqueue, job, run_job

CALLS: list[dict[str, Any]] = []


@job("tests.record", max_attempts=3, min_backoff_s=10)
async def record(ctx: JobContext, *, value: str, fail: str | None = None) -> None:
    CALLS.append({"value": value, "attempt": ctx.attempt})
    if fail == "error":
        raise ValueError("provider said no")
    if fail == "wait":
        raise RetryLater(30, "rate limited")
    await ctx.session.execute(
        text(
            "INSERT INTO tenants (id, slug, name, kind)"
            " VALUES (gen_random_uuid(), :s, :s, 'retailer')"
        ),
        {"s": value},
    )


async def _job(sessionmaker: SessionMaker, job_id: int | None) -> OutboxJob:
    async with sessionmaker() as s:
        row = await s.get(OutboxJob, job_id)
        assert row is not None
        return row


async def _tenants(session: AsyncSession, slug: str) -> int:
    return (
        await session.execute(text("SELECT count(*) FROM tenants WHERE slug = :s"), {"s": slug})
    ).scalar_one()


async def test_a_job_runs_and_is_marked_done_with_its_effect(
    sessionmaker: SessionMaker, session: AsyncSession
) -> None:
    job_id = await enqueue(session, "tests.record", value="loja-a")
    await session.commit()

    outcome = await run_job(sessionmaker, job_id or 0)

    assert outcome is Outcome.DONE
    assert (await _job(sessionmaker, job_id)).done_at is not None
    assert await _tenants(session, "loja-a") == 1


async def test_a_duplicate_delivery_does_nothing(
    sessionmaker: SessionMaker, session: AsyncSession
) -> None:
    job_id = await enqueue(session, "tests.record", value="loja-b")
    await session.commit()

    first = await run_job(sessionmaker, job_id or 0)
    second = await run_job(sessionmaker, job_id or 0)

    assert (first, second) == (Outcome.DONE, Outcome.SKIPPED)
    assert await _tenants(session, "loja-b") == 1


async def test_a_failure_is_recorded_and_rescheduled_with_backoff(
    sessionmaker: SessionMaker, session: AsyncSession
) -> None:
    job_id = await enqueue(session, "tests.record", value="x", fail="error")
    await session.commit()

    outcome = await run_job(sessionmaker, job_id or 0)

    row = await _job(sessionmaker, job_id)
    assert outcome is Outcome.RETRY
    assert row.attempts == 1
    assert row.last_error == "ValueError: provider said no"
    assert row.dispatched_at is None and row.done_at is None and row.failed_at is None
    waited = (row.not_before - row.created_at).total_seconds()
    assert 10 <= waited <= 12.5  # min_backoff, with up to 25 % jitter


async def test_a_job_that_keeps_failing_is_given_up_after_max_attempts(
    sessionmaker: SessionMaker, session: AsyncSession
) -> None:
    job_id = await enqueue(session, "tests.record", value="x", fail="error")
    await session.commit()

    outcomes = [await run_job(sessionmaker, job_id or 0) for _ in range(4)]

    row = await _job(sessionmaker, job_id)
    assert outcomes == [Outcome.RETRY, Outcome.RETRY, Outcome.FAILED, Outcome.SKIPPED]
    assert row.failed_at is not None and row.attempts == 3


async def test_retry_later_defers_without_spending_an_attempt(
    sessionmaker: SessionMaker, session: AsyncSession
) -> None:
    job_id = await enqueue(session, "tests.record", value="x", fail="wait")
    await session.commit()

    outcome = await run_job(sessionmaker, job_id or 0)

    row = await _job(sessionmaker, job_id)
    assert outcome is Outcome.RETRY
    assert row.attempts == 0
    assert row.last_error == "rate limited"
    assert round((row.not_before - row.created_at).total_seconds()) == 30


async def test_a_row_naming_an_unknown_job_fails_with_the_reason(
    sessionmaker: SessionMaker, session: AsyncSession
) -> None:
    job_id = (
        await session.execute(
            text("INSERT INTO outbox (actor, queue) VALUES ('gone.job', 'default') RETURNING id")
        )
    ).scalar_one()
    await session.commit()

    outcome = await run_job(sessionmaker, job_id)

    row = await _job(sessionmaker, job_id)
    assert outcome is Outcome.FAILED
    assert row.last_error == "no job named 'gone.job' is registered"


async def test_inline_runner_runs_jobs_enqueued_by_jobs(
    session: AsyncSession, run_jobs: Callable[[], Awaitable[list[Outcome]]]
) -> None:
    await enqueue(session, "tests.record", value="loja-c")
    await enqueue(session, "tests.record", value="loja-d")
    await session.commit()

    outcomes = await run_jobs()

    assert outcomes == [Outcome.DONE, Outcome.DONE]
    assert await _tenants(session, "loja-c") == 1
