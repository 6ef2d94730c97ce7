"""Replies that act: each intent's action as the debtor and the operator would notice it — the
régua held or stopped, the attempts cancelled, the phone marked, the installments disputed, the
conversation routed — and every answer sent once, through the sandbox, whatever is replayed."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from shared.brazil.numbers import format_brl
from shared.domains.channels import templating
from shared.domains.channels.defaults import DEFAULTS, QUICK_REPLIES
from shared.domains.collections import sending
from shared.domains.collections.planner import plan_tenant, remind
from shared.domains.inbound import journal
from shared.domains.inbound.actions import (
    ASK_RECEIPT_REPLY,
    DISPUTE_REPLY,
    HIGH_PRIORITY,
    NOTHING_OPEN_REPLY,
    OPERATOR_REPLY,
    OPTED_OUT_REPLY,
    PRIORITY_HIGH,
    PRIORITY_NORMAL,
    RECEIPT_THANKS_REPLY,
    WRONG_PERSON_REPLY,
    route,
)
from shared.domains.inbound.intents import PAYLOAD_PAID, IntentKind
from shared.domains.money.balance import balance_of
from shared.models import (
    AuditEvent,
    CollectionHold,
    ContactAttempt,
    Conversation,
    ConversationMessage,
    Customer,
    CustomerPhone,
    InboxOperator,
    Installment,
    InstallmentStatus,
    MessageTemplate,
    PixSettings,
    Role,
    TemplateStatus,
    Tenant,
)
from shared.tenancy import SYSTEM, use_scope
from tests.shared.domains.inbound import test_conversations
from tests.shared.domains.inbound.test_conversations import (
    PHONE_A,
    PHONE_B,
    WABA_A,
    WABA_B,
    Jobs,
    Retailer,
    _debtor_writes,
    _retailer,
    _sandbox_texts,
)
from tests.support.identity import Identities

SP = ZoneInfo("America/Sao_Paulo")
ANA = "+5511987650091"  # a debtor whose number the sandbox knows as 5511987650091
ANA_WA = "5511987650091"


class Shop(Retailer):
    """The conversations' retailer with what collection needs: installments, Pix, attempts."""

    async def debtor(self, phone: str = ANA, **fields: Any) -> Customer:
        customer = await self.customer(phone=phone)
        for name, value in fields.items():
            setattr(customer, name, value)
        await self.session.flush()
        return customer

    async def installment(
        self, customer: Customer, due: date, amount: str = "200.00", number: int = 1
    ) -> Installment:
        self.count += 1
        row = Installment(
            tenant_id=self.tenant_id,
            customer_id=customer.id,
            external_id=f"P-{self.count}",
            principal=Decimal(amount),
            due_date=due,
            number=number,
            count=3,
        )
        self.session.add(row)
        await self.session.flush()
        return row

    async def queued(
        self, customer: Customer, channel: str = "whatsapp", recipient: str | None = ANA
    ) -> ContactAttempt:
        """A reminder planned for later today, not sent yet."""
        now = datetime.now(UTC)
        attempt = ContactAttempt(
            tenant_id=self.tenant_id,
            customer_id=customer.id,
            channel=channel,
            recipient=recipient,
            state="queued",
            contact_day=now.date(),
            planned_for=now + timedelta(hours=2),
        )
        self.session.add(attempt)
        await self.session.flush()
        return attempt

    async def pix(self) -> None:
        self.session.add(
            PixSettings(
                tenant_id=self.tenant_id,
                key="11222333000181",
                key_type="cnpj",
                merchant_name="Loja Conversa",
                city="Sao Paulo",
            )
        )
        await self.session.flush()

    async def fresh(self, row: Any) -> Any:
        """``row`` as the database has it now (jobs ran in other sessions)."""
        await use_scope(self.session, SYSTEM)
        await self.session.refresh(row)
        return row

    async def conversation(self, customer: Customer) -> Conversation:
        await use_scope(self.session, SYSTEM)
        found = await self.session.scalar(
            select(Conversation)
            .where(Conversation.customer_id == customer.id)
            .execution_options(populate_existing=True)
        )
        assert found is not None
        return found

    async def inbound(self, customer: Customer) -> list[ConversationMessage]:
        conversation = await self.conversation(customer)
        return [m for m in await self.messages(conversation) if m.direction == "in"]

    async def holds(self, customer: Customer) -> list[CollectionHold]:
        await use_scope(self.session, SYSTEM)
        rows = await self.session.scalars(
            select(CollectionHold)
            .where(CollectionHold.customer_id == customer.id)
            .execution_options(populate_existing=True)
        )
        return list(rows)

    async def audits(self, action: str) -> list[AuditEvent]:
        await use_scope(self.session, SYSTEM)
        rows = await self.session.scalars(
            select(AuditEvent).where(
                AuditEvent.tenant_id == self.tenant_id, AuditEvent.action == action
            )
        )
        return list(rows)


