"""Every webhook example of the WhatsApp contract (reference/whatsapp-cloud-api.md §5.6 a to l),
signed and posted to the webhooks service, then processed by the ``inbound`` jobs: the end state
a retailer or a debtor would notice — the reminder's status and its times, the failure and
whether another channel takes over, the reply in the customer's conversation with its window,
the quick reply acted on, the new number, the template's verdict — and the same again however
the events come: twice, reordered, batched, in two POSTs, or replayed from the journal."""

from __future__ import annotations

import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.webhooks.app import create_app as webhooks_app
from shared.domains.collections.sending import callback_data
from shared.domains.inbound import journal
from shared.domains.inbound.actions import (
    ASK_RECEIPT_REPLY,
    OPTED_OUT_REPLY,
    PRIORITY_HIGH,
)
from shared.domains.inbound.intents import PAYLOAD_NEGOTIATE, PAYLOAD_PAID, PAYLOAD_SECOND_COPY
from shared.models import (
    ContactAttempt,
    Customer,
    CustomerPhone,
    MessageTemplate,
    TemplateStatus,
    WebhookEvent,
)
from shared.tenancy import SYSTEM, use_scope
from tests.shared.domains.inbound import test_conversations
from tests.shared.domains.inbound.test_actions import ANA, ANA_WA, Shop, _bodies
from tests.shared.domains.inbound.test_conversations import PHONE_A, WABA_A, _retailer
from tests.support import whatsapp_events as wa
from tests.support.identity import Identities

APP_SECRET = "sec-71"  # the test channel's, as the sandbox knows it too
BIA = "+5511987650092"
BIA_WA = "5511987650092"
ANA_NEW_WA = "5511987650093"  # the number Ana moves to
ANA_NEW = "+" + ANA_NEW_WA
Jobs = Callable[[], Awaitable[list[Any]]]
EPOCH = datetime(2000, 1, 1, tzinfo=UTC)

sandbox = test_conversations.sandbox  # the WhatsApp sandbox: Meta's side of the debtor's window


def _wamid() -> str:
    return "wamid.HBgN" + secrets.token_urlsafe(24)


def _today() -> date:
    return datetime.now(UTC).date()


@dataclass
class Scene:
    """A retailer's WhatsApp number with two debtors (Ana owes, with Pix set up; Bia too), a
    reminder delivered to Ana's phone, one whose send call got no answer (``unknown``), one
    still queued, and a template waiting for Meta's review."""

    shop: Shop
    hooks: httpx.AsyncClient
    sandbox: httpx.AsyncClient
    run_jobs: Jobs
    number: wa.Number
    ana: Customer
    bia: Customer
    reminder: ContactAttempt
    lost: ContactAttempt
    pending: ContactAttempt
    template: MessageTemplate
    now: int

    async def post(self, payload: wa.Payload) -> dict[str, int]:
        response = await wa.post(self.hooks, payload, APP_SECRET)
        assert response.status_code == 200, response.text
        answer: dict[str, int] = response.json()
        return answer

    async def deliver(self, *payloads: wa.Payload) -> None:
        """Each payload POSTed, then its events processed, one POST at a time."""
        for payload in payloads:
            await self.post(payload)
            await self.run_jobs()

    async def writes(self, phone: str, **reply: Any) -> tuple[str, int, str]:
        """The debtor writes on the sandbox (which opens Meta's side of the window): the
        message's wamid, timestamp and sender as Meta's webhook will carry them."""
        made = await self.sandbox.post(
            f"/_sandbox/whatsapp/numbers/{PHONE_A}/replies", json={"from": phone, **reply}
        )
        assert made.status_code == 201, made.text
        message = made.json()
        return message["id"], int(message["timestamp"]), message["from"]

    async def fresh(self, row: Any) -> Any:
        return await self.shop.fresh(row)

    async def events(self) -> list[WebhookEvent]:
        await use_scope(self.shop.session, SYSTEM)
        rows = await self.shop.session.scalars(
            select(WebhookEvent)
            .where(WebhookEvent.tenant_id == self.shop.tenant_id)
            .order_by(WebhookEvent.id)
            .execution_options(populate_existing=True)
        )
        return list(rows)

    async def phones(self, customer: Customer) -> dict[str, CustomerPhone]:
        await use_scope(self.shop.session, SYSTEM)
        rows = await self.shop.session.scalars(
            select(CustomerPhone)
            .where(CustomerPhone.customer_id == customer.id)
            .execution_options(populate_existing=True)
        )
        return {p.number: p for p in rows}

    async def replay(self) -> None:
        """``quita webhooks replay --all``: every journaled event processed once more."""
        await use_scope(self.shop.session, SYSTEM)
        await journal.replay(self.shop.session, since=EPOCH, include_processed=True)
        await self.run_jobs()


