"""One planning tick over a large portfolio: how long the collection planner takes to decide
today's messages for every retailer.

Loads 100 retailers (each made by the identity service, so each has the default régua, fee rule
and templates, plus a WhatsApp and an SMS channel) with 1,000,000 open installments of 400,000
customers with phones, some tagged.  50,000 installments are due for a step today (offsets -3, 0,
+1 and +5 in equal shares; a quarter of those customers have two installments due the same day,
so their reminders are consolidated).  The portfolio is in a steady state: every step that came
before today already has its attempt, as the earlier ticks would have written them under the
default caps (so today's +1 reminders meet the weekly cap of 3: the default régua's -3, -1 and 0
went out in the four days before), and 100,000 more installments inside the planner's date range
have nothing due today.  The rest fall due in the future or are older than the look-back.

The tick plans each tenant in its own transaction under its tenant scope, as the
``collections.plan`` job does, two at a time (two cores).  A second tick must plan nothing.  The
ceiling is one ``SELECT count(*)`` of the same candidate join over every tenant.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.common import bench_settings, ratio_line
from shared.brazil.phones import whatsapp_key
from shared.config import Settings, libpq_dsn, redis_url_with_db
from shared.db import create_engine, create_sessionmaker
from shared.domains.collections.planner import LOOK_BACK_DAYS, PlanResult, plan_tenant
from shared.tenancy import SYSTEM, tenant_scope, use_scope

REDIS_DB = 13
TENANTS = 100
INSTALLMENTS_PER_TENANT = 10_000
CUSTOMERS_PER_TENANT = 4_000
DUE_CUSTOMERS = 400  # per tenant: the first 100 have two installments due the same day
PAIRED = 100
COVERED = 1_000  # per tenant: inside the planner's range, every reached step already covered
OFFSETS = (-3, 0, 1, 5)  # today's step, by customer
COVERED_DAYS = (2, -2, -3, -4, -7, -10, -20, -40)  # due date - today: no step falls today
WEEKLY_CAP = 3  # the default collection settings
CONCURRENCY = 2
ZONE = ZoneInfo("America/Sao_Paulo")  # the tenants' default time zone
_UFS = ("SP", "RJ", "MG", "BA", "PR", "RS", "PE", "CE", "SC", "GO", "PA", "AM", "DF", "ES")
_DDD = {
    "SP": 11,
    "RJ": 21,
    "MG": 31,
    "BA": 71,
    "PR": 41,
    "RS": 51,
    "PE": 81,
    "CE": 85,
    "SC": 48,
    "GO": 62,
    "PA": 91,
    "AM": 92,
    "DF": 61,
    "ES": 27,
}


@dataclass(frozen=True, slots=True)
class Retailer:
    id: uuid.UUID
    steps: dict[int, uuid.UUID]  # offset → step id of the default régua
    cadence_id: uuid.UUID


def planner_settings(name: str) -> Settings:
    """A fresh ``quita_bench_<name>`` database; Redis db 13, which no other bench uses."""
    settings = bench_settings(name)
    return settings.model_copy(
        update={"redis_url": redis_url_with_db(settings.redis_url, REDIS_DB)}
    )


# --- retailers through the services -----------------------------------------------------------


async def create_retailers(
    settings: Settings, count: int, *, phone_number_id: Any = None, waba_id: Any = None
) -> list[Retailer]:
    """``count`` retailers made as the product makes them: the identity service (default régua,
    fee rule, templates), then a WhatsApp and an SMS channel.  ``phone_number_id(n)`` and
    ``waba_id(n)`` name each one's WhatsApp number (unique by default)."""
    from shared.domains.audit.service import Actor
    from shared.domains.channels import schemas
    from shared.domains.channels import service as channels
    from shared.domains.identity import schemas as identity_schemas
    from shared.domains.identity import service as identity

    actor = Actor("cli", None)
    engine = create_engine(settings, process="bench")
    try:
        async with create_sessionmaker(engine)() as session:
            await use_scope(session, SYSTEM)
            ids = []
            for n in range(count):
                tenant = await identity.create_tenant(
                    session,
                    identity_schemas.TenantCreate(name=f"Loja Bench {n:03d}", kind="retailer"),
                    actor,
                )
                number = phone_number_id(n) if phone_number_id else f"5511400{n:05d}"
                await channels.create(
                    session,
                    tenant.id,
                    schemas.WhatsAppIn(
                        name="WhatsApp",
                        phone_number_id=number,
                        waba_id=waba_id(n) if waba_id else f"9{n:05d}",
                        display_number=f"+55 11 4{n:03d}-0000",
                        access_token=f"bench-token-{n}",
                        app_secret=f"bench-secret-{n}",
                        verify_token="v",  # noqa: S106  (a bench tenant)
                    ),
                    actor,
                )
                await channels.create(
                    session,
                    tenant.id,
                    schemas.SmsIn(
                        name="SMS",
                        account_sid=f"AC{n:032d}",
                        auth_token="t",  # noqa: S106
                        from_number=f"+55119400{n:05d}",
                    ),
                    actor,
                )
                ids.append(tenant.id)
            await session.commit()
            rows = await session.execute(
                text(
                    """SELECT s.tenant_id, s.offset_days, s.id, s.cadence_id
                       FROM cadence_steps s JOIN cadences k ON k.id = s.cadence_id
                       WHERE k.is_default AND k.kind = 'regua'"""
                )
            )
            steps: dict[uuid.UUID, dict[int, uuid.UUID]] = {}
            cadence: dict[uuid.UUID, uuid.UUID] = {}
            for tenant_id, offset, step_id, cadence_id in rows:
                steps.setdefault(tenant_id, {})[offset] = step_id
                cadence[tenant_id] = cadence_id
    finally:
        await engine.dispose()
    return [Retailer(t, steps[t], cadence[t]) for t in ids]


