"""Merging staged rows into customers, their phones and installments: set-based SQL, one batch
of lines at a time.

A batch is the next ``size`` staged lines of the import, in line order.  Within a batch the last
line of a customer wins (``DISTINCT ON ... ORDER BY line DESC``); batches run in line order, so
across the file the last line wins too.  Each statement writes only what differs
(``IS DISTINCT FROM`` guards): a re-import writes nothing, moves no ``updated_at`` and records no
audit event.  Fields without a column in the file are never written on existing rows.

The batch's staged lines are deleted and the import's counters advanced in the same
transaction as the changes, so a merge interrupted between batches resumes where it stopped.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from shared.brazil.phones import whatsapp_key
from shared.domains.audit.service import Actor

# Optional customer fields an import may write; ``name`` is always in the file.
_CUSTOMER_OPTIONAL: Final = ("document", "email", "state", "city", "tags")
_INSTALLMENT_OPTIONAL: Final = (
    "contract",
    "number",
    "count",
    "principal",
    "due_date",
    "boleto_line",
    "payment_url",
    "description",
)


@dataclass(slots=True)
class BatchResult:
    rows: int = 0
    last_line: int = 0
    customers_created: int = 0
    customers_updated: int = 0
    installments_created: int = 0
    installments_updated: int = 0
    installments_unchanged: int = 0


async def next_batch(
    session: AsyncSession,
    import_id: uuid.UUID,
    size: int,
    *,
    after: int = 0,
    upto: int | None = None,
) -> tuple[int, int]:
    """``(rows, last line)`` of the next batch of staged lines after line ``after`` (and up to
    line ``upto``); ``(0, 0)`` when there is none."""
    row = (
        await session.execute(
            text(
                """SELECT count(*), coalesce(max(line), 0) FROM (
                       SELECT line FROM import_rows
                       WHERE import_id = :id AND line > :after AND line <= :upto
                       ORDER BY line LIMIT :size) b"""
            ),
            {"id": import_id, "size": size, "after": after, "upto": upto or _NO_END},
        )
    ).one()
    return int(row[0]), int(row[1])


async def merge_batch(
    session: AsyncSession,
    *,
    import_id: uuid.UUID,
    tenant_id: uuid.UUID,
    fields: frozenset[str],
    actor: Actor,
    request_id: str | None,
    size: int,
    after: int = 0,
    upto: int | None = None,
    delete: bool = True,
) -> BatchResult | None:
    """Merge the next batch of staged lines (after ``after``, up to ``upto``); ``None`` when
    nothing is left.  The batch's lines leave staging unless ``delete`` is false."""
    rows, last_line = await next_batch(session, import_id, size, after=after, upto=upto)
    if rows == 0:
        return None
    params: dict[str, Any] = {
        "import_id": import_id,
        "tenant_id": tenant_id,
        "after": after,
        "last": last_line,
    }
    result = BatchResult(rows=rows, last_line=last_line)
    created, updated = await _customers(session, params, fields)
    if "phones" in fields:
        updated |= await _phones(session, params) - created
    result.customers_created = len(created)
    result.customers_updated = len(updated)
    await _installments(session, params, fields, actor, request_id, result)
    if delete:
        await session.execute(
            text(
                "DELETE FROM import_rows"
                " WHERE import_id = :import_id AND line > :after AND line <= :last"
            ),
            params,
        )
    return result


_NO_END: Final = 2**31 - 1


# The id of the customer a staged row names: a correlated subquery, so always one lookup in
# the (tenant_id, external_id) unique index.  The merge's statements are written so that no
# plan depends on statistics: ``import_rows`` never has any (it is filled and emptied within
# minutes, and only its owner could ANALYZE it), and a fresh tenant's tables have none either.
# A jsonb map built once per statement is read through a scalar subquery (an InitPlan: one value,
# not a tuple copied for every row, as a CROSS JOIN with the CTE would).
# Lookups are correlated subqueries or ``LATERAL ... OFFSET 0`` (never flattened into a join the
# planner could turn into a rescan per row), each on the one index that can serve it (with two
# candidates, an empty table's estimates may pick the wrong one: a scan of the tenant per row);
# id sets go through ``= ANY (ARRAY(...))`` on a primary key.
_CUSTOMER_ID = """(SELECT c.id FROM customers c
                   WHERE c.tenant_id = :tenant_id
                     AND c.external_id = {alias}.customer_external_id)"""


def _batch(columns: str) -> str:
    """The batch's lines, one per customer: the last line of each."""
    return f"""SELECT DISTINCT ON (customer_external_id) customer_external_id, {columns}
               FROM import_rows
               WHERE import_id = :import_id AND line > :after AND line <= :last
               ORDER BY customer_external_id, line DESC"""


