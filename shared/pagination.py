"""Opaque keyset cursors for every list: the sort key of the last item, base64url-encoded."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import tuple_

from shared.errors import FieldError, ValidationFailed


def encode_cursor(*values: Any) -> str:
    raw = json.dumps([str(v) for v in values]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def invalid_cursor() -> ValidationFailed:
    return ValidationFailed(
        "The cursor is not valid.", errors=[FieldError("cursor", "use next_cursor as given")]
    )


def decode_cursor(cursor: str, arity: int) -> list[str]:
    """The ``arity`` values :func:`encode_cursor` wrote; a 422 for anything else."""
    try:
        values = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except ValueError:  # bad base64, bad UTF-8, bad JSON
        raise invalid_cursor() from None
    if not isinstance(values, list) or len(values) != arity:
        raise invalid_cursor()
    return [str(v) for v in values]


def decode_time_id(cursor: str) -> tuple[datetime, uuid.UUID]:
    """A cursor of ``(instant, id)`` — the key of newest-first lists — or a 422."""
    instant, ident = decode_cursor(cursor, 2)
    try:
        return datetime.fromisoformat(instant), uuid.UUID(ident)
    except ValueError:
        raise invalid_cursor() from None


def older_than(cursor: str, instant: Any, ident: Any) -> Any:
    """The keyset condition for the page after ``cursor`` in a newest-first list ordered by
    ``(instant, ident)`` columns."""
    return tuple_(instant, ident) < decode_time_id(cursor)