async def _attempt(shop: Shop, customer: Customer, state: str, **fields: Any) -> ContactAttempt:
    now = datetime.now(UTC)
    values: dict[str, Any] = {"planned_for": now, **fields}
    attempt = ContactAttempt(
        tenant_id=shop.tenant_id,
        customer_id=customer.id,
        channel="whatsapp",
        channel_id=shop.channel.id,
        recipient=ANA,
        state=state,
        contact_day=now.date(),
        template_name="vence_hoje",
        **values,
    )
    shop.session.add(attempt)
    await shop.session.flush()
    return attempt


@pytest.fixture
async def scene(
    session: AsyncSession,
    ids: Identities,
    sandbox: httpx.AsyncClient,
    http_client: Callable[..., Awaitable[httpx.AsyncClient]],
    run_jobs: Jobs,
) -> Scene:
    base = await _retailer(session, ids, "Loja Contrato", PHONE_A, WABA_A)
    shop = Shop(base.session, base.tenant_id, base.channel)
    await shop.pix()
    ana = await shop.debtor()
    bia = await shop.debtor(phone=BIA)
    for customer in (ana, bia):
        await shop.installment(customer, _today() - timedelta(days=5), "150.00")
    sent_at = datetime.now(UTC) - timedelta(minutes=30)
    reminder = await _attempt(
        shop, ana, "sent", provider_message_id=_wamid(), sent_at=sent_at, fallback_channel="sms"
    )
    lost = await _attempt(shop, ana, "unknown", sending_at=sent_at)
    pending = await _attempt(
        shop, ana, "queued", planned_for=datetime.now(UTC) + timedelta(hours=3)
    )
    template = await session.scalar(
        select(MessageTemplate).where(
            MessageTemplate.tenant_id == shop.tenant_id,
            MessageTemplate.channel_kind == "whatsapp",
            MessageTemplate.key == "vence_hoje",
        )
    )
    assert template is not None
    template.status = TemplateStatus.PENDING
    await session.flush()
    return Scene(
        shop=shop,
        hooks=await http_client(webhooks_app),
        sandbox=sandbox,
        run_jobs=run_jobs,
        number=wa.Number(PHONE_A, WABA_A),
        ana=ana,
        bia=bia,
        reminder=reminder,
        lost=lost,
        pending=pending,
        template=template,
        now=int(time.time()),
    )


# --- the examples, with the scene's ids ---------------------------------------------------------

Example = Callable[[Scene], Awaitable[wa.Payload]]


async def _a(s: Scene) -> wa.Payload:
    return wa.sent(s.number, _wamid(), ANA_WA, s.now - 60, callback_data(s.lost.id))


async def _b(s: Scene) -> wa.Payload:
    assert s.reminder.provider_message_id is not None
    return wa.delivered(s.number, s.reminder.provider_message_id, ANA_WA, s.now - 50)


async def _c(s: Scene) -> wa.Payload:
    assert s.reminder.provider_message_id is not None
    return wa.read(s.number, s.reminder.provider_message_id, ANA_WA, s.now - 40)


async def _d(s: Scene) -> wa.Payload:
    assert s.reminder.provider_message_id is not None
    return wa.failed(s.number, s.reminder.provider_message_id, ANA_WA, s.now - 50)


async def _e(s: Scene) -> wa.Payload:
    body = "Does it come in another color?"
    wamid, ts, sender = await s.writes(ANA, text=body)
    return wa.text(s.number, sender, wamid, ts, body)


