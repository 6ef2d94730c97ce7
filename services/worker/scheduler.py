"""``quita scheduler``: ticks periodic tasks; an advisory lock keeps two schedulers from both
planning."""

from __future__ import annotations

import asyncio
import signal

import structlog

import shared.tasks  # noqa: F401  (registers periodic tasks)
from shared.config import Settings
from shared.db import create_engine, create_sessionmaker
from shared.logging import configure_logging
from shared.queue import scheduler


def main(settings: Settings) -> None:
    configure_logging(settings, "scheduler")

    async def start() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        engine = create_engine(settings, process="scheduler")
        try:
            structlog.get_logger("quita.scheduler").info("scheduler.started")
            await scheduler.run(create_sessionmaker(engine), stop, settings.scheduler_tick_seconds)
        finally:
            await engine.dispose()

    asyncio.run(start())
