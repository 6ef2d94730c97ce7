"""``quita import FILE --tenant ...``: a bulk import from the command line.

The same code path as ``POST /v1/imports`` without HTTP: the file is streamed through the
reader, staged with COPY and merged inline (not by a worker), with a progress bar on stderr.
The audit trail names the CLI as the actor.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import IO, Any

import msgspec
from sqlalchemy import select

from shared.config import Settings
from shared.db import SessionMaker
from shared.domains.portfolio.imports import schemas, service
from shared.domains.portfolio.imports.service import ImportRejected, Progress
from shared.errors import AppError
from shared.models import Tenant, TenantKind
from shared.tenancy import SYSTEM, tenant_scope, use_scope

Out = Callable[[argparse.Namespace, dict[str, Any], str], None]

READ_CHUNK = 256 * 1024


class CliError(Exception):
    """A problem to report on stderr with exit status 2."""


async def _chunks(path: Path) -> AsyncIterator[bytes]:
    handle: IO[bytes] = await asyncio.to_thread(path.open, "rb")
    try:
        while data := await asyncio.to_thread(handle.read, READ_CHUNK):
            yield data
    finally:
        handle.close()


async def _tenant_id(maker: SessionMaker, ref: str) -> uuid.UUID:
    """The retailer ``ref`` (id or slug) names."""
    try:
        stmt = select(Tenant.id, Tenant.kind).where(Tenant.id == uuid.UUID(ref))
    except ValueError:
        stmt = select(Tenant.id, Tenant.kind).where(Tenant.slug == ref)
    async with maker() as session:
        await use_scope(session, SYSTEM)
        found = (await session.execute(stmt)).one_or_none()
        await session.rollback()
    if found is None:
        raise CliError(f"no tenant {ref!r} (give its id or slug)")
    if found.kind != TenantKind.RETAILER:
        raise CliError(f"{ref!r} is an agency; imports load a retailer's portfolio")
    ident: uuid.UUID = found.id
    return ident


async def run_import(
    maker: SessionMaker,
    *,
    tenant: str,
    path: Path,
    fmt: str | None = None,
    encoding: str | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    overlap: bool = True,
) -> tuple[schemas.ImportOut, bool]:
    """Import ``path`` into ``tenant`` (id or slug) and merge it; ``(the import, accepted)``.

    ``overlap``: merge on a second connection while the file is still being staged (see
    :func:`service.receive_and_merge`); false stages then merges on one session (what a
    ``maker`` bound to a single connection needs).  A rejected file gives the failed import
    and ``False``; problems with the arguments raise :class:`CliError`."""
    try:
        file_format = service.format_for_media_type(None, fmt)
        codec = service.parse_encoding(encoding, "encoding")
    except AppError as exc:
        raise CliError(exc.detail) from None
    if not await asyncio.to_thread(path.is_file):
        raise CliError(f"no such file: {path}")
    tenant_id = await _tenant_id(maker, tenant)
    options: dict[str, Any] = {
        "tenant_id": tenant_id,
        "actor": service.CLI_ACTOR,
        "chunks": _chunks(path),
        "fmt": file_format,
        "encoding": codec,
        "filename": path.name,
        "on_progress": on_progress,
    }
    accepted = True
    try:
        if overlap:
            import_id = await service.receive_and_merge(maker, **options)
        else:
            import_id = await _stage_then_merge(maker, options)
    except ImportRejected as exc:
        assert exc.import_id is not None
        import_id, accepted = exc.import_id, False
    async with maker() as session:
        await use_scope(session, tenant_scope(tenant_id))
        imp = await service.reload(session, import_id)
        assert imp is not None
        out = await service.import_out(session, imp)
        await session.rollback()
    return out, accepted


async def _stage_then_merge(maker: SessionMaker, options: dict[str, Any]) -> uuid.UUID:
    async with maker() as session:
        await use_scope(session, tenant_scope(options["tenant_id"]))
        received = await service.receive(session, **options, edge=session, enqueue_merge=False)
        await service.merge(
            session,
            received.import_id,
            fields=received.fields,
            edge=session,
            on_progress=options["on_progress"],
        )
        await session.commit()
        return received.import_id


class ProgressBar:
    """Progress on stderr: bytes read while staging, rows merged while merging, with rows/s.
    Redrawn in place on a terminal; a line every few seconds otherwise."""

    def __init__(
        self, total_bytes: int, stream: Any = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.total = max(total_bytes, 1)
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.clock = clock
        self.started = clock()
        self.phase_started = self.started
        self.phase = ""
        self.last = 0.0

    def __call__(self, p: Progress) -> None:
        now = self.clock()
        if p.phase != self.phase:
            if self.phase and self.tty:
                self.stream.write("\n")
            if p.phase != "done":  # "done" reports on the merge that just ended
                self.phase_started = now
            self.phase, self.last = p.phase, 0.0
        elif now - self.last < (0.2 if self.tty else 5.0) and p.phase != "done":
            return
        self.last = now
        elapsed = now - self.phase_started
        if p.phase == "staging":
            done, count = p.bytes_read / self.total, p.rows_total
            what = f"{_size(p.bytes_read)}/{_size(self.total)}  {count:,} rows"
        else:
            done = 1.0 if p.phase == "done" else p.rows_merged / max(p.rows_valid, 1)
            count = p.rows_merged
            what = f"{p.rows_merged:,}/{p.rows_valid:,} rows"
        bar = "#" * int(min(done, 1.0) * 24)
        rate = f"{count / elapsed:,.0f} rows/s" if elapsed >= 0.1 else ""
        line = f"{p.phase:<8} [{bar:<24}] {min(done, 1.0):>4.0%}  {what}  {rate}"
        self.stream.write(("\r" + line) if self.tty else (line + "\n"))
        if p.phase == "done" and self.tty:
            self.stream.write("\n")
        self.stream.flush()


def _size(n: int) -> str:
    return f"{n / 1e6:,.1f} MB" if n >= 100_000 else f"{n / 1e3:,.1f} kB"


def _summary(out: schemas.ImportOut, seconds: float) -> str:
    if out.status == "failed":
        return f"import {out.id} failed: {out.error}"
    lines = [
        f"import {out.id} {out.status}: {out.rows_total:,} rows read, {out.rows_valid:,} "
        f"imported, {out.rows_rejected:,} rejected in {seconds:,.1f}s "
        f"({out.rows_total / max(seconds, 1e-6):,.0f} rows/s)",
        f"customers: {out.customers_created:,} created, {out.customers_updated:,} updated",
        f"installments: {out.installments_created:,} created, {out.installments_updated:,} "
        f"updated, {out.installments_unchanged:,} unchanged",
    ]
    if out.errors:
        lines.append(f"errors ({out.errors_total:,}; the first {len(out.errors)}):")
        lines += [f"  line {e.line:>7}  {e.field or '(row)'}: {e.reason}" for e in out.errors]
    return "\n".join(lines)


def register(sub: Any, add: Callable[..., argparse.ArgumentParser], out: Out) -> None:
    """Add ``quita import`` to the parser."""

    def import_file(args: argparse.Namespace, settings: Settings) -> None:
        from shared.db import create_engine, create_sessionmaker
        from shared.logging import configure_logging

        # Logs go to stderr (stdout is the result, JSON with --json); quiet unless asked.
        if "log_level" not in settings.model_fields_set:
            settings = settings.model_copy(update={"log_level": "WARNING"})
        configure_logging(settings, "cli")

        path: Path = args.file
        bar = (
            None if args.no_progress else ProgressBar(path.stat().st_size if path.is_file() else 0)
        )

        async def go() -> tuple[schemas.ImportOut, bool]:
            engine = create_engine(settings, process="cli")
            try:
                return await run_import(
                    create_sessionmaker(engine),
                    tenant=args.tenant,
                    path=path,
                    fmt=args.format,
                    encoding=args.encoding,
                    on_progress=bar,
                )
            finally:
                await engine.dispose()

        started = time.monotonic()
        try:
            result, accepted = asyncio.run(go())
        except CliError as exc:
            print(f"error: {exc}", file=sys.stderr)
            raise SystemExit(2) from None
        out(args, msgspec.to_builtins(result), _summary(result, time.monotonic() - started))
        if not accepted:
            raise SystemExit(2)

    p = add("import", import_file, "import customers and installments from a CSV or JSONL file")
    p.add_argument("file", type=Path, help="the CSV or JSON Lines file")
    p.add_argument("--tenant", required=True, help="the retailer's id or slug")
    p.add_argument("--format", choices=["csv", "jsonl"], help="default: detected")
    p.add_argument("--encoding", help="the file's charset (default UTF-8), e.g. windows-1252")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
