"""The tenant scope of a database transaction: what row-level security lets it see.

The application filters every query through the repositories' scoping helper; Postgres enforces
the same boundary a second time with RLS policies that read three settings, applied at the start
of every transaction of a scoped session (so a job that commits midway keeps its scope).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, SessionTransaction

_KEY = "quita_scope"
_SET = text(
    "SELECT set_config('quita.tenant_id', :tenant_id, true),"
    " set_config('quita.tenant_ids', :tenant_ids, true),"
    " set_config('quita.system', :system, true)"
)


@dataclass(frozen=True, slots=True)
class Scope:
    """``tenant_id``: the caller's own tenant; ``readable``: every tenant whose data it may read
    (its own, plus mandated retailers for an agency); ``system``: platform processes."""

    tenant_id: uuid.UUID | None = None
    readable: frozenset[uuid.UUID] = field(default_factory=frozenset)
    system: bool = False

    def params(self) -> dict[str, str]:
        readable = self.readable | ({self.tenant_id} if self.tenant_id else set())
        return {
            "tenant_id": str(self.tenant_id) if self.tenant_id else "",
            "tenant_ids": ",".join(sorted(str(t) for t in readable)),
            "system": "on" if self.system else "off",
        }


SYSTEM = Scope(system=True)


def tenant_scope(tenant_id: uuid.UUID) -> Scope:
    return Scope(tenant_id=tenant_id, readable=frozenset({tenant_id}))


async def use_scope(session: AsyncSession, scope: Scope) -> None:
    """Scope ``session``: now, and at the start of each of its later transactions.  A session
    with no transaction open yet is scoped by the transaction's first statement (the
    ``after_begin`` hook below), which saves a round trip on every request and job."""
    session.info[_KEY] = scope
    if session.in_transaction():
        await session.execute(_SET, scope.params())


def current_scope(session: AsyncSession) -> Scope | None:
    scope: Scope | None = session.info.get(_KEY)
    return scope


@event.listens_for(Session, "after_begin")
def _apply_scope(session: Session, transaction: SessionTransaction, connection: Connection) -> Any:
    scope: Scope | None = session.info.get(_KEY)
    if scope is not None:
        connection.execute(_SET, scope.params())