async def _f(s: Scene) -> wa.Payload:
    assert s.reminder.provider_message_id is not None
    wamid, ts, sender = await s.writes(ANA, type="button", payload=PAYLOAD_PAID, text="Já paguei")
    return wa.button(
        s.number,
        sender,
        wamid,
        ts,
        context_id=s.reminder.provider_message_id,
        payload=PAYLOAD_PAID,
        title="Já paguei",
    )


async def _g(s: Scene) -> wa.Payload:
    assert s.reminder.provider_message_id is not None
    reply = {"id": PAYLOAD_NEGOTIATE, "title": "Quero negociar"}
    wamid, ts, sender = await s.writes(
        ANA, type="interactive", reply_id=reply["id"], reply_title=reply["title"]
    )
    return wa.interactive(
        s.number, sender, wamid, ts, context_id=s.reminder.provider_message_id, reply=reply
    )


async def _h(s: Scene) -> wa.Payload:
    return wa.changed_number(s.number, ANA_WA, ANA_NEW_WA, _wamid(), s.now - 30)


async def _i(s: Scene) -> wa.Payload:
    return wa.unsupported(s.number, ANA_WA, _wamid(), s.now - 20)


async def _j(s: Scene) -> wa.Payload:
    return wa.preferences(s.number, ANA_WA, "stop", s.now - 10)


async def _k(s: Scene) -> wa.Payload:
    return wa.template_status(
        s.number, s.template.name, s.template.language, 1192339204654487, s.now
    )


async def _l(s: Scene) -> wa.Payload:
    assert s.reminder.provider_message_id is not None
    wamid_b, ts, sender = await s.writes(BIA, text="Já paguei")
    return wa.batched(
        s.number,
        wamid_a=s.reminder.provider_message_id,
        recipient_a=ANA_WA,
        timestamp=ts - 10,
        wa_id_b=sender,
        wamid_b=wamid_b,
    )


EXAMPLES: dict[str, Example] = {
    "a_sent": _a,
    "b_delivered": _b,
    "c_read": _c,
    "d_failed": _d,
    "e_text": _e,
    "f_button": _f,
    "g_interactive": _g,
    "h_changed_number": _h,
    "i_unsupported": _i,
    "j_user_preferences": _j,
    "k_template_status": _k,
    "l_batched": _l,
}


# --- every example: processed once, whatever comes again ---------------------------------------


@pytest.mark.parametrize("example", sorted(EXAMPLES))
async def test_each_example_acts_once_however_often_it_is_posted_or_replayed(
    scene: Scene, example: str
) -> None:
    payload = await EXAMPLES[example](scene)
    untouched = await wa.snapshot(scene.shop.session, scene.shop.tenant_id)

    first = await scene.post(payload)
    await scene.run_jobs()
    acted = await wa.snapshot(scene.shop.session, scene.shop.tenant_id)
    said = await _bodies(scene.sandbox)
    again = await scene.post(payload)
    await scene.run_jobs()
    await scene.replay()

    assert first["received"] >= 1 and first["new"] == first["received"]
    assert again == {"received": first["received"], "new": 0, "duplicates": first["received"]}
    events = await scene.events()
    assert len(events) == first["received"]
    assert [e.state for e in events] == ["processed"] * len(events), [e.result for e in events]
    assert acted != untouched  # the example did something a person can see
    assert await wa.snapshot(scene.shop.session, scene.shop.tenant_id) == acted
    assert await _bodies(scene.sandbox) == said  # no answer sent twice


# --- statuses (a to d) ----------------------------------------------------------------------------


async def test_a_sent_status_resolves_the_unanswered_send_by_its_callback_data(
    scene: Scene,
) -> None:
    payload = await _a(scene)
    item = payload["entry"][0]["changes"][0]["value"]["statuses"][0]

    await scene.deliver(payload)

    lost = await scene.fresh(scene.lost)
    assert (lost.state, lost.provider_message_id) == ("sent", item["id"])
    assert lost.sent_at == datetime.fromtimestamp(int(item["timestamp"]), UTC)
    # what Meta charges for it is kept on the attempt (and the raw event in the journal)
    assert lost.pricing == {
        "billable": True,
        "pricing_model": "PMP",
        "type": "regular",
        "category": "utility",
    }