async def _sandbox_messages(sandbox: httpx.AsyncClient) -> list[dict[str, Any]]:
    """Everything the sandbox delivered from the shop's number, in order."""
    activity = await sandbox.get(f"/_sandbox/whatsapp/numbers/{PHONE_A}", params={"wait": "true"})
    return list(activity.json()["sent"])


async def _bodies(sandbox: httpx.AsyncClient, number: str | None = None) -> list[str]:
    """The texts the sandbox delivered, in order (to ``number`` when given)."""
    texts = await _sandbox_texts(sandbox)
    return [t["payload"]["text"]["body"] for t in texts if number is None or t["to"] == number]


async def _replay(shop: Shop, run_jobs: Jobs) -> None:
    await journal.replay(
        shop.session, since=datetime(2000, 1, 1, tzinfo=UTC), include_processed=True
    )
    await run_jobs()


def _today() -> date:
    return datetime.now(SP).date()


sandbox = test_conversations.sandbox  # the WhatsApp sandbox those tests serve, shared here


@pytest.fixture
async def shop(session: AsyncSession, ids: Identities, sandbox: httpx.AsyncClient) -> Shop:
    base = await _retailer(session, ids, "Loja Conversa", PHONE_A, WABA_A)
    return Shop(base.session, base.tenant_id, base.channel)


# --- already paid ------------------------------------------------------------------------------


async def test_a_tap_on_ja_paguei_holds_the_regua_and_the_operator_sees_it(
    shop: Shop, run_jobs: Jobs, sandbox: httpx.AsyncClient
) -> None:
    ana = await shop.debtor()
    await shop.installment(ana, _today() - timedelta(days=5))
    pending = await shop.queued(ana)
    before = datetime.now(UTC)

    tap = await sandbox.post(
        f"/_sandbox/whatsapp/numbers/{PHONE_A}/replies",
        json={"from": ANA, "type": "button", "payload": PAYLOAD_PAID, "text": "Já paguei"},
    )
    await shop.receive(tap.json())
    await run_jobs()

    (hold,) = await shop.holds(ana)
    assert hold.kind == "paid_claim" and hold.released_at is None
    assert hold.until is not None
    assert before + timedelta(days=3) <= hold.until <= datetime.now(UTC) + timedelta(days=3)
    assert (await shop.fresh(pending)).state == "cancelled"
    conversation = await shop.conversation(ana)
    assert (conversation.state, conversation.intent) == ("open", "already_paid")
    assert conversation.priority == PRIORITY_HIGH
    (tapped,) = await shop.inbound(ana)
    assert tapped.intent == "already_paid"
    assert await _bodies(sandbox) == [ASK_RECEIPT_REPLY]
    result = await plan_tenant(shop.session, shop.tenant_id, datetime.now(UTC))
    attempts = await shop.session.scalars(
        select(ContactAttempt).where(
            ContactAttempt.customer_id == ana.id, ContactAttempt.state.in_(["planned", "queued"])
        )
    )
    assert list(attempts) == [] and result.skipped.get("hold_paid_claim") == 1


async def test_the_receipt_sent_afterwards_joins_the_same_hold_and_is_thanked_once(
    shop: Shop, run_jobs: Jobs, sandbox: httpx.AsyncClient
) -> None:
    ana = await shop.debtor()
    await _debtor_writes(sandbox, shop, ANA, "ja paguei ontem")
    await run_jobs()
    for n in (1, 2):  # the receipt, then the same receipt again
        image = {
            "from": ANA_WA,
            "id": f"wamid.RECEIPT{n}",
            "timestamp": str(int(datetime.now(UTC).timestamp())),
            "type": "image",
            "image": {"id": f"media-{n}", "mime_type": "image/jpeg"},
        }
        await shop.receive(image)
        await run_jobs()

    (hold,) = await shop.holds(ana)
    assert hold.kind == "paid_claim"
    assert [m.intent for m in await shop.inbound(ana)] == ["already_paid"] * 3
    assert await _bodies(sandbox) == [ASK_RECEIPT_REPLY, RECEIPT_THANKS_REPLY]