async def _customers(
    session: AsyncSession, params: dict[str, Any], fields: frozenset[str]
) -> tuple[set[uuid.UUID], set[uuid.UUID]]:
    """Upsert the batch's customers; the ids created and the ids whose fields changed."""
    written = ["name", *(f for f in _CUSTOMER_OPTIONAL if f in fields)]
    assign = ", ".join(f"{f} = EXCLUDED.{f}" for f in written)
    stored = ", ".join(f"c.{f}" for f in written)
    incoming = ", ".join(f"EXCLUDED.{f}" for f in written)
    src = _batch("name, document, email, state, city, tags")
    rows = await session.execute(
        text(
            f"""WITH src AS ({src})
                INSERT INTO customers AS c
                    (id, tenant_id, external_id, name, document, email, state, city, tags)
                SELECT gen_random_uuid(), :tenant_id, customer_external_id, name, document,
                       email, state, city, coalesce(tags, '{{}}')
                FROM src ORDER BY customer_external_id
                ON CONFLICT (tenant_id, external_id) DO UPDATE
                SET {assign}, updated_at = now()
                WHERE ROW({stored}) IS DISTINCT FROM ROW({incoming})
                RETURNING c.id, (c.xmax = 0) AS created"""
        ),
        params,
    )
    created: set[uuid.UUID] = set()
    updated: set[uuid.UUID] = set()
    for ident, was_created in rows:
        (created if was_created else updated).add(ident)
    return created, updated


async def _phones(session: AsyncSession, params: dict[str, Any]) -> set[uuid.UUID]:
    """Make each batch customer's listed numbers its active phones, in order; deactivate the
    others (never delete them).  The ids of the customers whose phones changed; their
    ``updated_at`` moves too."""
    numbers = list(
        (
            await session.execute(
                text(
                    """SELECT DISTINCT p FROM import_rows, unnest(phones) AS p
                       WHERE import_id = :import_id AND line > :after AND line <= :last"""
                ),
                params,
            )
        ).scalars()
    )
    keys = json.dumps({n: whatsapp_key(n) for n in numbers})
    src = _batch("coalesce(phones, '{}') AS phones")
    rows = await session.execute(
        text(
            f"""WITH src AS ({src}),
                cust AS MATERIALIZED (
                    SELECT {_CUSTOMER_ID.format(alias="src")} AS id, src.phones FROM src
                ),
                keys AS MATERIALIZED (SELECT CAST(:keys AS jsonb) AS map),
                wanted AS (
                    SELECT cust.id AS customer_id, p.number, (p.ord - 1)::smallint AS position
                    FROM cust
                    CROSS JOIN LATERAL unnest(cust.phones) WITH ORDINALITY AS p(number, ord)
                ),
                upserted AS (
                    INSERT INTO customer_phones AS cp
                        (id, tenant_id, customer_id, number, position, active, wa_key)
                    SELECT gen_random_uuid(), :tenant_id, w.customer_id, w.number, w.position,
                           true, (SELECT map FROM keys) ->> w.number
                    FROM wanted w
                    ORDER BY w.customer_id, w.number
                    ON CONFLICT (customer_id, number) DO UPDATE
                    SET position = EXCLUDED.position, active = true, updated_at = now()
                    WHERE (cp.position, cp.active) IS DISTINCT FROM (EXCLUDED.position, true)
                    RETURNING cp.customer_id
                ),
                retired AS (
                    UPDATE customer_phones SET active = false, updated_at = now()
                    WHERE id = ANY (ARRAY(
                        SELECT old.id FROM cust
                        CROSS JOIN LATERAL (
                            SELECT p.id FROM customer_phones p
                            WHERE p.customer_id = cust.id AND p.active
                              AND NOT (p.number = ANY (cust.phones))
                            OFFSET 0) old))
                    RETURNING customer_id
                ),
                changed AS (
                    SELECT customer_id FROM upserted UNION SELECT customer_id FROM retired
                ),
                touched AS (
                    -- rows created or updated earlier in this transaction already say now()
                    UPDATE customers SET updated_at = now()
                    WHERE id = ANY (ARRAY(SELECT customer_id FROM changed))
                      AND updated_at <> now()
                )
                SELECT customer_id FROM changed"""
        ),
        {**params, "keys": keys},
    )
    return set(rows.scalars())


_AUDIT_COLUMNS = (
    "tenant_id, actor_type, actor_id, action, subject_type, subject_id, data, request_id"
)
_AUDIT_ACTOR = "CAST(:tenant_id AS uuid), CAST(:actor_type AS text), CAST(:actor_id AS text)"
_AUDIT_SOURCE = "'source', 'import', 'import_id', CAST(:import_ref AS text)"