@pytest.mark.parametrize(
    ("example", "state", "stamp"),
    [("b_delivered", "delivered", "delivered_at"), ("c_read", "read", "read_at")],
)
async def test_delivered_and_read_move_the_reminder_and_stamp_when(
    scene: Scene, example: str, state: str, stamp: str
) -> None:
    payload = await EXAMPLES[example](scene)
    timestamp = int(payload["entry"][0]["changes"][0]["value"]["statuses"][0]["timestamp"])

    await scene.deliver(payload)

    reminder = await scene.fresh(scene.reminder)
    assert reminder.state == state
    assert getattr(reminder, stamp) == datetime.fromtimestamp(timestamp, UTC)


@pytest.mark.parametrize(
    ("code", "error_class", "falls_back"),
    [(131049, "policy", False), (131026, "undeliverable", True)],
)
async def test_a_failure_is_recorded_and_the_sms_takes_over_only_when_the_code_table_says(
    scene: Scene, code: int, error_class: str, falls_back: bool
) -> None:
    assert scene.reminder.provider_message_id is not None
    payload = wa.failed(
        scene.number, scene.reminder.provider_message_id, ANA_WA, scene.now - 50, code
    )

    await scene.deliver(payload)

    reminder = await scene.fresh(scene.reminder)
    assert (reminder.state, reminder.error_code, reminder.error_class) == (
        "failed",
        code,
        error_class,
    )
    assert reminder.failed_at == datetime.fromtimestamp(scene.now - 50, UTC)
    fallbacks = list(
        await scene.shop.session.scalars(
            select(ContactAttempt).where(ContactAttempt.fallback_of == reminder.id)
        )
    )
    assert [(f.channel, f.recipient) for f in fallbacks] == ([("sms", ANA)] if falls_back else [])


# --- inbound messages (e to i) --------------------------------------------------------------------


async def test_an_inbound_text_lands_in_the_customers_conversation_with_its_window(
    scene: Scene,
) -> None:
    payload = await _e(scene)
    message = payload["entry"][0]["changes"][0]["value"]["messages"][0]

    await scene.deliver(payload)

    conversation = await scene.shop.conversation(scene.ana)
    (received,) = await scene.shop.inbound(scene.ana)
    assert (received.provider_message_id, received.text) == (message["id"], message["text"]["body"])
    wrote = datetime.fromtimestamp(int(message["timestamp"]), UTC)
    assert conversation.last_inbound_at == wrote
    assert conversation.window_expires_at == wrote + timedelta(hours=24)
    assert (conversation.state, conversation.intent) == ("open", "other")  # for an operator


async def test_a_ja_paguei_tap_on_the_reminder_is_threaded_to_it_and_holds_the_regua(
    scene: Scene,
) -> None:
    await scene.deliver(await _f(scene))

    (tap,) = await scene.shop.inbound(scene.ana)
    assert (tap.kind, tap.payload, tap.attempt_id) == ("button", PAYLOAD_PAID, scene.reminder.id)
    assert tap.intent == "already_paid"
    (hold,) = await scene.shop.holds(scene.ana)
    assert hold.kind == "paid_claim" and hold.released_at is None
    assert (await scene.fresh(scene.pending)).state == "cancelled"
    assert await _bodies(scene.sandbox) == [ASK_RECEIPT_REPLY]


async def test_a_negotiate_button_brings_the_offer_menu_and_an_operator(scene: Scene) -> None:
    await scene.deliver(await _g(scene))

    (tap,) = await scene.shop.inbound(scene.ana)
    assert (tap.kind, tap.payload, tap.details) == (
        "interactive",
        PAYLOAD_NEGOTIATE,
        {"interactive": "button_reply"},
    )
    assert tap.attempt_id == scene.reminder.id
    conversation = await scene.shop.conversation(scene.ana)
    assert (conversation.state, conversation.intent) == ("open", "negotiate")
    assert conversation.priority == PRIORITY_HIGH
    # she owes: the offers come as a list inside the window she opened (no operator text)
    assert await _bodies(scene.sandbox) == []
    activity = await scene.sandbox.get(f"/_sandbox/whatsapp/numbers/{PHONE_A}")
    [menu] = [m for m in activity.json()["sent"] if m["type"] == "interactive"]
    rows = [r for sec in menu["payload"]["interactive"]["action"]["sections"] for r in sec["rows"]]
    assert rows and all(r["id"].startswith("OFFER:") for r in rows)


