"""The Dramatiq broker module: ``dramatiq services.worker.main`` (``quita worker``) loads this in
every worker process.  It configures logging, builds the broker with its explicit middleware and
declares one actor per registered job."""

from __future__ import annotations

import dramatiq

import shared.tasks  # noqa: F401  (registers every job)
from shared.config import get_settings
from shared.logging import configure_logging
from shared.queue.broker import build_broker, declare_actors

settings = get_settings()
configure_logging(settings, "worker")
broker = build_broker(settings)
dramatiq.set_broker(broker)
declare_actors(broker)