# --- the portfolio, by COPY as the owner ------------------------------------------------------


@dataclass
class Portfolio:
    """Rows for ``COPY``, built per tenant."""

    customers: list[tuple[Any, ...]] = field(default_factory=list)
    phones: list[tuple[Any, ...]] = field(default_factory=list)
    installments: list[tuple[Any, ...]] = field(default_factory=list)
    attempts: list[tuple[Any, ...]] = field(default_factory=list)
    items: list[tuple[Any, ...]] = field(default_factory=list)
    due_today: int = 0

    def clear(self) -> None:
        for rows in (self.customers, self.phones, self.installments, self.attempts, self.items):
            rows.clear()


CUSTOMER_COLUMNS = ("id", "tenant_id", "external_id", "name", "state", "city", "tags")
PHONE_COLUMNS = ("id", "tenant_id", "customer_id", "number", "position", "wa_key")
INSTALLMENT_COLUMNS = (
    "id",
    "tenant_id",
    "customer_id",
    "external_id",
    "contract",
    "number",
    "count",
    "principal",
    "due_date",
)
ATTEMPT_COLUMNS = (
    "id",
    "tenant_id",
    "customer_id",
    "kind",
    "cadence_id",
    "step_id",
    "offset_days",
    "channel",
    "fallback_channel",
    "recipient",
    "state",
    "reason",
    "contact_day",
    "planned_for",
    "sent_at",
)
ITEM_COLUMNS = ("attempt_id", "installment_id", "tenant_id", "step_id")


def phone_of(tenant_index: int, customer: int, uf: str) -> str:
    """A unique mobile per customer, with the DDD of its state."""
    return f"+55{_DDD[uf]}9{tenant_index:02d}{customer:06d}"[:14]