async def test_a_list_row_asking_for_the_second_copy_gets_the_amount_and_the_pix_code(
    scene: Scene,
) -> None:
    row = {"id": PAYLOAD_SECOND_COPY, "title": "2ª via", "description": "Pix atualizado"}
    wamid, ts, sender = await scene.writes(
        ANA,
        type="interactive",
        interactive_type="list_reply",
        reply_id=row["id"],
        reply_title=row["title"],
    )
    assert scene.reminder.provider_message_id is not None

    await scene.deliver(
        wa.interactive(
            scene.number,
            sender,
            wamid,
            ts,
            context_id=scene.reminder.provider_message_id,
            reply=row,
            subtype="list_reply",
        )
    )

    (tap,) = await scene.shop.inbound(scene.ana)
    assert (tap.payload, tap.intent) == (PAYLOAD_SECOND_COPY, "second_copy")
    assert tap.details == {"interactive": "list_reply", "description": "Pix atualizado"}
    (answer,) = await _bodies(scene.sandbox)
    assert "Pix copia e cola:" in answer and "000201" in answer


async def test_a_number_change_moves_the_customer_to_the_new_number_once(scene: Scene) -> None:
    await scene.deliver(await _h(scene))
    await scene.replay()

    phones = await scene.phones(scene.ana)
    old, new = phones[ANA], phones[ANA_NEW]
    assert (old.status, old.active) == ("unreachable", True)  # kept, but not contacted
    assert (new.status, new.active, new.whatsapp_id) == ("valid", True, ANA_NEW_WA)
    assert (await scene.fresh(scene.pending)).recipient == ANA_NEW  # what was waiting moves
    assert (await scene.fresh(scene.reminder)).recipient == ANA  # what went stays as it went
    (audited,) = await scene.shop.audits("customer_phone.number_changed")
    assert audited.subject_id == str(scene.ana.id)
    assert (audited.data["old_phone_last4"], audited.data["new_phone_last4"]) == ("0091", "0093")
    assert ANA not in str(audited.data) and ANA_NEW not in str(audited.data)
    conversation = await scene.shop.conversation(scene.ana)
    assert conversation.wa_id == ANA_NEW_WA
    assert conversation.window_expires_at is None  # a system notice is not the user writing
    assert conversation.state == "resolved"  # nor anything for an operator to answer


async def test_after_a_number_change_the_new_number_writes_as_the_same_customer(
    scene: Scene,
) -> None:
    await scene.deliver(await _h(scene))

    await scene.deliver(wa.text(scene.number, ANA_NEW_WA, _wamid(), scene.now, "bom dia"))

    conversations = await scene.shop.conversations()
    assert [c.customer_id for c in conversations] == [scene.ana.id]
    assert [m.text for m in await scene.shop.inbound(scene.ana)][-1] == "bom dia"


async def test_an_unsupported_message_is_recorded_for_an_operator_without_failing(
    scene: Scene,
) -> None:
    await scene.deliver(await _i(scene))

    (message,) = await scene.shop.inbound(scene.ana)
    assert message.kind == "unsupported"
    assert message.details["errors"][0]["code"] == 131051
    conversation = await scene.shop.conversation(scene.ana)
    assert (conversation.state, conversation.intent) == ("open", "other")
    assert await _bodies(scene.sandbox) == []


# --- account-level fields (j, k) ---------------------------------------------------------------


