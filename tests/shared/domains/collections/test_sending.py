"""Sending through the sandbox: the reminder leaves once with the exact amounts, a crash after
the call never leads to a second message, a payment before the send cancels it, and a number
WhatsApp cannot reach gets the SMS instead.  Messages are counted on the sandbox's side."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import redis.asyncio as aioredis
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.sandbox.app import create_app as sandbox_app
from services.sandbox.state import SandboxState
from shared.brazil.numbers import format_brl
from shared.brazil.pix import decode
from shared.domains.audit.service import Actor
from shared.domains.channels import schemas, senders, templating
from shared.domains.channels import service as channels
from shared.domains.channels.defaults import DEFAULTS
from shared.domains.collections import planner, sending
from shared.domains.collections.planner import plan_tenant
from shared.domains.collections.tasks import sweep_attempts
from shared.domains.inbound import journal
from shared.domains.inbound.whatsapp import split
from shared.domains.money.balance import balance_of
from shared.domains.negotiation import chat
from shared.domains.negotiation import service as negotiation
from shared.domains.paypage import links as paylinks
from shared.integrations.whatsapp import WhatsAppClient
from shared.models import (
    AuditEvent,
    CadenceStep,
    ContactAttempt,
    Customer,
    Installment,
    MessageTemplate,
    Offer,
    OutboxJob,
    PixSettings,
    TemplateStatus,
    Tenant,
)
from shared.queue import RetryLater
from shared.tenancy import SYSTEM, use_scope
from tests.shared.domains.collections.test_planner import Shop
from tests.support.identity import Identities

SP = ZoneInfo("America/Sao_Paulo")
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=SP)  # a Monday morning
TODAY = NOW.date()
PHONE_ID, WABA_ID, TOKEN = "5511000055", "5511000056", "tok-55"
ACCOUNT = "AC" + "55" * 16
MARIA = "+5511987650001"
ACTOR = Actor("cli", None)


@pytest.fixture
async def sandbox(
    http_client: Callable[..., Awaitable[httpx.AsyncClient]], redis: aioredis.Redis
) -> AsyncIterator[httpx.AsyncClient]:
    client = await http_client(sandbox_app, whatsapp=SandboxState(5))
    await client.post(
        "/_sandbox/whatsapp/numbers",
        json={
            "phone_number_id": PHONE_ID,
            "waba_id": WABA_ID,
            "display_phone_number": PHONE_ID,
            "access_token": TOKEN,
            "app_secret": "sec-55",
        },
    )
    approved = [{"name": d.name, "body": templating.compile_body(d.body).text} for d in DEFAULTS]
    await client.post(f"/_sandbox/whatsapp/wabas/{WABA_ID}", json={"templates": approved})
    await client.post(
        "/_sandbox/sms/accounts",
        json={"account_sid": ACCOUNT, "auth_token": "sms-55", "numbers": ["+5511940005555"]},
    )
    wa = WhatsAppClient(base_url="http://test", transport=client._transport)
    with senders.using_clients(wa, sms_transport=client._transport, redis=redis):
        yield client


@pytest.fixture
async def shop(session: AsyncSession, ids: Identities, sandbox: httpx.AsyncClient) -> Shop:
    party = await ids.party("Loja Envios")
    await use_scope(session, SYSTEM)
    await channels.create(
        session,
        party.tenant.id,
        schemas.WhatsAppIn(
            name="WhatsApp",
            phone_number_id=PHONE_ID,
            waba_id=WABA_ID,
            display_number="+55 11 0000-0055",
            access_token=TOKEN,
            app_secret="sec-55",
            verify_token="v",
        ),
        ACTOR,
    )
    await channels.create(
        session,
        party.tenant.id,
        schemas.SmsIn(
            name="SMS",
            account_sid=ACCOUNT,
            auth_token="sms-55",
            from_number="+5511940005555",
            base_url="http://test",
        ),
        ACTOR,
    )
    session.add(
        PixSettings(
            tenant_id=party.tenant.id,
            key="11222333000181",
            key_type="cnpj",
            merchant_name="Loja Envios",
            city="Sao Paulo",
        )
    )
    await session.execute(
        update(MessageTemplate)
        .where(MessageTemplate.tenant_id == party.tenant.id)
        .values(status=TemplateStatus.APPROVED)
    )
    await session.flush()
    return Shop(session, party.tenant.id)


async def _sent_at_sandbox(sandbox: httpx.AsyncClient) -> list[dict[str, Any]]:
    activity = await sandbox.get(f"/_sandbox/whatsapp/numbers/{PHONE_ID}", params={"wait": "true"})
    sent: list[dict[str, Any]] = activity.json()["sent"]
    return sent


async def _planned(shop: Shop, due: date, phone: str = MARIA) -> tuple[Customer, ContactAttempt]:
    maria = await shop.customer(phone=phone)
    await shop.installment(maria, due)
    await plan_tenant(shop.session, shop.tenant_id, NOW)
    (attempt,) = [a for a in await shop.attempts(maria) if a.state == "queued"]
    return maria, attempt


async def test_a_reminder_leaves_once_with_the_exact_amounts_and_the_pix_code(
    shop: Shop, sandbox: httpx.AsyncClient, session: AsyncSession
) -> None:
    maria, attempt = await _planned(shop, TODAY - timedelta(days=5))

    state = await sending.send_attempt(session, attempt.id, now=NOW)
    again = await sending.send_attempt(session, attempt.id, now=NOW)

    assert state == "sent" and again == "sent"
    (message,) = await _sent_at_sandbox(sandbox)
    assert message["biz_opaque_callback_data"] == f"attempt:{attempt.id}"
    assert message["to"] == MARIA.lstrip("+")
    await session.refresh(attempt)
    assert attempt.provider_message_id == message["id"]
    assert attempt.template_name == "quita_atraso_d5_v1" and attempt.rendered_sha256
    inst = await session.scalar(select(Installment).where(Installment.customer_id == maria.id))
    assert inst is not None
    expected = await balance_of(session, inst, maria, TODAY)
    assert expected.fine == Decimal("5.00") and expected.interest > 0
    parameters = [p["text"] for p in message["payload"]["template"]["components"][0]["parameters"]]
    for amount in (expected.principal, expected.fine, expected.interest, expected.total):
        assert format_brl(amount) in parameters
    assert attempt.amounts is not None
    assert attempt.amounts["totals"]["total"] == str(expected.total)
    pix = next(p for p in parameters if p.startswith("000201"))
    assert decode(pix).amount == expected.total


async def test_a_reminder_without_pix_or_cnpj_leaves_with_a_hyphen_the_debtor_reads_too(
    shop: Shop, sandbox: httpx.AsyncClient, session: AsyncSession
) -> None:
    await session.execute(delete(PixSettings).where(PixSettings.tenant_id == shop.tenant_id))
    await session.execute(update(Tenant).where(Tenant.id == shop.tenant_id).values(document=None))
    _, attempt = await _planned(shop, TODAY - timedelta(days=5))

    assert await sending.send_attempt(session, attempt.id, now=NOW) == "sent"

    (message,) = await _sent_at_sandbox(sandbox)
    await session.refresh(attempt)
    assert attempt.rendered_text == message["payload"]["rendered"]
    assert "Pix copia e cola: -\n" in attempt.rendered_text
    assert attempt.rendered_text.endswith(", CNPJ -.")
    parameters = [p["text"] for p in message["payload"]["template"]["components"][0]["parameters"]]
    assert all(p.strip() for p in parameters)


async def test_each_outcome_is_kept_in_the_audit_trail_with_the_texts_hash(
    shop: Shop, sandbox: httpx.AsyncClient, session: AsyncSession
) -> None:
    await sandbox.post(
        "/_sandbox/whatsapp/contacts",
        json={"phone": MARIA, "undeliverable": True, "undeliverable_sync": True},
    )
    maria, attempt = await _planned(shop, TODAY + timedelta(days=3))

    assert await sending.send_attempt(session, attempt.id, now=NOW) == "failed"
    fallback = await session.scalar(
        select(ContactAttempt).where(ContactAttempt.fallback_of == attempt.id)
    )
    assert fallback is not None
    assert await sending.send_attempt(session, fallback.id, now=NOW) == "sent"

    await use_scope(session, SYSTEM)
    events = list(
        await session.scalars(
            select(AuditEvent)
            .where(AuditEvent.action.in_(["attempt.sent", "attempt.failed"]))
            .order_by(AuditEvent.id)
        )
    )
    await session.refresh(fallback)
    assert [(e.action, e.subject_id) for e in events] == [
        ("attempt.failed", str(attempt.id)),
        ("attempt.sent", str(fallback.id)),
    ]
    assert events[0].data["error_code"] == 131026
    assert events[1].data["rendered_sha256"] == fallback.rendered_sha256
    assert events[1].data["customer_id"] == str(maria.id)
    assert {e.actor_type for e in events} == {"system"}


async def _webhook_status(
    shop: Shop, attempt: ContactAttempt, wamid: str, callback: str, recipient: str
) -> None:
    """A ``delivered`` status webhook for ``wamid`` carrying ``callback``, journaled as the
    receiver would (its job still to run)."""
    status = {
        "id": wamid,
        "status": "delivered",
        "timestamp": str(int(NOW.timestamp())),
        "recipient_id": recipient,
        "biz_opaque_callback_data": callback,
    }
    value = {"metadata": {"phone_number_id": PHONE_ID}, "statuses": [status]}
    payload = {
        "object": "whatsapp_business_account",
        "entry": [{"id": WABA_ID, "changes": [{"field": "messages", "value": value}]}],
    }
    events = [
        journal.EventIn(e.key, e.kind, e.payload, e.occurred_at, shop.tenant_id, attempt.channel_id)
        for e in split(payload)
    ]
    await journal.journal(
        shop.session,
        journal.post(provider="whatsapp", body=b"{}", content_type=None, events=events),
    )


async def test_a_send_cut_off_after_the_call_is_never_repeated_and_the_webhook_settles_it(
    shop: Shop,
    sandbox: httpx.AsyncClient,
    session: AsyncSession,
    run_jobs: Callable[[], Awaitable[list[Any]]],
) -> None:
    _, attempt = await _planned(shop, TODAY + timedelta(days=3))
    await sending.send_attempt(session, attempt.id, now=NOW)
    (message,) = await _sent_at_sandbox(sandbox)
    # the worker died after the provider answered, before recording it
    await session.execute(
        update(ContactAttempt)
        .where(ContactAttempt.id == attempt.id)
        .values(state="sending", provider_message_id=None)
    )

    after_crash = await sending.send_attempt(session, attempt.id, now=NOW)

    assert after_crash == "unknown"
    assert len(await _sent_at_sandbox(sandbox)) == 1  # never a blind resend
    await _webhook_status(
        shop,
        attempt,
        message["id"],
        message["biz_opaque_callback_data"],
        message["to"],
    )
    await run_jobs()
    await session.refresh(attempt)
    assert attempt.state == "delivered" and attempt.provider_message_id == message["id"]


async def test_a_payment_before_the_send_cancels_it(
    shop: Shop, sandbox: httpx.AsyncClient, session: AsyncSession
) -> None:
    maria, attempt = await _planned(shop, TODAY + timedelta(days=3))
    await session.execute(
        update(Installment).where(Installment.customer_id == maria.id).values(status="paid")
    )

    state = await sending.send_attempt(session, attempt.id, now=NOW)

    assert state == "cancelled"
    await session.refresh(attempt)
    assert attempt.reason == "nothing_due"
    assert await _sent_at_sandbox(sandbox) == []


async def test_a_number_whatsapp_cannot_reach_gets_the_sms_instead(
    shop: Shop, sandbox: httpx.AsyncClient, session: AsyncSession
) -> None:
    await sandbox.post(
        "/_sandbox/whatsapp/contacts",
        json={"phone": MARIA, "undeliverable": True, "undeliverable_sync": True},
    )
    _, attempt = await _planned(shop, TODAY + timedelta(days=3))

    state = await sending.send_attempt(session, attempt.id, now=NOW)

    assert state == "failed"
    await session.refresh(attempt)
    assert (attempt.error_class, attempt.error_code) == ("undeliverable", 131026)
    fallback = await session.scalar(
        select(ContactAttempt).where(ContactAttempt.fallback_of == attempt.id)
    )
    assert fallback is not None and (fallback.channel, fallback.state) == ("sms", "queued")
    assert await sending.send_attempt(session, fallback.id, now=NOW) == "sent"
    texts = (await sandbox.get(f"/_sandbox/sms/accounts/{ACCOUNT}/messages")).json()["messages"]
    assert [m["to"] for m in texts] == [MARIA]
    assert "Loja Envios" in texts[0]["body"]


async def test_outside_the_window_the_send_waits_for_the_morning(
    shop: Shop, sandbox: httpx.AsyncClient, session: AsyncSession
) -> None:
    _, attempt = await _planned(shop, TODAY + timedelta(days=3))
    late = datetime(2026, 11, 23, 21, 0, tzinfo=SP)  # the job ran late, after 20:00

    assert await sending.send_attempt(session, attempt.id, now=late) == "queued"

    await session.refresh(attempt)
    morning = datetime(2026, 11, 24, 8, 0, tzinfo=SP)
    assert attempt.planned_for == morning
    assert [j.not_before for j in await _send_jobs(session, attempt)][-1] == morning
    assert await _sent_at_sandbox(sandbox) == []


async def test_a_do_not_contact_flag_set_after_planning_holds_the_send(
    shop: Shop, sandbox: httpx.AsyncClient, session: AsyncSession
) -> None:
    maria, attempt = await _planned(shop, TODAY + timedelta(days=3))
    await session.execute(
        update(Customer).where(Customer.id == maria.id).values(do_not_contact=True)
    )

    assert await sending.send_attempt(session, attempt.id, now=NOW) == "skipped"
    assert await _sent_at_sandbox(sandbox) == []


async def _send_jobs(session: AsyncSession, attempt: ContactAttempt) -> list[OutboxJob]:
    return list(
        await session.scalars(
            select(OutboxJob).where(
                OutboxJob.actor == "collections.send",
                OutboxJob.args["attempt_ids"].contains([str(attempt.id)]),
            )
        )
    )


async def test_the_sweeper_requeues_an_attempt_whose_job_was_lost_and_fails_a_hopeless_one(
    shop: Shop, sandbox: httpx.AsyncClient, session: AsyncSession
) -> None:
    _, lost = await _planned(shop, TODAY + timedelta(days=3))
    joana = await shop.customer(phone="+5511987650002")
    await shop.installment(joana, TODAY + timedelta(days=3))
    await plan_tenant(session, shop.tenant_id, NOW)
    (hopeless,) = [a for a in await shop.attempts(joana) if a.state == "queued"]
    for job in await _send_jobs(session, lost):
        await session.delete(job)
    for job in await _send_jobs(session, hopeless):
        job.failed_at = NOW
    await session.flush()

    counts = await sweep_attempts(session, NOW + timedelta(minutes=10))

    assert (counts["requeued"], counts["failed"]) == (1, 1)
    assert len(await _send_jobs(session, lost)) == 1
    await session.refresh(hopeless)
    assert (hopeless.state, hopeless.reason) == ("failed", "send_job_failed")
    assert (await sweep_attempts(session, NOW + timedelta(minutes=20)))["requeued"] == 0


async def test_the_sweeper_marks_a_send_whose_worker_died_unknown(
    shop: Shop, sandbox: httpx.AsyncClient, session: AsyncSession
) -> None:
    _, attempt = await _planned(shop, TODAY + timedelta(days=3))
    await session.execute(
        update(ContactAttempt)
        .where(ContactAttempt.id == attempt.id)
        .values(state="sending", sending_at=NOW)
    )

    counts = await sweep_attempts(session, NOW + timedelta(minutes=11))

    assert counts["unknown"] == 1
    await session.refresh(attempt)
    assert (attempt.state, attempt.reason) == ("unknown", "outcome_lost")
    assert await _sent_at_sandbox(sandbox) == []  # and nothing was sent again


async def _lost_before_leaving(
    shop: Shop, session: AsyncSession, sandbox: httpx.AsyncClient
) -> tuple[ContactAttempt, ContactAttempt]:
    """Maria's reminder was marked ``sending`` by a worker killed before its request left (now
    ``unknown``, never received); Joana's left a minute later and was delivered."""
    _, lost = await _planned(shop, TODAY + timedelta(days=3))
    joana = await shop.customer(phone="+5511987650002")
    await shop.installment(joana, TODAY + timedelta(days=3))
    await plan_tenant(session, shop.tenant_id, NOW)
    (later,) = [a for a in await shop.attempts(joana) if a.state == "queued"]
    await sending.send_attempt(session, later.id, now=NOW)
    channel_id = later.channel_id
    await session.execute(
        update(ContactAttempt)
        .where(ContactAttempt.id == lost.id)
        .values(state="unknown", reason="outcome_lost", sending_at=NOW, channel_id=channel_id)
    )
    await session.execute(
        update(ContactAttempt)
        .where(ContactAttempt.id == later.id)
        .values(state="delivered", sending_at=NOW + timedelta(minutes=1), delivered_at=NOW)
    )
    await session.refresh(lost)
    return lost, later