# --- opt-out -----------------------------------------------------------------------------------


async def test_pare_stops_every_channel_cancels_what_was_pending_and_confirms_once(
    shop: Shop, run_jobs: Jobs, sandbox: httpx.AsyncClient
) -> None:
    ana = await shop.debtor(email="ana@example.com")
    by_whatsapp = await shop.queued(ana)
    by_email = await shop.queued(ana, "email", "ana@example.com")

    await _debtor_writes(sandbox, shop, ANA, "PARE")
    await run_jobs()
    await _debtor_writes(sandbox, shop, ANA, "parar")  # she insists: nothing new to confirm
    await run_jobs()
    await _replay(shop, run_jobs)

    ana = await shop.fresh(ana)
    assert sorted(ana.opted_out) == ["email", "sms", "whatsapp"]
    assert (await shop.fresh(by_whatsapp)).state == "cancelled"
    assert (await shop.fresh(by_email)).state == "cancelled"
    assert await _bodies(sandbox) == [OPTED_OUT_REPLY]
    (audited,) = await shop.audits("customer.opted_out")
    assert audited.subject_id == str(ana.id)
    assert sorted(audited.data["channels"]) == ["email", "sms", "whatsapp"]
    conversation = await shop.conversation(ana)
    assert (conversation.intent, conversation.state) == ("opt_out", "resolved")


async def test_after_pare_the_planner_sends_her_nothing_on_any_channel(
    shop: Shop, run_jobs: Jobs, sandbox: httpx.AsyncClient
) -> None:
    ana = await shop.debtor(email="ana@example.com")
    bia = await shop.debtor(phone="+5511987650092")  # the same situation, no "pare"
    for customer in (ana, bia):
        await shop.installment(customer, _today() - timedelta(days=1))

    await _debtor_writes(sandbox, shop, ANA, "pare de me mandar mensagem")
    await run_jobs()
    await plan_tenant(shop.session, shop.tenant_id, datetime.now(UTC))

    rows = await shop.session.scalars(
        select(ContactAttempt).where(ContactAttempt.tenant_id == shop.tenant_id)
    )
    going = {(a.customer_id, a.channel) for a in rows if a.state in ("planned", "queued")}
    assert going == {(bia.id, "whatsapp")}  # the planner works; it just leaves Ana alone


# --- wrong person ------------------------------------------------------------------------------


async def test_a_wrong_person_is_thanked_and_the_phone_is_dropped_but_not_the_customer(
    shop: Shop, run_jobs: Jobs, sandbox: httpx.AsyncClient
) -> None:
    ana = await shop.debtor(email="ana@example.com")
    await shop.installment(ana, _today() - timedelta(days=5))
    to_the_stranger = await shop.queued(ana)
    by_email = await shop.queued(ana, "email", "ana@example.com")

    await _debtor_writes(sandbox, shop, ANA, "não sou eu, número errado")
    await run_jobs()

    phone = await shop.session.scalar(
        select(CustomerPhone)
        .where(CustomerPhone.customer_id == ana.id)
        .execution_options(populate_existing=True)
    )
    assert phone is not None and phone.status == "wrong_person"
    assert (await shop.fresh(to_the_stranger)).state == "cancelled"
    assert (await shop.fresh(by_email)).state == "queued"  # her other channels go on
    assert (await shop.fresh(ana)).opted_out == []
    (said,) = await _bodies(sandbox)
    assert said == WRONG_PERSON_REPLY
    for revealing in ("R$", "parcela", "dívida", "Ana", "Maria"):
        assert revealing not in said
    (audited,) = await shop.audits("customer_phone.marked_wrong")
    assert audited.data["phone_last4"] == "0091" and "number" not in audited.data
    assert await shop.holds(ana) == []


# --- second copy -------------------------------------------------------------------------------


