"""Inbound WhatsApp messages, as the contract's payloads arrive: matched to the customer with or
without the ninth digit or by BSUID, recorded once in one conversation per customer, threaded to
the reminder they answer, opening the 24-hour window — and a stranger gets one generic answer
a day, counted on the sandbox's side."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.sandbox.app import create_app as sandbox_app
from services.sandbox.state import SandboxState
from shared.brazil.phones import whatsapp_key
from shared.domains.audit.service import Actor
from shared.domains.channels import schemas, senders
from shared.domains.channels import service as channels
from shared.domains.inbound import journal
from shared.domains.inbound.conversations import (
    UNKNOWN_SENDER_REPLY,
    WindowClosed,
    apply_status,
    conversation_of,
    record_outbound,
    window_open,
)
from shared.domains.inbound.replies import next_status
from shared.domains.inbound.whatsapp import split
from shared.integrations.whatsapp import WhatsAppClient
from shared.models import (
    Channel,
    ContactAttempt,
    Conversation,
    ConversationMessage,
    Customer,
    CustomerPhone,
    OutboundStatus,
)
from shared.tenancy import SYSTEM, tenant_scope, use_scope
from tests.support.identity import Identities

ACTOR = Actor("cli", None)
PHONE_A, WABA_A, TOKEN_A = "5511000071", "5511000072", "tok-71"
PHONE_B, WABA_B = "5511000081", "5511000082"
MARIA = "+5531988887777"  # her WhatsApp account predates the ninth digit: 553188887777
Jobs = Callable[[], Awaitable[list[Any]]]


def _now_ts(shift_s: int = 0) -> str:
    return str(int(time.time()) + shift_s)


class Retailer:
    """A retailer with a WhatsApp number: its customers, reminders and incoming messages."""

    def __init__(self, session: AsyncSession, tenant_id: uuid.UUID, channel: Channel) -> None:
        self.session, self.tenant_id, self.channel = session, tenant_id, channel
        self.count = 0

    async def customer(self, phone: str = MARIA, **phone_fields: Any) -> Customer:
        self.count += 1
        row = Customer(
            tenant_id=self.tenant_id, external_id=f"C-{self.count}", name="Maria Exemplo"
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
                **phone_fields,
            )
        )
        await self.session.flush()
        return row

    async def reminder(self, customer: Customer, wamid: str) -> ContactAttempt:
        now = datetime.now(UTC)
        attempt = ContactAttempt(
            tenant_id=self.tenant_id,
            customer_id=customer.id,
            channel="whatsapp",
            channel_id=self.channel.id,
            state="sent",
            contact_day=now.date(),
            planned_for=now,
            sent_at=now,
            provider_message_id=wamid,
        )
        self.session.add(attempt)
        await self.session.flush()
        return attempt

    async def receive(self, *messages: dict[str, Any], name: str = "Maria") -> None:
        """Journal one signed-and-verified POST carrying ``messages`` (contract §5.6 e to g)."""
        senders_ = {m.get("from") or "" for m in messages}
        contacts = [{"profile": {"name": name}, "wa_id": s} for s in senders_ if s]
        for message in messages:
            if not message.get("from") and message.get("from_user_id"):
                contacts.append(
                    {"profile": {"name": name}, "wa_id": "", "user_id": message["from_user_id"]}
                )
        payload = {
            "object": "whatsapp_business_account",
            "entry": [
                {
                    "id": self.channel.config["waba_id"],
                    "changes": [
                        {
                            "field": "messages",
                            "value": {
                                "messaging_product": "whatsapp",
                                "metadata": {
                                    "display_phone_number": "551140000000",
                                    "phone_number_id": self.channel.config["phone_number_id"],
                                },
                                "contacts": contacts,
                                "messages": list(messages),
                            },
                        }
                    ],
                }
            ],
        }
        events = [
            journal.EventIn(
                e.key, e.kind, e.payload, e.occurred_at, self.tenant_id, self.channel.id
            )
            for e in split(payload)
        ]
        await use_scope(self.session, SYSTEM)  # the receiver journals as the platform
        await journal.journal(
            self.session,
            journal.post(provider="whatsapp", body=b"{}", content_type=None, events=events),
        )

    async def conversations(self) -> list[Conversation]:
        await use_scope(self.session, SYSTEM)
        rows = await self.session.scalars(
            select(Conversation)
            .where(Conversation.tenant_id == self.tenant_id)
            .order_by(Conversation.created_at)
            .execution_options(populate_existing=True)
        )
        return list(rows)

    async def received(self, conversation: Conversation) -> list[ConversationMessage]:
        """What the person sent (the answers the intent layer gives are in test_actions)."""
        return [m for m in await self.messages(conversation) if m.direction == "in"]

    async def messages(self, conversation: Conversation) -> list[ConversationMessage]:
        rows = await self.session.scalars(
            select(ConversationMessage)
            .where(ConversationMessage.conversation_id == conversation.id)
            .order_by(ConversationMessage.occurred_at, ConversationMessage.direction)
            .execution_options(populate_existing=True)
        )
        return list(rows)


def _text(sender: str, wamid: str, body: str, ts: str | None = None) -> dict[str, Any]:
    return {
        "from": sender,
        "id": wamid,
        "timestamp": ts or _now_ts(),
        "type": "text",
        "text": {"body": body},
    }


async def _retailer(
    session: AsyncSession, ids: Identities, name: str, number: str, waba: str
) -> Retailer:
    party = await ids.party(name)
    await use_scope(session, SYSTEM)
    channel = await channels.create(
        session,
        party.tenant.id,
        schemas.WhatsAppIn(
            name="WhatsApp",
            phone_number_id=number,
            waba_id=waba,
            display_number="+55 11 4000-0071",
            access_token=TOKEN_A,
            app_secret="sec-71",
            verify_token="v-71",
        ),
        ACTOR,
    )
    await session.flush()
    return Retailer(session, party.tenant.id, channel)


@pytest.fixture
async def sandbox(
    http_client: Callable[..., Awaitable[httpx.AsyncClient]], redis: aioredis.Redis
) -> AsyncIterator[httpx.AsyncClient]:
    client = await http_client(sandbox_app, whatsapp=SandboxState(11))
    for number, waba in ((PHONE_A, WABA_A), (PHONE_B, WABA_B)):
        registered = await client.post(
            "/_sandbox/whatsapp/numbers",
            json={
                "phone_number_id": number,
                "waba_id": waba,
                "display_phone_number": number,
                "access_token": TOKEN_A,
                "app_secret": "sec-71",
            },
        )
        assert registered.status_code == 201, registered.text
    wa = WhatsAppClient(base_url="http://test", transport=client._transport)
    with senders.using_clients(wa, sms_transport=client._transport, redis=redis):
        yield client


@pytest.fixture
async def shop(session: AsyncSession, ids: Identities, sandbox: httpx.AsyncClient) -> Retailer:
    return await _retailer(session, ids, "Loja Conversa", PHONE_A, WABA_A)


async def _sandbox_texts(sandbox: httpx.AsyncClient, number: str = PHONE_A) -> list[Any]:
    activity = await sandbox.get(f"/_sandbox/whatsapp/numbers/{number}", params={"wait": "true"})
    return [m for m in activity.json()["sent"] if m["type"] == "text"]


async def _debtor_writes(
    sandbox: httpx.AsyncClient, shop: Retailer, phone: str, body: str, number: str = PHONE_A
) -> None:
    """The person writes on the sandbox (which opens its window) and the webhook reaches us."""
    reply = await sandbox.post(
        f"/_sandbox/whatsapp/numbers/{number}/replies",
        json={"from": phone, "type": "text", "text": body},
    )
    assert reply.status_code == 201, reply.text
    await shop.receive(reply.json())


# --- matching and the window -------------------------------------------------------------------


async def test_a_text_from_a_legacy_wa_id_lands_in_the_customers_conversation_with_the_window(
    shop: Retailer, run_jobs: Jobs
) -> None:
    maria = await shop.customer()
    sent_at = int(time.time()) - 3600

    await shop.receive(_text("553188887777", "wamid.T1", "Bom dia", str(sent_at)))
    await run_jobs()

    (conversation,) = await shop.conversations()
    assert conversation.customer_id == maria.id
    assert conversation.state == "open" and conversation.channel_id == shop.channel.id
    opened = datetime.fromtimestamp(sent_at, UTC)
    assert conversation.last_inbound_at == opened
    assert conversation.window_expires_at == opened + timedelta(hours=24)
    assert window_open(conversation, opened + timedelta(hours=23, minutes=59))
    assert not window_open(conversation, opened + timedelta(hours=24))
    (message,) = await shop.messages(conversation)
    assert (message.direction, message.kind, message.text) == ("in", "text", "Bom dia")
    phone = await shop.session.scalar(
        select(CustomerPhone)
        .where(CustomerPhone.customer_id == maria.id)
        .execution_options(populate_existing=True)
    )
    assert phone is not None and phone.whatsapp_id == "553188887777"  # learned
    assert await conversation_of(shop.session, shop.tenant_id, maria.id) == conversation


async def test_the_full_number_with_the_ninth_digit_matches_too(
    shop: Retailer, run_jobs: Jobs
) -> None:
    maria = await shop.customer()

    await shop.receive(_text("5531988887777", "wamid.T2", "oi"))
    await run_jobs()

    (conversation,) = await shop.conversations()
    assert conversation.customer_id == maria.id


async def test_a_quick_reply_tap_is_threaded_to_the_reminder_it_answers(
    shop: Retailer, run_jobs: Jobs
) -> None:
    maria = await shop.customer()
    reminder = await shop.reminder(maria, "wamid.REMINDER1")
    tap = {
        "context": {"from": "551140000000", "id": "wamid.REMINDER1"},
        "from": "553188887777",
        "id": "wamid.TAP1",
        "timestamp": _now_ts(),
        "type": "button",
        "button": {"payload": "PAID:8841", "text": "Já paguei"},
    }

    await shop.receive(tap)
    await run_jobs()

    (conversation,) = await shop.conversations()
    (message,) = await shop.received(conversation)
    assert (message.kind, message.payload, message.text) == ("button", "PAID:8841", "Já paguei")
    assert message.context_message_id == "wamid.REMINDER1"
    assert message.attempt_id == reminder.id
    assert window_open(conversation)  # a quick-reply tap opens the window (§4.9)


async def test_reply_buttons_and_list_rows_are_recorded_by_their_ids(
    shop: Retailer, run_jobs: Jobs
) -> None:
    await shop.customer()
    button = {
        "context": {"from": "551140000000", "id": "wamid.MENU"},
        "from": "553188887777",
        "id": "wamid.I1",
        "timestamp": _now_ts(-10),
        "type": "interactive",
        "interactive": {
            "type": "button_reply",
            "button_reply": {"id": "PAY_PIX:8841", "title": "PIX"},
        },
    }
    row = {
        "from": "553188887777",
        "id": "wamid.I2",
        "timestamp": _now_ts(),
        "type": "interactive",
        "interactive": {
            "type": "list_reply",
            "list_reply": {
                "id": "priority_express",
                "title": "Priority Mail Express",
                "description": "Next Day to 2 Days",
            },
        },
    }

    await shop.receive(button, row)
    await run_jobs()

    (conversation,) = await shop.conversations()
    first, second = await shop.received(conversation)
    assert (first.kind, first.payload, first.text) == ("interactive", "PAY_PIX:8841", "PIX")
    assert first.attempt_id is None  # it quotes a message that is no reminder of ours
    assert (second.payload, second.details["interactive"]) == ("priority_express", "list_reply")


async def test_an_image_is_recorded_by_its_media_id_without_downloading_it(
    shop: Retailer, run_jobs: Jobs, sandbox: httpx.AsyncClient
) -> None:
    await shop.customer()
    image = {
        "from": "553188887777",
        "id": "wamid.IMG1",
        "timestamp": _now_ts(),
        "type": "image",
        "image": {
            "id": "1479537139650973",
            "mime_type": "image/jpeg",
            "sha256": "29ed500fa64eb55fc19dc4124acb300e5dcca0f822a301ae99944db",
            "caption": "comprovante",
        },
    }

    await shop.receive(image)
    await run_jobs()

    (conversation,) = await shop.conversations()
    (message,) = await shop.received(conversation)
    assert (message.kind, message.media_id, message.media_mime) == (
        "image",
        "1479537139650973",
        "image/jpeg",
    )
    assert message.text == "comprovante" and "sha256" in message.details


async def test_a_reaction_is_recorded_and_refreshes_the_window_but_reopens_nothing(
    shop: Retailer, run_jobs: Jobs
) -> None:
    maria = await shop.customer()
    reminder = await shop.reminder(maria, "wamid.REMINDER2")
    await shop.receive(_text("553188887777", "wamid.R0", "ok", _now_ts(-7200)))
    await run_jobs()
    (conversation,) = await shop.conversations()
    await shop.session.execute(
        update(Conversation).where(Conversation.id == conversation.id).values(state="resolved")
    )
    reaction = {
        "from": "553188887777",
        "id": "wamid.R1",
        "timestamp": _now_ts(),
        "type": "reaction",
        "reaction": {"message_id": "wamid.REMINDER2", "emoji": "\U0001f44d"},
    }

    await shop.receive(reaction)
    await run_jobs()

    (conversation,) = await shop.conversations()
    assert conversation.state == "resolved"
    _, message = await shop.messages(conversation)
    assert (message.kind, message.text) == ("reaction", "\U0001f44d")
    assert message.attempt_id == reminder.id
    assert conversation.window_expires_at is not None
    assert conversation.window_expires_at > datetime.now(UTC) + timedelta(hours=23)


async def test_a_bsuid_learned_once_matches_the_messages_that_carry_only_the_bsuid(
    shop: Retailer, run_jobs: Jobs
) -> None:
    maria = await shop.customer()
    first = {**_text("553188887777", "wamid.B1", "oi", _now_ts(-60)), "from_user_id": "BR.1349"}
    await shop.receive(first)
    await run_jobs()
    username_only = {**_text("", "wamid.B2", "sou eu de novo"), "from_user_id": "BR.1349"}

    await shop.receive(username_only)
    await run_jobs()

    (conversation,) = await shop.conversations()
    assert conversation.customer_id == maria.id and conversation.bsuid == "BR.1349"
    assert [m.provider_message_id for m in await shop.messages(conversation)] == [
        "wamid.B1",
        "wamid.B2",
    ]


async def test_a_bsuid_only_reply_to_a_reminder_belongs_to_the_reminders_customer(
    shop: Retailer, run_jobs: Jobs
) -> None:
    maria = await shop.customer()
    await shop.reminder(maria, "wamid.REMINDER3")
    reply = {
        **_text("", "wamid.B3", "vou pagar"),
        "from_user_id": "BR.7777",
        "context": {"from": "551140000000", "id": "wamid.REMINDER3"},
    }

    await shop.receive(reply)
    await run_jobs()

    (conversation,) = await shop.conversations()
    assert conversation.customer_id == maria.id and conversation.bsuid == "BR.7777"


async def test_a_number_marked_as_a_wrong_person_matches_no_customer(
    shop: Retailer, run_jobs: Jobs
) -> None:
    await shop.customer(status="wrong_person")

    await shop.receive(_text("553188887777", "wamid.W1", "não sou a Maria", _now_ts(-90000)))
    await run_jobs()

    (conversation,) = await shop.conversations()
    assert conversation.customer_id is None and conversation.sender_key == "wa:553188887777"


# --- duplicates and order ----------------------------------------------------------------------


async def test_the_same_event_processed_twice_or_delivered_twice_records_one_message(
    shop: Retailer, run_jobs: Jobs
) -> None:
    await shop.customer()
    message = _text("553188887777", "wamid.D1", "quero parcelar")

    await shop.receive(message)
    await shop.receive(message)  # Meta's redelivery: journaled once
    await run_jobs()
    await journal.replay(
        shop.session, since=datetime(2000, 1, 1, tzinfo=UTC), include_processed=True
    )
    await run_jobs()

    (conversation,) = await shop.conversations()
    assert [m.provider_message_id for m in await shop.received(conversation)] == ["wamid.D1"]


async def test_messages_arriving_out_of_order_never_shorten_the_window(
    shop: Retailer, run_jobs: Jobs
) -> None:
    maria = await shop.customer()
    newer, older = int(time.time()), int(time.time()) - 5 * 3600

    await shop.receive(_text("553188887777", "wamid.O2", "segunda", str(newer)))
    await run_jobs()
    await shop.receive(_text("553188887777", "wamid.O1", "primeira", str(older)))
    await run_jobs()

    (conversation,) = await shop.conversations()
    assert conversation.customer_id == maria.id
    assert conversation.last_inbound_at == datetime.fromtimestamp(newer, UTC)
    assert conversation.window_expires_at == datetime.fromtimestamp(newer, UTC) + timedelta(
        hours=24
    )
    assert [m.text for m in await shop.received(conversation)] == ["primeira", "segunda"]


# --- unknown senders ---------------------------------------------------------------------------


async def test_an_unknown_sender_gets_one_generic_answer_a_day_whatever_is_replayed(
    shop: Retailer, run_jobs: Jobs, sandbox: httpx.AsyncClient
) -> None:
    await shop.customer()  # Maria is a customer; the stranger is not
    stranger = "+5521977776666"

    await _debtor_writes(sandbox, shop, stranger, "Quem é?")
    await run_jobs()
    await _debtor_writes(sandbox, shop, stranger, "Alô?")
    await run_jobs()
    await journal.replay(
        shop.session, since=datetime(2000, 1, 1, tzinfo=UTC), include_processed=True
    )
    await run_jobs()

    (text_sent,) = await _sandbox_texts(sandbox)
    assert text_sent["to"] == "5521977776666"
    assert text_sent["payload"]["text"]["body"] == UNKNOWN_SENDER_REPLY
    for revealing in ("R$", "dívida", "débito", "parcela", "CPF", "Loja Conversa", "Maria"):
        assert revealing not in UNKNOWN_SENDER_REPLY
    (conversation,) = await shop.conversations()
    assert conversation.customer_id is None and conversation.wa_id == "5521977776666"
    recorded = await shop.messages(conversation)
    (answer,) = [m for m in recorded if m.direction == "out"]
    assert len(recorded) == 3 and (answer.status, answer.sent_by) == ("sent", None)
    assert answer.provider_message_id == text_sent["id"]
    assert conversation.last_outbound_at is not None


async def test_a_stranger_whose_message_is_older_than_a_day_gets_no_answer(
    shop: Retailer, run_jobs: Jobs, sandbox: httpx.AsyncClient
) -> None:
    await shop.receive(_text("5521977776666", "wamid.OLD", "oi", _now_ts(-25 * 3600)))
    await run_jobs()

    assert await _sandbox_texts(sandbox) == []
    (conversation,) = await shop.conversations()
    assert not window_open(conversation)


# --- tenants -----------------------------------------------------------------------------------


async def test_another_retailers_number_never_reaches_this_retailers_customer(
    shop: Retailer, run_jobs: Jobs, session: AsyncSession, ids: Identities
) -> None:
    maria = await shop.customer()
    await shop.reminder(maria, "wamid.REMINDER4")
    other = await _retailer(session, ids, "Loja Vizinha", PHONE_B, WABA_B)
    quote = {
        **_text("553188887777", "wamid.X1", "oi"),
        "context": {"from": "551140000000", "id": "wamid.REMINDER4"},
    }

    await other.receive(quote)
    await run_jobs()

    assert await shop.conversations() == []
    (theirs,) = await other.conversations()
    assert theirs.customer_id is None
    (message,) = [m for m in await other.messages(theirs) if m.direction == "in"]
    assert message.attempt_id is None  # A's reminder is not B's to thread to


async def test_row_level_security_keeps_each_retailers_conversations_to_itself(
    shop: Retailer, run_jobs: Jobs, session: AsyncSession, ids: Identities
) -> None:
    await shop.customer()
    other = await _retailer(session, ids, "Loja Vizinha", PHONE_B, WABA_B)
    await shop.receive(_text("553188887777", "wamid.A1", "oi A", _now_ts(-90000)))
    await other.receive(_text("553188887777", "wamid.B1", "oi B", _now_ts(-90000)))
    await run_jobs()

    for tenant in (shop.tenant_id, other.tenant_id):
        await use_scope(session, tenant_scope(tenant))
        for table in ("conversations", "conversation_messages"):
            seen = (await session.execute(text(f"SELECT tenant_id FROM {table}"))).scalars()
            assert set(seen) == {tenant}, table


# --- replies and their statuses ----------------------------------------------------------------


async def test_an_operator_reply_goes_inside_the_window_and_is_refused_outside_it(
    shop: Retailer, run_jobs: Jobs, sandbox: httpx.AsyncClient, ids: Identities
) -> None:
    maria = await shop.customer(phone="+5511987650071")
    await _debtor_writes(sandbox, shop, "+5511987650071", "preciso falar com alguém")
    await run_jobs()
    conversation = await conversation_of(shop.session, shop.tenant_id, maria.id)
    assert conversation is not None
    operator = await ids.user()

    reply = await record_outbound(
        shop.session, conversation, text="Claro, segue.", sent_by=operator.id, dedupe_key="k1"
    )
    again = await record_outbound(
        shop.session, conversation, text="Claro, segue.", sent_by=operator.id, dedupe_key="k1"
    )
    await run_jobs()

    assert again.id == reply.id
    (sent,) = await _sandbox_texts(sandbox)
    assert sent["payload"]["text"]["body"] == "Claro, segue."
    (conversation,) = await shop.conversations()
    assert conversation.state == "pending"
    assert conversation.window_expires_at is not None
    later = conversation.window_expires_at + timedelta(seconds=1)
    with pytest.raises(WindowClosed):
        await record_outbound(shop.session, conversation, text="E aí?", now=later)


async def test_statuses_of_a_reply_move_it_forward_in_any_order(
    shop: Retailer, run_jobs: Jobs, sandbox: httpx.AsyncClient
) -> None:
    await shop.customer(phone="+5511987650072")
    await _debtor_writes(sandbox, shop, "+5511987650072", "oi")
    await run_jobs()
    (conversation,) = await shop.conversations()
    reply = await record_outbound(shop.session, conversation, text="Olá!")
    await run_jobs()
    await shop.session.refresh(reply)
    wamid = reply.provider_message_id

    for status in ("read", "delivered", "sent"):
        assert await apply_status(shop.session, shop.tenant_id, {"id": wamid, "status": status})
    foreign = {"id": "wamid.NOT-OURS", "status": "read"}

    assert not await apply_status(shop.session, shop.tenant_id, foreign)
    await shop.session.refresh(reply)
    assert reply.status == "read"


_REPORTS = [OutboundStatus.SENT, OutboundStatus.DELIVERED, OutboundStatus.READ]


@given(st.lists(st.sampled_from([*_REPORTS, OutboundStatus.FAILED]), min_size=1, max_size=8))
def test_the_final_status_does_not_depend_on_the_order_reports_arrive(
    reports: list[OutboundStatus],
) -> None:
    def final(order: list[OutboundStatus]) -> OutboundStatus:
        status: OutboundStatus | None = OutboundStatus.SENDING
        for reported in order:
            status = next_status(status, reported)
        assert status is not None
        return status

    assert final(reports) == final(list(reversed(reports))) == final(sorted(reports))
    if any(r in (OutboundStatus.DELIVERED, OutboundStatus.READ) for r in reports):
        assert final(reports) != OutboundStatus.FAILED  # a delivery outranks a failure
