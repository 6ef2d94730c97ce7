"""Delivery with real commits, as the worker runs it: several runs of one endpoint at once (a
burst of events queues a job each) still send each event once, in order."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from shared.db import SessionMaker
from shared.domains import events
from shared.domains.events import endpoints, schemas
from shared.domains.identity import schemas as identity_schemas
from shared.domains.identity import service as identity
from shared.domains.identity.service import CLI_ACTOR
from shared.models import DeliveryState, OutboxJob, WebhookDelivery
from shared.queue import run_job
from shared.tenancy import SYSTEM, tenant_scope, use_scope
from tests.shared.domains.events.conftest import OWNER, Receiver

T0 = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


async def _tenant(committed: SessionMaker) -> uuid.UUID:
    async with committed() as s:
        await use_scope(s, SYSTEM)
        data = identity_schemas.TenantCreate(name="Loja Concorrente", kind="retailer")
        tenant = await identity.create_tenant(s, data, CLI_ACTOR)
        await s.commit()
        return tenant.id


async def test_concurrent_runs_of_one_endpoint_send_each_event_once_in_order(
    committed: SessionMaker, receiver: Receiver
) -> None:
    tenant_id = await _tenant(committed)
    async with committed() as s:
        await use_scope(s, tenant_scope(tenant_id))
        data = schemas.EndpointIn(url=receiver.url)
        await endpoints.create(s, tenant_id, data, OWNER)
        sent = [
            str(await events.emit(s, tenant_id, "customer.opted_out", {"n": i}, T0 + timedelta(i)))
            for i in range(8)
        ]
        await s.commit()

    async with committed() as s:
        jobs = list(
            await s.scalars(select(OutboxJob.id).where(OutboxJob.actor == "events.deliver"))
        )
    assert len(jobs) == 8  # one per event and endpoint: they race for the endpoint
    await asyncio.gather(*(run_job(committed, j) for j in jobs))

    assert [r.headers["webhook-id"] for r in receiver.requests] == sent
    async with committed() as s:
        await use_scope(s, SYSTEM)
        states = await s.scalars(select(WebhookDelivery.state))
        assert set(states) == {DeliveryState.DELIVERED}
        left = await s.scalar(select(func.count(OutboxJob.id)).where(OutboxJob.done_at.is_(None)))
        assert left == 0
