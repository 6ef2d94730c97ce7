"""``quita relay``: moves due outbox rows to Redis and re-dispatches lost ones."""

from __future__ import annotations

import asyncio
import signal

import redis.asyncio as aioredis
import structlog

from shared.config import Settings
from shared.db import create_engine
from shared.logging import configure_logging
from shared.queue.relay import Relay


async def run_relay(settings: Settings, stop: asyncio.Event) -> None:
    engine = create_engine(settings, process="relay")
    client = aioredis.Redis.from_url(settings.redis_url, socket_connect_timeout=3)
    try:
        structlog.get_logger("quita.relay").info("relay.started")
        await Relay(settings, engine, client).run(stop)
    finally:
        await client.aclose()
        await engine.dispose()


def main(settings: Settings) -> None:
    configure_logging(settings, "relay")

    async def start() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await run_relay(settings, stop)

    asyncio.run(start())