async def test_a_marketing_stop_and_resume_are_kept_as_evidence_and_reminders_go_on(
    scene: Scene,
) -> None:
    await scene.deliver(
        wa.preferences(scene.number, ANA_WA, "stop", scene.now - 60),
        wa.preferences(scene.number, ANA_WA, "resume", scene.now),
    )

    notices = await scene.shop.inbound(scene.ana)
    assert [(m.kind, m.details["category"], m.details["value"]) for m in notices] == [
        ("system", "marketing_messages", "stop"),
        ("system", "marketing_messages", "resume"),
    ]
    ana = await scene.fresh(scene.ana)
    assert ana.opted_out == []  # Meta's setting covers marketing; reminders are utility
    assert (await scene.fresh(scene.pending)).state == "queued"
    conversation = await scene.shop.conversation(scene.ana)
    assert conversation.state == "resolved" and conversation.window_expires_at is None
    assert await _bodies(scene.sandbox) == []


async def test_a_template_review_verdict_updates_the_template(scene: Scene) -> None:
    await scene.deliver(await _k(scene))

    template = await scene.fresh(scene.template)
    assert (template.status, template.provider_template_id) == ("APPROVED", "1192339204654487")


# --- batches, order, duplicates (l and variants) -----------------------------------------------


async def test_a_batched_post_processes_both_changes_and_ends_delivered_not_sent(
    scene: Scene,
) -> None:
    payload = await _l(scene)  # message A is the reminder, Bia writes
    first, second = payload["entry"][0]["changes"]

    answer = await scene.post(payload)
    await scene.run_jobs()

    assert answer == {"received": 3, "new": 3, "duplicates": 0}
    reminder = await scene.fresh(scene.reminder)
    assert reminder.state == "delivered"
    assert reminder.delivered_at == datetime.fromtimestamp(
        int(first["value"]["statuses"][0]["timestamp"]), UTC
    )
    (paid,) = await scene.shop.inbound(scene.bia)
    assert (paid.text, paid.intent) == ("Já paguei", "already_paid")
    assert [h.kind for h in await scene.shop.holds(scene.bia)] == ["paid_claim"]
    assert second["value"]["contacts"][0]["wa_id"] == BIA_WA


@pytest.mark.parametrize(
    ("order", "final"),
    [
        (("c_read", "b_delivered", "a_sent"), "read"),
        (("a_sent", "b_delivered", "c_read"), "read"),
        (("b_delivered", "d_failed"), "delivered"),
        (("d_failed", "b_delivered"), "delivered"),
    ],
)
async def test_statuses_in_any_order_end_at_the_furthest(
    scene: Scene, order: tuple[str, ...], final: str
) -> None:
    assert scene.reminder.provider_message_id is not None
    wamid = scene.reminder.provider_message_id
    by_name = {
        "a_sent": wa.sent(
            scene.number, wamid, ANA_WA, scene.now - 60, callback_data(scene.reminder.id)
        ),
        "b_delivered": await _b(scene),
        "c_read": await _c(scene),
        "d_failed": await _d(scene),
    }

    await scene.deliver(*(by_name[name] for name in order))

    assert (await scene.fresh(scene.reminder)).state == final
    events = await scene.events()
    assert all(e.state == "processed" for e in events)
    if order == ("b_delivered", "d_failed"):
        assert events[-1].result == "failed after delivered: kept"  # logged, not applied


async def test_a_status_that_arrives_late_still_says_when_that_step_happened(
    scene: Scene,
) -> None:
    read, delivered = await _c(scene), await _b(scene)

    await scene.deliver(read, delivered)

    reminder = await scene.fresh(scene.reminder)
    assert reminder.state == "read"
    assert reminder.read_at == datetime.fromtimestamp(scene.now - 40, UTC)
    assert reminder.delivered_at == datetime.fromtimestamp(scene.now - 50, UTC)


async def test_delivered_after_a_failure_cancels_the_sms_it_had_called_for(scene: Scene) -> None:
    assert scene.reminder.provider_message_id is not None
    failure = wa.failed(
        scene.number, scene.reminder.provider_message_id, ANA_WA, scene.now - 55, 131026
    )
    await scene.deliver(failure)
    [fallback] = await scene.shop.session.scalars(
        select(ContactAttempt).where(ContactAttempt.fallback_of == scene.reminder.id)
    )
    assert fallback.state == "queued"

    await scene.deliver(await _b(scene))  # another of her devices had it after all

    reminder = await scene.fresh(scene.reminder)
    assert (reminder.state, reminder.reason) == ("delivered", None)
    assert reminder.error_code == 131026  # the failure stays on record
    fallback = await scene.fresh(fallback)
    assert (fallback.state, fallback.reason) == ("cancelled", "delivered")


