"""Where events come from: a provider's status moving a reminder, a customer's WhatsApp reply,
an opt-out by WhatsApp or by SMS STOP — each becomes one event with ids and external ids,
never the debtor's number or words."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.domains.collections.tasks import apply_status
from shared.domains.inbound import conversations, sms
from shared.models import AttemptState, ContactAttempt, TenantEvent, WebhookEvent
from shared.tenancy import SYSTEM, tenant_scope, use_scope
from tests.shared.domains.inbound.test_conversations import MARIA, PHONE_A, WABA_A, _retailer
from tests.support.identity import Identities


async def _events(session: AsyncSession) -> list[TenantEvent]:
    await use_scope(session, SYSTEM)
    rows = await session.scalars(select(TenantEvent).order_by(TenantEvent.seq))
    return list(rows)


async def test_a_status_that_moves_a_reminder_is_an_event(
    session: AsyncSession, ids: Identities
) -> None:
    shop = await _retailer(session, ids, "Loja Status", PHONE_A, WABA_A)
    customer = await shop.customer()
    attempt = await shop.reminder(customer, "wamid.status-1")
    read_at = datetime.now(UTC).replace(microsecond=0)
    await apply_status(session, attempt, AttemptState.DELIVERED, at=read_at - timedelta(minutes=1))
    await apply_status(session, attempt, AttemptState.DELIVERED, at=read_at)  # no change: none
    await apply_status(session, attempt, AttemptState.READ, at=read_at)

    found = await _events(session)
    assert [(e.type, e.data["from"], e.data["to"]) for e in found] == [
        ("attempt.status_changed", "sent", "delivered"),
        ("attempt.status_changed", "delivered", "read"),
    ]
    assert found[1].occurred_at == read_at
    assert found[1].data["attempt_id"] == str(attempt.id)
    assert found[1].data["customer_external_id"] == customer.external_id
    assert found[1].data["channel"] == "whatsapp"


async def test_a_customers_stop_on_whatsapp_is_a_reply_and_an_opt_out(
    session: AsyncSession, ids: Identities
) -> None:
    shop = await _retailer(session, ids, "Loja Pare", PHONE_A, WABA_A)
    customer = await shop.customer()
    sent = int(datetime.now(UTC).timestamp())
    await shop.receive(
        {
            "from": MARIA.lstrip("+"),
            "id": "wamid.pare-1",
            "timestamp": str(sent),
            "type": "text",
            "text": {"body": "pare de me mandar mensagem"},
        }
    )
    event = await session.scalar(select(WebhookEvent))
    assert event is not None
    await use_scope(session, tenant_scope(shop.tenant_id))
    await conversations.on_message(session, event)

    found = {e.type: e for e in await _events(session)}
    assert set(found) == {"conversation.replied", "customer.opted_out"}
    replied, opted = found["conversation.replied"], found["customer.opted_out"]
    assert replied.data["customer_external_id"] == customer.external_id
    assert replied.data["intent"] == "opt_out" and replied.data["kind"] == "text"
    assert opted.data["source"] == "whatsapp_reply" and "whatsapp" in opted.data["channels"]
    for e in found.values():
        text: Any = str(e.data)
        assert "pare" not in text and MARIA[-8:] not in text


async def test_an_sms_stop_opts_out_once_and_says_so_once(
    session: AsyncSession, ids: Identities
) -> None:
    shop = await _retailer(session, ids, "Loja SMS", PHONE_A, WABA_A)
    customer = await shop.customer()
    await use_scope(session, tenant_scope(shop.tenant_id))
    for _ in range(2):
        await sms.opt_out_of_sms(
            session, shop.tenant_id, MARIA, source="sms_keyword", evidence={"keyword": "STOP"}
        )

    [opted] = await _events(session)
    assert opted.type == "customer.opted_out"
    assert opted.data == {
        "channels": ["sms"],
        "source": "sms_keyword",
        "customer_id": str(customer.id),
        "customer_external_id": customer.external_id,
    }


async def test_a_status_on_an_attempt_of_another_channel_names_that_channel(
    session: AsyncSession, ids: Identities
) -> None:
    shop = await _retailer(session, ids, "Loja Canal", PHONE_A, WABA_A)
    customer = await shop.customer()
    now = datetime.now(UTC)
    attempt = ContactAttempt(
        tenant_id=shop.tenant_id,
        customer_id=customer.id,
        channel="sms",
        recipient=MARIA,
        state="sent",
        contact_day=now.date(),
        planned_for=now,
        sent_at=now,
        provider_message_id="SM0001",
    )
    session.add(attempt)
    await session.flush()
    await apply_status(session, attempt, AttemptState.FAILED, at=now)
    [event] = await _events(session)
    assert event.data["channel"] == "sms" and event.data["to"] == "failed"
