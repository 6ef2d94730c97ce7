"""Portfolio events that other domains react to.

``portfolio.installment_settled`` is written to the outbox in the transaction that settles an
installment.  Domains that must react (collections cancels pending contact attempts; events
notifies the retailer's systems) register a listener with :func:`on_settled`; each listener runs
in the job's transaction, so a failure retries the whole reaction and none is half-applied.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

import structlog

from shared.queue import JobContext, job

log = structlog.get_logger("quita.portfolio")

SettledListener = Callable[[JobContext, uuid.UUID, uuid.UUID | None], Awaitable[None]]
_settled_listeners: list[SettledListener] = []


def on_settled(listener: SettledListener) -> SettledListener:
    """Register ``listener(ctx, installment_id, payment_id)`` for settled installments."""
    _settled_listeners.append(listener)
    return listener


@job("portfolio.installment_settled", queue="default", max_attempts=10)
async def installment_settled(
    ctx: JobContext, *, installment_id: str, payment_id: str | None = None
) -> None:
    inst, pay = uuid.UUID(installment_id), uuid.UUID(payment_id) if payment_id else None
    for listener in _settled_listeners:
        await listener(ctx, inst, pay)
    log.info(
        "portfolio.installment_settled",
        installment_id=installment_id,
        listeners=len(_settled_listeners),
    )