async def test_an_unknown_message_the_provider_never_received_is_sent_again_once(
    shop: Shop, sandbox: httpx.AsyncClient, session: AsyncSession
) -> None:
    lost, later = await _lost_before_leaving(shop, session, sandbox)
    jobs = len(await _send_jobs(session, lost))

    too_soon = await sweep_attempts(session, NOW + timedelta(minutes=20))
    counts = await sweep_attempts(session, NOW + timedelta(minutes=31))
    again = await sweep_attempts(session, NOW + timedelta(minutes=45))

    assert (too_soon["resent"], counts["resent"], again["resent"]) == (0, 1, 0)
    await session.refresh(lost)
    assert (lost.state, lost.reason) == ("queued", "unreached")
    assert lost.decisions[-1] == {
        "rule": "unreached",
        "later_delivered": str(later.id),
        "lost_as": "outcome_lost",
    }
    assert len(await _send_jobs(session, lost)) == jobs + 1
    assert await sending.send_attempt(session, lost.id, now=NOW) == "sent"
    sent = Counter(m["biz_opaque_callback_data"] for m in await _sent_at_sandbox(sandbox))
    assert sent[sending.callback_data(lost.id)] == 1 and sent[sending.callback_data(later.id)] == 1
    trail = await session.scalars(
        select(AuditEvent.action)
        .where(AuditEvent.subject_id == str(lost.id))
        .order_by(AuditEvent.id)
    )
    assert list(trail) == ["attempt.unreached", "attempt.sent"]


