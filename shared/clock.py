"""The current instant.  Production reads the system clock; a test may fix it for every
process it starts (``QUITA_FIXED_NOW``, refused outside ``QUITA_ENV=test``), because contact
windows make "now" part of the behaviour under test."""

from __future__ import annotations

from datetime import UTC, datetime

from shared.config import get_settings


def now() -> datetime:
    fixed = get_settings().fixed_now
    if fixed is not None:
        return fixed if fixed.tzinfo is not None else fixed.replace(tzinfo=UTC)
    return datetime.now(UTC)
