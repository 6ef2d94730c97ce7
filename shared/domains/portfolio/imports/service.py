"""Imports, start to finish, for the API, the CLI and the merge job.

1. :func:`receive` records the import (``receiving``), streams the file through the reader,
   COPYs good rows into staging in batches and records row errors; then marks it ``queued`` and
   enqueues the merge job (the CLI merges inline instead).  A structural problem anywhere in the
   file fails the import, removes what it staged, merges nothing and raises
   :class:`ImportRejected`.
2. :func:`merge` folds the staged rows into customers and installments batch by batch
   (``merging``, progress in ``rows_merged``), then marks the import ``done`` with its counts and
   one ``import.completed`` audit event.

Transactions belong to the edge (DESIGN.md §3 rule 2).  An edge that wants progress to be
visible while a big file streams in, or merged batch by batch, lends its unit of work as
``edge``: the service then commits after each batch through it.  Without ``edge`` everything
happens in the caller's one transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, Protocol

import structlog
from sqlalchemy import Select, func, select, text, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db import SessionMaker
from shared.domains.audit.service import Actor, record
from shared.domains.portfolio.imports import merge as merging
from shared.domains.portfolio.imports import schemas, staging
from shared.domains.portfolio.imports.reader import (
    FORMATS,
    FileRejected,
    Format,
    ImportReader,
    Parsed,
    RowError,
    resolve_encoding,
    stored_fields,
)
from shared.errors import FieldError, ValidationFailed
from shared.models import DataImport, ImportError_, ImportStatus
from shared.pagination import decode_cursor, encode_cursor, invalid_cursor
from shared.queue import enqueue
from shared.tenancy import tenant_scope, use_scope

log = structlog.get_logger("quita.imports")

MERGE_JOB: Final = "portfolio.import_merge"
STAGE_BATCH_ROWS: Final = 5_000
MERGE_BATCH_ROWS: Final = 10_000
MAX_STORED_ERRORS: Final = 100_000
FIRST_ERRORS: Final = 100

CLI_ACTOR: Final = Actor("cli", None)

__all__ = [
    "CLI_ACTOR",
    "MERGE_JOB",
    "Actor",
    "Edge",
    "ImportRejected",
    "Progress",
    "Received",
    "error_page",
    "fail_merge",
    "format_for_media_type",
    "import_out",
    "list_imports",
    "merge",
    "parse_encoding",
    "receive",
    "receive_and_merge",
    "summary_out",
]


class Edge(Protocol):
    """The unit of work of the caller (a request's or a job's session)."""

    async def commit(self) -> None: ...

    async def rollback(self) -> None: ...


@dataclass
class ImportRejected(ValidationFailed):
    """The file cannot be imported at all; the import is recorded as ``failed``."""

    import_id: uuid.UUID | None = None

    def problem(self, instance: str | None = None) -> dict[str, Any]:
        body = super().problem(instance)
        if self.import_id is not None:
            body["import_id"] = str(self.import_id)
        return body


@dataclass(frozen=True, slots=True)
class Progress:
    """A snapshot for progress bars: what was read, staged and merged so far."""

    phase: str  # staging | merging | done
    bytes_read: int
    rows_total: int
    rows_valid: int
    rows_rejected: int
    rows_merged: int


ProgressFn = Callable[[Progress], None]


@dataclass(frozen=True, slots=True)
class Received:
    """A staged import and the fields its file has columns for (what the merge may write);
    ``duplicates``: the lines dropped because a later line has the same installment id."""

    import_id: uuid.UUID
    fields: frozenset[str]
    duplicates: tuple[int, ...] = ()


# Told, after each staging commit, up to which line the file is staged and with which fields
# (``None`` while they are not final: JSON Lines learns them until the last line).
StagedFn = Callable[[int, frozenset[str] | None], None]


# --- request parameters ------------------------------------------------------------------------

_CSV_TYPES: Final = frozenset(
    {
        "text/csv",
        "application/csv",
        "text/comma-separated-values",
        "application/vnd.ms-excel",  # what browsers on Windows send for .csv
    }
)
_JSONL_TYPES: Final = frozenset(
    {
        "application/x-ndjson",
        "application/ndjson",
        "application/jsonl",
        "application/x-jsonl",
        "application/jsonlines",
        "application/x-jsonlines",
        "application/json-lines",
    }
)


def format_for_media_type(media_type: str | None, explicit: str | None = None) -> Format | None:
    """The file's format: ``explicit`` (``csv`` or ``jsonl``) if given, else the one the media
    type names, else ``None`` (detected from the first line)."""
    if explicit:
        value = explicit.strip().lower()
        if value not in FORMATS:
            raise ValidationFailed(
                "Unknown import format.",
                errors=[FieldError("format", "must be csv or jsonl")],
            )
        return "csv" if value == "csv" else "jsonl"
    kind = (media_type or "").split(";")[0].strip().lower()
    if kind in _CSV_TYPES:
        return "csv"
    if kind in _JSONL_TYPES:
        return "jsonl"
    return None


def parse_encoding(charset: str | None, field_name: str = "charset") -> str | None:
    """The codec for a declared charset; a 422 naming ``field_name`` if Python knows none."""
    try:
        return resolve_encoding(charset)
    except LookupError:
        raise ValidationFailed(
            "Unknown character encoding.",
            errors=[
                FieldError(field_name, "is not a character encoding (try utf-8 or windows-1252)")
            ],
        ) from None


# --- actors ------------------------------------------------------------------------------------


def created_by(actor: Actor) -> str:
    return (f"{actor.type}:{actor.id}" if actor.id else actor.type)[:80]


def actor_of(imp: DataImport) -> Actor:
    kind, _, ident = (imp.created_by or "system").partition(":")
    return Actor(kind, ident or None)


# --- receiving ---------------------------------------------------------------------------------


async def receive(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    actor: Actor,
    chunks: AsyncIterable[bytes],
    fmt: Format | None = None,
    encoding: str | None = None,
    filename: str | None = None,
    edge: Edge | None = None,
    enqueue_merge: bool = True,
    on_progress: ProgressFn | None = None,
    on_staged: StagedFn | None = None,
    import_id: uuid.UUID | None = None,
) -> Received:
    """Record an import of ``chunks`` for ``tenant_id`` and stage its rows.

    Returns once the file is staged and the import ``queued`` (with the merge job enqueued
    unless ``enqueue_merge`` is false).  Raises :class:`ImportRejected` for a structural
    problem, after recording the import as ``failed`` (committed through ``edge`` if given).
    ``encoding`` is a codec name (see :func:`parse_encoding`); ``None`` reads UTF-8.
    """
    imp = DataImport(
        id=import_id or uuid.uuid4(),
        tenant_id=tenant_id,
        status=ImportStatus.RECEIVING,
        format=fmt or "csv",
        filename=(filename or None) and filename[-255:],
        created_by=created_by(actor),
        created_at=func.clock_timestamp(),  # orders imports even within one transaction
    )
    session.add(imp)
    await session.flush()
    import_id = imp.id
    if edge is not None:
        await edge.commit()
    stager = _Stager(session, tenant_id, import_id, fmt, encoding, edge, on_progress, on_staged)
    try:
        fields = await stager.run(chunks)
    except FileRejected as exc:
        await stager.abandon()
        if edge is not None:
            await edge.rollback()
        await reject(session, tenant_id, import_id, exc.reason, actor)
        if edge is not None:
            await edge.commit()
        raise ImportRejected(
            f"The file was rejected: {exc.reason}",
            errors=[FieldError("file", exc.reason, code="rejected")],
            import_id=import_id,
        ) from None
    except Exception:
        await stager.abandon()
        if edge is not None:
            await edge.rollback()
            await reject(
                session,
                tenant_id,
                import_id,
                "The upload stopped before the end of the file.",
                actor,
            )
            await edge.commit()
        raise
    await _update(session, import_id, status=ImportStatus.QUEUED)
    if enqueue_merge:
        await enqueue(
            session,
            MERGE_JOB,
            tenant_id=tenant_id,
            import_id=str(import_id),
            fields=sorted(fields),
        )
    return Received(import_id, fields, tuple(stager.duplicates))


@dataclass
class _Stager:
    """Reads the file and stages it in batches (COPY for rows, one INSERT for errors)."""

    session: AsyncSession
    tenant_id: uuid.UUID
    import_id: uuid.UUID
    fmt: Format | None
    encoding: str | None
    edge: Edge | None
    on_progress: ProgressFn | None
    on_staged: StagedFn | None = None
    rows: list[tuple[Any, ...]] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    valid: int = 0
    rejected: int = 0
    stored_errors: int = 0
    duplicates: list[int] = field(default_factory=list)
    staged_through: int = 0  # the last line whose COPY finished
    _copy: asyncio.Future[None] | None = None
    _copying: int = 0
    _copy_through: int = 0

    async def run(self, chunks: AsyncIterable[bytes]) -> frozenset[str]:
        reader = ImportReader(
            import_id=self.import_id, tenant_id=self.tenant_id, fmt=self.fmt, encoding=self.encoding
        )
        # Parsing runs in a worker thread: the event loop stays free for other requests, for
        # the COPY in flight and for a merge following the staging (see receive_and_merge).
        async for chunk in chunks:
            if chunk:
                self._absorb(await asyncio.to_thread(reader.feed, chunk))
                if len(self.rows) >= STAGE_BATCH_ROWS or len(self.errors) >= STAGE_BATCH_ROWS:
                    await self._flush(reader)
        self._absorb(await asyncio.to_thread(reader.finish))
        await self._flush(reader, final=True)
        self.duplicates = await staging.drop_duplicates(
            self.session, self.tenant_id, self.import_id
        )
        if self.duplicates:
            self.valid -= len(self.duplicates)
            self.rejected += len(self.duplicates)
        await _update(
            self.session,
            self.import_id,
            rows_valid=self.valid,
            rows_rejected=self.rejected,
            sha256=reader.sha256,
        )
        return stored_fields(reader.fields)

    def _absorb(self, parsed: Parsed) -> None:
        self.rows.extend(parsed.rows)
        self.errors.extend(parsed.errors)
        self.rejected += parsed.rejected

    async def _flush(self, reader: ImportReader, *, final: bool = False) -> None:
        """Stage what was parsed.  The rows' COPY runs in the background while the next batch
        is parsed (Postgres works while Python does); it is awaited before the connection is
        used for anything else."""
        rows, errors = self.rows, self.errors
        self.rows, self.errors = [], []
        await self.settle()
        committed = self.staged_through
        await staging.insert_errors(
            self.session, self.tenant_id, self.import_id, self._keep(errors)
        )
        await _update(
            self.session,
            self.import_id,
            format=reader.format or self.fmt or "csv",
            rows_total=reader.rows_total,
            rows_valid=self.valid,
            rows_rejected=self.rejected,
        )
        if self.edge is not None and not final:
            await self.edge.commit()
            if self.on_staged is not None and committed:
                header = reader.header
                self.on_staged(committed, stored_fields(header.fields) if header else None)
        if self.on_progress is not None:
            self.on_progress(
                Progress(
                    "staging", reader.bytes_read, reader.rows_total, self.valid, self.rejected, 0
                )
            )
        self._copying = len(rows)
        self._copy_through = rows[-1][1] if rows else self.staged_through
        self._copy = asyncio.ensure_future(staging.copy_rows(self.session, rows))
        if final:
            await self.settle()

    async def settle(self) -> None:
        """Wait for the COPY in flight; its rows are then staged."""
        if self._copy is not None:
            task, self._copy = self._copy, None
            await task
            self.valid += self._copying
            self._copying = 0
            self.staged_through = self._copy_through

    async def abandon(self) -> None:
        """Let a COPY in flight end (whatever its outcome) before the edge rolls back."""
        if self._copy is not None:
            task, self._copy = self._copy, None
            with contextlib.suppress(Exception):
                await task

    def _keep(self, errors: list[RowError]) -> list[RowError]:
        """Errors beyond :data:`MAX_STORED_ERRORS` are counted (``rows_rejected``), not listed."""
        room = MAX_STORED_ERRORS - self.stored_errors
        if room <= 0 or not errors:
            return []
        kept = errors[:room]
        if len(errors) > room:
            kept[-1] = RowError(
                errors[room - 1].line,
                None,
                f"More errors follow; only the first {MAX_STORED_ERRORS:,} are listed.",
            )
        self.stored_errors += len(kept)
        return kept


async def reject(
    session: AsyncSession, tenant_id: uuid.UUID, import_id: uuid.UUID, reason: str, actor: Actor
) -> None:
    """Fail the import and remove everything it staged: no rows, no row errors, nothing merged."""
    await staging.discard(session, import_id)
    await _update(
        session,
        import_id,
        status=ImportStatus.FAILED,
        error=reason,
        rows_valid=0,
        rows_rejected=0,
        finished_at=func.now(),
    )
    await record(
        session,
        "import.failed",
        tenant_id=tenant_id,
        actor_type=actor.type,
        actor_id=actor.id,
        subject_type="import",
        subject_id=str(import_id),
        data={"reason": reason},
    )
    log.info("import.rejected", import_id=str(import_id), reason=reason)


async def _update(session: AsyncSession, import_id: uuid.UUID, **values: Any) -> None:
    await session.execute(
        update(DataImport)
        .where(DataImport.id == import_id)
        .values(**values)
        .execution_options(synchronize_session=False)
    )


# --- merging -----------------------------------------------------------------------------------


async def _lock(session: AsyncSession, import_id: uuid.UUID) -> DataImport | None:
    return (
        await session.execute(
            select(DataImport)
            .where(DataImport.id == import_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    ).scalar_one_or_none()


async def merge(
    session: AsyncSession,
    import_id: uuid.UUID,
    *,
    fields: frozenset[str],
    edge: Edge | None = None,
    batch_rows: int = MERGE_BATCH_ROWS,
    on_progress: ProgressFn | None = None,
) -> DataImport | None:
    """Merge a staged import (``fields``: what its file has columns for), batch by batch.

    Idempotent: an import already ``done`` or ``failed`` is left alone, and one interrupted
    between batches resumes with the lines still staged.  Each batch locks the import's row, so
    two runs of the same import never interleave inside a batch.
    """
    request_id = structlog.contextvars.get_contextvars().get("request_id")
    announced = False
    while True:
        imp = await _lock(session, import_id)
        if imp is None or imp.status not in (ImportStatus.QUEUED, ImportStatus.MERGING):
            return imp
        if imp.status == ImportStatus.QUEUED:
            await _update(session, import_id, status=ImportStatus.MERGING)
        if on_progress is not None and not announced:
            announced = True
            on_progress(_progress("merging", imp))
        result = await merging.merge_batch(
            session,
            import_id=import_id,
            tenant_id=imp.tenant_id,
            fields=fields,
            actor=actor_of(imp),
            request_id=request_id,
            size=batch_rows,
        )
        if result is None:
            done = await _complete(session, imp)
            if edge is not None:
                await edge.commit()
            if on_progress is not None:
                on_progress(_progress("done", done))
            return done
        await _update(
            session,
            import_id,
            rows_merged=DataImport.rows_merged + result.rows,
            **{c: getattr(DataImport, c) + getattr(result, c) for c in _COUNTERS},
        )
        if edge is not None:
            await edge.commit()
        if on_progress is not None:
            merged = imp.rows_merged + result.rows
            on_progress(
                Progress("merging", 0, imp.rows_total, imp.rows_valid, imp.rows_rejected, merged)
            )


async def _complete(session: AsyncSession, imp: DataImport) -> DataImport:
    await session.execute(text("DELETE FROM import_rows WHERE import_id = :id"), {"id": imp.id})
    await _update(session, imp.id, status=ImportStatus.DONE, finished_at=func.now())
    actor = actor_of(imp)
    done = await _lock(session, imp.id)
    assert done is not None
    counts = {
        "rows_total": done.rows_total,
        "rows_valid": done.rows_valid,
        "rows_rejected": done.rows_rejected,
        "rows_merged": done.rows_merged,
        "customers_created": done.customers_created,
        "customers_updated": done.customers_updated,
        "installments_created": done.installments_created,
        "installments_updated": done.installments_updated,
        "installments_unchanged": done.installments_unchanged,
    }
    await record(
        session,
        "import.completed",
        tenant_id=done.tenant_id,
        actor_type=actor.type,
        actor_id=actor.id,
        subject_type="import",
        subject_id=str(done.id),
        data={"filename": done.filename, "sha256": done.sha256, **counts},
    )
    log.info("import.completed", import_id=str(done.id), **counts)
    return done


async def fail_merge(session: AsyncSession, import_id: uuid.UUID, reason: str) -> None:
    """Give up on a merge (after the job's last attempt): ``failed`` with ``reason``; the
    batches already merged stay, the rest of the staging is removed, the row report is kept."""
    imp = await _lock(session, import_id)
    if imp is None or imp.status in (ImportStatus.DONE, ImportStatus.FAILED):
        return
    await session.execute(text("DELETE FROM import_rows WHERE import_id = :id"), {"id": import_id})
    await _update(
        session, import_id, status=ImportStatus.FAILED, error=reason, finished_at=func.now()
    )
    actor = actor_of(imp)
    await record(
        session,
        "import.failed",
        tenant_id=imp.tenant_id,
        actor_type=actor.type,
        actor_id=actor.id,
        subject_type="import",
        subject_id=str(import_id),
        data={"reason": reason, "rows_merged": imp.rows_merged},
    )


# --- receiving and merging at once (the CLI) ------------------------------------------------------


@dataclass
class _Follower:
    """Merges the lines staging has committed on a second connection, in one transaction, while
    the rest of the file is still being read: Postgres merges while Python parses.

    It keeps staging intact and commits nothing: whether its work stands is known only at the
    end (a later line may repeat an installment id it already merged)."""

    session: AsyncSession
    tenant_id: uuid.UUID
    import_id: uuid.UUID
    actor: Actor
    request_id: str | None
    fields: frozenset[str] | None = None
    target: int = 0
    merged_through: int = 0
    total: merging.BatchResult = field(default_factory=merging.BatchResult)
    stopped: bool = False
    _task: asyncio.Future[None] | None = None

    def staged(self, through: int, fields: frozenset[str] | None) -> None:
        if fields is None or self.stopped:
            return
        self.fields, self.target = fields, through
        if self._task is None or self._task.done():
            self._task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        assert self.fields is not None
        try:
            while self.merged_through < self.target and not self.stopped:
                upto = self.target
                result = await merging.merge_batch(
                    self.session,
                    import_id=self.import_id,
                    tenant_id=self.tenant_id,
                    fields=self.fields,
                    actor=self.actor,
                    request_id=self.request_id,
                    size=MERGE_BATCH_ROWS,
                    after=self.merged_through,
                    upto=upto,
                    delete=False,
                )
                if result is None:
                    self.merged_through = upto
                    continue
                for counter in _COUNTERS:
                    setattr(
                        self.total, counter, getattr(self.total, counter) + getattr(result, counter)
                    )
                self.total.rows += result.rows
                self.merged_through = result.last_line
        except Exception as exc:  # e.g. one installment id twice in a batch
            log.info("import.follower_gave_up", import_id=str(self.import_id), error=repr(exc))
            self.stopped = True
            self.merged_through = 0

    async def stop(self) -> None:
        self.stopped = True
        await self.finish()

    async def finish(self) -> None:
        if self._task is not None:
            await self._task


_COUNTERS: Final = (
    "customers_created",
    "customers_updated",
    "installments_created",
    "installments_updated",
    "installments_unchanged",
)


async def receive_and_merge(
    maker: SessionMaker,
    *,
    tenant_id: uuid.UUID,
    actor: Actor,
    chunks: AsyncIterable[bytes],
    fmt: Format | None = None,
    encoding: str | None = None,
    filename: str | None = None,
    on_progress: ProgressFn | None = None,
) -> uuid.UUID:
    """Receive and merge a file in one go, as ``quita import`` does; the import's id.

    An edge of its own: it opens two sessions on ``maker`` and commits.  While the file is read
    and staged on the first, the second merges what is already staged (CSV, whose columns are
    known from the header), in one transaction.  When staging ends, that work is kept if no
    line it merged turned out to be a duplicate, else rolled back; the regular batch merge then
    does the rest.  Raises :class:`ImportRejected` like :func:`receive`.
    """
    import_id = uuid.uuid4()
    request_id = structlog.contextvars.get_contextvars().get("request_id")
    async with maker() as session, maker() as merging_session:
        await use_scope(session, tenant_scope(tenant_id))
        await use_scope(merging_session, tenant_scope(tenant_id))
        follower = _Follower(merging_session, tenant_id, import_id, actor, request_id)
        try:
            received = await receive(
                session,
                tenant_id=tenant_id,
                actor=actor,
                chunks=chunks,
                fmt=fmt,
                encoding=encoding,
                filename=filename,
                edge=session,
                enqueue_merge=False,
                on_progress=on_progress,
                on_staged=follower.staged,
                import_id=import_id,
            )
            await session.commit()
        except BaseException:
            await follower.stop()
            await merging_session.rollback()
            raise
        await follower.finish()
        duplicate_merged = bool(received.duplicates) and (
            received.duplicates[0] <= follower.merged_through
        )
        if follower.merged_through == 0 or duplicate_merged:
            await merging_session.rollback()
        else:
            total = follower.total
            await merging_session.execute(
                text("DELETE FROM import_rows WHERE import_id = :id AND line <= :through"),
                {"id": import_id, "through": follower.merged_through},
            )
            await _update(
                merging_session,
                import_id,
                status=ImportStatus.MERGING,
                rows_merged=total.rows,
                **{c: getattr(total, c) for c in _COUNTERS},
            )
        await merge(
            merging_session,
            import_id,
            fields=received.fields,
            edge=merging_session,
            on_progress=on_progress,
        )
    return import_id


# --- reading -----------------------------------------------------------------------------------


def _progress(phase: str, imp: DataImport) -> Progress:
    return Progress(phase, 0, imp.rows_total, imp.rows_valid, imp.rows_rejected, imp.rows_merged)


def _fraction(imp: DataImport) -> float | None:
    if imp.status == ImportStatus.RECEIVING:
        return None
    if imp.status == ImportStatus.DONE:
        return 1.0
    if imp.rows_valid <= 0:
        return 0.0
    return round(min(1.0, imp.rows_merged / imp.rows_valid), 4)


def summary_out(imp: DataImport) -> schemas.ImportSummary:
    return schemas.ImportSummary(**_summary_fields(imp))


def _summary_fields(imp: DataImport) -> dict[str, Any]:
    return {
        "id": imp.id,
        "status": imp.status,
        "format": imp.format,
        "filename": imp.filename,
        "sha256": imp.sha256,
        "created_by": imp.created_by,
        "rows_total": imp.rows_total,
        "rows_valid": imp.rows_valid,
        "rows_rejected": imp.rows_rejected,
        "rows_merged": imp.rows_merged,
        "customers_created": imp.customers_created,
        "customers_updated": imp.customers_updated,
        "installments_created": imp.installments_created,
        "installments_updated": imp.installments_updated,
        "installments_unchanged": imp.installments_unchanged,
        "progress": _fraction(imp),
        "error": imp.error,
        "created_at": imp.created_at,
        "updated_at": imp.updated_at,
        "finished_at": imp.finished_at,
    }


async def reload(session: AsyncSession, import_id: uuid.UUID) -> DataImport | None:
    return (
        await session.execute(
            select(DataImport)
            .where(DataImport.id == import_id)
            .execution_options(populate_existing=True)
        )
    ).scalar_one_or_none()


async def import_out(
    session: AsyncSession, imp: DataImport, *, first_errors: int = FIRST_ERRORS
) -> schemas.ImportOut:
    """The import with the first ``first_errors`` errors of its report and their total."""
    page = await error_page(session, imp.id, after_line=0, limit=first_errors)
    total = await session.scalar(
        select(func.count()).select_from(ImportError_).where(ImportError_.import_id == imp.id)
    )
    return schemas.ImportOut(
        **_summary_fields(imp), errors=page.items, errors_total=int(total or 0)
    )


async def error_page(
    session: AsyncSession, import_id: uuid.UUID, *, after_line: int, limit: int
) -> schemas.ImportErrorPage:
    """Errors after line ``after_line``, whole lines only (a page never splits one row's
    errors, so ``next_after_line`` never skips any)."""
    stmt = (
        select(ImportError_.line, ImportError_.field, ImportError_.reason)
        .where(ImportError_.import_id == import_id, ImportError_.line > after_line)
        .order_by(ImportError_.line, ImportError_.id)
    )
    rows = list((await session.execute(stmt.limit(limit + 1))).all())
    more = len(rows) > limit
    if more:
        overflow_line = rows[limit].line
        rows = rows[:limit]
        if rows[-1].line == overflow_line:
            whole = [r for r in rows if r.line != overflow_line]
            if whole:
                rows = whole
            else:  # one row with more errors than a page: give all of them
                rows = list(
                    (
                        await session.execute(
                            stmt.where(ImportError_.line == overflow_line).limit(1000)
                        )
                    ).all()
                )
    items = [schemas.ImportErrorOut(line=r.line, field=r.field, reason=r.reason) for r in rows]
    return schemas.ImportErrorPage(
        items=items, next_after_line=items[-1].line if more and items else None
    )


async def list_imports(
    session: AsyncSession, stmt: Select[DataImport], *, cursor: str | None, limit: int
) -> schemas.ImportPage:
    """Imports among ``stmt``'s (already scoped to the caller), newest first."""
    if cursor:
        when_s, ident_s = decode_cursor(cursor, 2)
        try:
            when, ident = datetime.fromisoformat(when_s), uuid.UUID(ident_s)
        except ValueError:
            raise invalid_cursor() from None
        stmt = stmt.where(tuple_(DataImport.created_at, DataImport.id) < (when, ident))
    rows = list(
        await session.scalars(
            stmt.order_by(DataImport.created_at.desc(), DataImport.id.desc()).limit(limit + 1)
        )
    )
    more = len(rows) > limit
    rows = rows[:limit]
    return schemas.ImportPage(
        items=[summary_out(r) for r in rows],
        next_cursor=encode_cursor(rows[-1].created_at.isoformat(), rows[-1].id) if more else None,
    )