async def _installments(
    session: AsyncSession,
    params: dict[str, Any],
    fields: frozenset[str],
    actor: Actor,
    request_id: str | None,
    result: BatchResult,
) -> None:
    """Upsert the batch's installments by (tenant, external id) and audit, in the same
    statement, each creation and each change of amount or due date."""
    audit = {
        **params,
        "actor_type": actor.type,
        "actor_id": actor.id,
        "request_id": request_id,
        "import_ref": str(params["import_id"]),
    }
    written = ["customer_id", *(f for f in _INSTALLMENT_OPTIONAL if f in fields)]
    assign = ", ".join(f"{f} = EXCLUDED.{f}" for f in written)
    stored = ", ".join(f"i.{f}" for f in written)
    incoming = ", ".join(f"EXCLUDED.{f}" for f in written)
    row = (
        await session.execute(
            text(
                f"""WITH ids AS MATERIALIZED (
                        -- each customer looked up once, not once per installment
                        SELECT jsonb_object_agg(k.customer_external_id,
                                                {_CUSTOMER_ID.format(alias="k")}) AS map
                        FROM (SELECT DISTINCT customer_external_id FROM import_rows
                              WHERE import_id = :import_id AND line > :after AND line <= :last
                                AND external_id IS NOT NULL) k
                    ),
                    src AS MATERIALIZED (
                        SELECT r.line, r.external_id,
                               ((SELECT map FROM ids) ->> r.customer_external_id)::uuid
                                   AS customer_id,
                               r.contract, r.number, r.count, r.principal, r.due_date,
                               r.boleto_line, r.payment_url, r.description
                        FROM import_rows r
                        WHERE r.import_id = :import_id AND r.line > :after AND r.line <= :last
                          AND r.external_id IS NOT NULL
                    ),
                    up AS (
                        INSERT INTO installments AS i
                            (id, tenant_id, customer_id, external_id, contract, number, count,
                             principal, due_date, boleto_line, payment_url, description)
                        SELECT gen_random_uuid(), :tenant_id, customer_id, external_id, contract,
                               number, count, principal, due_date, boleto_line, payment_url,
                               description
                        FROM src ORDER BY external_id
                        ON CONFLICT (tenant_id, external_id) DO UPDATE
                        SET {assign}, updated_at = now()
                        WHERE ROW({stored}) IS DISTINCT FROM ROW({incoming})
                        RETURNING i.id, i.external_id, (i.xmax = 0) AS created, i.principal,
                                  i.due_date
                    ),
                    audited AS (
                        INSERT INTO audit_events ({_AUDIT_COLUMNS})
                        SELECT {_AUDIT_ACTOR},
                               CASE WHEN up.created THEN 'installment.created'
                                    ELSE 'installment.amount_changed' END,
                               'installment', up.id::text,
                               CASE WHEN up.created THEN jsonb_build_object(
                                        'external_id', up.external_id,
                                        'principal', up.principal::text,
                                        'due_date', to_char(up.due_date, 'YYYY-MM-DD'),
                                        {_AUDIT_SOURCE})
                                    ELSE jsonb_build_object(
                                        'external_id', up.external_id,
                                        'before', jsonb_build_object(
                                            'principal', b.principal::text,
                                            'due_date', to_char(b.due_date, 'YYYY-MM-DD')),
                                        'after', jsonb_build_object(
                                            'principal', up.principal::text,
                                            'due_date', to_char(up.due_date, 'YYYY-MM-DD')),
                                        {_AUDIT_SOURCE}) END,
                               CAST(:request_id AS text)
                        FROM up
                        -- Every part of the statement reads the same snapshot, so b is the row
                        -- as it was before ``up`` changed it; found by primary key (the one
                        -- index that can serve, whatever the statistics say).
                        LEFT JOIN LATERAL (
                            SELECT b.principal, b.due_date FROM installments b
                            WHERE b.id = up.id AND NOT up.created
                            OFFSET 0) b ON true
                        WHERE up.created
                           OR (b.principal, b.due_date) IS DISTINCT FROM (up.principal, up.due_date)
                        RETURNING 1
                    )
                    SELECT (SELECT count(*) FROM src),
                           (SELECT count(*) FROM up WHERE created),
                           (SELECT count(*) FROM up WHERE NOT created),
                           (SELECT count(*) FROM audited)"""
            ),
            audit,
        )
    ).one()
    total, created, updated = int(row[0]), int(row[1]), int(row[2])
    result.installments_created = created
    result.installments_updated = updated
    result.installments_unchanged = total - created - updated
