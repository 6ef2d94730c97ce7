"""Running due jobs inline, as the worker would, without Redis in between."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from shared.db import SessionMaker
from shared.queue import run_job


async def drain(maker: SessionMaker) -> list[Any]:
    """Run every due job with ``run_job`` until none is left; the outcomes in order."""
    outcomes: list[Any] = []
    seen: set[int] = set()
    while True:
        async with maker() as s:
            ids = (
                await s.execute(
                    text(
                        """SELECT id FROM outbox
                           WHERE dispatched_at IS NULL AND done_at IS NULL
                             AND failed_at IS NULL AND not_before <= now()
                           ORDER BY id"""
                    )
                )
            ).scalars()
            fresh = [i for i in ids if i not in seen]
        if not fresh:
            return outcomes
        for job_id in fresh:
            seen.add(job_id)
            outcomes.append(await run_job(maker, job_id))
