from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from shared.db import SessionMaker
from shared.queue import scheduler

RUNS: list[str] = []


@pytest.fixture
def planner() -> Iterator[None]:
    """A periodic task that takes a little while, like a planner would."""

    async def plan(session: AsyncSession) -> None:
        RUNS.append("plan")
        await asyncio.sleep(0.2)

    saved = dict(scheduler.PERIODIC)
    scheduler.PERIODIC.clear()
    scheduler.periodic("tests.plan", every=timedelta(minutes=1))(plan)
    RUNS.clear()
    yield
    scheduler.PERIODIC.clear()
    scheduler.PERIODIC.update(saved)


async def test_a_due_task_runs_once_per_interval(sessionmaker: SessionMaker, planner: None) -> None:
    first = await scheduler.tick(sessionmaker)
    second = await scheduler.tick(sessionmaker)

    assert first.ran == ("tests.plan",)
    assert second.locked and second.ran == ()
    assert RUNS == ["plan"]


@pytest.mark.committed
async def test_two_schedulers_never_both_plan(
    committed: SessionMaker, planner: None, engine: AsyncEngine
) -> None:
    from shared.db import create_sessionmaker

    other = create_sessionmaker(engine)  # a second scheduler: its own connections

    results = await asyncio.gather(scheduler.tick(committed), scheduler.tick(other))

    assert sorted(r.locked for r in results) == [False, True]
    assert RUNS == ["plan"]


@pytest.mark.committed
async def test_a_tick_skips_while_another_scheduler_holds_the_lock(
    committed: SessionMaker, planner: None
) -> None:
    async with committed() as holder:
        await holder.execute(
            text("SELECT pg_advisory_xact_lock(:k)"), {"k": scheduler.SCHEDULER_LOCK}
        )
        result = await scheduler.tick(committed)
        await holder.rollback()

    assert result.locked is False
    assert RUNS == []
