"""The job registry: every job Quita can run, by its stable dotted name.

A job is an ``async def fn(ctx: JobContext, **kwargs)``.  Its arguments are JSON values (ids,
not objects) stored in the outbox row; the job reloads what it needs, is idempotent, and treats
"already done" as success (DESIGN.md §3 rule 3).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from shared.config import QUEUES


@dataclass(slots=True)
class JobContext:
    """What a running job knows about itself.  ``session`` belongs to the job (the edge)."""

    session: AsyncSession
    job_id: int
    actor: str
    tenant_id: uuid.UUID | None
    attempt: int
    correlation_id: str | None


# ``async def fn(ctx: JobContext, *, ...) -> None``; keyword arguments are JSON values.
JobFn = Callable[..., Awaitable[None]]


@dataclass(frozen=True, slots=True)
class JobSpec:
    name: str
    queue: str
    fn: JobFn
    max_attempts: int
    min_backoff_s: float
    max_backoff_s: float
    time_limit_ms: int | None

    def backoff_seconds(self, attempts: int) -> float:
        """Exponential backoff after ``attempts`` failures, capped."""
        return float(min(self.max_backoff_s, self.min_backoff_s * 2 ** max(0, attempts - 1)))


class RetryLater(Exception):
    """Raised by a job that must wait (rate limit, provider Retry-After) without failing."""

    def __init__(self, delay_s: float, reason: str = "retry later") -> None:
        super().__init__(reason)
        self.delay_s = delay_s
        self.reason = reason


class UnknownJob(LookupError):
    pass


REGISTRY: dict[str, JobSpec] = {}


def job(
    name: str,
    *,
    queue: str = "default",
    max_attempts: int = 10,
    min_backoff_s: float = 2.0,
    max_backoff_s: float = 3600.0,
    time_limit_ms: int | None = None,
) -> Callable[[JobFn], JobSpec]:
    """Register ``fn`` as the job ``name`` on ``queue``."""
    if queue not in QUEUES:
        raise ValueError(f"unknown queue {queue!r}; queues are {QUEUES}")

    def register(fn: JobFn) -> JobSpec:
        existing = REGISTRY.get(name)
        if existing is not None and _identity(existing.fn) != _identity(fn):
            raise ValueError(f"job {name!r} is already registered by {existing.fn.__name__}")
        spec = JobSpec(name, queue, fn, max_attempts, min_backoff_s, max_backoff_s, time_limit_ms)
        REGISTRY[name] = spec
        return spec

    return register


def _identity(fn: JobFn) -> tuple[str, str]:
    return (getattr(fn, "__module__", ""), getattr(fn, "__qualname__", fn.__name__))


def get_job(name: str) -> JobSpec:
    if name not in REGISTRY:
        # Every job lives in a module ``shared.tasks`` imports; a process that has not loaded it
        # yet (the CLI seeding demo data, a script) gets it now rather than a false "unknown".
        import shared.tasks  # noqa: F401
    try:
        return REGISTRY[name]
    except KeyError:
        raise UnknownJob(f"no job named {name!r} is registered") from None
