"""The demo data `make run` loads: a retailer whose portfolio answers through the API."""

from __future__ import annotations

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from shared import demo
from shared.config import Settings
from shared.models import Customer, Installment
from shared.tenancy import SYSTEM, use_scope


async def test_the_demo_is_seeded_once_and_its_portfolio_answers(
    session: AsyncSession, settings: Settings, api: httpx.AsyncClient
) -> None:
    await use_scope(session, SYSTEM)
    first = await demo.seed(session, settings)
    again = await demo.seed(session, settings)
    assert first.tenant_id == again.tenant_id
    assert await session.scalar(select(func.count()).select_from(Customer)) == len(
        demo.DEMO_CUSTOMERS
    )

    headers = {"Authorization": f"Bearer {again.access_token}"}
    overdue = (
        await api.get("/v1/installments/", params={"overdue_min": 1}, headers=headers)
    ).json()
    assert {i["external_id"] for i in overdue["items"]} >= {"PAR-0001-02", "PAR-0003-01"}
    pix = await api.get("/v1/installments/PAR-0003-01/pix", headers=headers)
    assert pix.status_code == 200, pix.text
    balance = (await api.get("/v1/installments/PAR-0003-01/balance", headers=headers)).json()
    assert pix.json()["amount"] == balance["total"]
    assert balance["days_overdue"] >= 44
    await use_scope(session, SYSTEM)
    paid = await session.scalar(
        select(Installment.status).where(Installment.external_id == "PAR-0004-07")
    )
    assert paid == "paid"