async def test_a_request_for_the_pix_gets_todays_amount_item_by_item_and_the_code(
    shop: Shop, run_jobs: Jobs, sandbox: httpx.AsyncClient
) -> None:
    ana = await shop.debtor()
    await shop.pix()
    first = await shop.installment(ana, _today() - timedelta(days=40), "150.00", number=1)
    second = await shop.installment(ana, _today() - timedelta(days=10), "150.00", number=2)
    await shop.installment(ana, _today() + timedelta(days=20), "150.00", number=3)  # not yet

    await _debtor_writes(sandbox, shop, ANA, "me manda o pix por favor")
    await run_jobs()

    (said,) = await _bodies(sandbox)
    today = _today()
    owed = [await balance_of(shop.session, inst, ana, today) for inst in (first, second)]
    assert format_brl(owed[0].total) in said and format_brl(owed[1].total) in said
    assert f"Total: {format_brl(owed[0].total + owed[1].total)}" in said
    assert "Parcela 1 de 3" in said and "Parcela 2 de 3" in said and "3 de 3" not in said
    assert owed[0].total > Decimal("150.00")  # fine and interest as of today
    assert "Pix copia e cola:\n000201" in said
    assert "Loja Conversa" in said
    conversation = await shop.conversation(ana)
    assert (conversation.intent, conversation.state) == ("second_copy", "pending")
    assert conversation.priority == PRIORITY_NORMAL
    await use_scope(shop.session, SYSTEM)
    answer = await shop.session.scalar(
        select(ConversationMessage).where(
            ConversationMessage.conversation_id == conversation.id,
            ConversationMessage.direction == "out",
        )
    )
    assert answer is not None and answer.details["amounts"]["as_of"] == today.isoformat()


async def test_a_request_for_the_second_copy_with_nothing_open_is_answered_politely(
    shop: Shop, run_jobs: Jobs, sandbox: httpx.AsyncClient
) -> None:
    ana = await shop.debtor()
    paid = await shop.installment(ana, _today() - timedelta(days=3))
    paid.status = InstallmentStatus.PAID
    await shop.session.flush()

    await _debtor_writes(sandbox, shop, ANA, "segunda via do boleto")
    await run_jobs()

    assert await _bodies(sandbox) == [NOTHING_OPEN_REPLY]


# --- negotiate, promise, dispute, anything else ------------------------------------------------


async def test_a_wish_to_negotiate_goes_to_an_operator_with_priority(
    shop: Shop, run_jobs: Jobs, sandbox: httpx.AsyncClient
) -> None:
    ana = await shop.debtor()

    await _debtor_writes(sandbox, shop, ANA, "quero parcelar em 3x")
    await run_jobs()
    await _debtor_writes(sandbox, shop, ANA, "ok")  # an "other" does not hide the request
    await run_jobs()

    conversation = await shop.conversation(ana)
    assert (conversation.state, conversation.intent) == ("open", "negotiate")
    assert conversation.priority == PRIORITY_HIGH
    assert sorted(m.intent or "" for m in await shop.inbound(ana)) == ["negotiate", "other"]
    assert await _bodies(sandbox) == [OPERATOR_REPLY]


async def test_a_conversation_that_needs_an_operator_is_handed_to_one_who_takes_them(
    shop: Shop, run_jobs: Jobs, sandbox: httpx.AsyncClient, ids: Identities
) -> None:
    ana = await shop.debtor()
    operator = await ids.user()
    tenant = await shop.session.get(Tenant, shop.tenant_id)
    assert tenant is not None
    await ids.member(tenant, operator, Role.OPERATOR)
    shop.session.add(InboxOperator(tenant_id=shop.tenant_id, user_id=operator.id, auto_assign=True))
    await shop.session.flush()

    await _debtor_writes(sandbox, shop, ANA, "quero negociar essa dívida")
    await run_jobs()

    conversation = await shop.conversation(ana)
    assert (conversation.state, conversation.assignee_id) == ("open", operator.id)


async def test_a_promise_holds_the_regua_through_the_day_after_and_is_confirmed(
    shop: Shop, run_jobs: Jobs, sandbox: httpx.AsyncClient
) -> None:
    ana = await shop.debtor()
    pending = await shop.queued(ana)

    await _debtor_writes(sandbox, shop, ANA, "amanhã eu pago")
    await run_jobs()

    promised = _today() + timedelta(days=1)
    (hold,) = await shop.holds(ana)
    assert hold.kind == "promise"
    assert hold.until == datetime.combine(promised + timedelta(days=2), time(0), SP)
    assert (await shop.fresh(pending)).state == "cancelled"
    assert await _bodies(sandbox) == [
        f"Combinado, anotamos o pagamento para {promised.day:02d}/{promised.month:02d}."
    ]
    conversation = await shop.conversation(ana)
    assert (conversation.intent, conversation.state) == ("promise", "pending")