def _history(
    out: Portfolio,
    retailer: Retailer,
    customer: uuid.UUID,
    phone: str,
    installments: list[uuid.UUID],
    due: date,
    today: date,
) -> None:
    """The attempts the earlier ticks wrote for the steps before today: sent, or held by the
    weekly cap as the planner would have decided."""
    sent_days: list[date] = []
    for offset in sorted(retailer.steps):
        day = due + timedelta(days=offset)
        if not today - timedelta(days=LOOK_BACK_DAYS) < day < today:
            continue
        held = sum(1 for d in sent_days if d > day - timedelta(days=7)) >= WEEKLY_CAP
        if not held:
            sent_days.append(day)
        at = datetime.combine(day, datetime.min.time(), ZONE).replace(hour=10)
        attempt = uuid.uuid4()
        step = retailer.steps[offset]
        out.attempts.append(
            (
                attempt,
                retailer.id,
                customer,
                "regua",
                retailer.cadence_id,
                step,
                offset,
                "whatsapp",
                "sms",
                phone,
                "skipped" if held else "sent",
                "weekly_cap" if held else None,
                day,
                at,
                None if held else at,
            )
        )
        out.items.extend((attempt, i, retailer.id, step) for i in installments)


def build_tenant(
    out: Portfolio, index: int, retailer: Retailer, today: date, rng: random.Random
) -> None:
    """One retailer's customers, phones, installments and attempt history."""
    customers = [uuid.uuid4() for _ in range(CUSTOMERS_PER_TENANT)]
    phones: list[str] = []
    for c, cid in enumerate(customers):
        uf = _UFS[c % len(_UFS)]
        tags = ["vip"] if c % 10 == 3 else ["loja_centro"] if c % 7 == 2 else []
        out.customers.append(
            (cid, retailer.id, f"C{c:06d}", f"Cliente {index}-{c}", uf, None, tags)
        )
        phone = phone_of(index, c, uf)
        phones.append(phone)
        out.phones.append((uuid.uuid4(), retailer.id, cid, phone, 0, whatsapp_key(phone)))
    serial = 0

    def installment(c: int, due: date) -> uuid.UUID:
        nonlocal serial
        serial += 1
        iid = uuid.uuid4()
        principal = Decimal(rng.randrange(5_000, 90_000)) / 100
        out.installments.append(
            (iid, retailer.id, customers[c], f"P{serial:07d}", f"K{c:06d}", 1, 1, principal, due)
        )
        return iid

    for c in range(DUE_CUSTOMERS):
        due = today - timedelta(days=OFFSETS[c % len(OFFSETS)])
        ids = [installment(c, due) for _ in range(2 if c < PAIRED else 1)]
        out.due_today += len(ids)
        _history(out, retailer, customers[c], phones[c], ids, due, today)
    for k in range(COVERED):
        c = DUE_CUSTOMERS + k
        due = today + timedelta(days=COVERED_DAYS[k % len(COVERED_DAYS)])
        _history(out, retailer, customers[c], phones[c], [installment(c, due)], due, today)
    rest = INSTALLMENTS_PER_TENANT - serial
    for k in range(rest):
        if k % 5 == 0:  # long overdue, past the look-back
            due = today - timedelta(days=47 + rng.randrange(0, 700))
        else:
            due = today + timedelta(days=4 + rng.randrange(0, 700))
        installment(k % CUSTOMERS_PER_TENANT, due)


async def load_portfolio(
    settings: Settings, retailers: list[Retailer], today: date, builder: Any = build_tenant
) -> int:
    """COPY every retailer's rows as the owner; returns how many installments are due today."""
    rng = random.Random(11)
    conn = await asyncpg.connect(libpq_dsn(settings.admin_dsn))
    due_today = 0
    try:
        try:
            await conn.execute("SET session_replication_role = replica")
        except asyncpg.InsufficientPrivilegeError:
            pass  # not a superuser: COPY checks every foreign key, slower but the same rows
        out = Portfolio()
        for index, retailer in enumerate(retailers):
            builder(out, index, retailer, today, rng)
            if len(out.installments) >= 100_000 or index == len(retailers) - 1:
                await _copy(conn, out)
                due_today += out.due_today
                out = Portfolio()
        await conn.execute(
            "ANALYZE customers; ANALYZE customer_phones; ANALYZE installments;"
            " ANALYZE contact_attempts; ANALYZE contact_attempt_items; ANALYZE cadences;"
            " ANALYZE cadence_steps"
        )
    finally:
        await conn.close()
    return due_today


