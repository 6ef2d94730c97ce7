"""The test harness: real Postgres and Redis, one database per xdist worker built by the
migrations, each test inside a transaction rolled back at the end (savepoint mode)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
import pytest_asyncio
import redis.asyncio as aioredis
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

os.environ["QUITA_ENV"] = "test"
os.environ.setdefault("QUITA_LOG_LEVEL", "WARNING")

from shared.config import Environment, Settings, redis_url_with_db
from shared.db import (
    SessionMaker,
    create_engine,
    reset_sessionmaker,
    use_sessionmaker,
)
from tests.support import services

_STARTED_EMBEDDED = False


def pytest_configure(config: pytest.Config) -> None:
    global _STARTED_EMBEDDED
    if hasattr(config, "workerinput"):
        return  # xdist workers inherit the controller's environment
    env, _STARTED_EMBEDDED = services.resolve()
    os.environ.update(env)


def pytest_unconfigure(config: pytest.Config) -> None:
    if _STARTED_EMBEDDED and not hasattr(config, "workerinput"):
        services.stop_embedded()


def _worker_index(request: pytest.FixtureRequest) -> int:
    worker = getattr(request.config, "workerinput", {}).get("workerid", "gw0")
    return int(worker.removeprefix("gw"))


@pytest.fixture(scope="session")
def settings(request: pytest.FixtureRequest) -> Settings:
    index = _worker_index(request)
    # QUITA_TEST_LANE=N lets several test runs share one Postgres and Redis (own databases,
    # own Redis db indexes); the default lane is 0.
    lane = int(os.environ.get("QUITA_TEST_LANE", "0"))
    base = make_url(os.environ["QUITA_TEST_DATABASE_URL"])
    redis_base = os.environ["QUITA_TEST_REDIS_URL"]
    redis_url = redis_url_with_db(redis_base, 1 + (lane * 4 + index) % 15)
    name = f"quita_test_{index}" if lane == 0 else f"quita_test_l{lane}_{index}"
    settings = Settings(
        env=Environment.TEST,
        database_url=base.set(database=name).render_as_string(hide_password=False),
        redis_url=redis_url,
        queue_namespace=f"quita-test-{index}",
        relay_poll_seconds=0.05,
        relay_sweep_grace_seconds=0.0,
        log_level="WARNING",
    )
    from shared.logging import configure_logging

    configure_logging(settings, "test")
    return settings


@pytest.fixture(scope="session")
def migrated(settings: Settings) -> Settings:
    """A fresh database for this worker, built by the Alembic migrations."""
    import asyncpg

    from shared.config import libpq_dsn
    from shared.db import migrate

    async def recreate() -> None:
        admin = settings.admin_dsn
        conn = await asyncpg.connect(libpq_dsn(admin.set(database="postgres")))
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{admin.database}" WITH (FORCE)')
            await conn.execute(f'CREATE DATABASE "{admin.database}"')
        finally:
            await conn.close()

    asyncio.run(recreate())
    migrate.upgrade(settings)
    return settings


@pytest_asyncio.fixture(scope="session")
async def engine(migrated: Settings) -> AsyncIterator[AsyncEngine]:
    """Engine as the application role (no superuser, no BYPASSRLS)."""
    eng = create_engine(migrated, process="test")
    yield eng
    await eng.dispose()


@pytest_asyncio.fixture(scope="session")
async def admin_engine(migrated: Settings) -> AsyncIterator[AsyncEngine]:
    eng = create_engine(migrated, process="test-admin", admin=True)
    yield eng
    await eng.dispose()


@pytest_asyncio.fixture
async def connection(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    async with engine.connect() as conn:
        trans = await conn.begin()
        try:
            yield conn
        finally:
            await trans.rollback()


@pytest_asyncio.fixture
async def sessionmaker(connection: AsyncConnection) -> AsyncIterator[SessionMaker]:
    """Sessions on the test's connection: their commits are savepoints, undone after the test."""
    maker = async_sessionmaker(
        bind=connection, expire_on_commit=False, join_transaction_mode="create_savepoint"
    )
    token = use_sessionmaker(maker)
    yield maker
    reset_sessionmaker(token)


@pytest_asyncio.fixture
async def session(sessionmaker: SessionMaker) -> AsyncIterator[AsyncSession]:
    async with sessionmaker() as s:
        yield s


@pytest_asyncio.fixture
async def redis(settings: Settings) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(settings.redis_url)
    await client.flushdb()
    yield client
    await client.flushdb()
    await client.aclose()


@asynccontextmanager
async def run_lifespan(app: Any) -> AsyncIterator[Any]:
    """Run the app's lifespan in one task (pytest-asyncio runs setup and teardown in different
    tasks, which anyio's cancel scopes refuse)."""
    started, stop = asyncio.Event(), asyncio.Event()

    async def runner() -> None:
        async with app.lifespan():
            started.set()
            await stop.wait()

    task = asyncio.create_task(runner())
    waiter = asyncio.create_task(started.wait())
    await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        waiter.cancel()
        task.result()  # surfaces the startup error
    try:
        yield app
    finally:
        stop.set()
        await task


ClientFactory = Callable[..., Any]


@pytest_asyncio.fixture
async def http_client(
    settings: Settings, sessionmaker: SessionMaker, redis: aioredis.Redis
) -> AsyncIterator[Callable[[Any], Awaitable[httpx.AsyncClient]]]:
    """``await http_client(create_app)`` → an httpx client on that app, sharing the test's
    transaction, with the app's lifespan running."""
    from contextlib import AsyncExitStack

    async with AsyncExitStack() as stack:

        async def make(factory: Any, **kwargs: Any) -> httpx.AsyncClient:
            app = factory(settings, sessionmaker=sessionmaker, redis=redis, **kwargs)
            await stack.enter_async_context(run_lifespan(app))
            return await stack.enter_async_context(
                httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")
            )

        yield make


@pytest_asyncio.fixture
async def run_jobs(sessionmaker: SessionMaker) -> Callable[[], Awaitable[list[Any]]]:
    """Run every due job inline, in the test's transaction, until none is left.

    The same ``run_job`` the worker uses; only Redis is skipped.
    """
    from tests.support.jobs import drain

    return lambda: drain(sessionmaker)


@pytest_asyncio.fixture
async def committed(engine: AsyncEngine, admin_engine: AsyncEngine) -> AsyncIterator[SessionMaker]:
    """Sessions that really commit (for tests where other processes or threads must see the
    data: relay, worker, scheduler).  Tables are emptied before and after."""

    async def wipe() -> None:
        async with admin_engine.begin() as conn:
            await conn.execute(
                text(
                    "TRUNCATE outbox, scheduler_runs, webhook_receipts, audit_seals,"
                    " audit_events, idempotency_keys, tenants RESTART IDENTITY CASCADE"
                )
            )

    await wipe()
    maker = async_sessionmaker(engine, expire_on_commit=False)
    token = use_sessionmaker(maker)
    try:
        yield maker
    finally:
        reset_sessionmaker(token)
        await wipe()


@pytest_asyncio.fixture
async def ids(session: AsyncSession, settings: Settings) -> Any:
    """Factories for tenants, people, clients and tokens (see tests/support/identity.py)."""
    from tests.support.identity import Identities

    return Identities(session, settings)


@pytest_asyncio.fixture
async def api(http_client: Callable[..., Awaitable[httpx.AsyncClient]]) -> httpx.AsyncClient:
    """An httpx client on the api app (same transaction as the test)."""
    from services.api.app import create_app

    return await http_client(create_app)
