"""Audit trail tests work on committed data: sealing goes by ended transactions, so events
written inside a test's rolled-back transaction could never be sealed.  Each test writes to
its own fresh tenant ids (so other tests' events do not matter) and removes them afterwards."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest_asyncio
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.db import SessionMaker, create_sessionmaker
from shared.domains.audit.seal import seal_round
from shared.domains.audit.service import record
from shared.tenancy import SYSTEM, use_scope


class Trail:
    """Writes, seals and tampers with the audit events of a few throwaway tenants."""

    def __init__(self, app: SessionMaker, owner: AsyncEngine) -> None:
        self.app = app
        self.owner = owner
        self.tenants: list[uuid.UUID] = []

    def tenant(self) -> uuid.UUID:
        tenant_id = uuid.uuid4()
        self.tenants.append(tenant_id)
        return tenant_id

    async def write(self, tenant_id: uuid.UUID, count: int, **data: Any) -> list[int]:
        """Commit ``count`` events of ``tenant_id`` in one transaction; their ids."""
        async with self.app() as session:
            await use_scope(session, SYSTEM)
            for n in range(count):
                await record(
                    session,
                    "installment.created",
                    tenant_id=tenant_id,
                    actor_type="system",
                    actor_id=None,
                    subject_type="installment",
                    subject_id=f"PAR-{n:04d}",
                    data={"principal": "150.00", "n": n, **data},
                )
            ids = await session.scalars(
                text("SELECT id FROM audit_events WHERE tenant_id = :t ORDER BY id"),
                {"t": tenant_id},
            )
            found = list(ids)
            await session.commit()
        return found[-count:]

    async def seal_until(self, event_ids: Sequence[int], timeout: float = 60.0) -> None:
        """Seal rounds until every event of ``event_ids`` is sealed (other transactions on the
        server — other test runs — may hold the horizon back a moment)."""
        deadline = time.monotonic() + timeout
        while True:
            async with self.app() as session:
                await use_scope(session, SYSTEM)
                await seal_round(session)
                await session.commit()
                missing = await session.scalar(
                    text(
                        """SELECT count(*) FROM unnest(CAST(:ids AS bigint[])) AS e(id)
                           WHERE NOT EXISTS (SELECT 1 FROM audit_seals s
                                             WHERE e.id = ANY(s.event_ids))"""
                    ),
                    {"ids": list(event_ids)},
                )
            if not missing:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"{missing} event(s) still unsealed after {timeout}s")
            await asyncio.sleep(0.05)

    async def as_owner(self, sql: str, **params: Any) -> None:
        """Run ``sql`` as the database owner with triggers off: what a tamperer would do."""
        async with self.owner.begin() as conn:
            await conn.execute(text("SET LOCAL session_replication_role = replica"))
            await conn.execute(text(sql), params)

    async def seals(self, tenant_id: uuid.UUID) -> list[Any]:
        async with self.app() as session:
            await use_scope(session, SYSTEM)
            rows = await session.execute(
                text("SELECT * FROM audit_seals WHERE tenant_id = :t ORDER BY seq"),
                {"t": tenant_id},
            )
            return list(rows)

    async def remove(self) -> None:
        if self.tenants:
            for table in ("audit_events", "audit_seals"):
                await self.as_owner(
                    f"DELETE FROM {table} WHERE tenant_id = ANY(CAST(:t AS uuid[]))",
                    t=self.tenants,
                )


@pytest_asyncio.fixture
async def trail(engine: AsyncEngine, admin_engine: AsyncEngine) -> AsyncIterator[Trail]:
    t = Trail(create_sessionmaker(engine), admin_engine)
    yield t
    await t.remove()
