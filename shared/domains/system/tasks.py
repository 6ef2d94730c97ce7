"""Platform jobs that belong to no business domain."""

from __future__ import annotations

import structlog

from shared.queue import JobContext, job

log = structlog.get_logger("quita.system")


@job("system.ping", queue="default", max_attempts=3)
async def ping(ctx: JobContext, *, note: str = "") -> None:
    """A no-op job: proves the path api → outbox → relay → Redis → worker end to end."""
    log.info("system.pong", note=note)
