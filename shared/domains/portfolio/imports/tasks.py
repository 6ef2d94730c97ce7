"""The merge job: folds a staged import into customers and installments."""

from __future__ import annotations

import uuid

import structlog

from shared.domains.portfolio.imports import service
from shared.queue import JobContext, job

log = structlog.get_logger("quita.imports")

MAX_ATTEMPTS = 5


@job(
    service.MERGE_JOB,
    queue="default",
    max_attempts=MAX_ATTEMPTS,
    min_backoff_s=5.0,
    time_limit_ms=4 * 3600 * 1000,
)
async def import_merge(ctx: JobContext, *, import_id: str, fields: list[str]) -> None:
    """Merge import ``import_id`` batch by batch, committing each (progress is visible and a
    retry resumes where the last attempt stopped).  After the last attempt fails, the import is
    marked ``failed`` with the reason instead of staying ``merging`` for ever."""
    ident = uuid.UUID(import_id)
    try:
        await service.merge(ctx.session, ident, fields=frozenset(fields), edge=ctx.session)
    except Exception as exc:
        if ctx.attempt < MAX_ATTEMPTS:
            raise
        log.error("import.merge_failed", import_id=import_id, exc_info=True)
        await ctx.session.rollback()
        await service.fail_merge(
            ctx.session,
            ident,
            f"The merge failed after {MAX_ATTEMPTS} attempts ({type(exc).__name__}).",
        )