async def test_the_same_status_in_two_different_posts_counts_once(scene: Scene) -> None:
    delivered = await _b(scene)
    both = wa.envelope(
        scene.number,
        delivered["entry"][0]["changes"][0],
        (await _c(scene))["entry"][0]["changes"][0],
    )

    first = await scene.post(delivered)
    second = await scene.post(both)
    await scene.run_jobs()

    assert first == {"received": 1, "new": 1, "duplicates": 0}
    assert second == {"received": 2, "new": 1, "duplicates": 1}
    assert (await scene.fresh(scene.reminder)).state == "read"
    assert len(await scene.events()) == 2


async def test_replaying_every_journaled_event_changes_nothing(scene: Scene) -> None:
    for example in sorted(EXAMPLES):
        await scene.deliver(await EXAMPLES[example](scene))
    before = await wa.snapshot(scene.shop.session, scene.shop.tenant_id)
    said = await _bodies(scene.sandbox)

    await scene.replay()

    assert await wa.snapshot(scene.shop.session, scene.shop.tenant_id) == before
    assert await _bodies(scene.sandbox) == said


# --- messages read out of order ----------------------------------------------------------------


async def test_an_older_manda_o_pix_read_after_a_newer_pare_is_kept_but_not_answered(
    scene: Scene,
) -> None:
    pix_id, pix_ts, sender = await scene.writes(ANA, text="manda o pix", timestamp=scene.now - 60)
    stop_id, stop_ts, _ = await scene.writes(ANA, text="pare", timestamp=scene.now)

    await scene.deliver(
        wa.text(scene.number, sender, stop_id, stop_ts, "pare"),
        wa.text(scene.number, sender, pix_id, pix_ts, "manda o pix"),
    )

    assert sorted((await scene.fresh(scene.ana)).opted_out) == ["email", "sms", "whatsapp"]
    assert [(m.text, m.intent) for m in await scene.shop.inbound(scene.ana)] == [
        ("manda o pix", "second_copy"),
        ("pare", "opt_out"),
    ]
    assert await _bodies(scene.sandbox) == [OPTED_OUT_REPLY]  # no Pix after the stop
    conversation = await scene.shop.conversation(scene.ana)
    assert (conversation.intent, conversation.state) == ("opt_out", "resolved")


async def test_in_their_own_order_the_same_two_messages_get_the_pix_then_the_stop(
    scene: Scene,
) -> None:
    pix_id, pix_ts, sender = await scene.writes(ANA, text="manda o pix", timestamp=scene.now - 60)
    stop_id, stop_ts, _ = await scene.writes(ANA, text="pare", timestamp=scene.now)

    await scene.deliver(
        wa.text(scene.number, sender, pix_id, pix_ts, "manda o pix"),
        wa.text(scene.number, sender, stop_id, stop_ts, "pare"),
    )

    pix, stop = await _bodies(scene.sandbox)
    assert "Pix copia e cola:" in pix and stop == OPTED_OUT_REPLY


async def test_an_older_pare_read_late_still_opts_out_and_is_confirmed(scene: Scene) -> None:
    stop_id, stop_ts, sender = await scene.writes(ANA, text="pare", timestamp=scene.now - 60)
    hello_id, hello_ts, _ = await scene.writes(ANA, text="bom dia", timestamp=scene.now)

    await scene.deliver(
        wa.text(scene.number, sender, hello_id, hello_ts, "bom dia"),
        wa.text(scene.number, sender, stop_id, stop_ts, "pare"),
    )

    assert sorted((await scene.fresh(scene.ana)).opted_out) == ["email", "sms", "whatsapp"]
    assert (await scene.fresh(scene.pending)).state == "cancelled"
    assert await _bodies(scene.sandbox) == [OPTED_OUT_REPLY]
