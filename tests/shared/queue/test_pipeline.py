"""The whole job path on real parts: outbox → relay → Redis → Dramatiq worker → done.

These tests commit: the worker runs on its own threads and event loop, with its own engine.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import dramatiq
import pytest
import pytest_asyncio
import redis.asyncio as aioredis
import structlog
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.config import Settings
from shared.db import SessionMaker, create_engine, create_sessionmaker
from shared.queue import JobContext, enqueue, job
from shared.queue.broker import build_broker, declare_actors, run_message
from shared.queue.relay import Relay, queue_key

pytestmark = pytest.mark.committed


@job("tests.effect", queue="default")
async def effect(ctx: JobContext, *, key: str) -> None:
    """Counts its own executions: n > 1 would be a job applied twice."""
    await ctx.session.execute(
        text(
            """INSERT INTO test_effects (key, n) VALUES (:k, 1)
               ON CONFLICT (key) DO UPDATE SET n = test_effects.n + 1"""
        ),
        {"k": key},
    )


@pytest_asyncio.fixture
async def effects(admin_engine: AsyncEngine, settings: Settings) -> AsyncIterator[None]:
    async with admin_engine.begin() as conn:
        await conn.execute(text("DROP TABLE IF EXISTS test_effects"))
        await conn.execute(text("CREATE TABLE test_effects (key text PRIMARY KEY, n int NOT NULL)"))
        await conn.execute(text(f'GRANT ALL ON test_effects TO "{settings.database_app_role}"'))
    yield
    async with admin_engine.begin() as conn:
        await conn.execute(text("DROP TABLE IF EXISTS test_effects"))


class Workers:
    """Starts an in-process Dramatiq worker (AsyncIO middleware, its own engine) on demand."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.broker: Any = None
        self.worker: dramatiq.Worker | None = None

    def start(self) -> None:
        self.broker = build_broker(self.settings)
        declare_actors(self.broker)
        self.worker = dramatiq.Worker(self.broker, worker_threads=4, worker_timeout=50)
        self.worker.start()

    def stop(self) -> None:
        if self.worker is not None:
            self.worker.stop(timeout=10_000)
            self.broker.close()
            self.worker = None


@pytest.fixture
def workers(settings: Settings) -> Iterator[Workers]:
    w = Workers(settings)
    yield w
    w.stop()


@pytest_asyncio.fixture
async def relay(settings: Settings, engine: AsyncEngine, redis: aioredis.Redis) -> Relay:
    return Relay(settings, engine, redis)


async def _enqueue(committed: SessionMaker, keys: list[str]) -> None:
    async with committed() as s:
        for key in keys:
            await enqueue(s, "tests.effect", key=key)
        await s.commit()


async def _wait_all_done(committed: SessionMaker, timeout: float = 20) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        async with committed() as s:
            open_jobs = (
                await s.execute(text("SELECT count(*) FROM outbox WHERE done_at IS NULL"))
            ).scalar_one()
        if open_jobs == 0:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{open_jobs} jobs still open after {timeout}s")


async def _effects(committed: SessionMaker) -> dict[str, int]:
    async with committed() as s:
        rows = (await s.execute(text("SELECT key, n FROM test_effects"))).all()
    return {k: n for k, n in rows}


async def test_a_job_goes_from_outbox_through_redis_to_a_worker_once(
    committed: SessionMaker, effects: None, relay: Relay, workers: Workers
) -> None:
    workers.start()
    await _enqueue(committed, ["a"])

    assert await relay.drain() == 1
    await _wait_all_done(committed)

    assert await _effects(committed) == {"a": 1}


