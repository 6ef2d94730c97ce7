"""Sending under faults, on real processes: Dramatiq workers and the relay run as subprocesses
against this test's Postgres and Redis; the sandbox and the webhooks service are served over
HTTP; the sandbox counts what it received per attempt id.

Whatever happens — a worker killed with SIGKILL mid-batch, Redis flushed mid-run, every
database connection cut, Postgres gone for seconds and back (a restart, through a proxy), a storm
of 429s, 5xx and timeouts — each attempt ends sent exactly
once (an ``unknown`` one reconciled by its status webhook, or sent again by the sweeper when
the provider's silence shows it never had it), or failed with a reason: none twice, none lost.
Two schedulers and three workers plan and send each step exactly once.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine

from services.sandbox.app import create_app as sandbox_app
from services.sandbox.state import SandboxState
from services.webhooks.app import create_app as webhooks_app
from shared.brazil.phones import whatsapp_key
from shared.config import Settings
from shared.db import SessionMaker
from shared.domains.audit.service import Actor
from shared.domains.channels import schemas, templating
from shared.domains.channels import service as channels
from shared.domains.channels.defaults import DEFAULTS
from shared.domains.collections.planner import plan_tenant
from shared.domains.collections.tasks import sweep_attempts
from shared.models import (
    ContactAttempt,
    Customer,
    CustomerPhone,
    Installment,
    MessageTemplate,
    TemplateStatus,
)
from shared.tenancy import SYSTEM, use_scope
from tests.conftest import run_lifespan
from tests.support.identity import Identities
from tests.support.serve import serve
from tests.support.tcp_proxy import TcpProxy

pytestmark = pytest.mark.committed

BIN = Path(sys.executable).parent
NOW = datetime(2026, 11, 23, 13, 0, tzinfo=UTC)  # Monday 10:00 in São Paulo: the window is open
PHONE_ID, WABA_ID, TOKEN, SECRET = "5511000099", "5511000098", "tok-99", "sec-99"
FINAL = {"sent", "delivered", "read", "failed", "skipped", "cancelled"}


class Rig:
    """The sandbox and the webhooks service on real ports, a retailer with ``n`` debtors whose
    reminders are planned, and worker/relay/scheduler subprocesses started on demand."""

    def __init__(self, maker: SessionMaker, settings: Settings, redis: aioredis.Redis) -> None:
        self.maker, self.settings, self.redis = maker, settings, redis
        self.procs: list[subprocess.Popen[bytes]] = []
        self.sandbox_url = self.hooks_url = ""
        self.tenant_id: Any = None
        self.database_url = settings.database_url  # the processes' (a proxy's, to cut it)

    def env(self, **extra: str) -> dict[str, str]:
        s = self.settings
        return {
            **os.environ,
            "QUITA_ENV": "test",
            "QUITA_DATABASE_URL": self.database_url,
            "QUITA_DATABASE_APP_URL": "",  # the app role's DSN follows QUITA_DATABASE_URL
            "QUITA_REDIS_URL": s.redis_url,
            "QUITA_QUEUE_NAMESPACE": s.queue_namespace,
            "QUITA_FIXED_NOW": NOW.isoformat(),
            "QUITA_WHATSAPP_GRAPH_URL": self.sandbox_url,
            "QUITA_RELAY_POLL_SECONDS": "0.05",
            "QUITA_RELAY_SWEEP_SECONDS": "1",
            "QUITA_RELAY_SWEEP_GRACE_SECONDS": "1",
            "QUITA_QUEUE_HEARTBEAT_TIMEOUT_MS": "3000",
            "QUITA_QUEUE_MAINTENANCE_CHANCE": "1000000",
            "QUITA_LOG_LEVEL": "WARNING",
            **extra,
        }

    def start(self, *argv: str, **env: str) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            [str(BIN / "quita"), *argv],
            env=self.env(**env),
            start_new_session=True,  # its own process group: SIGKILL reaches its children
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.procs.append(proc)
        return proc

    def worker(self, **env: str) -> subprocess.Popen[bytes]:
        return self.start("worker", "--processes", "1", "--threads", "4", **env)

    @staticmethod
    def kill(proc: subprocess.Popen[bytes], sig: int = signal.SIGKILL) -> None:
        try:
            os.killpg(proc.pid, sig)
            proc.wait(timeout=5)
        except ProcessLookupError:
            return
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                self.kill(proc, signal.SIGTERM)

    async def debtors(self, n: int, *, plan: bool = True) -> None:
        async with self.maker() as session:
            ids = Identities(session, self.settings)
            party = await ids.party("Loja Resiliente")
            await use_scope(session, SYSTEM)
            self.tenant_id = party.tenant.id
            await channels.create(
                session,
                party.tenant.id,
                schemas.WhatsAppIn(
                    name="WhatsApp",
                    phone_number_id=PHONE_ID,
                    waba_id=WABA_ID,
                    display_number="+55 11 0000-0099",
                    access_token=TOKEN,
                    app_secret=SECRET,
                    verify_token="v-99",
                ),
                Actor("cli", None),
            )
            await session.execute(
                update(MessageTemplate)
                .where(MessageTemplate.tenant_id == party.tenant.id)
                .values(status=TemplateStatus.APPROVED)
            )
            due = NOW.date() + timedelta(days=3)
            for i in range(n):
                phone = f"+55119{87000000 + i:08d}"
                customer = Customer(
                    tenant_id=party.tenant.id,
                    external_id=f"C-{i}",
                    name=f"Cliente {i}",
                    state="SP",
                    city="São Paulo",
                )
                session.add(customer)
                await session.flush()
                session.add_all(
                    [
                        CustomerPhone(
                            tenant_id=party.tenant.id,
                            customer_id=customer.id,
                            number=phone,
                            position=0,
                            wa_key=whatsapp_key(phone),
                        ),
                        Installment(
                            tenant_id=party.tenant.id,
                            customer_id=customer.id,
                            external_id=f"P-{i}",
                            principal=100 + i,
                            due_date=due,
                        ),
                    ]
                )
            if plan:
                await session.flush()
                await plan_tenant(session, party.tenant.id, NOW)
            await session.commit()

    async def sandbox_counts(self, client: httpx.AsyncClient) -> Counter[str]:
        activity = (await client.get(f"/_sandbox/whatsapp/numbers/{PHONE_ID}")).json()
        return Counter(m["biz_opaque_callback_data"] for m in activity["sent"])

    async def attempts(self) -> list[ContactAttempt]:
        async with self.maker() as session:
            await use_scope(session, SYSTEM)
            return list(
                await session.scalars(
                    select(ContactAttempt).where(ContactAttempt.tenant_id == self.tenant_id)
                )
            )

    async def wait_sent(self, client: httpx.AsyncClient, at_least: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while sum((await self.sandbox_counts(client)).values()) < at_least:
            if time.monotonic() > deadline:
                raise AssertionError(f"fewer than {at_least} sends in {timeout} s")
            await asyncio.sleep(0.1)

    async def settle(self, timeout: float = 120) -> list[ContactAttempt]:
        """Wait until every attempt is final, running the sweeper where its periodic run would
        move things on: a ``queued`` or ``sending`` attempt no job will move (a quarter of an
        hour on), and ``unknown`` ones the provider never received — once nothing has moved for
        a while, the sweeper half an hour on sends them again on the evidence of the later
        messages delivered meanwhile.  Both in the database's time, which stamps ``sending_at``
        (and ``planned_for`` of a deferred attempt); the fixed clock is days behind it."""
        deadline = time.monotonic() + timeout
        swept = resent = False
        last: Counter[str] = Counter()
        quiet_since = time.monotonic()
        while True:
            rows = await self.attempts()
            open_ = [a for a in rows if a.state not in FINAL]
            if not open_:
                return rows
            if time.monotonic() > deadline:
                still = Counter(a.state for a in open_)
                raise AssertionError(f"attempts still open: {dict(still)}")
            states = Counter(a.state for a in rows)
            if states != last:
                last, quiet_since = states, time.monotonic()
            stuck = [a for a in open_ if a.state in ("sending", "queued")]
            if stuck and not swept and time.monotonic() > deadline - timeout * 0.6:
                await self.sweep(datetime.now(UTC) + timedelta(minutes=15))
                swept = True
            if (
                not resent
                and all(a.state == "unknown" for a in open_)
                and time.monotonic() - quiet_since > 15
            ):
                await self.sweep(datetime.now(UTC) + timedelta(minutes=45))
                resent = True
            await asyncio.sleep(0.3)

    async def sweep(self, now: datetime) -> None:
        async with self.maker() as session:
            await use_scope(session, SYSTEM)
            await sweep_attempts(session, now)
            await session.commit()


def check(rows: list[ContactAttempt], counts: Counter[str]) -> Counter[str]:
    """None twice, none lost: the invariants of every fault test.  The final states, counted."""
    for attempt in rows:
        sends = counts.get(f"attempt:{attempt.id}", 0)
        assert sends <= 1, f"attempt {attempt.id} reached the provider {sends} times"
        if attempt.state in ("sent", "delivered", "read"):
            assert sends == 1, f"attempt {attempt.id} is {attempt.state} but was never received"
        elif attempt.state == "failed":
            assert sends == 0 and attempt.reason, f"attempt {attempt.id} failed without a reason"
        else:
            raise AssertionError(f"attempt {attempt.id} ended {attempt.state}")
    return Counter(a.state for a in rows)


def outcomes(rows: list[ContactAttempt]) -> Counter[tuple[str, str | None]]:
    return Counter((a.state, a.reason) for a in rows)


@pytest.fixture
async def rig(
    committed: SessionMaker, settings: Settings, redis: aioredis.Redis
) -> AsyncIterator[tuple[Rig, httpx.AsyncClient]]:
    rig = Rig(committed, settings, redis)
    async with AsyncExitStack() as stack:
        hooks = webhooks_app(settings, sessionmaker=committed, redis=redis)
        await stack.enter_async_context(run_lifespan(hooks))
        rig.hooks_url = await stack.enter_async_context(serve(hooks))
        box = sandbox_app(settings, sessionmaker=committed, redis=redis, whatsapp=SandboxState(11))
        await stack.enter_async_context(run_lifespan(box))
        rig.sandbox_url = await stack.enter_async_context(serve(box))
        client = await stack.enter_async_context(
            httpx.AsyncClient(base_url=rig.sandbox_url, timeout=30)
        )
        registered = await client.post(
            "/_sandbox/whatsapp/numbers",
            json={
                "phone_number_id": PHONE_ID,
                "waba_id": WABA_ID,
                "display_phone_number": "551100000099",
                "access_token": TOKEN,
                "app_secret": SECRET,
                "webhook_url": f"{rig.hooks_url}/whatsapp",
                "sent_delay_ms": 20,
                "delivered_delay_ms": 60,
                "read_delay_ms": 5000,
                # Meta retries a webhook for days; here: for about a minute and a half
                "webhook_retries": 10,
                "webhook_retry_base_ms": 100,
            },
        )
        assert registered.status_code == 201, registered.text
        approved = [
            {"name": d.name, "body": templating.compile_body(d.body).text} for d in DEFAULTS
        ]
        await client.post(f"/_sandbox/whatsapp/wabas/{WABA_ID}", json={"templates": approved})
        try:
            yield rig, client
        finally:
            rig.stop_all()


async def test_a_worker_killed_mid_batch_sends_nothing_twice_and_loses_nothing(
    rig: tuple[Rig, httpx.AsyncClient],
) -> None:
    r, sandbox = rig
    await r.debtors(60)
    r.start("relay")
    first = r.worker()
    await r.wait_sent(sandbox, 15, timeout=60)

    r.kill(first)  # SIGKILL: no shutdown, messages in flight, maybe mid-call
    r.worker()
    rows = await r.settle()

    # one killed between committing "sending" and its request leaving was sent again, once
    states = check(rows, await r.sandbox_counts(sandbox))
    assert states["failed"] == 0 and len(rows) == 60, outcomes(rows)


async def test_flushing_redis_mid_run_loses_no_reminder(
    rig: tuple[Rig, httpx.AsyncClient], redis: aioredis.Redis
) -> None:
    r, sandbox = rig
    await r.debtors(60)
    r.start("relay")
    r.worker()
    await r.wait_sent(sandbox, 10, timeout=60)

    await redis.flushdb()  # queues, in-flight messages and rate buckets: all gone
    rows = await r.settle()

    states = check(rows, await r.sandbox_counts(sandbox))
    assert states["failed"] == 0 and len(rows) == 60, outcomes(rows)


async def test_cutting_every_database_connection_mid_run_loses_no_reminder(
    rig: tuple[Rig, httpx.AsyncClient], admin_engine: AsyncEngine, settings: Settings
) -> None:
    r, sandbox = rig
    await r.debtors(60)
    r.start("relay")
    r.worker()
    await r.wait_sent(sandbox, 10, timeout=60)

    async with admin_engine.connect() as conn:  # what a Postgres restart does to clients
        await conn.execute(
            text(
                """SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                   WHERE datname = current_database() AND pid <> pg_backend_pid()
                     AND usename = :role"""
            ),
            {"role": settings.database_app_role},
        )
    rows = await r.settle()

    states = check(rows, await r.sandbox_counts(sandbox))
    assert states["failed"] == 0 and len(rows) == 60, outcomes(rows)


async def test_a_postgres_restart_loses_no_reminder(
    rig: tuple[Rig, httpx.AsyncClient], settings: Settings
) -> None:
    """Postgres goes away mid-run — every connection of the worker and the relay reset, new
    ones refused for a few seconds — and comes back on the same address."""
    r, sandbox = rig
    postgres = TcpProxy.before_database(settings.database_url)
    await postgres.start()
    try:
        r.database_url = postgres.url()
        await r.debtors(60)
        r.start("relay")
        r.worker()
        await r.wait_sent(sandbox, 10, timeout=60)

        await postgres.down()
        await asyncio.sleep(4)
        await postgres.start()
        rows = await r.settle()
    finally:
        r.stop_all()
        await postgres.down()

    states = check(rows, await r.sandbox_counts(sandbox))
    assert states["failed"] == 0 and len(rows) == 60, outcomes(rows)


async def test_a_storm_of_429_5xx_and_timeouts_ends_each_attempt_once(
    rig: tuple[Rig, httpx.AsyncClient],
) -> None:
    r, sandbox = rig
    await r.debtors(60)
    faults = await sandbox.post(
        f"/_sandbox/whatsapp/numbers/{PHONE_ID}/faults",
        json={
            "errors": [
                {"code": 130429, "probability": 0.25},
                {"code": 131000, "probability": 0.15},
                {"code": 131016, "probability": 0.1},
            ],
            "latency_ms": 0,
        },
    )
    assert faults.status_code == 200, faults.text
    r.start("relay")
    r.worker(QUITA_WHATSAPP_TIMEOUT_S="2")
    await r.wait_sent(sandbox, 10, timeout=60)
    # then a stretch where the sandbox answers slower than the client waits: timeouts
    await sandbox.post(
        f"/_sandbox/whatsapp/numbers/{PHONE_ID}/faults", json={"errors": [], "latency_ms": 2500}
    )
    await asyncio.sleep(4)
    await sandbox.post(
        f"/_sandbox/whatsapp/numbers/{PHONE_ID}/faults", json={"errors": [], "latency_ms": 0}
    )
    rows = await r.settle(timeout=150)

    states = check(rows, await r.sandbox_counts(sandbox))
    assert states["sent"] + states["delivered"] + states["read"] >= 50, outcomes(rows)
    assert any(a.tries > 1 for a in rows)  # refusals were retried ...
    assert any(a.reason == "maybe_sent" for a in rows)  # ... and timeouts reconciled by webhook


async def test_two_schedulers_and_three_workers_plan_and_send_each_step_once(
    rig: tuple[Rig, httpx.AsyncClient],
) -> None:
    r, sandbox = rig
    await r.debtors(40, plan=False)
    r.start("relay")
    for _ in range(3):
        r.worker()
    r.start("scheduler")
    r.start("scheduler")
    deadline = time.monotonic() + 60
    while len(await r.attempts()) < 40:
        assert time.monotonic() < deadline, "the schedulers planned nothing"
        await asyncio.sleep(0.3)
    rows = await r.settle()

    states = check(rows, await r.sandbox_counts(sandbox))
    assert len(rows) == 40 and states["failed"] == 0
    customers = Counter(a.customer_id for a in rows)
    assert set(customers.values()) == {1}  # one régua message per customer: planned once
