"""Writing audit events: one append-only row per thing that happened, in the caller's
transaction (so an event exists exactly when its change does)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from shared.config import get_settings
from shared.models import AuditEvent

if TYPE_CHECKING:
    from shared.tenancy import Principal


@dataclass(frozen=True, slots=True)
class Actor:
    """Who an audit event names: a user, an API client, the platform, the CLI, a provider or
    the debtor (on the payment page)."""

    type: str  # user | client | system | cli | provider | debtor
    id: str | None

    @classmethod
    def of(cls, principal: Principal) -> Actor:
        return cls(principal.kind.value, principal.subject)


def _off() -> bool:
    """Audit switched off: only a benchmark measuring what audit costs (test environment)."""
    return get_settings().bench_without_audit


def _values(
    action: str,
    *,
    tenant_id: uuid.UUID | None,
    actor_type: str,
    actor_id: str | None,
    subject_type: str | None,
    subject_id: str | None,
    data: dict[str, Any] | None,
) -> dict[str, Any]:
    return {
        "tenant_id": tenant_id,
        "actor_type": actor_type,
        "actor_id": actor_id,
        "action": action,
        "subject_type": subject_type,
        "subject_id": subject_id,
        "data": data or {},
        "request_id": structlog.contextvars.get_contextvars().get("request_id"),
    }


async def record(
    session: AsyncSession,
    action: str,
    *,
    tenant_id: uuid.UUID | None,
    actor_type: str,
    actor_id: str | None,
    subject_type: str | None = None,
    subject_id: str | None = None,
    data: dict[str, Any] | None = None,
) -> None:
    """Append one audit event (``action`` like ``"client.created"``); never secrets in ``data``."""
    if _off():
        return
    await session.execute(
        insert(AuditEvent).values(
            **_values(
                action,
                tenant_id=tenant_id,
                actor_type=actor_type,
                actor_id=actor_id,
                subject_type=subject_type,
                subject_id=subject_id,
                data=data,
            )
        )
    )


async def record_by(
    session: AsyncSession,
    actor: Actor,
    action: str,
    *,
    tenant_id: uuid.UUID | None,
    subject: tuple[str, object] | None = None,
    data: dict[str, Any] | None = None,
) -> None:
    """:func:`record` for an :class:`Actor` about a ``(type, id)`` subject."""
    await record(
        session,
        action,
        tenant_id=tenant_id,
        actor_type=actor.type,
        actor_id=actor.id,
        subject_type=subject[0] if subject else None,
        subject_id=str(subject[1]) if subject else None,
        data=data,
    )


# one event of :func:`record_many`: (action, tenant_id, (subject type, subject id), data)
EventRow = tuple[str, uuid.UUID, tuple[str, object], dict[str, Any]]


async def record_many(session: AsyncSession, actor: Actor, rows: list[EventRow]) -> None:
    """Many events of one actor in one insert: ``(action, tenant_id, (type, id), data)`` each
    (a send batch's outcomes)."""
    if not rows or _off():
        return
    await session.execute(
        insert(AuditEvent),
        [
            _values(
                action,
                tenant_id=tenant_id,
                actor_type=actor.type,
                actor_id=actor.id,
                subject_type=subject[0],
                subject_id=str(subject[1]),
                data=data,
            )
            for action, tenant_id, subject, data in rows
        ],
    )


def record_sync(
    session: Session,
    action: str,
    *,
    tenant_id: uuid.UUID | None,
    actor_type: str,
    actor_id: str | None,
    subject_type: str | None = None,
    subject_id: str | None = None,
    data: dict[str, Any] | None = None,
) -> None:
    """The same, from synchronous code running inside ``AsyncSession.run_sync`` (OAuth hooks)."""
    session.execute(
        insert(AuditEvent).values(
            **_values(
                action,
                tenant_id=tenant_id,
                actor_type=actor_type,
                actor_id=actor_id,
                subject_type=subject_type,
                subject_id=subject_id,
                data=data,
            )
        )
    )