async def test_flushing_redis_loses_no_job(
    committed: SessionMaker,
    effects: None,
    relay: Relay,
    workers: Workers,
    redis: aioredis.Redis,
    settings: Settings,
) -> None:
    keys = [f"job-{i}" for i in range(30)]
    await _enqueue(committed, keys)
    assert await relay.drain() == 30
    assert await redis.llen(queue_key(settings.queue_namespace, "default")) == 30

    await redis.flushdb()  # Redis loses everything before any worker ran
    workers.start()

    assert await relay.sweep_once(grace_s=0) == 30
    assert await relay.drain() == 30
    await _wait_all_done(committed)

    assert await _effects(committed) == dict.fromkeys(keys, 1)


class _CrashAfterPush:
    """A Redis client whose pipelines push, then fail: a relay dying before its commit."""

    def __init__(self, real: aioredis.Redis) -> None:
        self.real = real

    def pipeline(self, **kwargs: Any) -> Any:
        pipe = self.real.pipeline(**kwargs)
        execute = pipe.execute

        async def execute_then_crash(*a: Any, **kw: Any) -> Any:
            await execute(*a, **kw)
            raise ConnectionError("relay crashed after pushing")

        pipe.execute = execute_then_crash  # type: ignore[method-assign]
        return pipe


async def test_a_relay_crash_between_push_and_commit_runs_each_job_once(
    committed: SessionMaker,
    effects: None,
    relay: Relay,
    workers: Workers,
    redis: aioredis.Redis,
    settings: Settings,
    engine: AsyncEngine,
) -> None:
    keys = [f"job-{i}" for i in range(20)]
    await _enqueue(committed, keys)
    crashing = Relay(settings, engine, _CrashAfterPush(redis))  # type: ignore[arg-type]

    with pytest.raises(ConnectionError):
        await crashing.drain_once()
    # The messages reached Redis but the rows were not marked: the next relay pushes them again.
    workers.start()
    assert await relay.drain() == 20
    await _wait_all_done(committed)

    assert await _effects(committed) == dict.fromkeys(keys, 1)
    async with committed() as s:
        failed = await s.execute(text("SELECT count(*) FROM outbox WHERE failed_at IS NOT NULL"))
        assert failed.scalar_one() == 0


async def test_two_relays_never_dispatch_the_same_job_twice(
    committed: SessionMaker,
    effects: None,
    settings: Settings,
    engine: AsyncEngine,
    redis: aioredis.Redis,
) -> None:
    await _enqueue(committed, [f"k{i}" for i in range(600)])
    first = Relay(settings, engine, redis, batch_size=50)
    second = Relay(settings, engine, redis, batch_size=50)

    moved = await asyncio.gather(first.drain(), second.drain())

    assert sum(moved) == 600
    key = queue_key(settings.queue_namespace, "default")
    ids = await redis.lrange(key, 0, -1)
    assert len(ids) == len(set(ids)) == 600


async def test_relay_wakes_on_notify_without_waiting_for_its_poll(
    committed: SessionMaker,
    effects: None,
    settings: Settings,
    engine: AsyncEngine,
    redis: aioredis.Redis,
) -> None:
    slow_poll = settings.model_copy(update={"relay_poll_seconds": 60, "relay_sweep_seconds": 600})
    relay = Relay(slow_poll, engine, redis)
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))
    try:
        await asyncio.sleep(0.5)  # let it drain once and LISTEN
        await _enqueue(committed, ["wake"])
        key = queue_key(settings.queue_namespace, "default")
        for _ in range(100):
            if await redis.llen(key) == 1:
                break
            await asyncio.sleep(0.05)
        assert await redis.llen(key) == 1  # well before the 60 s poll
    finally:
        stop.set()
        await task


async def test_a_job_not_yet_due_stays_in_postgres(
    committed: SessionMaker,
    effects: None,
    relay: Relay,
) -> None:
    from datetime import timedelta

    async with committed() as s:
        await enqueue(s, "tests.effect", key="later", delay=timedelta(minutes=5))
        await s.commit()

    assert await relay.drain() == 0


