"""The collection pipeline end to end: from the planning tick to every reminder accepted by
WhatsApp, through the outbox, the relay, Redis and the Dramatiq workers, against the sandbox.

20 retailers, each with its own WhatsApp number in the sandbox (80 messages/s per number, as
Meta's default; templates approved) and 1,000 customers due for a reminder today (half three
days before the due date, half five days after it, with fees): 20,000 messages.  The sandbox
runs as its own server (granian, one worker); ``quita relay`` and ``quita worker`` run as
subprocesses with the production defaults (one process, 16 threads, every queue) against this
bench's database and Redis db 14, with ``QUITA_WHATSAPP_GRAPH_URL`` pointing at the sandbox.
The tick plans every tenant as the ``collections.plan`` job does; the clock runs until the
database shows every queued attempt ``sent`` — or until a deadline that keeps the bench near
five minutes, and then the rate reached so far is reported with the time all would take.

Every debtor lives where the contact window (08:00-20:00 on weekdays, 08:00-14:00 on
Saturdays, local time) is open at the run's instant.  That is now, when the window is open
somewhere in Brazil; when it is open nowhere (nights, Sundays) the run's clock is fixed at the
latest past weekday noon in São Paulo (15:00 UTC) that is no holiday — ``QUITA_FIXED_NOW`` in
the relay and the worker (they run with ``QUITA_ENV=test``), the tick planned at that instant.
Only the contact-window decisions read that clock: the rate buckets, timeouts and outbox
release run on real time, so the figures mean the same either way.

The ceiling is a bare Dramatiq actor, run by the same worker settings, that only POSTs the same
template payloads (those the engine sent, spread over the 20 numbers in turn) to the same
sandbox endpoints: 20,000 messages.  The sandbox is wrapped to count what it refused with
130429 (throughput): the engine's Redis buckets must keep every number under 80/s, so the
target is zero.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import dramatiq
import httpx
import redis.asyncio as aioredis
from sqlalchemy import text

from bench.common import (
    bench_settings,
    flush_redis,
    free_port,
    granian,
    ratio_line,
    venv_bin,
    wait_for,
)
from bench.planner_throughput import (
    ZONE,
    Portfolio,
    Retailer,
    create_retailers,
    drop_database,
    load_portfolio,
    plan_all,
)
from shared.brazil.calendar import UFS
from shared.brazil.phones import whatsapp_key
from shared.config import Settings, get_settings, libpq_dsn, redis_url_with_db
from shared.db import create_engine, create_sessionmaker
from shared.domains.collections.cadences import window_of
from shared.domains.collections.window import place_of
from shared.models.outbox import redis_message_id
from shared.queue.relay import queue_key
from shared.tenancy import SYSTEM, use_scope

ROOT = Path(__file__).resolve().parent.parent
REDIS_DB = 14
TENANTS = 20
PER_TENANT = 1_000
MESSAGES = TENANTS * PER_TENANT
CONCURRENCY = 2  # planning, as in the planner bench
# the whole bench must stay near five minutes on two cores: each side stops at its deadline
# and reports the rate reached so far
ENGINE_DEADLINE_S = 100.0
CEILING_DEADLINE_S = 150.0
WINDOW_MARGIN = timedelta(minutes=10)  # the window must stay open for the whole run
CEILING_NAMESPACE = "quita-bench-ceiling"
CEILING_ACTOR = "bench.post_template"
_DDD = {"AC": 68, "AM": 92, "RO": 69, "MT": 65, "MS": 67, "SP": 11, "RJ": 21, "BA": 71}


# --- the sandbox, counting what it refused ---------------------------------------------------


class _CountingSandbox:
    """The sandbox app, plus a count of the ``/messages`` answers by code (``200`` for an
    accepted send, else Meta's error code), readable at ``GET /_bench/answers``."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.answers: Counter[str] = Counter()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["path"] == "/_bench/answers":
            await self._reply(send, json.dumps(self.answers).encode())
            return
        if not scope["path"].endswith("/messages"):
            await self.app(scope, receive, send)
            return
        status = 0
        body = bytearray()

        async def watch(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body" and status != 200:
                body.extend(message.get("body", b""))
            await send(message)

        await self.app(scope, receive, watch)
        if status == 200:
            self.answers["200"] += 1
        else:
            try:
                code = str(json.loads(bytes(body))["error"]["code"])
            except (ValueError, KeyError, TypeError):
                code = f"http_{status}"
            self.answers[code] += 1

    @staticmethod
    async def _reply(send: Any, content: bytes) -> None:
        headers = [(b"content-type", b"application/json")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": content})


def sandbox_app() -> Any:
    """``granian --factory bench.pipeline_throughput:sandbox_app``: the sandbox, counted."""
    from services.sandbox.app import create_app

    return _CountingSandbox(create_app())


# --- the ceiling's worker ---------------------------------------------------------------------

_clients: dict[int, httpx.AsyncClient] = {}


def ceiling_broker() -> None:
    """``dramatiq bench.pipeline_throughput:ceiling_broker``: the production broker and
    middleware (no database), with one actor that only POSTs a prebuilt template message."""
    from shared.integrations.http import DEFAULT_LIMITS, DEFAULT_TIMEOUT
    from shared.queue.broker import build_broker

    settings = get_settings()
    broker = build_broker(settings, resources=False)
    dramatiq.set_broker(broker)
    base = f"{settings.whatsapp_graph_url}/{settings.whatsapp_api_version}"

    async def post_template(phone_number_id: str, token: str, body: dict[str, Any]) -> None:
        loop = id(asyncio.get_running_loop())
        client = _clients.get(loop)
        if client is None:
            client = _clients[loop] = httpx.AsyncClient(
                timeout=DEFAULT_TIMEOUT, limits=DEFAULT_LIMITS
            )
        await client.post(
            f"{base}/{phone_number_id}/messages",
            json=body,
            headers={"Authorization": f"Bearer {token}"},
        )

    dramatiq.Actor(
        post_template,  # type: ignore[arg-type]
        broker=broker,
        actor_name=CEILING_ACTOR,
        queue_name="send",
        priority=0,
        options={},
    )


# --- where the window is open -----------------------------------------------------------------


def open_states(now: datetime) -> list[str]:
    """The UFs (with a DDD here) where the lawful window is open now and for the margin."""
    window = window_of(None)
    found = []
    for uf in UFS:
        if uf not in _DDD:
            continue
        place = place_of(uf, None)
        if window.allows(now, place) and window.allows(now + WINDOW_MARGIN, place):
            found.append(uf)
    return found


def run_instant(now: datetime) -> tuple[datetime, list[str]]:
    """The run's instant and the UFs open then: ``now`` when the window is open somewhere, else
    the latest past weekday at 15:00 UTC when it is open (see the module's docstring)."""
    if states := open_states(now):
        return now, states
    day = now.date()
    for back in range(1, 15):
        instant = datetime.combine(day - timedelta(days=back), dtime(15, 0), UTC)
        if instant.weekday() < 5 and (states := open_states(instant)):
            return instant, states
    return now, []


# --- setup ------------------------------------------------------------------------------------


def phone_number_id(n: int) -> str:
    return f"10955{n:05d}"


def waba_id(n: int) -> str:
    return f"20955{n:05d}"


async def _register_numbers(base: str) -> None:
    from shared.domains.channels import templating
    from shared.domains.channels.defaults import DEFAULTS

    approved = [{"name": d.name, "body": templating.compile_body(d.body).text} for d in DEFAULTS]
    async with httpx.AsyncClient(base_url=base, timeout=10) as client:
        for n in range(TENANTS):
            r = await client.post(
                "/_sandbox/whatsapp/numbers",
                json={
                    "phone_number_id": phone_number_id(n),
                    "waba_id": waba_id(n),
                    "display_phone_number": f"55114{n:03d}0000",
                    "access_token": f"bench-token-{n}",
                    "app_secret": f"bench-secret-{n}",
                    "throughput_per_second": 80,
                },
            )
            r.raise_for_status()
            r = await client.post(
                f"/_sandbox/whatsapp/wabas/{waba_id(n)}", json={"templates": approved}
            )
            r.raise_for_status()


def _build(states: list[str], today: date) -> Callable[..., None]:
    """Per tenant: 1,000 customers in open-window states, one installment each, half due in
    three days (the friendly reminder) and half five days overdue (itemized fees)."""

    def build(out: Portfolio, index: int, retailer: Retailer, today_: date, rng: Any) -> None:
        for c in range(PER_TENANT):
            uf = states[c % len(states)]
            cid = uuid.uuid4()
            phone = f"+55{_DDD[uf]}9{index:02d}{c:06d}"
            out.customers.append((cid, retailer.id, f"C{c:06d}", f"Cliente {c}", uf, None, []))
            out.phones.append((uuid.uuid4(), retailer.id, cid, phone, 0, whatsapp_key(phone)))
            due = today + timedelta(days=3 if c % 2 == 0 else -5)
            principal = Decimal(rng.randrange(5_000, 90_000)) / 100
            out.installments.append(
                (uuid.uuid4(), retailer.id, cid, f"P{c:06d}", f"K{c:06d}", 1, 1, principal, due)
            )
            out.due_today += 1

    return build


async def _load(
    settings: Settings, retailers: list[Retailer], states: list[str], today: date
) -> None:
    await load_portfolio(settings, retailers, today, builder=_build(states, today))
    conn = await asyncpg.connect(libpq_dsn(settings.admin_dsn))
    try:
        # the numbers' templates were approved in the sandbox: the product learns it by webhook
        await conn.execute(
            "UPDATE message_templates SET status = 'APPROVED' WHERE channel_kind = 'whatsapp'"
        )
        await conn.executemany(
            """INSERT INTO pix_settings (tenant_id, key, key_type, merchant_name, city)
               VALUES ($1, '11222333000181', 'cnpj', 'Loja Bench', 'Sao Paulo')""",
            [(r.id,) for r in retailers],
        )
    finally:
        await conn.close()


# --- processes --------------------------------------------------------------------------------


class Processes:
    """Subprocesses started by the bench, each in its own process group, all stopped on exit."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.running: list[subprocess.Popen[bytes]] = []

    def start(self, argv: list[str], **env: str) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(argv, env={**self.env, **env}, cwd=ROOT, start_new_session=True)
        self.running.append(process)
        return process

    def stop(self, process: subprocess.Popen[bytes]) -> None:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        self.running.remove(process)

    def stop_all(self) -> None:
        for process in list(reversed(self.running)):
            self.stop(process)


async def _answers(base: str) -> Counter[str]:
    async with httpx.AsyncClient(timeout=10) as client:
        return Counter((await client.get(f"{base}/_bench/answers")).json())


async def _ping_worker(settings: Settings) -> None:
    """A no-op job through the outbox, relay and worker: both are up."""
    import shared.tasks  # noqa: F401  (registers system.ping)
    from shared.queue import enqueue

    engine = create_engine(settings, process="bench")
    try:
        maker = create_sessionmaker(engine)
        async with maker() as session:
            await use_scope(session, SYSTEM)
            job_id = await enqueue(session, "system.ping", note="bench warm-up")
            await session.commit()

        async def done() -> bool:
            async with maker() as session:
                await use_scope(session, SYSTEM)
                return bool(
                    await session.scalar(
                        text("SELECT done_at IS NOT NULL FROM outbox WHERE id = :id"),
                        {"id": job_id},
                    )
                )

        await wait_for(done, "the warm-up job", 60)
    finally:
        await engine.dispose()


# --- the engine -------------------------------------------------------------------------------


async def _states(engine: Any, day: date) -> Counter[str]:
    async with create_sessionmaker(engine)() as session:
        await use_scope(session, SYSTEM)
        rows = await session.execute(
            text(
                """SELECT state, count(*) FROM contact_attempts
                   WHERE contact_day = :day GROUP BY state"""
            ),
            {"day": day},
        )
        found = Counter({state: int(n) for state, n in rows})
        await session.rollback()
    return found


async def _engine_run(
    settings: Settings, tenants: list[uuid.UUID], today: date, fixed: datetime | None
) -> dict[str, Any]:
    """The tick (at ``fixed``, else now), then poll until every queued attempt is sent (or the
    deadline passes)."""
    engine = create_engine(settings, process="bench")
    try:
        now = fixed or datetime.now(UTC)
        started = time.perf_counter()
        plan_s, results = await plan_all(engine, tenants, now, CONCURRENCY)
        queued = sum(r.planned for r in results)
        sent_at_plan = (await _states(engine, today))["sent"]
        states: Counter[str] = Counter()
        while time.perf_counter() - started < ENGINE_DEADLINE_S:
            states = await _states(engine, today)
            if states["sent"] >= queued:
                break
            await asyncio.sleep(1.0)
        elapsed = time.perf_counter() - started
        async with create_sessionmaker(engine)() as session:
            await use_scope(session, SYSTEM)
            codes = Counter(
                {
                    str(code): int(n)
                    for code, n in await session.execute(
                        text(
                            """SELECT error_code, count(*) FROM contact_attempts
                               WHERE error_code IS NOT NULL GROUP BY error_code"""
                        )
                    )
                }
            )
            deferred = await session.scalar(
                text(
                    """SELECT count(*) FROM outbox WHERE actor = 'collections.send'
                       AND last_error IS NOT NULL"""
                )
            )
            await session.rollback()
    finally:
        await engine.dispose()
    return {
        "plan_s": plan_s,
        "sent_at_plan": sent_at_plan,
        "queued": queued,
        "sent": states["sent"],
        "states": states,
        "seconds": elapsed,
        "codes": codes,
        "deferred": int(deferred or 0),
    }


# --- the ceiling ------------------------------------------------------------------------------


async def _sent_payloads(base: str) -> list[tuple[str, str, dict[str, Any]]]:
    """What the engine sent, rebuilt as Graph API request bodies, spread over the 20 numbers."""
    out = []
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        for n in range(TENANTS):
            activity = (await client.get(f"/_sandbox/whatsapp/numbers/{phone_number_id(n)}")).json()
            for m in activity["sent"]:
                body = {
                    "messaging_product": "whatsapp",
                    "recipient_type": "individual",
                    "to": m["to"],
                    "type": "template",
                    "template": m["payload"]["template"],
                    "biz_opaque_callback_data": m["biz_opaque_callback_data"],
                }
                out.append((phone_number_id(n), f"bench-token-{n}", body))
    if not out:  # no payload to replay: the worker sent nothing (its stderr above tells why)
        raise RuntimeError("the engine sent nothing to the sandbox: no ceiling to measure")
    # every number in turn, as 20 tenants' queues together would; the bodies repeat when the
    # engine sent fewer than 20,000 before its deadline (all numbers share the templates)
    return [
        (phone_number_id(i % TENANTS), f"bench-token-{i % TENANTS}", out[i % len(out)][2])
        for i in range(MESSAGES)
    ]


async def _push(client: aioredis.Redis, items: list[tuple[str, str, dict[str, Any]]]) -> None:
    """Enqueue the ceiling's messages the way the relay does (HSET + RPUSH, batches of 500)."""
    key = queue_key(CEILING_NAMESPACE, "send")
    for start in range(0, len(items), 500):
        pipe = client.pipeline(transaction=False)
        for i, (number, token, body) in enumerate(items[start : start + 500], start=start):
            rid = redis_message_id(i, 1)
            message: dramatiq.Message[Any] = dramatiq.Message(
                queue_name="send",
                actor_name=CEILING_ACTOR,
                args=(number, token, body),
                kwargs={},
                options={"redis_message_id": rid},
                message_id=rid,
                message_timestamp=int(time.time() * 1000),
            )
            pipe.hset(f"{key}.msgs", rid, message.encode())
            pipe.rpush(key, rid)
        await pipe.execute()


async def _ceiling_run(
    settings: Settings, base: str, items: list[tuple[str, str, dict[str, Any]]]
) -> dict[str, Any]:
    client = aioredis.Redis.from_url(settings.redis_url)
    try:
        before = await _answers(base)
        await _push(client, items[:1])  # the worker is up once this one is answered

        async def warmed() -> bool:
            return sum((await _answers(base)).values()) > sum(before.values())

        await wait_for(warmed, "the ceiling worker's first POST", 60)
        before = await _answers(base)
        started = time.perf_counter()
        await _push(client, items)
        answers: Counter[str] = Counter()
        while time.perf_counter() - started < CEILING_DEADLINE_S:
            answers = await _answers(base) - before
            if sum(answers.values()) >= len(items):
                break
            await asyncio.sleep(1.0)
        elapsed = time.perf_counter() - started
    finally:
        await client.aclose()
    return {"seconds": elapsed, "answers": answers}


# --- the run ----------------------------------------------------------------------------------


def _env(settings: Settings, port: int, *, audit: bool = True) -> dict[str, str]:
    return {
        **os.environ,
        "QUITA_BENCH_WITHOUT_AUDIT": "false" if audit else "true",
        "QUITA_ENV": "test",
        "QUITA_DATABASE_URL": settings.database_url,
        "QUITA_REDIS_URL": settings.redis_url,
        "QUITA_QUEUE_NAMESPACE": settings.queue_namespace,
        "QUITA_SANDBOX_PORT": str(port),
        "QUITA_WHATSAPP_GRAPH_URL": f"http://127.0.0.1:{port}",
        "QUITA_SMS_API_URL": f"http://127.0.0.1:{port}",
        "QUITA_LOG_LEVEL": "ERROR",
        "PYTHONUNBUFFERED": "1",
    }


def run(*, audit: bool = True) -> list[str]:
    """The pipeline as deployed; ``audit=False`` writes no audit events (issue #7: audit may
    cost the pipeline at most 10 %; run both and compare the engine's msg/s)."""
    now = datetime.now(UTC)
    instant, states = run_instant(now)
    if not states:
        return [
            f"pipeline: not run — no weekday in the last two weeks had the window open at {now}"
        ]
    settings = bench_settings("pipeline")
    settings = settings.model_copy(
        update={"redis_url": redis_url_with_db(settings.redis_url, REDIS_DB)}
    )
    port = free_port()
    env = _env(settings, port, audit=audit)
    if instant != now:
        env["QUITA_FIXED_NOW"] = instant.isoformat()
    procs = Processes(env)
    try:
        return asyncio.run(_main(settings, states, instant, procs, port, audit=audit))
    finally:
        procs.stop_all()
        asyncio.run(flush_redis(settings))
        asyncio.run(drop_database(settings))


async def _main(
    settings: Settings,
    states: list[str],
    instant: datetime,
    procs: Processes,
    port: int,
    *,
    audit: bool = True,
) -> list[str]:
    base = f"http://127.0.0.1:{port}"
    await flush_redis(settings)
    procs.start(granian("bench.pipeline_throughput:sandbox_app", port))

    async def sandbox_up() -> bool:
        async with httpx.AsyncClient(timeout=2) as client:
            return (await client.get(f"{base}/health")).status_code == 200

    await wait_for(sandbox_up, "the sandbox", 30)
    await _register_numbers(base)
    fixed = abs(instant - datetime.now(UTC)) > timedelta(minutes=5)
    today = instant.astimezone(ZONE).date()
    retailers = await create_retailers(
        settings, TENANTS, phone_number_id=phone_number_id, waba_id=waba_id
    )
    await _load(settings, retailers, states, today)
    quita = venv_bin("quita")
    procs.start([quita, "relay"])
    worker = procs.start([quita, "worker"])
    await _ping_worker(settings)
    engine = await _engine_run(
        settings, [r.id for r in retailers], today, instant if fixed else None
    )
    engine_answers = await _answers(base)
    procs.stop(worker)
    items = await _sent_payloads(base)
    ceiling_worker = procs.start(
        [
            venv_bin("dramatiq"),
            "bench.pipeline_throughput:ceiling_broker",
            "--skip-logging",
            "--processes",
            str(settings.worker_processes),
            "--threads",
            str(settings.worker_threads),
            "--queues",
            "send",
        ],
        QUITA_QUEUE_NAMESPACE=CEILING_NAMESPACE,
    )
    ceiling = await _ceiling_run(settings, base, items)
    procs.stop(ceiling_worker)
    return _report(states, engine, engine_answers, ceiling, instant if fixed else None, audit=audit)


def _report(
    states: list[str],
    engine: dict[str, Any],
    engine_answers: Counter[str],
    ceiling: dict[str, Any],
    fixed: datetime | None,
    *,
    audit: bool = True,
) -> list[str]:
    rate = engine["sent"] / engine["seconds"]
    after_plan = (engine["sent"] - engine["sent_at_plan"]) / (engine["seconds"] - engine["plan_s"])
    answered = sum(ceiling["answers"].values())
    ceiling_rate = answered / ceiling["seconds"]
    refused = {k: v for k, v in engine_answers.items() if k != "200"}
    ceiling_refused = {k: v for k, v in ceiling["answers"].items() if k != "200"}
    finished = engine["sent"] >= engine["queued"]
    pending = {k: v for k, v in engine["states"].items() if k not in ("sent", "skipped")}
    lines = [
        f"  debtors in {', '.join(states)} (the contact window is open there "
        + (f"at the run's fixed clock, {fixed:%a %Y-%m-%d %H:%M} UTC)" if fixed else "now)"),
        ratio_line(
            f"pipeline{'' if audit else ' without audit'}, tick to sent ({TENANTS} numbers)",
            rate,
            ceiling_rate,
            "msg/s",
        ),
        f"  {engine['sent']:,} of {engine['queued']:,} queued attempts sent in"
        f" {engine['seconds']:.1f}s from the tick (planning {engine['plan_s']:.1f}s, with"
        f" {engine['sent_at_plan']:,} already sent by then; {after_plan:,.0f} msg/s after it)",
    ]
    if not finished:
        eta = engine["queued"] / max(after_plan, 0.1)
        lines.append(
            f"  NOT FINISHED at the {ENGINE_DEADLINE_S:.0f}s deadline (still {pending});"
            f" at this rate all {engine['queued']:,} would take ~{eta:,.0f}s"
        )
    lines += [
        f"  sandbox answers to the engine: {engine_answers['200']:,} accepted, refused"
        f" {refused or 'none'} (130429 target 0); attempts' error codes"
        f" {dict(engine['codes']) or 'none'}; send jobs retried {engine['deferred']:,}",
        f"  ceiling: a bare Dramatiq actor POSTing the engine's template payloads, same worker"
        f" settings: {answered:,} in {ceiling['seconds']:.1f}s, refused"
        f" {ceiling_refused or 'none'}",
    ]
    return lines