async def test_a_new_date_moves_the_promise_instead_of_adding_one(
    shop: Shop, run_jobs: Jobs, sandbox: httpx.AsyncClient
) -> None:
    ana = await shop.debtor()

    await _debtor_writes(sandbox, shop, ANA, "pago amanhã")
    await run_jobs()
    await _debtor_writes(sandbox, shop, ANA, "vou pagar semana que vem")
    await run_jobs()

    (hold,) = await shop.holds(ana)
    assert hold.until is not None and hold.until > datetime.now(UTC) + timedelta(days=5)
    assert len(await _bodies(sandbox)) == 2


async def test_a_promise_without_a_date_waits_for_an_operator(
    shop: Shop, run_jobs: Jobs, sandbox: httpx.AsyncClient
) -> None:
    ana = await shop.debtor()

    await _debtor_writes(sandbox, shop, ANA, "vou pagar")
    await run_jobs()

    conversation = await shop.conversation(ana)
    assert (conversation.state, conversation.intent) == ("open", "promise")
    assert await shop.holds(ana) == [] and await _bodies(sandbox) == []


async def test_a_dispute_marks_the_open_installments_holds_and_routes_to_an_operator(
    shop: Shop, run_jobs: Jobs, sandbox: httpx.AsyncClient
) -> None:
    ana = await shop.debtor()
    overdue = await shop.installment(ana, _today() - timedelta(days=10))
    paid = await shop.installment(ana, _today() - timedelta(days=40), number=2)
    paid.status = InstallmentStatus.PAID
    await shop.session.flush()
    pending = await shop.queued(ana)

    await _debtor_writes(sandbox, shop, ANA, "não reconheço essa compra")
    await run_jobs()

    assert (await shop.fresh(overdue)).status == "disputed"
    assert (await shop.fresh(paid)).status == "paid"
    (hold,) = await shop.holds(ana)
    assert (hold.kind, hold.until) == ("dispute", None)
    assert (await shop.fresh(pending)).state == "cancelled"
    conversation = await shop.conversation(ana)
    assert (conversation.state, conversation.intent) == ("open", "dispute")
    assert conversation.priority == PRIORITY_HIGH
    assert await _bodies(sandbox) == [DISPUTE_REPLY]
    (changed,) = await shop.audits("installment.status_changed")
    assert changed.data["to"] == "disputed"


async def test_anything_else_waits_in_the_inbox_without_an_answer(
    shop: Shop, run_jobs: Jobs, sandbox: httpx.AsyncClient
) -> None:
    ana = await shop.debtor()

    await _debtor_writes(sandbox, shop, ANA, "boa tarde, quem fala?")
    await run_jobs()

    conversation = await shop.conversation(ana)
    assert (conversation.state, conversation.intent) == ("open", "other")
    assert conversation.priority == PRIORITY_NORMAL
    assert await _bodies(sandbox) == []


async def test_a_customer_the_retailer_must_not_contact_gets_no_automatic_answer(
    shop: Shop, run_jobs: Jobs, sandbox: httpx.AsyncClient
) -> None:
    ana = await shop.debtor(do_not_contact=True)
    await shop.installment(ana, _today() - timedelta(days=3))

    await _debtor_writes(sandbox, shop, ANA, "manda o pix")
    await run_jobs()

    assert await _bodies(sandbox) == []
    assert (await shop.conversation(ana)).state == "open"


# --- replays and tenants -----------------------------------------------------------------------


async def test_processing_the_same_messages_again_acts_once(
    shop: Shop, run_jobs: Jobs, sandbox: httpx.AsyncClient
) -> None:
    ana = await shop.debtor()
    await shop.installment(ana, _today() - timedelta(days=3))
    for body in ("já paguei", "quero negociar", "não reconheço", "manda o pix"):
        await _debtor_writes(sandbox, shop, ANA, body)
        await run_jobs()
    sent = await _bodies(sandbox)

    await _replay(shop, run_jobs)
    await _replay(shop, run_jobs)

    # three texts (receipt asked, dispute noted, the Pix) and the offer menu, each once
    assert await _bodies(sandbox) == sent and len(sent) == 3
    menus = [m for m in await _sandbox_messages(sandbox) if m["type"] == "interactive"]
    assert len(menus) == 1
    assert sorted(h.kind for h in await shop.holds(ana)) == ["dispute", "paid_claim"]
    assert len(await shop.audits("hold.created")) == 2