async def test_a_message_presumed_lost_that_arrives_after_all_is_noted_not_taken_for_the_resend(
    shop: Shop,
    sandbox: httpx.AsyncClient,
    session: AsyncSession,
    run_jobs: Callable[[], Awaitable[list[Any]]],
) -> None:
    lost, _ = await _lost_before_leaving(shop, session, sandbox)
    await sweep_attempts(session, NOW + timedelta(minutes=31))
    await sending.send_attempt(session, lost.id, now=NOW)
    await session.refresh(lost)
    resent_id = lost.provider_message_id
    # the provider had the first one after all: its statuses come with the same attempt id
    await _webhook_status(
        shop, lost, "wamid.presumed-lost", sending.callback_data(lost.id), MARIA.lstrip("+")
    )
    await run_jobs()

    await session.refresh(lost)
    assert (lost.state, lost.provider_message_id) == ("sent", resent_id)
    assert lost.decisions[-1] == {
        "rule": "second_message",
        "provider_message_id": "wamid.presumed-lost",
    }


async def test_without_proof_that_statuses_flow_an_unknown_message_is_never_sent_again(
    shop: Shop, sandbox: httpx.AsyncClient, session: AsyncSession
) -> None:
    lost, later = await _lost_before_leaving(shop, session, sandbox)
    # the later message was sent but no status came for it either: the webhooks may be late
    await session.execute(
        update(ContactAttempt)
        .where(ContactAttempt.id == later.id)
        .values(state="sent", delivered_at=None)
    )

    counts = await sweep_attempts(session, NOW + timedelta(hours=2))

    assert counts["resent"] == 0
    await session.refresh(lost)
    assert lost.state == "unknown"
    assert len(await _sent_at_sandbox(sandbox)) == 1  # Joana's only


