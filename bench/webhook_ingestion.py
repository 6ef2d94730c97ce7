"""WhatsApp webhook ingestion over real HTTP, and the inbound workers behind it.

The webhooks app (``create_app``) runs as its own server (granian, one worker, as ``quita serve
webhooks``) for one retailer made by the services, whose WhatsApp channel holds the app secret.
The same app also mounts the ceiling: a bare POST endpoint that reads the raw body, checks
``X-Hub-Signature-256`` with the channel's secret and answers 200 — no database, no journal.

This process is Meta: httpx POSTs signed status bodies (contract §5.6 (a)), with 1 and with 10
statuses each, every status a new ``wamid`` so the journal inserts every event.  For each
endpoint and body size: the maximum rate with 32 deliveries in flight (closed loop, over four
httpx clients), then the answer times when offered 50 % of that rate open loop (sends scheduled
at fixed intervals, at least 200 of them; each answer time counts from its scheduled instant, so
a stalled server cannot hide its queue).  Targets: the real endpoint's maximum events/s at least
half the bare one's, and its p99 at 50 % under 250 ms.  On two cores one httpx process cannot
saturate the bare endpoint, so the server's own CPU time per POST (its process group, from
``/proc``) is printed too: that ratio does not depend on the client.

Last, the workers: ``quita relay`` and ``quita worker`` (production defaults) start, and
``delivered`` then ``read`` statuses for 1,500 reminders sent earlier are POSTed to the real
endpoint; the rate is events processed (each attempt moved forward) per second from the first
POST until the last event is done.  The ingestion phases' own events name no reminder and are set
aside first (their jobs marked done): processing them would only ignore them.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import count
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from litestar import Request, post

from bench.common import (
    bench_settings,
    flush_redis,
    free_port,
    granian,
    ratio_line,
    venv_bin,
    wait_for,
)
from bench.pipeline_throughput import Processes
from bench.planner_throughput import CUSTOMER_COLUMNS, create_retailers, drop_database
from shared.config import Settings, libpq_dsn, redis_url_with_db
from shared.db import create_engine, create_sessionmaker
from shared.domains.collections.sending import callback_data
from shared.domains.inbound.whatsapp import SIGNATURE_HEADER, signature, signature_matches
from shared.errors import Unauthorized
from shared.tenancy import SYSTEM, use_scope

REDIS_DB = 13
PHONE_NUMBER_ID = "109551000001"
WABA_ID = "209551000001"
APP_SECRET = "bench-secret-0"  # noqa: S105  (create_retailers gives retailer 0 this one)
BARE_PATH = "/_bench/bare"
REAL_PATH = "/whatsapp"
SIZES = (1, 10)  # statuses per POST
IN_FLIGHT = 32  # Meta delivers a number's webhooks concurrently
CLIENTS = 4  # httpx clients sharing the in-flight POSTs: one pool slows down past ~8 connections
WARM_S = 1.0
SATURATE_S = 5.0
OPEN_LOOP_S = 6.0
OPEN_LOOP_MIN_POSTS = 200  # enough answers for a p99 …
OPEN_LOOP_MAX_S = 12.0  # … unless the rate is too low to get them in time
LOAD_FACTOR = 0.5
RATIO_TARGET = 0.5
P99_TARGET_MS = 250.0
REMINDERS = 1_500  # sent reminders whose delivered + read statuses the workers process
PROCESS_IN_FLIGHT = 16
PROCESS_DEADLINE_S = 45.0


# --- the server: the real app, plus the ceiling in the same app -------------------------------


@post(BARE_PATH, status_code=200, include_in_schema=False)
async def bare_ceiling(request: Request[Any, Any, Any]) -> None:
    """Only what no receiver can skip: the raw body and its signature, then 200."""
    body = await request.body()
    if not signature_matches(body, request.headers.get(SIGNATURE_HEADER), APP_SECRET):
        raise Unauthorized("The signature does not match.")


def webhooks_app() -> Any:
    """``granian --factory bench.webhook_ingestion:webhooks_app``: the webhooks service with
    the bare ceiling mounted beside its receivers."""
    from services.webhooks.app import create_app

    return create_app(extra_routes=[bare_ceiling])


# --- bodies, as Meta sends them ----------------------------------------------------------------


def status_body(items: list[tuple[str, str, str]]) -> bytes:
    """A status webhook (contract §5.6 (a)) of ``(wamid, status, callback data)`` items."""
    now = str(int(time.time()))
    statuses = [
        {
            "id": wamid,
            "status": status,
            "timestamp": now,
            "recipient_id": "5511900000000",
            "biz_opaque_callback_data": callback,
            "pricing": {
                "billable": True,
                "pricing_model": "PMP",
                "type": "regular",
                "category": "utility",
            },
        }
        for wamid, status, callback in items
    ]
    envelope = {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": WABA_ID,
                "changes": [
                    {
                        "field": "messages",
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {
                                "display_phone_number": "551140000000",
                                "phone_number_id": PHONE_NUMBER_ID,
                            },
                            "statuses": statuses,
                        },
                    }
                ],
            }
        ],
    }
    return json.dumps(envelope, separators=(",", ":")).encode()


def signed(body: bytes) -> tuple[bytes, dict[str, str]]:
    return body, {"Content-Type": "application/json", SIGNATURE_HEADER: signature(body, APP_SECRET)}


class Feed:
    """Signed bodies of ``size`` statuses, each status a new message id; built ahead of a phase
    so the client spends its time on HTTP, and on demand when the stock runs out."""

    def __init__(self, size: int, serial: count[int]) -> None:
        self.size = size
        self.serial = serial
        self.stock: deque[tuple[bytes, dict[str, str]]] = deque()
        self.taken = 0

    def build(self) -> tuple[bytes, dict[str, str]]:
        items = []
        for _ in range(self.size):
            n = next(self.serial)
            items.append((f"wamid.bench.{n:012d}", "sent", callback_data(uuid.UUID(int=n))))
        return signed(status_body(items))

    def fill(self, posts: int) -> None:
        while len(self.stock) < posts:
            self.stock.append(self.build())

    def take(self) -> tuple[bytes, dict[str, str]]:
        self.taken += 1
        return self.stock.popleft() if self.stock else self.build()


# --- load -------------------------------------------------------------------------------------


Send = Callable[[], Awaitable[None]]


class Meta:
    """The load: ``CLIENTS`` httpx clients, used in turn, each POST checked for its 200."""

    def __init__(self, base: str) -> None:
        per_client = IN_FLIGHT // CLIENTS
        limits = httpx.Limits(max_connections=per_client, max_keepalive_connections=per_client)
        self.clients = [
            httpx.AsyncClient(base_url=base, limits=limits, timeout=30) for _ in range(CLIENTS)
        ]
        self.turn = count()

    async def post(self, path: str, body: bytes, headers: dict[str, str]) -> None:
        client = self.clients[next(self.turn) % CLIENTS]
        r = await client.post(path, content=body, headers=headers)
        if r.status_code != 200:
            raise AssertionError(f"POST {path} answered {r.status_code}: {r.text[:200]}")

    def sender(self, path: str, feed: Feed) -> Send:
        async def send() -> None:
            await self.post(path, *feed.take())

        return send

    async def aclose(self) -> None:
        for client in self.clients:
            await client.aclose()


def group_cpu_s(pgid: int) -> float:
    """CPU seconds used so far by the processes of group ``pgid`` (Linux ``/proc``)."""
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # gone meanwhile
        if int(fields[2]) == pgid:
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def saturate(send: Send, seconds: float, in_flight: int) -> tuple[float, list[float]]:
    """POSTs per second with ``in_flight`` always waiting (after ``WARM_S`` not counted), and
    the answer times of the counted ones."""
    started = time.perf_counter()
    counted_from = started + WARM_S
    deadline = counted_from + seconds
    times: list[float] = []

    async def worker() -> None:
        while (now := time.perf_counter()) < deadline:
            await send()
            if now >= counted_from:
                times.append(time.perf_counter() - now)

    await asyncio.gather(*(worker() for _ in range(in_flight)))
    return len(times) / (time.perf_counter() - counted_from), times


async def open_loop(send: Send, rate: float, seconds: float) -> tuple[float, list[float]]:
    """Sends scheduled every ``1/rate`` seconds whatever the answers; returns the rate really
    offered and each answer time from its scheduled instant."""
    posts = max(1, int(rate * seconds))
    times: list[float] = []
    pending: set[asyncio.Task[None]] = set()

    async def one(at: float) -> None:
        await send()
        times.append(time.perf_counter() - at)

    start = time.perf_counter() + 0.05
    for i in range(posts):
        at = start + i / rate
        delay = at - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(one(at))
        pending.add(task)
        task.add_done_callback(pending.discard)
    offered = (posts - 1) / max(time.perf_counter() - start, 1e-9) if posts > 1 else rate
    while pending:
        await asyncio.gather(*pending)
    return offered, times


@dataclass
class Cell:
    """One endpoint at one body size."""

    endpoint: str
    size: int
    posts_s: float = 0.0
    saturated_p99_ms: float = 0.0
    offered_s: float = 0.0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    posts: int = 0
    server_cpu_ms: float = 0.0  # per POST while saturated: what the client cannot blur

    @property
    def events_s(self) -> float:
        return self.posts_s * self.size


async def measure(meta: Meta, server: int, cell: Cell, serial: count[int]) -> Cell:
    path = BARE_PATH if cell.endpoint == "bare" else REAL_PATH
    feed = Feed(cell.size, serial)
    feed.fill(12_000 // cell.size)
    send = meta.sender(path, feed)
    cpu, taken = group_cpu_s(server), feed.taken
    posts_s, busy = await saturate(send, SATURATE_S, IN_FLIGHT)
    cell.server_cpu_ms = 1000 * (group_cpu_s(server) - cpu) / (feed.taken - taken)
    cell.posts_s, cell.saturated_p99_ms = posts_s, 1000 * percentile(busy, 0.99)
    rate = LOAD_FACTOR * posts_s
    seconds = min(max(OPEN_LOOP_S, OPEN_LOOP_MIN_POSTS / rate), OPEN_LOOP_MAX_S)
    feed.fill(int(rate * seconds))
    cell.offered_s, answered = await open_loop(send, rate, seconds)
    cell.p50_ms = 1000 * percentile(answered, 0.5)
    cell.p99_ms = 1000 * percentile(answered, 0.99)
    cell.posts = feed.taken
    return cell


# --- setup ------------------------------------------------------------------------------------


async def sent_reminders(settings: Settings, tenant_id: uuid.UUID) -> list[tuple[str, str]]:
    """``REMINDERS`` reminders already sent on WhatsApp, one per customer: their message ids
    and callback data, as the send recorded them."""
    now = datetime.now(UTC)
    customers: list[tuple[Any, ...]] = []
    attempts: list[tuple[Any, ...]] = []
    out: list[tuple[str, str]] = []
    for n in range(REMINDERS):
        customer, attempt = uuid.uuid4(), uuid.uuid4()
        wamid = f"wamid.bench.sent.{attempt.hex}"
        customers.append((customer, tenant_id, f"C{n:06d}", f"Cliente {n}", "SP", "Sao Paulo", []))
        phone = f"+5511990{n:06d}"
        attempts.append(
            (attempt, tenant_id, customer, "manual", "whatsapp", phone, "sent", now.date(), now)
        )
        out.append((wamid, callback_data(attempt)))
    conn = await asyncpg.connect(libpq_dsn(settings.admin_dsn))
    try:
        await conn.copy_records_to_table("customers", records=customers, columns=CUSTOMER_COLUMNS)
        await conn.copy_records_to_table(
            "contact_attempts",
            records=attempts,
            columns=(
                "id",
                "tenant_id",
                "customer_id",
                "kind",
                "channel",
                "recipient",
                "state",
                "contact_day",
                "planned_for",
            ),
        )
        await conn.execute(
            """UPDATE contact_attempts SET sent_at = planned_for,
               provider_message_id = 'wamid.bench.sent.' || replace(id::text, '-', '')"""
        )
        await conn.execute("ANALYZE customers; ANALYZE contact_attempts")
    finally:
        await conn.close()
    return out


def _env(settings: Settings, port: int) -> dict[str, str]:
    return {
        **os.environ,
        "QUITA_ENV": "test",
        "QUITA_DATABASE_URL": settings.database_url,
        "QUITA_REDIS_URL": settings.redis_url,
        "QUITA_QUEUE_NAMESPACE": settings.queue_namespace,
        "QUITA_LOG_LEVEL": "ERROR",
        "PYTHONUNBUFFERED": "1",
    }


async def _scalar(settings: Settings, sql: str, *args: Any) -> Any:
    conn = await asyncpg.connect(libpq_dsn(settings.admin_dsn))
    try:
        return await conn.fetchval(sql, *args)
    finally:
        await conn.close()


# --- the workers ------------------------------------------------------------------------------


async def _warm_workers(settings: Settings) -> None:
    """A no-op job through outbox, relay and worker: both are up and connected."""
    import shared.tasks  # noqa: F401  (registers system.ping)
    from shared.queue import enqueue

    engine = create_engine(settings, process="bench")
    try:
        async with create_sessionmaker(engine)() as session:
            await use_scope(session, SYSTEM)
            job_id = await enqueue(session, "system.ping", note="bench warm-up")
            await session.commit()
    finally:
        await engine.dispose()

    async def done() -> bool:
        sql = "SELECT done_at IS NOT NULL FROM outbox WHERE id = $1"
        return bool(await _scalar(settings, sql, job_id))

    await wait_for(done, "the workers' warm-up job", 60)


@dataclass
class Processing:
    events: int
    done: int
    seconds: float
    posted_s: float
    done_when_posted: int
    outcomes: dict[str, int]
    attempts: dict[str, int]

    @property
    def rate(self) -> float:
        return self.done / self.seconds

    @property
    def rate_after_posts(self) -> float:
        """Once every POST is answered, the workers alone (no ingestion beside them)."""
        return (self.done - self.done_when_posted) / max(self.seconds - self.posted_s, 1e-9)


async def process_statuses(
    settings: Settings, meta: Meta, reminders: list[tuple[str, str]]
) -> Processing:
    """POST ``delivered`` then ``read`` for every reminder; wait until the workers are done."""
    mark = int(await _scalar(settings, "SELECT coalesce(max(id), 0) FROM webhook_events"))
    items = [(w, s, c) for s in ("delivered", "read") for w, c in reminders]
    bodies = deque(signed(status_body(items[i : i + 10])) for i in range(0, len(items), 10))

    async def post_some() -> None:
        while bodies:
            await meta.post(REAL_PATH, *bodies.popleft())

    started = time.perf_counter()
    await asyncio.gather(*(post_some() for _ in range(PROCESS_IN_FLIGHT)))
    posted_s = time.perf_counter() - started
    done_sql = "SELECT count(*) FROM webhook_events WHERE id > $1 AND state <> 'pending'"
    done = done_when_posted = int(await _scalar(settings, done_sql, mark))
    while time.perf_counter() - started < PROCESS_DEADLINE_S:
        done = int(await _scalar(settings, done_sql, mark))
        if done >= len(items):
            break
        await asyncio.sleep(0.2)
    elapsed = time.perf_counter() - started
    conn = await asyncpg.connect(libpq_dsn(settings.admin_dsn))
    try:
        outcomes = {
            r["state"]: r["n"]
            for r in await conn.fetch(
                "SELECT state, count(*) AS n FROM webhook_events WHERE id > $1 GROUP BY state",
                mark,
            )
        }
        attempts = {
            r["state"]: r["n"]
            for r in await conn.fetch(
                """SELECT state, count(*) AS n FROM contact_attempts
                   WHERE provider_message_id LIKE 'wamid.bench.sent.%' GROUP BY state"""
            )
        }
    finally:
        await conn.close()
    return Processing(len(items), done, elapsed, posted_s, done_when_posted, outcomes, attempts)


# --- the run ----------------------------------------------------------------------------------


def run() -> list[str]:
    settings = bench_settings("webhooks")
    settings = settings.model_copy(
        update={"redis_url": redis_url_with_db(settings.redis_url, REDIS_DB)}
    )
    port = free_port()
    procs = Processes(_env(settings, port))
    try:
        return asyncio.run(_main(settings, procs, port))
    finally:
        procs.stop_all()
        asyncio.run(flush_redis(settings))
        asyncio.run(drop_database(settings))


async def _main(settings: Settings, procs: Processes, port: int) -> list[str]:
    await flush_redis(settings)
    (retailer,) = await create_retailers(
        settings, 1, phone_number_id=lambda n: PHONE_NUMBER_ID, waba_id=lambda n: WABA_ID
    )
    reminders = await sent_reminders(settings, retailer.id)
    # its own process group
    server = procs.start(granian("bench.webhook_ingestion:webhooks_app", port)).pid
    meta = Meta(f"http://127.0.0.1:{port}")
    try:

        async def up() -> bool:
            return (await meta.clients[0].get("/health")).status_code == 200

        await wait_for(up, "the webhooks server", 30)
        serial = count(1)
        cells = []
        for size in SIZES:
            for endpoint in ("bare", "real"):
                cells.append(await measure(meta, server, Cell(endpoint, size), serial))
        real_posts = sum(c.posts for c in cells if c.endpoint == "real")
        real_events = sum(c.posts * c.size for c in cells if c.endpoint == "real")
        journaled = int(await _scalar(settings, "SELECT count(*) FROM webhook_events"))
        # the ingestion's events name no reminder (and the setup queued template submissions
        # to a provider that is not running): none of that is the workers' bench
        await _scalar(settings, "UPDATE outbox SET done_at = now() WHERE done_at IS NULL")
        procs.start([venv_bin("quita"), "relay"])
        procs.start([venv_bin("quita"), "worker"])
        await _warm_workers(settings)
        processing = await process_statuses(settings, meta, reminders)
    finally:
        await meta.aclose()
    return _report(cells, real_posts, real_events, journaled, processing)


def _report(
    cells: list[Cell], real_posts: int, real_events: int, journaled: int, p: Processing
) -> list[str]:
    lines = [
        f"  {'endpoint, statuses/POST':<24} {'max POST/s':>10} {'max ev/s':>9} {'p99 busy':>9}"
        f" {'server CPU':>12}   {'50 %: POST/s':>12} {'p50':>8} {'p99':>8}"
    ]
    for c in cells:
        lines.append(
            f"  {f'{c.endpoint}, {c.size}':<24} {c.posts_s:>10,.0f} {c.events_s:>9,.0f}"
            f" {c.saturated_p99_ms:>7.0f}ms {c.server_cpu_ms:>7.2f}ms/POST"
            f"   {c.offered_s:>12,.0f} {c.p50_ms:>6.1f}ms {c.p99_ms:>6.1f}ms"
        )
    by = {(c.endpoint, c.size): c for c in cells}
    for size in SIZES:
        real, bare = by["real", size], by["bare", size]
        ratio = real.events_s / bare.events_s
        p99_ok = "meets" if real.p99_ms < P99_TARGET_MS else "MISSES"
        cpu = bare.server_cpu_ms / real.server_cpu_ms
        lines += [
            ratio_line(f"webhooks, {size} status(es)/POST", real.events_s, bare.events_s, "ev/s")
            + f"   ({'meets' if ratio >= RATIO_TARGET else 'MISSES'} target ≥ {RATIO_TARGET})",
            f"  p99 at 50 % of max {real.p99_ms:.1f} ms (bare {bare.p99_ms:.1f} ms;"
            f" {p99_ok} target < {P99_TARGET_MS:.0f} ms); server CPU per event"
            f" {real.server_cpu_ms / size:.2f} ms (bare {bare.server_cpu_ms / size:.2f} ms,"
            f" ratio {cpu:.2f})",
        ]
    lines += [
        f"  journaled {journaled:,} events of {real_posts:,} POSTs to the real endpoint"
        f" ({real_events:,} statuses sent, each new:"
        f" {'all' if journaled == real_events else 'NOT all'} inserted)",
        f"{'inbound workers, statuses applied':<34} {p.rate:>12,.0f} ev/s"
        f"   {p.done:,} of {p.events:,} events in {p.seconds:.1f}s from the first POST"
        f" (all POSTed in {p.posted_s:.1f}s, {p.done_when_posted:,} done by then;"
        f" {p.rate_after_posts:,.0f} ev/s after)",
        f"  events {p.outcomes}; reminders {p.attempts}",
    ]
    if p.done < p.events:
        lines.append(f"  NOT FINISHED at the {PROCESS_DEADLINE_S:.0f}s deadline")
    return lines
