"""SMS callbacks acted on: Twilio's statuses move an SMS attempt forward only, in any order and
however often they come, a failure that calls for it queues the fallback channel, and a debtor
who texts STOP (or PARE, SAIR, CANCELAR) gets no further SMS.  Callbacks go through the real
webhooks app; the ``inbound.process`` jobs they queue run as the worker runs them."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
import pytest
import redis.asyncio as aioredis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from services.sandbox.app import create_app as sandbox_app
from services.sandbox.state import SandboxState
from services.webhooks.app import create_app as webhooks_app
from shared.brazil.phones import whatsapp_key
from shared.config import Settings
from shared.db import SessionMaker
from shared.domains.audit.service import Actor
from shared.domains.channels import schemas, senders
from shared.domains.channels import service as channels
from shared.domains.inbound.sms import inbound_url, opt_out_keyword, status_callback_url
from shared.integrations.sms import twilio_signature
from shared.integrations.whatsapp import WhatsAppClient
from shared.models import (
    AttemptState,
    AuditEvent,
    Channel,
    ContactAttempt,
    Customer,
    CustomerPhone,
    OutboxJob,
    WebhookEvent,
)
from shared.queue import run_job
from shared.tenancy import SYSTEM, use_scope
from tests.conftest import run_lifespan
from tests.support.identity import Identities
from tests.support.serve import serve

Client = Callable[..., Awaitable[httpx.AsyncClient]]
S = AttemptState
ACTOR = Actor("cli", None)
ACCOUNT = "AC" + "7e" * 16
TOKEN = "sms-status-token"
SENDER = "+5511940007777"
MARIA = "+5511987657777"
FORM = "application/x-www-form-urlencoded; charset=utf-8"


def new_sid() -> str:
    return "SM" + uuid.uuid4().hex


class Shop:
    """A retailer with an SMS channel, its debtors and their attempts, and the webhooks app."""

    def __init__(
        self, session: AsyncSession, maker: SessionMaker, hooks: httpx.AsyncClient, channel: Channel
    ) -> None:
        self.session, self.maker, self.hooks, self.channel = session, maker, hooks, channel
        self.count = 0

    @property
    def tenant_id(self) -> uuid.UUID:
        return self.channel.tenant_id

    async def customer(self, phone: str = MARIA) -> Customer:
        self.count += 1
        row = Customer(
            tenant_id=self.tenant_id,
            external_id=f"C-{self.count}",
            name="Maria Exemplo",
            email=f"maria{self.count}@example.com",
        )
        self.session.add(row)
        await self.session.flush()
        self.session.add(
            CustomerPhone(
                tenant_id=self.tenant_id,
                customer_id=row.id,
                number=phone,
                position=0,
                wa_key=whatsapp_key(phone),
            )
        )
        await self.session.flush()
        return row

    async def attempt(
        self,
        customer: Customer,
        *,
        state: AttemptState = S.SENT,
        sid: str | None = None,
        channel: str = "sms",
        fallback: str | None = "email",
    ) -> ContactAttempt:
        row = ContactAttempt(
            id=uuid.uuid4(),
            tenant_id=self.tenant_id,
            customer_id=customer.id,
            kind="manual",
            channel=channel,
            fallback_channel=fallback,
            recipient=MARIA,
            state=state,
            provider_message_id=sid,
            contact_day=datetime.now(UTC).date(),
            planned_for=datetime.now(UTC),
        )
        self.session.add(row)
        await self.session.flush()
        return row

    async def post(self, path: str, form: dict[str, str], token: str = TOKEN) -> httpx.Response:
        signature = twilio_signature(f"http://test{path}", form, token)
        headers = {"Content-Type": FORM, "X-Twilio-Signature": signature}
        response = await self.hooks.post(path, content=urlencode(form), headers=headers)
        assert response.status_code == 200, response.text
        return response

    async def status(
        self, sid: str, status: str, *, code: str | None = None, path: str | None = None
    ) -> None:
        form = {
            "AccountSid": ACCOUNT,
            "From": SENDER,
            "MessageSid": sid,
            "MessageStatus": status,
            "To": MARIA,
        }
        if code is not None:
            form["ErrorCode"] = code
        await self.post(path or f"/sms/{self.channel.id}/status", form)

    async def texts(self, body: str, sender: str = MARIA) -> None:
        form = {"AccountSid": ACCOUNT, "Body": body, "From": sender, "MessageSid": new_sid()}
        await self.post(f"/sms/{self.channel.id}/inbound", form)

    async def process(self) -> None:
        """Run the queued ``inbound.process`` jobs as the worker does (and nothing else, so a
        queued fallback stays queued for the test to see)."""
        await process_inbound(self.maker)

    async def reload(self, row: Any) -> None:
        await use_scope(self.session, SYSTEM)
        await self.session.refresh(row)


async def process_inbound(maker: SessionMaker) -> None:
    async with maker() as s:
        ids = (
            await s.execute(
                text(
                    """SELECT id FROM outbox WHERE actor = 'inbound.process'
                       AND done_at IS NULL AND failed_at IS NULL ORDER BY id"""
                )
            )
        ).scalars()
        pending = list(ids)
    for job_id in pending:
        await run_job(maker, job_id)


async def _sms_channel(
    session: AsyncSession, tenant_id: uuid.UUID, token: str = TOKEN, base_url: str | None = None
) -> Channel:
    await use_scope(session, SYSTEM)
    channel = await channels.create(
        session,
        tenant_id,
        schemas.SmsIn(
            name="SMS", account_sid=ACCOUNT, auth_token=token, from_number=SENDER, base_url=base_url
        ),
        ACTOR,
    )
    await session.flush()
    return channel


@pytest.fixture
async def shop(
    session: AsyncSession, ids: Identities, sessionmaker: SessionMaker, http_client: Client
) -> Shop:
    party = await ids.party("Loja Torpedo")
    channel = await _sms_channel(session, party.tenant.id)
    return Shop(session, sessionmaker, await http_client(webhooks_app), channel)


async def _fallbacks(session: AsyncSession, attempt: ContactAttempt) -> list[ContactAttempt]:
    await use_scope(session, SYSTEM)
    return list(
        await session.scalars(
            select(ContactAttempt).where(ContactAttempt.fallback_of == attempt.id)
        )
    )


# --- statuses ----------------------------------------------------------------------------------


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    reports=st.lists(
        st.sampled_from(["queued", "sending", "sent", "delivered"]), min_size=1, max_size=6
    ).filter(lambda r: "delivered" in r)
)
async def test_statuses_in_any_order_and_repeated_end_delivered(
    shop: Shop, reports: list[str]
) -> None:
    sid = new_sid()
    attempt = await shop.attempt(await shop.customer(), state=S.SENDING, sid=sid)

    for status in reports:
        await shop.status(sid, status)
    await shop.process()

    await shop.reload(attempt)
    assert attempt.state == S.DELIVERED and attempt.delivered_at is not None


async def test_a_failure_after_delivered_is_noted_not_applied(shop: Shop) -> None:
    sid = new_sid()
    attempt = await shop.attempt(await shop.customer(), sid=sid)

    await shop.status(sid, "delivered")
    await shop.status(sid, "undelivered", code="30003")
    await shop.process()

    await shop.reload(attempt)
    assert attempt.state == S.DELIVERED and attempt.error_code is None
    assert await _fallbacks(shop.session, attempt) == []
    await use_scope(shop.session, SYSTEM)
    failed = await shop.session.scalar(
        select(WebhookEvent).where(WebhookEvent.event_key == f"sms:{sid}:undelivered")
    )
    assert failed is not None and failed.state == "processed"
    assert failed.result == "failed after delivered: kept"


async def test_an_undeliverable_number_fails_the_sms_and_queues_the_fallback(shop: Shop) -> None:
    sid = new_sid()
    attempt = await shop.attempt(await shop.customer(), sid=sid)

    await shop.status(sid, "sent")
    await shop.status(sid, "undelivered", code="30003")
    await shop.process()
    await shop.status(sid, "undelivered", code="30003")  # Twilio retries the callback
    await shop.process()

    await shop.reload(attempt)
    assert attempt.state == S.FAILED
    assert (attempt.error_class, attempt.error_code) == ("undeliverable", 30003)
    (fallback,) = await _fallbacks(shop.session, attempt)
    assert (fallback.channel, fallback.state) == ("email", S.QUEUED)
    assert fallback.recipient is not None and fallback.recipient.endswith("@example.com")
    jobs = await shop.session.scalars(
        select(OutboxJob).where(OutboxJob.actor == "collections.send", OutboxJob.done_at.is_(None))
    )
    assert any(str(fallback.id) in str(job.args) for job in jobs)  # its send is queued


async def test_a_failure_that_proves_nothing_about_the_number_queues_no_fallback(
    shop: Shop,
) -> None:
    sid = new_sid()
    attempt = await shop.attempt(await shop.customer(), sid=sid)

    await shop.status(sid, "failed", code="30008")  # "unknown error" at the carrier
    await shop.process()

    await shop.reload(attempt)
    assert (attempt.state, attempt.error_code) == (S.FAILED, 30008)
    assert await _fallbacks(shop.session, attempt) == []


async def test_an_unknown_attempt_is_settled_by_the_attempt_its_callback_url_names(
    shop: Shop, settings: Settings
) -> None:
    attempt = await shop.attempt(await shop.customer(), state=S.UNKNOWN, sid=None)
    url = status_callback_url(shop.channel, attempt_id=attempt.id, settings=settings)
    assert url is not None
    parts = urlsplit(url)
    sid = new_sid()

    await shop.status(sid, "delivered", path=f"{parts.path}?{parts.query}")
    await shop.process()

    await shop.reload(attempt)
    assert (attempt.state, attempt.provider_message_id) == (S.DELIVERED, sid)


async def test_a_status_never_moves_another_retailers_attempt(
    shop: Shop, session: AsyncSession, ids: Identities
) -> None:
    sid = new_sid()
    victim = await shop.attempt(await shop.customer(), sid=sid)
    intruder = await ids.party("Loja Intrusa")
    other = await _sms_channel(session, intruder.tenant.id, token="intruder-token")

    path = f"/sms/{other.id}/status"
    form = {"AccountSid": ACCOUNT, "MessageSid": sid, "MessageStatus": "failed", "To": MARIA}
    await shop.post(path, form, token="intruder-token")
    named = {**form, "MessageSid": new_sid()}
    await shop.post(f"{path}?attempt={victim.id}", named, token="intruder-token")
    await shop.process()

    await shop.reload(victim)
    assert victim.state == S.SENT and victim.provider_message_id == sid


# --- opt-out -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body", ["STOP", "pare", "Pare!", "  SAIR. ", "Cancelar", "cancelár", "PARAR 🙏", "stopall"]
)
def test_opt_out_keywords_are_read_whatever_the_case_accents_and_punctuation(body: str) -> None:
    assert opt_out_keyword(body) is not None


@pytest.mark.parametrize(
    "body", ["", "parei de comprar aí", "não pare", "pare de me cobrar, já paguei", "sair 2x"]
)
def test_a_sentence_is_not_an_opt_out_keyword(body: str) -> None:
    assert opt_out_keyword(body) is None


def test_a_keyword_twilio_marked_as_opt_out_counts() -> None:
    assert opt_out_keyword("NAO QUERO", "STOP") == "stop"


async def test_pare_opts_the_debtor_out_of_sms_and_cancels_what_was_not_sent(shop: Shop) -> None:
    maria = await shop.customer()
    planned = await shop.attempt(maria, state=S.PLANNED)
    queued = await shop.attempt(maria, state=S.QUEUED)
    delivered = await shop.attempt(maria, state=S.DELIVERED, sid=new_sid())
    whatsapp = await shop.attempt(maria, state=S.QUEUED, channel="whatsapp")

    await shop.texts("Pare!")
    await shop.process()

    await shop.reload(maria)
    assert maria.opted_out == ["sms"]
    for row in (planned, queued, delivered, whatsapp):
        await shop.reload(row)
    assert (planned.state, planned.reason) == (S.CANCELLED, "opted_out")
    assert (queued.state, queued.reason) == (S.CANCELLED, "opted_out")
    assert delivered.state == S.DELIVERED  # what already went stays on the record
    assert whatsapp.state == S.QUEUED  # only SMS was refused
    (audit,) = list(
        await shop.session.scalars(
            select(AuditEvent).where(AuditEvent.action == "customer.opted_out")
        )
    )
    assert (audit.subject_id, audit.actor_type) == (str(maria.id), "provider")
    assert audit.data["keyword"] == "pare" and audit.data["attempts_cancelled"] == 2
    assert MARIA not in str(audit.data)  # the evidence names the message, not the number


async def test_a_second_stop_changes_nothing_and_audits_nothing(shop: Shop) -> None:
    maria = await shop.customer()

    await shop.texts("STOP")
    await shop.texts("stop")
    await shop.process()

    await shop.reload(maria)
    assert maria.opted_out == ["sms"]
    audits = list(
        await shop.session.scalars(
            select(AuditEvent).where(AuditEvent.action == "customer.opted_out")
        )
    )
    assert len(audits) == 1


async def test_stop_reaches_the_number_stored_without_the_ninth_digit_and_no_other_retailer(
    shop: Shop, session: AsyncSession, ids: Identities
) -> None:
    legacy = await shop.customer(phone="+551187657777")  # stored before the nono dígito
    other_party = await ids.party("Loja Vizinha")
    await use_scope(session, SYSTEM)
    elsewhere = Customer(tenant_id=other_party.tenant.id, external_id="X-1", name="Maria")
    session.add(elsewhere)
    await session.flush()
    session.add(
        CustomerPhone(
            tenant_id=elsewhere.tenant_id,
            customer_id=elsewhere.id,
            number=MARIA,
            position=0,
            wa_key=whatsapp_key(MARIA),
        )
    )
    await session.flush()

    await shop.texts("SAIR", sender=MARIA)
    await shop.process()

    await shop.reload(legacy)
    await shop.reload(elsewhere)
    assert legacy.opted_out == ["sms"]
    assert elsewhere.opted_out == []  # the opt-out is given to the retailer it was sent to


async def test_a_reply_that_is_not_a_keyword_is_kept_for_the_conversations(shop: Shop) -> None:
    maria = await shop.customer()

    await shop.texts("pare de me cobrar, já paguei ontem")
    await shop.process()

    await shop.reload(maria)
    assert maria.opted_out == []
    event = await shop.session.scalar(
        select(WebhookEvent).where(WebhookEvent.kind == "sms.message")
    )
    assert event is not None and event.state == "processed"
    assert event.result == "kept for the conversations layer"


async def test_an_sms_refused_because_the_debtor_had_texted_stop_opts_them_out(shop: Shop) -> None:
    sid = new_sid()
    maria = await shop.customer()
    attempt = await shop.attempt(maria, sid=sid, fallback=None)

    await shop.status(sid, "failed", code="21610")
    await shop.process()

    await shop.reload(attempt)
    await shop.reload(maria)
    assert (attempt.state, attempt.error_class) == (S.FAILED, "policy")
    assert maria.opted_out == ["sms"]


# --- end to end through the sandbox ------------------------------------------------------------


@pytest.fixture
async def sandboxed(
    committed: SessionMaker, settings: Settings, redis: aioredis.Redis
) -> AsyncIterator[tuple[httpx.AsyncClient, Settings]]:
    """The webhooks service on a real port, the sandbox posting Twilio's signed callbacks to
    it, and the SMS client pointed at the sandbox."""
    async with AsyncExitStack() as stack:
        hooks = webhooks_app(settings, sessionmaker=committed, redis=redis)
        await stack.enter_async_context(run_lifespan(hooks))
        hooks_url = await stack.enter_async_context(serve(hooks))
        box = sandbox_app(settings, sessionmaker=committed, redis=redis, whatsapp=SandboxState(3))
        await stack.enter_async_context(run_lifespan(box))
        sandbox = await stack.enter_async_context(
            httpx.AsyncClient(transport=httpx.ASGITransport(app=box), base_url="http://sandbox")
        )
        wa = WhatsAppClient(base_url="http://sandbox", transport=sandbox._transport)
        stack.enter_context(senders.using_clients(wa, sms_transport=sandbox._transport))
        yield sandbox, settings.model_copy(update={"public_base_url": hooks_url})


async def test_end_to_end_the_sandbox_statuses_and_a_stop_reach_the_attempt_and_the_customer(
    sandboxed: tuple[httpx.AsyncClient, Settings], committed: SessionMaker, settings: Settings
) -> None:
    sandbox, public = sandboxed
    async with committed() as session:
        party = await Identities(session, settings).party("Loja Ponta a Ponta SMS")
        channel = await _sms_channel(session, party.tenant.id, base_url="http://sandbox")
        shop = Shop(session, committed, sandbox, channel)
        maria = await shop.customer()
        attempt = await shop.attempt(maria, state=S.SENDING)
        pending = await shop.attempt(maria, state=S.PLANNED)
        await session.commit()
    registered = await sandbox.post(
        "/_sandbox/sms/accounts",
        json={
            "account_sid": ACCOUNT,
            "auth_token": TOKEN,
            "numbers": [SENDER],
            "inbound_url": inbound_url(channel, settings=public),
            "sent_delay_ms": 5,
            "delivered_delay_ms": 15,
            "callback_retry_base_ms": 5,
        },
    )
    assert registered.status_code == 201, registered.text

    callback = status_callback_url(channel, attempt_id=attempt.id, settings=public)
    sent = await senders.send_sms(
        channel, MARIA, "Lembrete: sua parcela vence hoje.", status_callback=callback
    )
    async with committed() as session:
        await use_scope(session, SYSTEM)
        row = await session.get(ContactAttempt, attempt.id)
        assert row is not None
        row.state, row.provider_message_id = S.SENT, sent.provider_message_id
        await session.commit()
    texted = await sandbox.post(
        f"/_sandbox/sms/accounts/{ACCOUNT}/inbound", json={"from": MARIA, "body": "PARE"}
    )
    assert texted.status_code == 201, texted.text
    activity = (
        await sandbox.get(f"/_sandbox/sms/accounts/{ACCOUNT}/messages", params={"wait": "true"})
    ).json()
    assert {d["outcome"] for d in activity["deliveries"]} == {200}, activity["deliveries"]
    await process_inbound(committed)

    async with committed() as session:
        await use_scope(session, SYSTEM)
        done = await session.get(ContactAttempt, attempt.id)
        cancelled = await session.get(ContactAttempt, pending.id)
        customer = await session.get(Customer, maria.id)
        assert done is not None and cancelled is not None and customer is not None
        assert done.state == S.DELIVERED and done.delivered_at is not None
        assert cancelled.state == S.CANCELLED and customer.opted_out == ["sms"]
