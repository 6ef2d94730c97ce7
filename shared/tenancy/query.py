"""The one scoping helper every repository uses: which rows of a tenant-owned table a principal
may see.  Postgres RLS enforces the same boundary underneath."""

from __future__ import annotations

import uuid
from typing import Any, TypeVar

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.errors import NotFound
from shared.models import MandateAction
from shared.tenancy.principal import Principal

M = TypeVar("M")


def owned(model: type[M], principal: Principal) -> Select[M]:
    """Rows that belong to the principal's own tenant (settings, clients, members...)."""
    column: Any = model.tenant_id  # type: ignore[attr-defined]
    return select(model).where(column == principal.tenant_id)


def readable(
    model: type[M], principal: Principal, action: MandateAction = MandateAction.READ
) -> Select[M]:
    """Rows of every tenant whose data the principal may act on (own + mandated retailers)."""
    column: Any = model.tenant_id  # type: ignore[attr-defined]
    return select(model).where(column.in_(principal.readable_tenants(action)))


async def get_or_404(session: AsyncSession, stmt: Select[M], ident: uuid.UUID, what: str) -> M:
    """The row with ``id == ident`` among ``stmt``'s, or a 404 that never says whose it is."""
    model: Any = stmt.column_descriptions[0]["entity"]
    row = (await session.execute(stmt.where(model.id == ident))).scalar_one_or_none()
    if row is None:
        raise NotFound(f"{what} {ident} was not found.")
    return row
