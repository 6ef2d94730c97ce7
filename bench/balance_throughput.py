"""Balances of 1,000,000 installments in one set-based query (what reports will run).

Loads a retailer with 50,000 customers and 1,000,000 open installments (due dates spread over
two years, principals from R$ 10 to R$ 5.000, customers in every UF), then streams every
balance on one date through :func:`shared.domains.money.balance_sql.balances` as the app role
under the tenant's row-level security.  The ceiling is the same stream of the bare rows
(id, principal, due date) with no arithmetic.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from datetime import date, timedelta
from decimal import Decimal

import asyncpg
from sqlalchemy import text

from bench.common import bench_settings, ratio_line
from shared.brazil.calendar import UFS
from shared.config import Settings, libpq_dsn
from shared.db import create_engine, create_sessionmaker
from shared.domains.money.balance_sql import balances, totals
from shared.tenancy import tenant_scope, use_scope

CUSTOMERS = 50_000
INSTALLMENTS = 1_000_000
AS_OF = date(2026, 11, 23)


async def _load(settings: Settings) -> uuid.UUID:
    rng = random.Random(7)
    tenant = uuid.uuid4()
    conn = await asyncpg.connect(libpq_dsn(settings.admin_dsn))
    try:
        await conn.execute(
            "INSERT INTO tenants (id, slug, name, kind) VALUES ($1, 'bench', 'Bench', 'retailer')",
            tenant,
        )
        await conn.execute(
            """INSERT INTO fee_rules (id, tenant_id, version, effective_from, fine_percent,
               monthly_interest_percent, discount_percent, discount_days_before_due,
               business_day_grace) VALUES ($1, $2, 1, '2000-01-01', 2, 1, 0, 0, true)""",
            uuid.uuid4(),
            tenant,
        )
        customers = [uuid.uuid4() for _ in range(CUSTOMERS)]
        await conn.copy_records_to_table(
            "customers",
            records=[
                (c, tenant, f"C{n}", f"Cliente {n}", UFS[n % len(UFS)])
                for n, c in enumerate(customers)
            ],
            columns=["id", "tenant_id", "external_id", "name", "state"],
        )
        start = date(2025, 1, 1)
        await conn.copy_records_to_table(
            "installments",
            records=[
                (
                    uuid.uuid4(),
                    tenant,
                    customers[n % CUSTOMERS],
                    f"P{n}",
                    Decimal(rng.randrange(1_000, 500_000)) / 100,
                    start + timedelta(days=rng.randrange(0, 730)),
                )
                for n in range(INSTALLMENTS)
            ],
            columns=["id", "tenant_id", "customer_id", "external_id", "principal", "due_date"],
        )
        await conn.execute("ANALYZE customers; ANALYZE installments; ANALYZE fee_rules")
    finally:
        await conn.close()
    return tenant


async def _measure(
    settings: Settings, tenant: uuid.UUID
) -> tuple[float, float, float, float, Decimal]:
    engine = create_engine(settings, process="bench")
    maker = create_sessionmaker(engine)
    try:
        async with maker() as session, session.begin():
            await use_scope(session, tenant_scope(tenant))
            started = time.perf_counter()
            rows = 0
            async for _ in await session.stream(
                text(
                    "SELECT id, principal, due_date FROM installments "
                    "WHERE tenant_id = :t AND status = ANY (:s)"
                ),
                {"t": tenant, "s": ["open", "partially_paid"]},
                execution_options={"yield_per": 10_000},
            ):
                rows += 1
            bare = rows / (time.perf_counter() - started)

        async with maker() as session, session.begin():
            await use_scope(session, tenant_scope(tenant))
            started = time.perf_counter()
            rows, total = 0, Decimal(0)
            async for row, _ in balances(session, tenant, AS_OF):
                assert row is not None
                total += row.total
                rows += 1
            assert rows == INSTALLMENTS
            computed = rows / (time.perf_counter() - started)

        async with maker() as session, session.begin():
            await use_scope(session, tenant_scope(tenant))
            started = time.perf_counter()
            await session.execute(
                text(
                    "SELECT count(*), sum(principal) FROM installments "
                    "WHERE tenant_id = :t AND status = ANY (:s)"
                ),
                {"t": tenant, "s": ["open", "partially_paid"]},
            )
            bare_sum = INSTALLMENTS / (time.perf_counter() - started)
            started = time.perf_counter()
            rows, _, server_total = await totals(session, tenant, AS_OF)
            in_db = rows / (time.perf_counter() - started)
            assert server_total == total
        return computed, bare, in_db, bare_sum, total
    finally:
        await engine.dispose()


def run() -> list[str]:
    settings = bench_settings("balance")
    started = time.perf_counter()
    tenant = asyncio.run(_load(settings))
    load_s = time.perf_counter() - started
    computed, bare, in_db, bare_sum, total = asyncio.run(_measure(settings, tenant))
    return [
        f"loaded {INSTALLMENTS:,} installments of {CUSTOMERS:,} customers in {load_s:.1f}s",
        ratio_line("balances summed in Postgres", in_db, bare_sum, "rows/s"),
        ratio_line("balances streamed to Python", computed, bare, "rows/s"),
        f"  sum of balances on {AS_OF}: R$ {total:,.2f}",
    ]