async def test_a_whatsapp_message_not_delivered_in_time_gets_the_sms(
    shop: Shop, sandbox: httpx.AsyncClient, session: AsyncSession
) -> None:
    _, attempt = await _planned(shop, TODAY + timedelta(days=3))
    await sending.send_attempt(session, attempt.id, now=NOW)
    await session.execute(
        update(ContactAttempt)
        .where(ContactAttempt.id == attempt.id)
        .values(sent_at=NOW - timedelta(hours=25))
    )

    first = await sweep_attempts(session, NOW)
    again = await sweep_attempts(session, NOW)

    assert (first["fallbacks"], again["fallbacks"]) == (1, 0)
    fallback = await session.scalar(
        select(ContactAttempt).where(ContactAttempt.fallback_of == attempt.id)
    )
    assert fallback is not None and fallback.channel == "sms"


async def test_thirty_reminders_go_in_two_jobs_and_each_leaves_once(
    shop: Shop, sandbox: httpx.AsyncClient, session: AsyncSession
) -> None:
    debtors = []
    for n in range(30):
        debtor = await shop.customer(phone=f"+55119876{n:05d}")
        await shop.installment(debtor, TODAY - timedelta(days=5))
        debtors.append(debtor)
    await plan_tenant(session, shop.tenant_id, NOW)
    jobs = list(
        await session.scalars(select(OutboxJob).where(OutboxJob.actor == "collections.send"))
    )
    assert sorted(len(j.args["attempt_ids"]) for j in jobs) == [5, 25]
    # one debtor asks not to be contacted between planning and sending
    await session.execute(
        update(Customer).where(Customer.id == debtors[7].id).values(do_not_contact=True)
    )

    states: dict[Any, str] = {}
    for job in jobs:
        ids = [uuid.UUID(i) for i in job.args["attempt_ids"]]
        states |= await sending.send_batch(session, ids, now=NOW)
        states |= await sending.send_batch(session, ids, now=NOW)  # a duplicate delivery

    sent = await _sent_at_sandbox(sandbox)
    assert len(sent) == 29 == Counter(states.values())["sent"]
    assert len({m["biz_opaque_callback_data"] for m in sent}) == 29
    attempts = {a.customer_id: a for a in await shop.attempts()}
    assert (attempts[debtors[7].id].state, attempts[debtors[7].id].reason) == (
        "skipped",
        "do_not_contact",
    )
    by_callback = {m["biz_opaque_callback_data"]: m["id"] for m in sent}
    for attempt in attempts.values():
        await session.refresh(attempt)
        if attempt.state == "sent":
            assert attempt.provider_message_id == by_callback[f"attempt:{attempt.id}"]
            assert attempt.amounts is not None and attempt.tries == 1


