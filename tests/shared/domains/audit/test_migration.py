"""Migration 0012 turns the flat audit table into monthly partitions and back, keeping every
event and its id."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import asyncpg
import pytest
from alembic import command

from shared.config import Settings, libpq_dsn
from shared.db import migrate


@pytest.fixture
def scratch(settings: Settings) -> Iterator[Settings]:
    """A database of its own: this test walks the migrations down and up."""
    url = settings.admin_dsn.set(database=f"{settings.admin_dsn.database}_audit_migration")
    own = settings.model_copy(
        update={"database_url": url.set(drivername="postgresql").render_as_string(False)}
    )
    _sql(own, None, f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)', admin=True)
    yield own
    _sql(own, None, f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)', admin=True)


def _sql(settings: Settings, many: list[str] | None, query: str, *, admin: bool = False) -> Any:
    async def run() -> Any:
        url = settings.admin_dsn
        conn = await asyncpg.connect(libpq_dsn(url.set(database="postgres") if admin else url))
        try:
            for statement in many or []:
                await conn.execute(statement)
            return await conn.fetch(query)
        finally:
            await conn.close()

    return asyncio.run(run())


_EVENTS = """INSERT INTO audit_events (tenant_id, actor_type, action, data, created_at)
             VALUES (NULL, 'system', 'old.event', '{"a": 1}', '2026-10-15T10:00:00Z'),
                    (gen_random_uuid(), 'user', 'recent.event', '{}', now())"""


def test_events_and_ids_survive_upgrade_and_downgrade(scratch: Settings) -> None:
    migrate.upgrade(scratch, "0011")
    _sql(scratch, [_EVENTS], "SELECT 1")
    before = _sql(scratch, None, "SELECT id, action, created_at FROM audit_events ORDER BY id")

    migrate.upgrade(scratch, "0012")
    after = _sql(scratch, None, "SELECT id, action, created_at, txid FROM audit_events ORDER BY id")
    parts = _sql(
        scratch,
        None,
        "SELECT relname FROM pg_class WHERE relnamespace = 'audit_partitions'::regnamespace "
        "AND relkind = 'r' ORDER BY relname",
    )
    next_id = _sql(scratch, [_EVENTS], "SELECT max(id) FROM audit_events")[0][0]

    assert [tuple(r)[:3] for r in after] == [tuple(r) for r in before]
    assert [r["txid"] for r in after] == [-2, -1]  # below every real transaction, in id order
    assert "audit_events_2026_10" in {r["relname"] for r in parts}
    assert next_id == before[-1]["id"] + 2

    command.downgrade(migrate.alembic_config(scratch), "0011")
    back = _sql(scratch, None, "SELECT id, action FROM audit_events ORDER BY id")
    kind = _sql(scratch, None, "SELECT relkind::text FROM pg_class WHERE relname = 'audit_events'")
    next_after = _sql(scratch, [_EVENTS], "SELECT max(id) FROM audit_events")[0][0]

    assert [r["id"] for r in back] == [r["id"] for r in before] + [next_id - 1, next_id]
    assert kind[0]["relkind"] == "r"
    assert next_after == next_id + 2

    migrate.upgrade(scratch, "0012")  # and up again
