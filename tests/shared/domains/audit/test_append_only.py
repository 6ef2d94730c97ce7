"""The application may only add audit events and seals, and read them."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.tenancy import SYSTEM, use_scope
from tests.shared.domains.audit.conftest import Trail

_REFUSED = [
    "UPDATE audit_events SET action = 'x'",
    "DELETE FROM audit_events",
    "TRUNCATE audit_events",
    "UPDATE audit_seals SET seq = seq + 1",
    "DELETE FROM audit_seals",
    "TRUNCATE audit_seals",
    "SELECT * FROM audit_partitions.audit_events_default",
    "DELETE FROM audit_partitions.audit_events_default",
]


@pytest.mark.parametrize("sql", _REFUSED)
async def test_the_application_role_cannot_change_the_trail(engine: AsyncEngine, sql: str) -> None:
    async with engine.connect() as conn:
        with pytest.raises(DBAPIError, match="permission denied"):
            await conn.execute(text(sql))


@pytest.mark.parametrize(
    ("table", "sql"),
    [
        ("audit_events", "UPDATE audit_events SET action = 'x' WHERE tenant_id = :t"),
        ("audit_events", "DELETE FROM audit_events WHERE tenant_id = :t"),
        ("audit_seals", "DELETE FROM audit_seals WHERE tenant_id = :t"),
    ],
)
async def test_even_the_owner_is_stopped_by_the_trigger(
    trail: Trail, admin_engine: AsyncEngine, table: str, sql: str
) -> None:
    tenant = trail.tenant()
    ids = await trail.write(tenant, 1)
    await trail.seal_until(ids)

    async with admin_engine.connect() as conn:
        with pytest.raises(DBAPIError, match=f"{table} is append-only"):
            await conn.execute(text(sql), {"t": tenant})


async def test_an_event_of_any_date_is_stored(trail: Trail, engine: AsyncEngine) -> None:
    tenant = trail.tenant()
    async with engine.begin() as conn:
        await conn.execute(text("SELECT set_config('quita.system', 'on', true)"))
        await conn.execute(
            text(
                """INSERT INTO audit_events (tenant_id, actor_type, action, data, created_at)
                   VALUES (:t, 'system', 'test.far_future', '{}', '2031-05-01T12:00:00Z'),
                          (:t, 'system', 'test.now', '{}', now())"""
            ),
            {"t": tenant},
        )

    async with trail.app() as session:
        await use_scope(session, SYSTEM)
        stored = await session.scalar(
            text("SELECT count(*) FROM audit_events WHERE tenant_id = :t"), {"t": tenant}
        )
    assert stored == 2


async def test_the_maintenance_job_adds_the_coming_months_once(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        first = await conn.scalar(text("SELECT audit_events_add_partitions(5)"))
        again = await conn.scalar(text("SELECT audit_events_add_partitions(5)"))
        parts = await conn.scalar(
            text(
                """SELECT count(*) FROM pg_inherits
                   WHERE inhparent = 'audit_events'::regclass"""
            )
        )
        await conn.rollback()

    assert (first, again) == (2, 0)  # the migration made three months ahead
    assert parts is not None and parts >= 7  # default + this month + five ahead