async def test_sms_leave_at_the_accounts_pace_and_none_is_refused(
    shop: Shop, sandbox: httpx.AsyncClient, session: AsyncSession
) -> None:
    """The sandbox's SMS account takes 10 messages a second and answers 20429 beyond, as
    Twilio does: a batch of 18 is paced under it, every message accepted at its first call."""
    await session.execute(
        update(CadenceStep)
        .where(CadenceStep.tenant_id == shop.tenant_id)
        .values(channel="sms", fallback_channel=None)
    )
    for n in range(18):
        debtor = await shop.customer(phone=f"+55119877{n:05d}")
        await shop.installment(debtor, TODAY - timedelta(days=5))
    await plan_tenant(session, shop.tenant_id, NOW)
    attempts = [a for a in await shop.attempts() if a.state == "queued"]
    assert len(attempts) == 18 and {a.channel for a in attempts} == {"sms"}

    states = await sending.send_batch(session, [a.id for a in attempts], now=NOW)

    assert Counter(states.values()) == {"sent": 18}
    for attempt in attempts:
        await session.refresh(attempt)
        assert attempt.tries == 1 and attempt.error_code is None
    texts = (await sandbox.get(f"/_sandbox/sms/accounts/{ACCOUNT}/messages")).json()["messages"]
    assert len(texts) == 18