async def _copy(conn: asyncpg.Connection, out: Portfolio) -> None:
    """COPY the batch; the rows are consistent by construction, so where the owner may, the
    foreign-key triggers are skipped (``session_replication_role = replica``)."""
    for table, rows, columns in (
        ("customers", out.customers, CUSTOMER_COLUMNS),
        ("customer_phones", out.phones, PHONE_COLUMNS),
        ("installments", out.installments, INSTALLMENT_COLUMNS),
        ("contact_attempts", out.attempts, ATTEMPT_COLUMNS),
        ("contact_attempt_items", out.items, ITEM_COLUMNS),
    ):
        if rows:
            await conn.copy_records_to_table(table, records=rows, columns=columns)


# --- the tick ---------------------------------------------------------------------------------


async def plan_all(
    engine: AsyncEngine, tenants: list[uuid.UUID], now: datetime, concurrency: int
) -> tuple[float, list[PlanResult]]:
    """Plan every tenant as the ``collections.plan`` job does (own transaction, tenant scope),
    ``concurrency`` at a time; returns the wall time and each tenant's result."""
    maker = create_sessionmaker(engine)
    gate = asyncio.Semaphore(concurrency)

    async def one(tenant_id: uuid.UUID) -> PlanResult:
        async with gate, maker() as session:
            await use_scope(session, tenant_scope(tenant_id))
            result = await plan_tenant(session, tenant_id, now)
            await session.commit()
            return result

    started = time.perf_counter()
    results = await asyncio.gather(*(one(t) for t in tenants))
    return time.perf_counter() - started, list(results)


_CEILING = """
    SELECT sum(n) FROM tenants t CROSS JOIN LATERAL (
    SELECT count(*) AS n
    FROM installments i
    JOIN customers c ON c.id = i.customer_id
    JOIN cadence_steps s ON s.cadence_id = COALESCE(
        c.cadence_id,
        (SELECT k.id FROM cadences k
          WHERE k.tenant_id = t.id AND k.kind = 'regua' AND k.active AND NOT k.is_default
            AND k.tags_any && c.tags
          ORDER BY k.priority, k.name LIMIT 1),
        (SELECT k.id FROM cadences k
          WHERE k.tenant_id = t.id AND k.kind = 'regua' AND k.is_default AND k.active))
    WHERE i.tenant_id = t.id
      AND i.status IN ('open', 'partially_paid')
      AND i.due_date BETWEEN :first_due AND :last_due
      AND i.due_date + CAST(s.offset_days AS integer) <= :today
      AND i.due_date + CAST(s.offset_days AS integer) > :oldest
      AND NOT EXISTS (SELECT 1 FROM contact_attempt_items x
                      WHERE x.installment_id = i.id AND x.step_id = s.id)) per_tenant
    WHERE t.id = ANY(:tenants)
"""


async def count_candidates(
    engine: AsyncEngine, tenants: list[uuid.UUID], today: date
) -> tuple[float, int]:
    """The ceiling: the planner's candidate join, counted in one statement for every tenant
    (per tenant, as the planner's index range; as the app role, system scope)."""
    oldest = today - timedelta(days=LOOK_BACK_DAYS)
    params = {
        "tenants": tenants,
        "today": today,
        "oldest": oldest,
        "first_due": oldest - timedelta(days=15),
        "last_due": today + timedelta(days=3),
    }
    async with create_sessionmaker(engine)() as session:
        await use_scope(session, SYSTEM)
        started = time.perf_counter()
        found = int((await session.execute(text(_CEILING), params)).scalar_one())
        elapsed = time.perf_counter() - started
        await session.rollback()
    return elapsed, found


