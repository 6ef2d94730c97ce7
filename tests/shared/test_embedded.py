"""The embedded servers `make run` uses on machines without Postgres or Redis."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import redis

from shared import embedded


def test_embedded_redis_keeps_its_data_across_a_restart(tmp_path: Path) -> None:
    url = embedded.start_redis(tmp_path / "redis")
    try:
        redis.Redis.from_url(url).set("quita:probe", "kept")
        embedded.stop_redis(tmp_path / "redis")
        assert not embedded._redis_answers(url)

        url = embedded.start_redis(tmp_path / "redis")
        assert redis.Redis.from_url(url).get("quita:probe") == b"kept"
    finally:
        embedded.stop_redis(tmp_path / "redis")


async def test_embedded_postgres_keeps_its_data_across_a_restart(tmp_path: Path) -> None:
    pgdata = tmp_path / "pg"
    url = embedded.start_postgres(pgdata, "postgres")
    try:
        conn = await asyncpg.connect(url)
        await conn.execute("CREATE TABLE probe (v text); INSERT INTO probe VALUES ('kept')")
        await conn.close()
        embedded.stop_postgres(pgdata)

        url = embedded.start_postgres(pgdata, "postgres")
        conn = await asyncpg.connect(url)
        assert await conn.fetchval("SELECT v FROM probe") == "kept"
        await conn.close()
    finally:
        embedded.stop_postgres(pgdata)
