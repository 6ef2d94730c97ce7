"""What every benchmark shares: a scratch database built by the migrations, and Redis."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg
import httpx
import redis.asyncio as aioredis
from sqlalchemy.engine import make_url

from shared import embedded
from shared.config import Environment, Settings, libpq_dsn, redis_url_with_db
from shared.db import migrate
from shared.logging import configure_logging

ROOT = Path(__file__).resolve().parent.parent


def bench_settings(name: str) -> Settings:
    """Settings for a fresh ``quita_bench_<name>`` database (dropped and migrated) and Redis db 15.

    Uses ``QUITA_BENCH_DATABASE_URL`` / ``QUITA_BENCH_REDIS_URL`` if set, else 127.0.0.1, else
    the embedded servers under ``.quita/bench``.
    """
    db = os.environ.get("QUITA_BENCH_DATABASE_URL")
    redis = os.environ.get("QUITA_BENCH_REDIS_URL")
    if not (db and redis):
        found_db, found_redis, _ = embedded.resolve_local_services(ROOT / ".quita" / "bench")
        db, redis = db or found_db, redis or found_redis
    redis = redis_url_with_db(redis, 15)
    settings = Settings(
        env=Environment.TEST,
        database_url=make_url(db)
        .set(database=f"quita_bench_{name}")
        .render_as_string(hide_password=False),
        redis_url=redis,
        queue_namespace=f"quita-bench-{name}",
        log_level="WARNING",
    )
    configure_logging(settings, "bench")
    asyncio.run(_recreate(settings))
    migrate.upgrade(settings)
    return settings


async def _recreate(settings: Settings) -> None:
    admin = settings.admin_dsn
    conn = await asyncpg.connect(libpq_dsn(admin.set(database="postgres")))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{admin.database}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{admin.database}"')
    finally:
        await conn.close()


def ratio_line(name: str, value: float, ceiling: float, unit: str) -> str:
    return (
        f"{name:<34} {value:>12,.0f} {unit}   ceiling {ceiling:>12,.0f} {unit}"
        f"   ratio {value / ceiling:.2f}"
    )


def free_port() -> int:
    """A TCP port nobody listens on now, for a server the bench starts."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def venv_bin(name: str) -> str:
    """A console script of this virtualenv (granian, quita …)."""
    return str(Path(sys.executable).parent / name)


def granian(factory: str, port: int) -> list[str]:
    """The command serving the ASGI app ``factory`` (``module:function``) on ``port`` with
    one granian worker, as ``quita serve`` does."""
    return [
        venv_bin("granian"),
        "--interface",
        "asgi",
        "--factory",
        factory,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
        "--no-ws",
        "--log-level",
        "warning",
    ]


async def wait_for(check: Callable[[], Awaitable[bool]], what: str, timeout: float) -> None:
    """Poll ``check`` until it holds (a server still starting may refuse connections)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if await check():
                return
        except (httpx.TransportError, OSError):
            pass
        await asyncio.sleep(0.1)
    raise RuntimeError(f"{what} did not happen within {timeout:.0f}s")


async def flush_redis(settings: Settings) -> None:
    """Empty the bench's Redis database."""
    client = aioredis.Redis.from_url(settings.redis_url)
    try:
        await client.flushdb()
    finally:
        await client.aclose()