@pytest.mark.parametrize(
    ("channel", "bucket", "rate"),
    [("whatsapp", f"wa:{PHONE_ID}", 60.0), ("sms", f"sms:{ACCOUNT}", 7.5)],
)
async def test_a_batch_for_a_sender_booked_far_ahead_goes_back_before_any_work(
    shop: Shop,
    sandbox: httpx.AsyncClient,
    session: AsyncSession,
    channel: str,
    bucket: str,
    rate: float,
) -> None:
    await session.execute(
        update(CadenceStep)
        .where(CadenceStep.tenant_id == shop.tenant_id)
        .values(channel=channel, fallback_channel=None)
    )
    _, attempt = await _planned(shop, TODAY - timedelta(days=5))
    # other batches hold the sender's next 8 seconds
    limiter = senders.clients().limiter
    booked = await limiter.reserve(bucket, rate=rate, count=int(rate * 8), max_wait_s=1)
    assert booked.booked

    with pytest.raises(RetryLater) as later:
        await sending.send_batch(session, [attempt.id], now=NOW)

    assert later.value.delay_s > 6 and channel in later.value.reason
    await session.refresh(attempt)
    assert (attempt.state, attempt.tries, attempt.amounts) == ("queued", 0, None)  # untouched
    assert await _sent_at_sandbox(sandbox) == []


