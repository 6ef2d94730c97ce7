"""Background work of the audit trail.

- Every minute the scheduler queues one ``audit.seal`` job; it seals rounds (``seal.py``), each
  in its own transaction, until nothing is ready or its time is up.
- Every day the scheduler makes sure the monthly partitions of ``audit_events`` exist three
  months ahead (an insert never fails without them: the DEFAULT partition takes it).
"""

from __future__ import annotations

import time
from datetime import timedelta

import structlog
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from shared import clock
from shared.domains.audit.seal import SealRound, seal_round
from shared.queue import JobContext, enqueue, job
from shared.queue.scheduler import periodic

log = structlog.get_logger("quita.audit")

MONTHS_AHEAD = 3
SEAL_BUDGET_S = 30.0


@periodic("audit.seal", every=timedelta(minutes=1))
async def schedule_sealing(session: AsyncSession) -> None:
    minute = clock.now().strftime("%Y%m%d%H%M")
    await enqueue(session, seal, dedupe_key=f"audit.seal:{minute}")


@job("audit.seal", queue="default", max_attempts=3, min_backoff_s=10.0)
async def seal(ctx: JobContext) -> None:
    """Seal what is ready, a round per transaction, for at most ``SEAL_BUDGET_S`` seconds."""
    await seal_until_done(ctx.session, budget_s=SEAL_BUDGET_S)


async def seal_until_done(session: AsyncSession, *, budget_s: float) -> list[SealRound]:
    """Rounds until one finds nothing more to seal (or another sealer holds them), committing
    each; the session's scope must see every chain (SYSTEM)."""
    rounds: list[SealRound] = []
    deadline = time.monotonic() + budget_s
    while True:
        done = await seal_round(session)
        await session.commit()
        rounds.append(done)
        if not done.limited or time.monotonic() > deadline:
            return rounds


@periodic("audit.partitions", every=timedelta(days=1))
async def schedule_partitions(session: AsyncSession) -> None:
    day = clock.now().strftime("%Y%m%d")
    await enqueue(session, add_partitions, dedupe_key=f"audit.partitions:{day}")


@job("audit.partitions", queue="default", max_attempts=5, min_backoff_s=60.0)
async def add_partitions(ctx: JobContext) -> None:
    """Create the coming months' partitions; gives up rather than make inserts wait behind it
    (the next day tries again, months before they are needed)."""
    await ctx.session.execute(text("SET LOCAL lock_timeout = '2s'"))
    created = await ctx.session.scalar(
        text("SELECT audit_events_add_partitions(:ahead)"), {"ahead": MONTHS_AHEAD}
    )
    await ctx.session.execute(text("RESET lock_timeout"))
    if created:
        log.info("audit.partitions_created", count=created)
