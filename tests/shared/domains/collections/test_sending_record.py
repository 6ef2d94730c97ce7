"""Recording what the provider answered: on the attempt as it is by then — a status webhook may
have settled it while the call was being answered — and once in the audit trail."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from shared.domains.channels import senders
from shared.domains.collections import sending
from shared.integrations.whatsapp import WhatsAppClient
from shared.models import AuditEvent, ContactAttempt
from shared.tenancy import SYSTEM, use_scope
from tests.shared.domains.collections import test_sending as sends
from tests.shared.domains.collections.test_planner import Shop
from tests.shared.domains.collections.test_sending import NOW, TODAY, _planned, _sent_at_sandbox

# the sending tests' sandbox (with its numbers and templates) and retailer
sandbox, shop = sends.sandbox, sends.shop


async def test_a_status_webhook_that_beat_the_answer_is_not_undone(
    shop: Shop,
    sandbox: httpx.AsyncClient,
    session: AsyncSession,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, attempt = await _planned(shop, TODAY + timedelta(days=3))
    deliver = sending.Prepared.deliver

    async def delivered_before_the_answer(prepared: sending.Prepared) -> senders.Sent:
        sent = await deliver(prepared)
        # the provider's "delivered" webhook is applied before the send is recorded
        await session.execute(
            update(ContactAttempt)
            .where(ContactAttempt.id == prepared.attempt.id)
            .values(state="delivered", provider_message_id=sent.provider_message_id)
        )
        return sent

    monkeypatch.setattr(sending.Prepared, "deliver", delivered_before_the_answer)

    assert await sending.send_attempt(session, attempt.id, now=NOW) == "delivered"

    (message,) = await _sent_at_sandbox(sandbox)
    row = await session.get(ContactAttempt, attempt.id)
    assert row is not None
    assert row.provider_message_id == message["id"] and row.sent_at is None
    await use_scope(session, SYSTEM)
    assert not list(
        await session.scalars(select(AuditEvent).where(AuditEvent.subject_id == str(attempt.id)))
    )


async def test_an_accepted_send_is_recorded_sent_with_the_provider_id_and_audited_once(
    shop: Shop, sandbox: httpx.AsyncClient, session: AsyncSession
) -> None:
    _, attempt = await _planned(shop, TODAY + timedelta(days=3))

    assert await sending.send_attempt(session, attempt.id, now=NOW) == "sent"

    (message,) = await _sent_at_sandbox(sandbox)
    # what the session holds is what the database holds
    held = (attempt.state, attempt.provider_message_id, attempt.sent_at, attempt.tries)
    await session.refresh(attempt)
    assert held == (attempt.state, attempt.provider_message_id, attempt.sent_at, attempt.tries)
    assert attempt.provider_message_id == message["id"] and attempt.tries == 1
    assert attempt.sent_at is not None and attempt.sending_at is not None
    await use_scope(session, SYSTEM)
    events = list(
        await session.scalars(select(AuditEvent).where(AuditEvent.subject_id == str(attempt.id)))
    )
    assert [(e.action, e.data["provider_message_id"]) for e in events] == [
        ("attempt.sent", message["id"])
    ]


def test_the_whatsapp_client_spreads_its_calls_over_its_pools_in_turn() -> None:
    client = WhatsAppClient(transport=httpx.MockTransport(lambda r: httpx.Response(200)), pools=4)

    turns = [client._pool() for _ in range(8)]

    assert len({id(pool) for pool in turns}) == 4 and turns[:4] == turns[4:]