async def _offer_message(shop: Shop, maria: Customer, at: datetime) -> tuple[Offer, ContactAttempt]:
    """An offer for Maria's overdue installments and its message (the offer template)."""
    offer = await negotiation.make_offer(
        shop.session,
        chat.retailer(shop.tenant_id),
        str(maria.id),
        installment_ids=None,
        terms=None,
        actor=chat.ACTOR,
    )
    message = await planner.remind(
        shop.session, shop.tenant_id, maria.id, at, template_key="oferta", offer_id=offer.id
    )
    return offer, message


async def test_a_reminder_links_to_its_payment_page_and_an_offer_to_its_options(
    shop: Shop, sandbox: httpx.AsyncClient, session: AsyncSession
) -> None:
    maria, reminder = await _planned(shop, TODAY - timedelta(days=5))
    assert await sending.send_attempt(session, reminder.id, now=NOW) == "sent"
    await session.refresh(reminder)
    assert reminder.rendered_text is not None
    assert paylinks.for_message(reminder.id, NOW) in reminder.rendered_text

    offer, message = await _offer_message(shop, maria, later := NOW + timedelta(days=1))
    await session.execute(
        update(MessageTemplate)
        .where(MessageTemplate.tenant_id == shop.tenant_id)
        .values(status=TemplateStatus.APPROVED)
    )
    assert await sending.send_attempt(session, message.id, now=later) == "sent"
    await session.refresh(message)
    assert message.template_name == "quita_oferta_v1" and message.rendered_text is not None
    assert paylinks.for_offer(offer.id, offer.expires_at) in message.rendered_text
    sent = await _sent_at_sandbox(sandbox)
    assert [m["payload"]["template"]["name"] for m in sent][-1] == "quita_oferta_v1"


async def test_an_offer_that_ran_out_while_its_message_waited_is_not_sent(
    shop: Shop, session: AsyncSession
) -> None:
    maria, _ = await _planned(shop, TODAY - timedelta(days=5))
    offer, message = await _offer_message(shop, maria, NOW + timedelta(days=1))

    after = offer.expires_at + timedelta(minutes=1)
    assert await sending.send_attempt(session, message.id, now=after) == "skipped"
    await session.refresh(message)
    assert message.reason == "offer_expired"


async def test_a_step_with_the_offer_template_makes_the_offer_when_its_message_leaves(
    shop: Shop, sandbox: httpx.AsyncClient, session: AsyncSession
) -> None:
    await session.execute(
        update(MessageTemplate)
        .where(MessageTemplate.tenant_id == shop.tenant_id)
        .values(status=TemplateStatus.APPROVED)
    )
    _, overdue = await _planned(shop, TODAY - timedelta(days=5))
    _, not_yet = await _planned(shop, TODAY + timedelta(days=3), phone="+5511987650009")
    for attempt in (overdue, not_yet):  # as the planner writes a step with that template
        attempt.template_name = "quita_oferta_v1"
    await session.flush()

    assert await sending.send_attempt(session, overdue.id, now=NOW) == "sent"
    assert await sending.send_attempt(session, not_yet.id, now=NOW) == "sent"

    await session.refresh(overdue)
    await session.refresh(not_yet)
    offer = await session.get(Offer, overdue.offer_id)
    assert offer is not None and overdue.rendered_text is not None
    assert paylinks.for_offer(offer.id, offer.expires_at) in overdue.rendered_text
    # nothing overdue, nothing to offer: the message's own page
    assert not_yet.offer_id is None and not_yet.rendered_text is not None
    assert paylinks.for_message(not_yet.id, NOW) in not_yet.rendered_text
    assert [(d["made"], d["why"]) for d in not_yet.decisions if d["rule"] == "offer"] == [
        (False, "validation_failed")
    ]
