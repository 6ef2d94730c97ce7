"""Data subjects' requests (LGPD art. 18): recorded when the customer asks, tracked against the
legal deadline, fulfilled with the dossier — whose digest is kept as the proof of what was
handed over.  Only access requests for now: the answer is the customer's own data, complete,
within 15 days of the request (art. 19 II)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

import msgspec
from sqlalchemy import select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from shared.domains.audit.service import Actor, record_by
from shared.errors import Conflict, NotFound
from shared.models import Customer, DataRequest, DataRequestStatus
from shared.pagination import decode_time_id, encode_cursor

ACCESS_DEADLINE = timedelta(days=15)


class DataRequestIn(msgspec.Struct, forbid_unknown_fields=True):
    """An access request the customer made: how it came in, and when (default now)."""

    received_via: Literal[
        "whatsapp", "sms", "email", "phone", "letter", "procon", "in_person", "other"
    ] = "other"
    received_at: datetime | None = None
    notes: Annotated[str, msgspec.Meta(max_length=2000)] | None = None


class DataRequestOut(msgspec.Struct):
    id: uuid.UUID
    customer_id: uuid.UUID
    kind: str
    status: str
    received_via: str | None
    notes: str | None
    received_at: datetime
    due_at: datetime
    overdue: bool
    fulfilled_at: datetime | None
    export_sha256: str | None


class DataRequestPage(msgspec.Struct):
    items: list[DataRequestOut]
    next_cursor: str | None


class AlreadyFulfilled(Conflict):
    code = "already_fulfilled"
    title = "The request was fulfilled already"


def out(r: DataRequest, now: datetime) -> DataRequestOut:
    return DataRequestOut(
        id=r.id,
        customer_id=r.customer_id,
        kind=r.kind,
        status=r.status,
        received_via=r.received_via,
        notes=r.notes,
        received_at=r.received_at,
        due_at=r.due_at,
        overdue=r.status == DataRequestStatus.OPEN and now > r.due_at,
        fulfilled_at=r.fulfilled_at,
        export_sha256=r.export_sha256,
    )


async def _audit(
    session: AsyncSession, actor: Actor, action: str, r: DataRequest, **data: Any
) -> None:
    await record_by(
        session,
        actor,
        action,
        tenant_id=r.tenant_id,
        subject=("data_request", r.id),
        data={"customer_id": str(r.customer_id), **data},
    )


async def create(
    session: AsyncSession,
    customer: Customer,
    data: DataRequestIn,
    actor: Actor,
    now: datetime,
    *,
    user_id: uuid.UUID | None = None,
) -> DataRequest:
    received = min(data.received_at or now, now)
    row = DataRequest(
        tenant_id=customer.tenant_id,
        customer_id=customer.id,
        kind="access",
        status=DataRequestStatus.OPEN,
        received_via=data.received_via,
        notes=data.notes,
        received_at=received,
        due_at=received + ACCESS_DEADLINE,
        created_by=user_id,
    )
    session.add(row)
    await session.flush()
    await _audit(session, actor, "data_request.received", row, due_at=row.due_at.isoformat())
    return row


async def find(session: AsyncSession, tenant_id: uuid.UUID, request_id: uuid.UUID) -> DataRequest:
    row = await session.scalar(
        select(DataRequest)
        .where(DataRequest.tenant_id == tenant_id, DataRequest.id == request_id)
        .with_for_update()
    )
    if row is None:
        raise NotFound("No data request of yours has this id.")
    return row


async def fulfil(
    session: AsyncSession, row: DataRequest, export_sha256: str, actor: Actor, now: datetime
) -> DataRequest:
    """Mark ``row`` answered with the export whose digest is ``export_sha256``."""
    if row.status == DataRequestStatus.FULFILLED:
        raise AlreadyFulfilled(f"it was answered on {row.fulfilled_at:%Y-%m-%d}")
    row.status, row.fulfilled_at, row.export_sha256 = (
        DataRequestStatus.FULFILLED,
        now,
        export_sha256,
    )
    await session.flush()
    await _audit(
        session,
        actor,
        "data_request.fulfilled",
        row,
        export_sha256=export_sha256,
        late=now > row.due_at,
    )
    return row


async def page(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    now: datetime,
    *,
    status: str | None,
    customer_id: uuid.UUID | None,
    cursor: str | None,
    limit: int,
) -> DataRequestPage:
    """The tenant's requests, the closest deadline first."""
    stmt = select(DataRequest).where(DataRequest.tenant_id == tenant_id)
    if status is not None:
        stmt = stmt.where(DataRequest.status == status)
    if customer_id is not None:
        stmt = stmt.where(DataRequest.customer_id == customer_id)
    if cursor:
        stmt = stmt.where(tuple_(DataRequest.due_at, DataRequest.id) > decode_time_id(cursor))
    rows = list(
        await session.scalars(stmt.order_by(DataRequest.due_at, DataRequest.id).limit(limit + 1))
    )
    more = len(rows) > limit
    rows = rows[:limit]
    return DataRequestPage(
        items=[out(r, now) for r in rows],
        next_cursor=encode_cursor(rows[-1].due_at.isoformat(), str(rows[-1].id)) if more else None,
    )