async def _vacuum(settings: Settings) -> None:
    """Freshly copied rows get their hint bits written by whoever reads them first: a real
    portfolio's rows are long settled, so settle these before timing anything."""
    conn = await asyncpg.connect(libpq_dsn(settings.admin_dsn))
    try:
        await conn.execute("VACUUM (ANALYZE) installments, customers, contact_attempt_items")
    finally:
        await conn.close()


async def _counts(engine: AsyncEngine) -> tuple[int, int]:
    async with create_sessionmaker(engine)() as session:
        await use_scope(session, SYSTEM)
        row = (
            await session.execute(
                text(
                    """SELECT (SELECT count(*) FROM contact_attempts),
                              (SELECT count(*) FROM outbox WHERE actor = 'collections.send')"""
                )
            )
        ).one()
        await session.rollback()
    return int(row[0]), int(row[1])


def _sum(results: list[PlanResult]) -> tuple[int, dict[str, int]]:
    planned, skipped = 0, dict[str, int]()
    for r in results:
        planned += r.planned
        for reason, n in r.skipped.items():
            skipped[reason] = skipped.get(reason, 0) + n
    return planned, skipped


async def _run(settings: Settings) -> list[str]:
    now = datetime.now(UTC)
    today = now.astimezone(ZONE).date()
    started = time.perf_counter()
    retailers = await create_retailers(settings, TENANTS)
    made_s = time.perf_counter() - started
    due_today = await load_portfolio(settings, retailers, today)
    load_s = time.perf_counter() - started
    await _vacuum(settings)
    tenants = [r.id for r in retailers]
    engine = create_engine(settings, process="bench")
    try:
        await count_candidates(engine, tenants, today)  # warm the caches as the tick finds them
        ceiling_s, candidates = await count_candidates(engine, tenants, today)
        attempts_before, _ = await _counts(engine)
        plan_s, results = await plan_all(engine, tenants, now, CONCURRENCY)
        attempts_after, jobs = await _counts(engine)
        again_s, again = await plan_all(engine, tenants, now, CONCURRENCY)
        attempts_again, jobs_again = await _counts(engine)
    finally:
        await engine.dispose()
    planned, skipped = _sum(results)
    replanned, reskipped = _sum(again)
    assert replanned == 0 and not reskipped and attempts_again == attempts_after, (again, skipped)
    written = attempts_after - attempts_before
    reasons = ", ".join(f"{k} {v:,}" for k, v in sorted(skipped.items())) or "none"
    return [
        f"loaded {TENANTS} retailers ({made_s:.1f}s through the services), "
        f"{TENANTS * INSTALLMENTS_PER_TENANT:,} installments, "
        f"{TENANTS * CUSTOMERS_PER_TENANT:,} customers, {attempts_before:,} past attempts "
        f"in {load_s:.1f}s; {due_today:,} installments due for a step today",
        ratio_line(
            f"planner tick ({TENANTS} tenants, {CONCURRENCY} at a time)",
            candidates / plan_s,
            candidates / ceiling_s,
            "cand/s",
        ),
        f"  planning {plan_s:.2f}s (target <= 20 s) for {candidates:,} candidates; "
        f"ceiling: one count(*) of the candidate join {ceiling_s:.2f}s",
        f"  attempts written {written:,} ({planned:,} queued; installments held back: {reasons}); "
        f"outbox send jobs written {jobs:,}",
        f"  second tick: {replanned} attempts planned, {jobs_again - jobs} jobs, in {again_s:.2f}s",
    ]


async def drop_database(settings: Settings) -> None:
    """Drop the bench's database (the bench leaves nothing behind)."""
    admin = settings.admin_dsn
    conn = await asyncpg.connect(libpq_dsn(admin.set(database="postgres")))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{admin.database}" WITH (FORCE)')
    finally:
        await conn.close()


def run() -> list[str]:
    settings = planner_settings("planner")
    try:
        return asyncio.run(_run(settings))
    finally:
        asyncio.run(drop_database(settings))
