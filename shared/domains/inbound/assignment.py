"""Automatic assignment: waiting conversations handed to operators in turn.

A retailer's operators who opted in (``auto_assign``), are available and have room under their
capacity are handed the tenant's open, unassigned conversations — the most urgent first, as the
inbox lists them — each to the person whose last hand-out is the oldest (round-robin; someone
never handed one goes first).  Whoever is full or away is skipped; what nobody can take waits
for an operator to pull it (``assign-next``) or for the next hand-out.

A hand-out is the ``inbox.auto_assign`` job of one tenant, queued when a message hands a
conversation to a person, when an operator opts in or frees a place by resolving, and every
minute by the scheduler for tenants with conversations waiting and someone to take them.
Hand-outs of one tenant are serialized, and each person's places are counted under the same
per-person lock as a pull, so no place is given twice.  Agencies pull: a retailer's hand-out
goes to its own people only.
"""

from __future__ import annotations

import heapq
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import and_, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.functions import Function

from shared import clock
from shared.domains.audit.service import record
from shared.models import Conversation, ConversationState, InboxOperator, Membership, Role
from shared.queue import JobContext, enqueue, job
from shared.queue.scheduler import periodic

log = structlog.get_logger("quita.inbox.assignment")

JOB = "inbox.auto_assign"
# who works an inbox (the inbox API's roles)
ROLES = (Role.OWNER, Role.ADMIN, Role.OPERATOR)
# most urgent first, as the inbox lists them
ACTIVITY = func.coalesce(Conversation.last_inbound_at, Conversation.created_at)
URGENCY = (Conversation.priority.desc(), ACTIVITY.desc(), Conversation.id.desc())
# two hand-outs of one run are this far apart in ``last_assigned_at``, so each keeps its turn
_TURN = timedelta(microseconds=1)
_NEVER = datetime.min.replace(tzinfo=UTC)


def person_lock(user_id: uuid.UUID) -> Function[Any]:
    """The lock under which one person's places are counted and given (pulls take it too)."""
    return func.pg_advisory_xact_lock(func.hashtextextended(f"inbox:{user_id}", 0))


async def open_load(session: AsyncSession, user_ids: list[uuid.UUID]) -> dict[uuid.UUID, int]:
    """How many conversations each person has assigned and not resolved (in every tenant the
    session may see: an agency's operator works for several retailers)."""
    rows = await session.execute(
        select(Conversation.assignee_id, func.count())
        .where(
            Conversation.assignee_id.in_(user_ids),
            Conversation.state != ConversationState.RESOLVED,
        )
        .group_by(Conversation.assignee_id)
    )
    counts: dict[uuid.UUID, int] = {u: 0 for u in user_ids}
    counts.update({u: n for u, n in rows.tuples() if u is not None})
    return counts


@dataclass(order=True)
class _Taker:
    last: datetime
    user_key: str
    room: int = field(compare=False)
    operator: InboxOperator = field(compare=False)


async def _takers(session: AsyncSession, tenant_id: uuid.UUID) -> list[_Taker]:
    operators = list(
        await session.scalars(
            select(InboxOperator)
            .join(
                Membership,
                and_(
                    Membership.tenant_id == InboxOperator.tenant_id,
                    Membership.user_id == InboxOperator.user_id,
                ),
            )
            .where(
                InboxOperator.tenant_id == tenant_id,
                InboxOperator.auto_assign,
                InboxOperator.available,
                InboxOperator.capacity > 0,
                Membership.role.in_(ROLES),
            )
            .order_by(InboxOperator.user_id)
            .with_for_update(of=InboxOperator)
        )
    )
    for op in operators:  # in one order everywhere: no two hand-outs wait on each other
        await session.execute(select(person_lock(op.user_id)))
    load = await open_load(session, [op.user_id for op in operators])
    return [
        _Taker(op.last_assigned_at or _NEVER, str(op.user_id), op.capacity - load[op.user_id], op)
        for op in operators
        if op.capacity > load[op.user_id]
    ]


async def hand_out(session: AsyncSession, tenant_id: uuid.UUID, now: datetime | None = None) -> int:
    """Hand the tenant's waiting conversations to its operators in turn; how many were handed.
    The caller commits."""
    now = now or clock.now()
    await session.execute(
        select(func.pg_advisory_xact_lock(func.hashtextextended(f"inbox-auto:{tenant_id}", 0)))
    )
    takers = await _takers(session, tenant_id)
    if not takers:
        return 0
    waiting = list(
        await session.scalars(
            select(Conversation)
            .where(
                Conversation.tenant_id == tenant_id,
                Conversation.state == ConversationState.OPEN,
                Conversation.assignee_id.is_(None),
            )
            .order_by(*URGENCY)
            .limit(sum(t.room for t in takers))
            .with_for_update(skip_locked=True)
        )
    )
    heapq.heapify(takers)
    for n, conversation in enumerate(waiting):
        taker = heapq.heappop(takers)
        stamp = now + n * _TURN
        conversation.assignee_id = taker.operator.user_id
        taker.operator.last_assigned_at = stamp
        await record(
            session,
            "conversation.assigned",
            tenant_id=tenant_id,
            actor_type="system",
            actor_id=JOB,
            subject_type="conversation",
            subject_id=str(conversation.id),
            data={
                "tenant_id": str(tenant_id),
                "customer_id": str(conversation.customer_id),
                "after": taker.user_key,
                "auto": True,
            },
        )
        if taker.room > 1:
            heapq.heappush(takers, _Taker(stamp, taker.user_key, taker.room - 1, taker.operator))
    await session.flush()
    if waiting:
        log.info("inbox.handed_out", conversations=len(waiting))
    return len(waiting)


async def queue_hand_out(session: AsyncSession, tenant_id: uuid.UUID) -> None:
    """Queue a hand-out for the tenant, to run after the caller's commit — when someone of
    the tenant takes conversations automatically."""
    takes = await session.scalar(
        select(InboxOperator.id)
        .where(
            InboxOperator.tenant_id == tenant_id,
            InboxOperator.auto_assign,
            InboxOperator.available,
        )
        .limit(1)
    )
    if takes is not None:
        await enqueue(session, JOB, tenant_id=tenant_id)


@job(JOB, queue="inbound", max_attempts=5, min_backoff_s=2.0)
async def auto_assign(ctx: JobContext) -> None:
    if ctx.tenant_id is not None:
        await hand_out(ctx.session, ctx.tenant_id)


@periodic(JOB, every=timedelta(minutes=1))
async def hand_out_everywhere(session: AsyncSession) -> None:
    """Queue a hand-out for each tenant with a conversation waiting and someone who takes
    conversations automatically (a safety net: hand-outs are also queued as things happen)."""
    waiting = (
        select(Conversation.id)
        .where(
            Conversation.tenant_id == InboxOperator.tenant_id,
            Conversation.state == ConversationState.OPEN,
            Conversation.assignee_id.is_(None),
        )
        .exists()
    )
    tenants = await session.scalars(
        select(InboxOperator.tenant_id)
        .where(InboxOperator.auto_assign, InboxOperator.available, waiting)
        .distinct()
    )
    for tenant_id in tenants:
        await queue_hand_out(session, tenant_id)
