"""Demo data for ``make run``: idempotent, so every start can call it."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from shared.models import Tenant, TenantKind

DEMO_SLUG = "loja-demo"


@dataclass(frozen=True, slots=True)
class DemoSummary:
    tenant_id: str
    tenant_name: str


async def seed(session: AsyncSession) -> DemoSummary:
    """Create the demo retailer if it is missing (the caller commits)."""
    await session.execute(
        insert(Tenant)
        .values(slug=DEMO_SLUG, name="Loja Demo Móveis e Eletro", kind=TenantKind.RETAILER)
        .on_conflict_do_nothing(index_elements=[Tenant.slug])
    )
    tenant = (await session.execute(select(Tenant).where(Tenant.slug == DEMO_SLUG))).scalar_one()
    return DemoSummary(tenant_id=str(tenant.id), tenant_name=tenant.name)
