"""The scheduler's tick: periodic tasks, run by exactly one scheduler at a time.

Each tick takes a transaction-level Postgres advisory lock; a second scheduler (or a tick that
overlaps a slow one) finds it taken and does nothing.  When each task last ran is kept in
``scheduler_runs``, so a restart or another instance picks up where the last one stopped.
Periodic tasks are set-based and quick; heavy work is enqueued as jobs through the outbox.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta

import structlog
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db import SessionMaker
from shared.tenancy.scope import SYSTEM, use_scope

log = structlog.get_logger("quita.scheduler")

# pg advisory lock key for the tick (any constant unique to Quita).
SCHEDULER_LOCK = 0x51_7A_01

PeriodicFn = Callable[[AsyncSession], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Periodic:
    name: str
    every: timedelta
    fn: PeriodicFn


PERIODIC: dict[str, Periodic] = {}


def periodic(name: str, every: timedelta) -> Callable[[PeriodicFn], PeriodicFn]:
    """Register ``fn(session)`` to run every ``every`` inside a scheduler tick."""

    def register(fn: PeriodicFn) -> PeriodicFn:
        PERIODIC[name] = Periodic(name, every, fn)
        return fn

    return register


@dataclass(frozen=True, slots=True)
class TickResult:
    locked: bool
    ran: tuple[str, ...] = ()


async def tick(maker: SessionMaker) -> TickResult:
    """Run every periodic task that is due, unless another scheduler holds the tick."""
    async with maker() as session:
        got = (
            await session.execute(
                text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": SCHEDULER_LOCK}
            )
        ).scalar_one()
        if not got:
            await session.rollback()
            return TickResult(locked=False)
        # periodic tasks are the platform's: they see every tenant (row-level security)
        await use_scope(session, SYSTEM)
        ran = []
        for task in PERIODIC.values():
            if await _due(session, task):
                await task.fn(session)
                ran.append(task.name)
        await session.commit()
    if ran:
        log.info("scheduler.ticked", ran=ran)
    return TickResult(locked=True, ran=tuple(ran))


async def _due(session: AsyncSession, task: Periodic) -> bool:
    """Claim ``task`` for this tick if its interval has passed."""
    claimed = await session.execute(
        text(
            """INSERT INTO scheduler_runs (name, last_run_at) VALUES (:name, now())
               ON CONFLICT (name) DO UPDATE SET last_run_at = now()
               WHERE scheduler_runs.last_run_at <= now() - make_interval(secs => :every)
               RETURNING name"""
        ),
        {"name": task.name, "every": task.every.total_seconds()},
    )
    return claimed.scalar_one_or_none() is not None


async def run(maker: SessionMaker, stop: asyncio.Event, every_s: float) -> None:
    """Tick every ``every_s`` seconds until ``stop`` is set."""
    while not stop.is_set():
        try:
            await tick(maker)
        except Exception:
            log.exception("scheduler.tick_failed")
        try:
            await asyncio.wait_for(stop.wait(), timeout=every_s)
        except TimeoutError:
            pass
