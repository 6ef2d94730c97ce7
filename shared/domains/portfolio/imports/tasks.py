"""The merge job, which folds a staged import into customers and installments, and the sweep of
uploads a dead process left ``receiving``."""

from __future__ import annotations

import uuid
from datetime import timedelta

import structlog
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.domains.audit.service import Actor
from shared.domains.portfolio.imports import service
from shared.models import DataImport, ImportStatus
from shared.queue import JobContext, job
from shared.queue.scheduler import periodic

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


# an upload commits its progress every batch: this long without any, its process is gone
STALLED_AFTER = timedelta(minutes=30)
STALLED = "The upload stopped before the end of the file (the connection or the server went away)."
SWEEPER = Actor("system", "imports.sweep")


@periodic("imports.sweep", every=timedelta(minutes=10))
async def sweep_stalled(session: AsyncSession) -> None:
    """Fail the imports left ``receiving`` by a process that died mid-upload (a client that
    disconnects is handled at once by ``receive``): their staged rows are removed and the
    retailer reads why; sending the file again starts over."""
    stalled = list(
        await session.scalars(
            select(DataImport)
            .where(
                DataImport.status == ImportStatus.RECEIVING,
                DataImport.updated_at < func.now() - STALLED_AFTER,
            )
            .order_by(DataImport.updated_at)
            .limit(100)
            .with_for_update(skip_locked=True)
        )
    )
    for imp in stalled:
        await service.reject(session, imp.tenant_id, imp.id, STALLED, SWEEPER)
        log.warning("import.stalled", import_id=str(imp.id))
