"""The outbox relay: moves due outbox rows to Dramatiq queues in Redis, and re-dispatches lost ones.

One short transaction per batch: claim due rows (``FOR UPDATE SKIP LOCKED``, so several relays
can run), push their messages to Redis in one pipeline, mark them dispatched, commit.  A crash
between the push and the commit pushes the same message again later — the job's row lock and
done mark make that harmless.  Woken by ``LISTEN quita_outbox`` (a trigger NOTIFYs on insert),
with a poll fallback.

The sweeper finds dispatched, unfinished jobs whose message is no longer in Redis (a flush, a lost
Redis, a dead-lettered message) and makes them due again.  Postgres is the source of truth.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import dramatiq
import redis.asyncio as aioredis
import structlog
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.config import Settings, libpq_dsn
from shared.models.outbox import redis_message_id

log = structlog.get_logger("quita.relay")

NOTIFY_CHANNEL = "quita_outbox"
# A job dispatched this many times without finishing is given up on (each dispatch is a delivery
# Redis lost or a worker died on); its row keeps the reason.
MAX_DISPATCHES = 25

# What a lost database or Redis raises — a restart, a failover, a connection cut mid-query (which
# SQLAlchemy wraps as ``DBAPIError``) — the relay outlives: it logs, waits, and connects again.
OUTAGES = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, DBAPIError, aioredis.RedisError)
OUTAGE_BACKOFF_MAX_S = 5.0

# Due rows are claimed oldest first, but dispatched in turns across tenants: of the oldest
# ``window`` due rows, each tenant's first job, then each one's second, and so on — so one
# retailer's tens of thousands of reminders queued at 08:00 do not delay every other
# retailer's behind them.
_CLAIM = text(
    """
    WITH candidates AS (
        SELECT id, tenant_id, not_before FROM outbox
        WHERE dispatched_at IS NULL AND done_at IS NULL AND failed_at IS NULL
          AND not_before <= now()
        ORDER BY not_before, id
        LIMIT :window
        FOR UPDATE SKIP LOCKED
    ), due AS (
        SELECT id, not_before,
               row_number() OVER (PARTITION BY tenant_id ORDER BY not_before, id) AS turn
        FROM candidates
        ORDER BY turn, not_before, id
        LIMIT :limit
    )
    UPDATE outbox o SET dispatched_at = now(), dispatch_count = o.dispatch_count + 1
    FROM due
    WHERE o.id = due.id
    RETURNING o.id, o.actor, o.queue, o.dispatch_count, o.correlation_id, o.tenant_id,
              due.turn, due.not_before
    """
)
FAIRNESS_WINDOW = 10  # the turns are dealt over this many batches' worth of the oldest due rows

_IN_FLIGHT = text(
    """
    SELECT id, queue, dispatch_count FROM outbox
    WHERE dispatched_at IS NOT NULL AND done_at IS NULL AND failed_at IS NULL
      AND dispatched_at < now() - make_interval(secs => :grace)
    ORDER BY dispatched_at
    LIMIT :limit
    FOR UPDATE SKIP LOCKED
    """
)

_REDISPATCH = text(
    """
    UPDATE outbox SET dispatched_at = NULL, not_before = now()
    WHERE id = ANY(:ids) AND dispatch_count < :max
    """
)

_GIVE_UP = text(
    """
    UPDATE outbox SET failed_at = now(),
           last_error = 'the job message was lost ' || dispatch_count || ' times'
    WHERE id = ANY(:ids) AND dispatch_count >= :max
    """
)


def queue_key(namespace: str, queue: str) -> str:
    return f"{namespace}:{queue}"


def encode_message(
    *,
    queue: str,
    actor: str,
    job_id: int,
    redis_id: str,
    correlation_id: str | None,
    tenant_id: Any,
) -> bytes:
    """The Dramatiq message for one job: the worker only needs the job id."""
    message: dramatiq.Message[Any] = dramatiq.Message(
        queue_name=queue,
        actor_name=actor,
        args=(job_id,),
        kwargs={},
        options={
            "redis_message_id": redis_id,
            "correlation_id": correlation_id,
            "tenant_id": str(tenant_id) if tenant_id else None,
        },
        message_id=redis_id,
        message_timestamp=int(time.time() * 1000),
    )
    return message.encode()


@dataclass
class Relay:
    settings: Settings
    engine: AsyncEngine
    redis: aioredis.Redis
    batch_size: int = 0
    _wake: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self.batch_size = self.batch_size or self.settings.relay_batch_size

    async def drain_once(self) -> int:
        """Dispatch up to one batch of due jobs; returns how many were dispatched."""
        ns = self.settings.queue_namespace
        async with self.engine.begin() as conn:
            rows = list(
                (
                    await conn.execute(
                        _CLAIM,
                        {"limit": self.batch_size, "window": self.batch_size * FAIRNESS_WINDOW},
                    )
                ).all()
            )
            if not rows:
                return 0
            rows.sort(key=lambda r: (r.turn, r.not_before, r.id))  # RETURNING has no order
            pipe = self.redis.pipeline(transaction=False)
            for job_id, actor, queue, dispatch_count, correlation_id, tenant_id, *_ in rows:
                rid = redis_message_id(job_id, dispatch_count)
                key = queue_key(ns, queue)
                payload = encode_message(
                    queue=queue,
                    actor=actor,
                    job_id=job_id,
                    redis_id=rid,
                    correlation_id=correlation_id,
                    tenant_id=tenant_id,
                )
                pipe.hset(f"{key}.msgs", rid, payload)
                pipe.rpush(key, rid)
            await pipe.execute()
        log.debug("relay.dispatched", count=len(rows))
        return len(rows)

    async def drain(self) -> int:
        """Dispatch every due job."""
        total = 0
        while (moved := await self.drain_once()) > 0:
            total += moved
            if moved < self.batch_size:
                break
        return total

    async def sweep_once(self, grace_s: float | None = None) -> int:
        """Make due again the dispatched, unfinished jobs whose message Redis no longer has."""
        grace = self.settings.relay_sweep_grace_seconds if grace_s is None else grace_s
        ns = self.settings.queue_namespace
        async with self.engine.begin() as conn:
            rows = (await conn.execute(_IN_FLIGHT, {"grace": grace, "limit": 5000})).all()
            if not rows:
                return 0
            pipe = self.redis.pipeline(transaction=False)
            for job_id, queue, dispatch_count in rows:
                pipe.hexists(
                    f"{queue_key(ns, queue)}.msgs", redis_message_id(job_id, dispatch_count)
                )
            present = await pipe.execute()
            lost = [row[0] for row, here in zip(rows, present, strict=True) if not here]
            if not lost:
                return 0
            await conn.execute(_GIVE_UP, {"ids": lost, "max": MAX_DISPATCHES})
            await conn.execute(_REDISPATCH, {"ids": lost, "max": MAX_DISPATCHES})
        log.warning("relay.lost_messages_redispatched", count=len(lost))
        return len(lost)

    def wake(self) -> None:
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Relay until ``stop`` is set: drain on every NOTIFY, poll as a fallback, sweep."""
        listener = asyncio.create_task(self._listen(stop))
        last_sweep = 0.0
        backoff = 0.0  # while Postgres or Redis is away: waits growing to OUTAGE_BACKOFF_MAX_S
        try:
            while not stop.is_set():
                try:
                    await self.drain()
                    if time.monotonic() - last_sweep >= self.settings.relay_sweep_seconds:
                        await self.sweep_once()
                        last_sweep = time.monotonic()
                    backoff = 0.0
                except OUTAGES as exc:
                    backoff = min(max(backoff * 2, 0.1), OUTAGE_BACKOFF_MAX_S)
                    log.warning("relay.error", error=_describe(exc), retry_in_s=backoff)
                self._wake.clear()
                waiter = asyncio.create_task(self._wake.wait())
                stopper = asyncio.create_task(stop.wait())
                await asyncio.wait(
                    {waiter, stopper} if not backoff else {stopper},
                    timeout=backoff or self.settings.relay_poll_seconds,
                    return_when=asyncio.FIRST_COMPLETED,
                )
                waiter.cancel()
                stopper.cancel()
        finally:
            listener.cancel()
            await asyncio.gather(listener, return_exceptions=True)

    async def _listen(self, stop: asyncio.Event) -> None:
        dsn = libpq_dsn(self.engine.url)
        backoff = 0.5
        while not stop.is_set():
            try:
                conn = await asyncpg.connect(dsn)
            except OUTAGES as exc:
                log.warning("relay.listen_failed", error=_describe(exc))
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10)
                continue
            backoff = 0.5
            lost = asyncio.Event()
            try:
                await conn.add_listener(NOTIFY_CHANNEL, lambda *_: self.wake())
                conn.add_termination_listener(lambda *_, ev=lost: ev.set())
                self.wake()  # catch up on anything inserted while we were not listening
                await lost.wait()
            except OUTAGES as exc:  # cut while subscribing: connect again
                log.warning("relay.listen_failed", error=_describe(exc))
            finally:
                if not conn.is_closed():
                    try:
                        await asyncio.wait_for(conn.close(), timeout=2)
                    except (*OUTAGES, TimeoutError):
                        conn.terminate()  # a broken connection: drop it


def _describe(exc: BaseException) -> str:
    """The driver's words, without the statement and parameters SQLAlchemy adds to them."""
    cause = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    return f"{type(cause).__name__}: {cause}"[:300]
