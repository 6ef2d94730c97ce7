"""Outbound webhooks as the retailer's system sees them: signed requests that verify with the
``standardwebhooks`` library, only the types it asked for, every event once and in order after
an outage, retries that end, and an endpoint that is gone or keeps failing turned off."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from shared.domains import events
from shared.domains.events import delivery, endpoints, schemas
from shared.domains.events import tasks as event_tasks
from shared.models import (
    AuditEvent,
    DeliveryState,
    EndpointStatus,
    Installment,
    OutboxJob,
    TenantEvent,
    WebhookDelivery,
    WebhookEndpoint,
)
from shared.tenancy import SYSTEM, use_scope
from tests.shared.domains.events.conftest import OWNER, Receiver, Shop, time_passes

Jobs = Callable[[], Awaitable[list[Any]]]
T0 = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def _verified(secret: str, request: Any) -> dict[str, Any]:
    payload: dict[str, Any] = Webhook(secret).verify(request.body, request.headers)
    return payload


async def _emit(shop: Shop, n: int, type: str = "attempt.status_changed") -> list[str]:
    ids = []
    for i in range(n):
        event_id = await events.emit(
            shop.session, shop.tenant_id, type, {"n": i}, T0 + timedelta(seconds=i)
        )
        ids.append(str(event_id))
    return ids


async def test_a_settled_installment_reaches_the_receiver_signed(
    shop: Shop, receiver: Receiver, run_jobs: Jobs, ids: Any
) -> None:
    from shared.domains.portfolio import payments, schemas
    from tests.support.identity import principal_for_party

    _, secret = await shop.endpoint(receiver.url)
    customer = await shop.customer()
    inst = Installment(
        tenant_id=shop.tenant_id,
        customer_id=customer.id,
        external_id="PARC-1",
        principal=Decimal("150.00"),
        due_date=T0.date() + timedelta(days=10),
    )
    shop.session.add(inst)
    await shop.session.flush()
    principal = await principal_for_party(shop.party, ids)
    paid = schemas.PaymentIn(
        external_id="PIX-1",
        installment_external_id="PARC-1",
        amount=Decimal("150.00"),
        paid_at=datetime.now(UTC) - timedelta(minutes=1),
        method="pix",
    )
    await payments.record_payment(shop.session, principal, paid, OWNER)
    await run_jobs()

    [request] = receiver.requests
    body = _verified(secret, request)
    assert body["type"] == "installment.settled"
    data = body["data"]
    assert data["installment_external_id"] == "PARC-1"
    assert data["customer_external_id"] == customer.external_id
    assert Decimal(data["amount_paid"]) == Decimal("150.00")
    assert data["payment"]["external_id"] == "PIX-1"
    assert "Cliente" not in request.body.decode()  # no names in events
    with pytest.raises(WebhookVerificationError):
        Webhook("whsec_" + "A" * 43).verify(request.body, request.headers)


async def test_an_endpoint_down_for_an_hour_gets_every_event_afterwards_in_order_once(
    shop: Shop, receiver: Receiver, run_jobs: Jobs, session: AsyncSession
) -> None:
    _, secret = await shop.endpoint(receiver.url)
    receiver.status = 503
    sent = await _emit(shop, 5)
    await run_jobs()
    for _ in range(6):  # an hour of retries, ten minutes at a time
        await time_passes(session, timedelta(minutes=10))
        await run_jobs()
    failed = [r.headers["webhook-id"] for r in receiver.requests]
    assert failed and set(failed) == {sent[0]}  # only the first in line was ever tried

    receiver.status = 200
    await time_passes(session, timedelta(hours=1))
    await run_jobs()

    got = [r.headers["webhook-id"] for r in receiver.accepted]
    assert got == sent
    assert [_verified(secret, r)["data"]["n"] for r in receiver.accepted] == [0, 1, 2, 3, 4]
    states = await session.scalars(select(WebhookDelivery.state))
    assert set(states) == {DeliveryState.DELIVERED}


async def test_retries_wait_longer_each_time(
    shop: Shop, receiver: Receiver, run_jobs: Jobs, session: AsyncSession
) -> None:
    await shop.endpoint(receiver.url)
    receiver.status = 500
    await _emit(shop, 1)
    waits = []
    for _ in range(4):
        await run_jobs()
        row = await session.scalar(
            select(WebhookDelivery).execution_options(populate_existing=True)
        )
        assert row is not None and row.state == DeliveryState.FAILED
        assert row.last_status == 500 and row.last_error == "HTTP 500"
        waits.append(row.next_attempt_at - row.last_attempt_at)  # type: ignore[operator]
        await time_passes(session, waits[-1])
    assert waits == sorted(waits) and waits[0] >= timedelta(seconds=30)
    assert len(receiver.requests) == 4


async def test_the_previous_secret_signs_too_while_the_rotation_overlaps(
    shop: Shop, receiver: Receiver, run_jobs: Jobs, session: AsyncSession
) -> None:
    endpoint, old = await shop.endpoint(receiver.url)
    endpoint, new = await endpoints.rotate_secret(session, endpoint, timedelta(hours=24), OWNER)
    assert new != old
    await _emit(shop, 1)
    await run_jobs()
    [during] = receiver.requests
    assert len(during.headers["webhook-signature"].split(" ")) == 2
    _verified(old, during)
    _verified(new, during)

    endpoint.previous_secret_expires_at = datetime.now(UTC) - timedelta(seconds=1)
    await session.flush()
    await _emit(shop, 1)
    await run_jobs()
    after = receiver.requests[-1]
    _verified(new, after)
    with pytest.raises(WebhookVerificationError):
        _verified(old, after)


async def test_an_endpoint_receives_only_the_types_it_asked_for(
    shop: Shop, receiver: Receiver, run_jobs: Jobs, session: AsyncSession
) -> None:
    picky, _ = await shop.endpoint(receiver.url + "/picky", ["customer.opted_out"])
    everything, _ = await shop.endpoint(receiver.url + "/all")
    await _emit(shop, 1, "attempt.status_changed")
    await _emit(shop, 1, "customer.opted_out")
    await run_jobs()

    to_picky = await session.scalars(
        select(TenantEvent.type)
        .join(WebhookDelivery, WebhookDelivery.event_id == TenantEvent.id)
        .where(WebhookDelivery.endpoint_id == picky.id)
    )
    to_all = await session.scalars(
        select(TenantEvent.type)
        .join(WebhookDelivery, WebhookDelivery.event_id == TenantEvent.id)
        .where(WebhookDelivery.endpoint_id == everything.id)
    )
    assert list(to_picky) == ["customer.opted_out"]
    assert sorted(to_all) == ["attempt.status_changed", "customer.opted_out"]
    types = sorted(json.loads(r.body)["type"] for r in receiver.accepted)
    assert types == ["attempt.status_changed", "customer.opted_out", "customer.opted_out"]


async def test_an_endpoint_that_answers_410_gone_is_disabled(
    shop: Shop, receiver: Receiver, run_jobs: Jobs, session: AsyncSession
) -> None:
    endpoint, _ = await shop.endpoint(receiver.url)
    receiver.status = 410
    await _emit(shop, 2)
    await run_jobs()
    await session.refresh(endpoint)
    assert endpoint.status == EndpointStatus.DISABLED
    assert endpoint.disabled_reason == "the endpoint answered 410 Gone"
    assert len(receiver.requests) == 1
    audit = await session.scalar(
        select(AuditEvent).where(AuditEvent.action == "webhook_endpoint.disabled")
    )
    assert audit is not None and audit.data["reason"] == "gone"

    # events while disabled are not queued for it; turned back on, what waited goes, in order
    await _emit(shop, 1)
    receiver.status = 200
    await endpoints.update_endpoint(session, endpoint, schemas.EndpointUpdate(enabled=True), OWNER)
    await run_jobs()
    assert [json.loads(r.body)["data"]["n"] for r in receiver.accepted] == [0, 1]


async def test_a_delivery_is_given_up_after_about_three_days_and_the_endpoint_disabled(
    shop: Shop, receiver: Receiver, run_jobs: Jobs, session: AsyncSession
) -> None:
    schedule = sum(delivery.SCHEDULE, timedelta())
    assert timedelta(days=2.5) <= schedule <= timedelta(days=3.5)
    endpoint, _ = await shop.endpoint(receiver.url)
    receiver.status = 503
    first, second = await _emit(shop, 2)
    await run_jobs()
    for _ in delivery.SCHEDULE:
        await time_passes(session, timedelta(hours=12))
        await run_jobs()

    rows = {
        str(d.event_id): d
        for d in await session.scalars(
            select(WebhookDelivery).execution_options(populate_existing=True)
        )
    }
    assert rows[first].state == DeliveryState.DEAD
    assert rows[first].attempts == len(delivery.SCHEDULE) + 1
    assert rows[second].attempts == 0 and rows[second].state == DeliveryState.PENDING
    await session.refresh(endpoint)
    assert endpoint.status == EndpointStatus.DISABLED
    assert endpoint.disabled_reason == "deliveries kept failing"
    assert len(receiver.requests) == len(delivery.SCHEDULE) + 1


async def test_a_replay_sends_the_same_event_again_with_the_same_webhook_id(
    shop: Shop, receiver: Receiver, run_jobs: Jobs, session: AsyncSession
) -> None:
    endpoint, secret = await shop.endpoint(receiver.url)
    [sent] = await _emit(shop, 1)
    await run_jobs()
    first = await session.scalar(select(WebhookDelivery))
    assert first is not None
    again = await endpoints.replay_delivery(session, endpoint, first.id, OWNER)
    assert again.queued == 1
    await run_jobs()

    assert [r.headers["webhook-id"] for r in receiver.accepted] == [sent, sent]
    _verified(secret, receiver.accepted[1])
    log = await endpoints.deliveries(session, endpoint, states=[], cursor=None, limit=10)
    assert sorted(d.replay for d in log.items) == [False, True]
    assert {d.state for d in log.items} == {"delivered"}


async def test_replay_since_sends_what_the_endpoint_missed(
    shop: Shop, receiver: Receiver, run_jobs: Jobs, session: AsyncSession
) -> None:
    endpoint, _ = await shop.endpoint(receiver.url)
    await endpoints.update_endpoint(session, endpoint, schemas.EndpointUpdate(enabled=False), OWNER)
    missed = await _emit(shop, 3)  # while it was off
    await endpoints.update_endpoint(session, endpoint, schemas.EndpointUpdate(enabled=True), OWNER)
    await run_jobs()
    assert receiver.requests == []

    out = await endpoints.replay_since(session, endpoint, T0 + timedelta(seconds=1), OWNER)
    assert out.queued == 2
    await run_jobs()
    assert [r.headers["webhook-id"] for r in receiver.accepted] == missed[1:]


async def test_an_event_of_a_rolled_back_transaction_is_never_sent(
    shop: Shop, receiver: Receiver, run_jobs: Jobs, session: AsyncSession
) -> None:
    await shop.endpoint(receiver.url)
    with pytest.raises(RuntimeError):
        async with session.begin_nested():
            await _emit(shop, 1)
            raise RuntimeError("the change that caused it failed")
    await run_jobs()
    assert receiver.requests == []
    assert await session.scalar(select(func.count(TenantEvent.id))) == 0


async def test_emitting_with_no_endpoint_writes_the_event_and_no_job(
    shop: Shop, session: AsyncSession
) -> None:
    await _emit(shop, 1)
    assert await session.scalar(select(func.count(TenantEvent.id))) == 1
    jobs = await session.scalar(
        select(func.count(OutboxJob.id)).where(OutboxJob.actor == "events.deliver")
    )
    assert jobs == 0


async def test_one_job_per_endpoint_sends_its_whole_queue(
    shop: Shop, receiver: Receiver, session: AsyncSession, sessionmaker: Any
) -> None:
    endpoint, _ = await shop.endpoint(receiver.url)
    await _emit(shop, 3)
    async with sessionmaker() as s:
        from shared.tenancy import tenant_scope

        await use_scope(s, tenant_scope(shop.tenant_id))
        sent = await delivery.run_endpoint(s, endpoint.id)
        await s.commit()
    assert sent == 3 and len(receiver.requests) == 3


async def test_the_safety_net_requeues_an_endpoint_whose_job_was_lost(
    shop: Shop, receiver: Receiver, run_jobs: Jobs, session: AsyncSession
) -> None:
    await shop.endpoint(receiver.url)
    await _emit(shop, 1)
    await session.execute(update(OutboxJob).values(failed_at=func.now()))  # the job is lost
    await session.execute(
        text("UPDATE webhook_deliveries SET next_attempt_at = now() - interval '10 minutes'")
    )
    await run_jobs()
    assert receiver.requests == []

    await use_scope(session, SYSTEM)
    await event_tasks.requeue_stalled(session)
    await run_jobs()
    assert len(receiver.accepted) == 1


async def test_endpoints_of_other_tenants_hear_nothing(
    shop: Shop, receiver: Receiver, run_jobs: Jobs, session: AsyncSession, ids: Any
) -> None:
    other = await ids.party("Outra Loja")
    await use_scope(session, SYSTEM)
    data = schemas.EndpointIn(url=receiver.url)
    await endpoints.create(session, other.tenant.id, data, OWNER)
    await _emit(shop, 2)
    await run_jobs()
    assert receiver.requests == []
    assert await session.scalar(select(func.count(WebhookEndpoint.id))) == 1


async def test_old_events_are_forgotten_unless_a_delivery_still_waits(
    shop: Shop, receiver: Receiver, run_jobs: Jobs, session: AsyncSession
) -> None:
    await shop.endpoint(receiver.url)
    _, waiting = await _emit(shop, 2)
    await run_jobs()  # both delivered
    await session.execute(
        text("UPDATE webhook_deliveries SET state = 'failed' WHERE event_id = :e"), {"e": waiting}
    )
    await session.execute(text("UPDATE tenant_events SET created_at = now() - interval '31 days'"))
    await use_scope(session, SYSTEM)
    await event_tasks.prune(session)
    left = await session.scalars(select(TenantEvent.id))
    assert [str(e) for e in left] == [waiting]
    assert await session.scalar(select(func.count(WebhookDelivery.id))) == 1
