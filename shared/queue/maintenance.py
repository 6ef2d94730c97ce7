"""Housekeeping of the outbox itself."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from shared.config import get_settings
from shared.queue.scheduler import periodic


@periodic("outbox.prune", every=timedelta(hours=1))
async def prune_outbox(session: AsyncSession) -> None:
    """Delete finished jobs older than the retention period, a bounded batch per tick."""
    days = get_settings().outbox_retention_days
    await session.execute(
        text(
            """DELETE FROM outbox WHERE id IN (
                   SELECT id FROM outbox WHERE done_at < now() - make_interval(days => :days)
                   LIMIT 50000)"""
        ),
        {"days": days},
    )
