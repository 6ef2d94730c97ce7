"""Jobs: registered by name, written to the outbox with the change that causes them, relayed to
Dramatiq queues on Redis, and run idempotently by the worker."""

from shared.queue.outbox import enqueue, enqueue_many
from shared.queue.registry import (
    REGISTRY,
    JobContext,
    JobSpec,
    RetryLater,
    UnknownJob,
    get_job,
    job,
)
from shared.queue.runner import Outcome, run_job

__all__ = [
    "REGISTRY",
    "JobContext",
    "JobSpec",
    "Outcome",
    "RetryLater",
    "UnknownJob",
    "enqueue",
    "enqueue_many",
    "get_job",
    "job",
    "run_job",
]
