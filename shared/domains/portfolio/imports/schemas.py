"""What the imports API answers (msgspec structs, in OpenAPI)."""

from __future__ import annotations

import uuid
from datetime import datetime

import msgspec


class ImportErrorOut(msgspec.Struct):
    """One problem of one row: the line where the row starts in the file (the header is line
    1), the field (``null`` for the row as a whole) and the reason.  A column the import does
    not know is listed once, on line 1, with the column's name as ``field``."""

    line: int
    field: str | None
    reason: str


class ImportSummary(msgspec.Struct):
    """An import and its progress.  ``rows_valid`` rows are merged (``rows_merged`` so far);
    ``rows_rejected`` rows had errors and were left out whole.  ``progress`` goes from 0 to 1
    while the merge runs (``null`` while the file is still being received)."""

    id: uuid.UUID
    status: str  # receiving | queued | merging | done | failed
    format: str
    filename: str | None
    sha256: str | None
    created_by: str | None
    rows_total: int
    rows_valid: int
    rows_rejected: int
    rows_merged: int
    customers_created: int
    customers_updated: int
    installments_created: int
    installments_updated: int
    installments_unchanged: int
    progress: float | None
    error: str | None
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None


class ImportOut(ImportSummary):
    """The import with the first errors of its report (``errors_total`` in all; page the rest
    with ``GET /v1/imports/{id}/errors?after_line=``)."""

    errors: list[ImportErrorOut] = msgspec.field(default_factory=list)
    errors_total: int = 0


class ImportPage(msgspec.Struct):
    items: list[ImportSummary]
    next_cursor: str | None


class ImportErrorPage(msgspec.Struct):
    """Errors in line order; ask for the next page with ``after_line=next_after_line``."""

    items: list[ImportErrorOut]
    next_after_line: int | None
