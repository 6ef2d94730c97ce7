"""Relay throughput: outbox rows moved to Redis per second, against a bare Redis pipeline that
writes the same messages (HSET + RPUSH, same batch size) — the ceiling — in the same run."""

from __future__ import annotations

import asyncio
import time

import redis.asyncio as aioredis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.common import bench_settings, ratio_line
from shared.config import Settings
from shared.db import create_engine
from shared.models.outbox import redis_message_id
from shared.queue.relay import Relay, encode_message, queue_key

ROWS = 50_000
BATCH = 500


async def _fill_outbox(engine: AsyncEngine, rows: int) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            text(
                """INSERT INTO outbox (actor, queue, args)
                   SELECT 'system.ping', 'default', jsonb_build_object('note', g::text)
                   FROM generate_series(1, :n) g"""
            ),
            {"n": rows},
        )


async def _bare_pipeline(client: aioredis.Redis, namespace: str, rows: int) -> float:
    key = queue_key(namespace, "default")
    payloads = [
        (
            rid,
            encode_message(
                queue="default",
                actor="system.ping",
                job_id=i,
                redis_id=rid,
                correlation_id=None,
                tenant_id=None,
            ),
        )
        for i in range(1, rows + 1)
        for rid in [redis_message_id(i, 1)]
    ]
    await client.flushdb()
    started = time.perf_counter()
    for start in range(0, rows, BATCH):
        pipe = client.pipeline(transaction=False)
        for rid, payload in payloads[start : start + BATCH]:
            pipe.hset(f"{key}.msgs", rid, payload)
            pipe.rpush(key, rid)
        await pipe.execute()
    return rows / (time.perf_counter() - started)


async def _relay(settings: Settings, client: aioredis.Redis, rows: int) -> float:
    engine = create_engine(settings, process="bench")
    try:
        await _fill_outbox(engine, rows)
        await client.flushdb()
        relay = Relay(settings, engine, client, batch_size=BATCH)
        started = time.perf_counter()
        moved = await relay.drain()
        elapsed = time.perf_counter() - started
        assert moved == rows, f"relay moved {moved} of {rows}"
        assert await client.llen(queue_key(relay.settings.queue_namespace, "default")) == rows
        return rows / elapsed
    finally:
        await engine.dispose()


async def _run(settings: Settings) -> list[str]:
    client = aioredis.Redis.from_url(settings.redis_url)
    try:
        ceiling = await _bare_pipeline(client, settings.queue_namespace, ROWS)
        relay = await _relay(settings, client, ROWS)
        await client.flushdb()
    finally:
        await client.aclose()
    return [ratio_line(f"relay ({ROWS:,} rows, batch {BATCH})", relay, ceiling, "rows/s")]


def run() -> list[str]:
    return asyncio.run(_run(bench_settings("relay")))
