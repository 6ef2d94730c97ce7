"""Staging an import: the good rows go into ``import_rows`` with ``COPY`` (binary, through the
session's own asyncpg connection, so inside the caller's transaction), the row errors into
``import_errors`` with one set-based INSERT per batch.

``import_rows`` has no row-level security (Postgres refuses ``COPY FROM`` into a table with RLS)
and is never read by the API: every query here and in :mod:`merge` names the import explicitly.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from shared.domains.portfolio.imports.reader import ROW_COLUMNS, RowError

_INSERT_ERRORS = text(
    """INSERT INTO import_errors (tenant_id, import_id, line, field, reason)
       SELECT :tenant_id, :import_id, e.line, e.field, e.reason
       FROM unnest(CAST(:lines AS integer[]), CAST(:fields AS text[]), CAST(:reasons AS text[]))
            AS e(line, field, reason)"""
)


async def driver_connection(session: AsyncSession) -> Any:
    """The asyncpg connection under ``session``, in the session's current transaction."""
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    return raw.driver_connection


async def copy_rows(session: AsyncSession, rows: Sequence[tuple[Any, ...]]) -> None:
    """COPY validated rows (tuples in :data:`ROW_COLUMNS` order) into ``import_rows``."""
    if not rows:
        return
    conn = await driver_connection(session)
    await conn.copy_records_to_table("import_rows", records=rows, columns=ROW_COLUMNS)


async def insert_errors(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    import_id: uuid.UUID,
    errors: Sequence[RowError],
) -> None:
    """Record row errors (reasons cut to the column's 300 characters)."""
    if not errors:
        return
    await session.execute(
        _INSERT_ERRORS,
        {
            "tenant_id": tenant_id,
            "import_id": import_id,
            "lines": [e.line for e in errors],
            "fields": [e.field[:64] if e.field else None for e in errors],
            "reasons": [e.reason[:300] for e in errors],
        },
    )


async def drop_duplicates(
    session: AsyncSession, tenant_id: uuid.UUID, import_id: uuid.UUID
) -> list[int]:
    """The same installment id on several lines: the last line wins; each earlier one gets the
    error "duplicate of line N" and leaves staging (a row is all or nothing).  Returns the lines
    dropped."""
    result = await session.execute(
        text(
            """WITH ranked AS (
                   SELECT line, max(line) OVER (PARTITION BY external_id) AS last_line
                   FROM import_rows
                   WHERE import_id = :import_id AND external_id IS NOT NULL
               ),
               dupes AS MATERIALIZED (
                   SELECT line, last_line FROM ranked WHERE line < last_line
               ),
               dropped AS (
                   DELETE FROM import_rows
                   WHERE import_id = :import_id
                     AND line = ANY (ARRAY(SELECT line FROM dupes))
               )
               INSERT INTO import_errors (tenant_id, import_id, line, field, reason)
               SELECT :tenant_id, :import_id, line, 'external_id',
                      'Duplicate of line ' || last_line || ' (same installment id); '
                      || 'the later line was imported.'
               FROM dupes
               RETURNING line"""
        ),
        {"import_id": import_id, "tenant_id": tenant_id},
    )
    return sorted(result.scalars())


async def discard(session: AsyncSession, import_id: uuid.UUID) -> None:
    """Remove everything an import staged: its rows and its row errors."""
    await session.execute(text("DELETE FROM import_rows WHERE import_id = :id"), {"id": import_id})
    await session.execute(
        text("DELETE FROM import_errors WHERE import_id = :id"), {"id": import_id}
    )