async def test_a_reply_to_one_retailer_changes_nothing_at_another_with_the_same_customer(
    shop: Shop, run_jobs: Jobs, sandbox: httpx.AsyncClient, session: AsyncSession, ids: Identities
) -> None:
    ana_here = await shop.debtor()
    base = await _retailer(session, ids, "Loja Vizinha", PHONE_B, WABA_B)
    other = Shop(base.session, base.tenant_id, base.channel)
    ana_there = await other.debtor()
    theirs = await other.queued(ana_there)

    await _debtor_writes(sandbox, shop, ANA, "pare")
    await run_jobs()
    await _debtor_writes(sandbox, shop, ANA, "já paguei")
    await run_jobs()

    assert sorted((await shop.fresh(ana_here)).opted_out) == ["email", "sms", "whatsapp"]
    assert (await other.fresh(ana_there)).opted_out == []
    assert (await other.fresh(theirs)).state == "queued"
    assert await other.holds(ana_there) == []
    assert await other.conversations() == []
    assert await _bodies(sandbox) == [OPTED_OUT_REPLY, ASK_RECEIPT_REPLY]


# --- end to end --------------------------------------------------------------------------------


async def test_a_reminder_answered_with_ja_paguei_holds_the_regua_for_the_operator(
    shop: Shop, run_jobs: Jobs, sandbox: httpx.AsyncClient
) -> None:
    """The reminder leaves through the sandbox; the debtor taps its "Já paguei" button; the
    next reminder is held back and the operator finds the conversation at the top."""
    approved = [{"name": d.name, "body": templating.compile_body(d.body).text} for d in DEFAULTS]
    await sandbox.post(f"/_sandbox/whatsapp/wabas/{WABA_A}", json={"templates": approved})
    await shop.session.execute(
        update(MessageTemplate)
        .where(MessageTemplate.tenant_id == shop.tenant_id)
        .values(status=TemplateStatus.APPROVED)
    )
    await shop.pix()
    ana = await shop.debtor(state="SP", city="São Paulo")
    await shop.installment(ana, _today() - timedelta(days=5))
    morning = datetime.combine(_today(), time(10), SP)
    reminder = await remind(shop.session, shop.tenant_id, ana.id, morning)
    assert await sending.send_attempt(shop.session, reminder.id, now=morning) == "sent"
    await shop.fresh(reminder)
    button = next(b for b in QUICK_REPLIES if b["text"] == "Já paguei")

    tap = await sandbox.post(
        f"/_sandbox/whatsapp/numbers/{PHONE_A}/replies",
        json={
            "from": ANA,
            "type": "button",
            "text": button["text"],
            "payload": button["payload"],
            "context_id": reminder.provider_message_id,
        },
    )
    await shop.receive(tap.json())
    await run_jobs()

    (tapped,) = await shop.inbound(ana)
    assert (tapped.attempt_id, tapped.intent) == (reminder.id, "already_paid")
    (hold,) = await shop.holds(ana)
    assert hold.kind == "paid_claim"
    conversation = await shop.conversation(ana)
    assert (conversation.state, conversation.intent, conversation.priority) == (
        "open",
        "already_paid",
        PRIORITY_HIGH,
    )
    assert await _bodies(sandbox) == [ASK_RECEIPT_REPLY]
    held = await remind(shop.session, shop.tenant_id, ana.id, datetime.now(UTC))
    assert (held.state, held.reason) == ("skipped", "hold_paid_claim")


# --- routing -----------------------------------------------------------------------------------


@given(st.lists(st.sampled_from(list(IntentKind)), min_size=1, max_size=12))
def test_routing_never_hides_what_an_operator_must_see(kinds: list[IntentKind]) -> None:
    """Whatever the debtor writes next, a request for an operator stays open at the top, and a
    message of no intent never erases the conversation's intent."""
    conversation = Conversation(priority=PRIORITY_NORMAL, intent=None, state="open")
    for n, kind in enumerate(kinds):
        before = conversation.priority
        route(conversation, kind, needs_operator=kind in (IntentKind.OTHER,))
        assert conversation.priority >= before
        seen = kinds[: n + 1]
        if set(seen) & HIGH_PRIORITY:
            assert (conversation.state, conversation.priority) == ("open", PRIORITY_HIGH)
        meaningful = [k for k in seen if k is not IntentKind.OTHER]
        assert conversation.intent == (meaningful[-1] if meaningful else IntentKind.OTHER)
