"""The Dramatiq broker and the worker's middleware.

Every registered job becomes a Dramatiq actor whose body is ``run_job(job_id)``: the message is
only a pointer to its outbox row.  Database and Redis clients are created at worker boot on the
worker's own event loop and disposed on it (stack-notes §1.2).
"""

from __future__ import annotations

from typing import Any

import dramatiq
import redis
import structlog
from dramatiq.asyncio import get_event_loop_thread
from dramatiq.broker import MessageProxy
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware import (
    AsyncIO,
    CurrentMessage,
    Middleware,
    ShutdownNotifications,
    TimeLimit,
)
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.config import Settings
from shared.db import (
    SessionMaker,
    create_engine,
    create_sessionmaker,
    get_sessionmaker,
    set_default_sessionmaker,
)
from shared.db.outage import cause_of, is_outage
from shared.queue.registry import REGISTRY, JobSpec
from shared.queue.runner import run_job

log = structlog.get_logger("quita.jobs")


class DatabaseResources(Middleware):
    """Creates the worker's engine on the Dramatiq event loop at boot; disposes it there."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.engine: AsyncEngine | None = None

    def before_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        async def setup() -> None:
            self.engine = create_engine(self.settings, process="worker")
            set_default_sessionmaker(create_sessionmaker(self.engine))

        get_event_loop_thread().run_coroutine(setup())  # type: ignore[union-attr]

    def after_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        if self.engine is not None:
            get_event_loop_thread().run_coroutine(self.engine.dispose())  # type: ignore[union-attr]
            set_default_sessionmaker(None)
            self.engine = None


class LogContext(Middleware):
    """Binds the message's ids to the log context of the worker thread running it."""

    def before_process_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        structlog.contextvars.bind_contextvars(
            message_id=message.message_id,
            request_id=message.options.get("correlation_id"),
            tenant_id=message.options.get("tenant_id"),
        )

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: MessageProxy,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        structlog.contextvars.unbind_contextvars("message_id", "request_id", "tenant_id")

    def after_skip_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        structlog.contextvars.unbind_contextvars("message_id", "request_id", "tenant_id")


def build_broker(settings: Settings, *, resources: bool = True) -> RedisBroker:
    """A Redis broker with an explicit middleware list (no Dramatiq defaults)."""
    middleware: list[Middleware] = [
        ShutdownNotifications(),
        AsyncIO(),  # before the resource middleware: its shutdown runs after theirs
    ]
    if resources:
        middleware.append(DatabaseResources(settings))
    middleware += [
        LogContext(),
        TimeLimit(time_limit=settings.job_time_limit_ms),
        CurrentMessage(),
    ]
    client = redis.Redis.from_url(settings.redis_url, socket_timeout=10, socket_connect_timeout=3)
    return RedisBroker(  # type: ignore[no-untyped-call]
        client=client,
        namespace=settings.queue_namespace,
        middleware=middleware,
        dead_message_ttl=7 * 24 * 3600 * 1000,
        heartbeat_timeout=settings.queue_heartbeat_timeout_ms,
        maintenance_chance=settings.queue_maintenance_chance,
    )


async def run_message(maker: SessionMaker, job_id: int) -> None:
    """The body of every actor: the job, once.  When Postgres or Redis is away not even its
    failure can be recorded: one line instead of a traceback per message, and the relay's
    sweeper dispatches it again once they are back (the message is not in Redis any more)."""
    try:
        await run_job(maker, job_id)
    except Exception as exc:
        if not is_outage(exc):
            raise
        log.warning("job.dependency_unavailable", job_id=job_id, error=cause_of(exc))


def declare_actors(broker: dramatiq.Broker) -> None:
    """Declare one Dramatiq actor per registered job on ``broker``."""
    for spec in REGISTRY.values():
        if spec.name not in broker.actors:
            _declare(broker, spec)


def _declare(broker: dramatiq.Broker, spec: JobSpec) -> None:
    async def handle(job_id: int) -> None:
        await run_message(get_sessionmaker(), job_id)

    handle.__name__ = spec.name.replace(".", "_")
    options: dict[str, Any] = {}
    if spec.time_limit_ms is not None:
        options["time_limit"] = spec.time_limit_ms
    dramatiq.Actor(
        handle,  # type: ignore[arg-type]
        broker=broker,
        actor_name=spec.name,
        queue_name=spec.queue,
        priority=0,
        options=options,
    )
