"""Balances of many installments in one set-based query (reports, exports, the planner).

The SQL below is the same contract as :func:`shared.domains.money.fees.compute_balance` for an
installment with no payments and no monetary correction — the overwhelming majority — and is
tested against it.  Installments with payments or a correcting fee rule go through the Python
function (``python_rows``), so every amount still comes from one definition.

The next-business-day grace needs the calendar (national, state and Carnival days), which lives
in Python: the distinct (UF, due date) pairs are resolved here and passed in as arrays.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from shared.brazil.calendar import next_bank_business_day, normalize_uf

COLLECTABLE = ("open", "partially_paid")

_PAIRS = text(
    """
    SELECT DISTINCT coalesce(c.state, '') AS uf, i.due_date
    FROM installments i JOIN customers c ON c.id = i.customer_id
    WHERE i.tenant_id = :tenant AND i.status = ANY (:statuses) AND i.due_date < :as_of
    """
)

# Components per installment; the fee-rule version in force on each due date is found by a
# range join over the tenant's versions (a later version on the same date supersedes).
BALANCES_SQL = """
    WITH grace AS (
        SELECT * FROM unnest(CAST(:g_uf AS text[]), CAST(:g_due AS date[]),
                             CAST(:g_eff AS date[])) AS g(uf, due, eff)
    ),
    versions AS (
        SELECT r.*,
               CASE WHEN row_number() OVER w = 1 THEN DATE '-infinity'
                    ELSE r.effective_from END AS valid_from,
               lead(r.effective_from) OVER w AS valid_until
        FROM fee_rules r
        WHERE r.tenant_id = :tenant
        WINDOW w AS (ORDER BY r.effective_from, r.version)
    ),
    base AS (
        SELECT i.id, i.principal AS p, i.due_date AS due, i.amount_paid,
               r.version, r.fine_percent, r.monthly_interest_percent, r.discount_percent,
               r.discount_days_before_due, r.correction_index,
               CASE WHEN r.business_day_grace THEN coalesce(g.eff, i.due_date)
                    ELSE i.due_date END AS eff
        FROM installments i
        JOIN customers c ON c.id = i.customer_id
        JOIN versions r ON i.due_date >= r.valid_from
                       AND (r.valid_until IS NULL OR i.due_date < r.valid_until)
        LEFT JOIN grace g ON g.uf = coalesce(c.state, '') AND g.due = i.due_date
        WHERE i.tenant_id = :tenant AND i.status = ANY (:statuses)
    )
    SELECT id, version, p, eff,
           (amount_paid > 0 OR correction_index IS NOT NULL) AS python,
           CASE WHEN :as_of > eff THEN round(p * fine_percent / 100, 2) ELSE 0 END AS fine,
           CASE WHEN :as_of > eff
                THEN round(p * monthly_interest_percent * (:as_of - due) / 3000, 2)
                ELSE 0 END AS interest,
           CASE WHEN :as_of <= due - discount_days_before_due
                THEN round(p * discount_percent / 100, 2) ELSE 0 END AS discount,
           CASE WHEN :as_of > eff THEN :as_of - due ELSE 0 END AS days
    FROM base
"""
_BALANCES = text(BALANCES_SQL)
_TOTALS = text(
    f"""
    SELECT count(*) FILTER (WHERE NOT python) AS rows,
           count(*) FILTER (WHERE python) AS python_rows,
           coalesce(sum(p + fine + interest - discount) FILTER (WHERE NOT python), 0) AS total
    FROM ({BALANCES_SQL}) b
    """
)


@dataclass(frozen=True, slots=True)
class BalanceRow:
    installment_id: uuid.UUID
    fee_rule_version: int
    principal: Decimal
    fine: Decimal
    interest: Decimal
    discount: Decimal
    total: Decimal
    days_overdue: int
    effective_due_date: date


async def grace_arrays(
    session: AsyncSession, tenant_id: uuid.UUID, as_of: date, statuses: tuple[str, ...]
) -> dict[str, list[object]]:
    pairs = (
        await session.execute(
            _PAIRS, {"tenant": tenant_id, "statuses": list(statuses), "as_of": as_of}
        )
    ).all()
    ufs: list[object] = []
    dues: list[object] = []
    effs: list[object] = []
    for uf, due in pairs:
        eff = next_bank_business_day(due, normalize_uf(uf) if uf else None)
        if eff != due:
            ufs.append(uf)
            dues.append(due)
            effs.append(eff)
    return {"g_uf": ufs, "g_due": dues, "g_eff": effs}


async def _params(
    session: AsyncSession, tenant_id: uuid.UUID, as_of: date, statuses: tuple[str, ...]
) -> dict[str, object]:
    return {
        "tenant": tenant_id,
        "as_of": as_of,
        "statuses": list(statuses),
        **(await grace_arrays(session, tenant_id, as_of, statuses)),
    }


async def totals(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    as_of: date,
    *,
    statuses: tuple[str, ...] = COLLECTABLE,
) -> tuple[int, int, Decimal]:
    """``(rows, python_rows, total)`` computed inside Postgres: how many balances the query
    priced, how many need the Python ledger (not summed), and the sum of the priced ones."""
    row = (await session.execute(_TOTALS, await _params(session, tenant_id, as_of, statuses))).one()
    return int(row.rows), int(row.python_rows), Decimal(row.total)


async def balances(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    as_of: date,
    *,
    statuses: tuple[str, ...] = COLLECTABLE,
    batch: int = 10_000,
) -> AsyncIterator[tuple[BalanceRow | None, uuid.UUID]]:
    """Every matching installment's balance on ``as_of``, streamed.

    Yields ``(row, id)``; ``row`` is ``None`` for the installments whose balance needs the
    Python ledger (payments or correction) — fetch those with ``balance_of``.
    """
    params = await _params(session, tenant_id, as_of, statuses)
    result = await session.stream(_BALANCES, params, execution_options={"yield_per": batch})
    async for r in result:
        if r.python:
            yield None, r.id
            continue
        total = r.p + r.fine + r.interest - r.discount
        yield (
            BalanceRow(
                installment_id=r.id,
                fee_rule_version=r.version,
                principal=r.p,
                fine=r.fine,
                interest=r.interest,
                discount=r.discount,
                total=total,
                days_overdue=r.days,
                effective_due_date=r.eff,
            ),
            r.id,
        )