async def test_the_relay_deals_due_jobs_in_turns_across_tenants(
    committed: SessionMaker, settings: Settings, engine: AsyncEngine, redis: aioredis.Redis
) -> None:
    big, small = uuid.uuid4(), uuid.uuid4()
    async with committed() as s:
        # the big retailer's 30 jobs were queued first, the small one's 3 after them
        for n in range(30):
            await enqueue(s, "tests.effect", tenant_id=big, key=f"big-{n}")
        for n in range(3):
            await enqueue(s, "tests.effect", tenant_id=small, key=f"small-{n}")
        await s.commit()

    await Relay(settings, engine, redis, batch_size=8).drain()

    key = queue_key(settings.queue_namespace, "default")
    tenants = [
        json.loads(await redis.hget(f"{key}.msgs", rid))["options"]["tenant_id"]
        for rid in await redis.lrange(key, 0, -1)
    ]
    assert len(tenants) == 33
    # the small retailer's jobs went out in the first turns, not after the big one's 30
    assert [i for i, t in enumerate(tenants) if t == str(small)] == [1, 3, 5]


async def test_the_relay_outlives_its_connections_being_cut_mid_query(
    committed: SessionMaker,
    effects: None,
    settings: Settings,
    admin_engine: AsyncEngine,
    redis: aioredis.Redis,
) -> None:
    """What a Postgres restart or a failover does: every connection of the relay is cut,
    mostly while a query runs (it polls all the time).  It logs, reconnects and relays on."""
    busy = settings.model_copy(update={"relay_poll_seconds": 0.005, "relay_sweep_seconds": 0})
    engine = create_engine(busy, process="relay")
    relay = Relay(busy, engine, redis)
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))
    try:
        async with admin_engine.connect() as conn:
            for _ in range(60):
                await conn.execute(
                    text(
                        """SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                           WHERE datname = current_database() AND pid <> pg_backend_pid()
                             AND application_name = :name"""
                    ),
                    {"name": f"quita.{settings.env}.relay"},
                )
                await asyncio.sleep(0.02)
        assert not task.done(), task.exception() if task.done() else None
        await _enqueue(committed, ["after the cut"])
        key = queue_key(settings.queue_namespace, "default")
        for _ in range(200):
            if await redis.llen(key) == 1:
                break
            await asyncio.sleep(0.05)
        assert await redis.llen(key) == 1
    finally:
        stop.set()
        await asyncio.gather(task, return_exceptions=True)
        await engine.dispose()


async def test_a_job_run_while_postgres_is_away_leaves_one_line_and_no_traceback(
    committed: SessionMaker, effects: None, settings: Settings
) -> None:
    await _enqueue(committed, ["during the outage"])
    async with committed() as s:
        job_id = (await s.execute(text("SELECT id FROM outbox"))).scalar_one()
    away = settings.model_copy(  # nothing listens on port 1: the database is refusing
        update={"database_url": "postgresql://postgres@127.0.0.1:1/quita"}
    )
    engine = create_engine(away, process="worker")
    try:
        with structlog.testing.capture_logs() as logs:
            await run_message(create_sessionmaker(engine), job_id)  # does not raise
    finally:
        await engine.dispose()

    assert [(e["event"], e["log_level"], e["error"]) for e in logs] == [
        ("job.dependency_unavailable", "warning", "ConnectionRefusedError")
    ]
    # and the job is intact: run once the database is back
    await run_message(committed, job_id)
    assert await _effects(committed) == {"during the outage": 1}


async def test_a_misconfigured_database_is_not_an_outage_and_still_raises(
    settings: Settings,
) -> None:
    wrong = make_url(settings.database_url).set(database="no_such_database_here")
    engine = create_engine(
        settings.model_copy(update={"database_url": wrong.render_as_string(hide_password=False)}),
        process="worker",
    )
    try:
        with pytest.raises(Exception, match="no_such_database_here"):
            await run_message(create_sessionmaker(engine), 1)
    finally:
        await engine.dispose()
