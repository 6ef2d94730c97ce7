"""The operator inbox through the API, as a retailer's operators and a mandated agency use it:
the list (filters, order, pages), one conversation's timeline, replies inside and outside the
24-hour window, notes, assignment within each operator's capacity, resolve and reopen.

The debtors' messages are laid down as the inbound pipeline leaves them (a conversation row
and its messages); everything an operator does goes through the API.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.domains.channels import schemas as channel_schemas
from shared.domains.channels import service as channels
from shared.domains.identity import schemas as identity_schemas
from shared.domains.identity import service as identity
from shared.domains.identity.service import CLI_ACTOR
from shared.domains.inbound import assignment
from shared.models import (
    AuditEvent,
    ContactAttempt,
    Conversation,
    ConversationMessage,
    OutboxJob,
    Role,
)
from shared.tenancy import SYSTEM, use_scope
from tests.support.identity import Identities, Party, bearer

SP = ZoneInfo("America/Sao_Paulo")
CPF = "52998224725"


def _now() -> datetime:
    return datetime.now(UTC)


def _fields(r: httpx.Response) -> dict[str, str]:
    return {e["field"]: e["message"] for e in r.json().get("errors", [])}


class Shop:
    """A retailer whose debtors write on WhatsApp, seen through its owner's token."""

    def __init__(
        self, api: httpx.AsyncClient, ids: Identities, session: AsyncSession, party: Party
    ) -> None:
        self.api, self.ids, self.session, self.party = api, ids, session, party
        self.headers: dict[str, str] = {}
        self._n = 0

    async def call(
        self, method: str, path: str, body: Any = None, *, headers: Any = None, **params: Any
    ) -> httpx.Response:
        return await self.api.request(
            method, path, json=body, params=params, headers=headers or self.headers
        )

    async def customer(self, ext: str, phone: str, **fields: Any) -> dict[str, Any]:
        body = {"name": f"Cliente {ext}", "phones": [phone], "state": "SP", **fields}
        r = await self.call("PUT", f"/v1/customers/{ext}", body)
        assert r.status_code in (200, 201), r.text
        return dict(r.json())

    async def installment(self, ext: str, customer: str, due: str, principal: str) -> None:
        body = {"customer_external_id": customer, "principal": principal, "due_date": due}
        r = await self.call("PUT", f"/v1/installments/{ext}", body)
        assert r.status_code in (200, 201), r.text

    async def wrote(
        self,
        customer: dict[str, Any] | None,
        text: str,
        *,
        ago: timedelta = timedelta(minutes=5),
        wa_id: str = "5511987654321",
        intent: str | None = None,
        priority: int = 0,
        state: str = "open",
    ) -> uuid.UUID:
        """The debtor's message as the inbound pipeline records it (window: its time + 24 h)."""
        self._n += 1
        at = _now() - ago
        await use_scope(self.session, SYSTEM)
        conversation = Conversation(
            tenant_id=self.party.id,
            customer_id=uuid.UUID(customer["id"]) if customer else None,
            sender_key=None if customer else f"wa:{wa_id}",
            wa_id=wa_id,
            profile_name="Perfil WhatsApp",
            state=state,
            priority=priority,
            intent=intent,
            last_inbound_at=at,
            window_expires_at=at + timedelta(hours=24),
        )
        self.session.add(conversation)
        await self.session.flush()
        self.session.add(
            ConversationMessage(
                tenant_id=self.party.id,
                conversation_id=conversation.id,
                direction="in",
                provider_message_id=f"wamid.{uuid.uuid4().hex}",
                kind="text",
                text=text,
                intent=intent,
                occurred_at=at,
            )
        )
        await self.session.flush()
        return conversation.id

    async def person(self, role: Role) -> tuple[uuid.UUID, dict[str, str]]:
        """Another member of the shop, with its own token."""
        user = await self.ids.user()
        await self.ids.member(self.party.tenant, user, role)
        me = Party(self.party.tenant, user, self.party.client, self.party.client_secret)
        return user.id, bearer(await self.ids.token(me, role=role))

    async def whatsapp(self) -> None:
        """A WhatsApp number of the shop's, so reminders have a channel to leave by."""
        await use_scope(self.session, SYSTEM)
        data = channel_schemas.WhatsAppIn(
            name="WhatsApp",
            phone_number_id=str(uuid.uuid4().int)[:15],
            waba_id="1",
            display_number="+55 11 4000-0000",
            access_token="t",
            app_secret="s",
            verify_token="v",
        )
        await channels.create(self.session, self.party.tenant.id, data, CLI_ACTOR)
        await self.session.flush()

    async def audit(self, action: str) -> list[AuditEvent]:
        await use_scope(self.session, SYSTEM)
        rows = await self.session.scalars(
            select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)
        )
        return list(rows)


@pytest.fixture
async def shop(api: httpx.AsyncClient, ids: Identities, session: AsyncSession) -> Shop:
    party = await ids.party("Loja Inbox")
    shop = Shop(api, ids, session, party)
    shop.headers = bearer(await ids.token(party, role=Role.OWNER))
    return shop


async def _mandate(shop: Shop, agency: Party, actions: list[Any], tags: list[str]) -> None:
    await use_scope(shop.session, SYSTEM)
    await identity.create_mandate(
        shop.session,
        shop.party.tenant,
        identity_schemas.MandateCreate(agency_id=agency.id, actions=actions, tags=tags),
        CLI_ACTOR,
    )
    await shop.session.flush()


# --- the list -----------------------------------------------------------------------------------


async def test_the_inbox_puts_priority_first_then_the_latest_message(shop: Shop) -> None:
    ana = await shop.customer("C-ANA", "+5511911110001")
    bia = await shop.customer("C-BIA", "+5511911110002")
    caio = await shop.customer("C-CAIO", "+5511911110003")
    old = await shop.wrote(ana, "oi", ago=timedelta(hours=3), wa_id="5511911110001")
    recent = await shop.wrote(bia, "bom dia", ago=timedelta(minutes=1), wa_id="5511911110002")
    urgent = await shop.wrote(
        caio,
        "quero parcelar",
        ago=timedelta(hours=5),
        wa_id="5511911110003",
        intent="negotiate",
        priority=50,
    )

    r = await shop.call("GET", "/v1/conversations")

    assert r.status_code == 200, r.text
    assert [i["id"] for i in r.json()["items"]] == [str(urgent), str(recent), str(old)]


async def test_a_line_names_the_debtor_masks_the_document_and_sums_what_is_overdue(
    shop: Shop,
) -> None:
    maria = await shop.customer("C-1", "+5511987654321", document=CPF)
    await shop.installment("P-1", "C-1", "2025-01-10", "100.00")
    await shop.installment("P-2", "C-1", "2025-02-10", "50.50")
    await shop.installment("P-3", "C-1", "2099-01-10", "999.00")  # not due yet
    await shop.wrote(maria, "Posso pagar semana que vem? " + "x" * 200)

    [line] = (await shop.call("GET", "/v1/conversations")).json()["items"]

    assert line["name"] == "Cliente C-1"
    assert line["customer_external_id"] == "C-1"
    assert line["document"] == "***.982.247-**"
    assert line["overdue_total"] == "150.50"
    assert line["window_open"] is True
    assert line["last_message"]["direction"] == "in"
    assert line["last_message"]["preview"].startswith("Posso pagar semana que vem?")
    assert len(line["last_message"]["preview"]) == 120
    assert line["state"] == "open" and line["assignee_id"] is None


async def test_an_unknown_sender_shows_its_whatsapp_name(shop: Shop) -> None:
    await shop.wrote(None, "quem é?", wa_id="5521999990000")

    [line] = (await shop.call("GET", "/v1/conversations")).json()["items"]

    assert (line["name"], line["customer_id"], line["overdue_total"]) == (
        "Perfil WhatsApp",
        None,
        "0.00",
    )


async def test_filters_by_state_intent_assignee_and_overdue_amount(shop: Shop) -> None:
    ana = await shop.customer("C-ANA", "+5511911110001")
    bia = await shop.customer("C-BIA", "+5511911110002")
    await shop.installment("P-ANA", "C-ANA", "2025-01-10", "300.00")
    await shop.installment("P-BIA", "C-BIA", "2025-01-10", "20.00")
    negotiating = await shop.wrote(
        ana, "quero parcelar", wa_id="5511911110001", intent="negotiate", priority=50
    )
    waiting = await shop.wrote(bia, "ok", wa_id="5511911110002", state="pending")
    me = shop.party.owner.id
    taken = await shop.call(
        "POST", f"/v1/conversations/{negotiating}/assign", {"assignee": str(me)}
    )
    assert taken.status_code == 200, taken.text

    async def ids_for(**params: Any) -> list[str]:
        r = await shop.call("GET", "/v1/conversations", **params)
        assert r.status_code == 200, r.text
        return [i["id"] for i in r.json()["items"]]

    assert await ids_for(state="pending") == [str(waiting)]
    assert await ids_for(intent="negotiate") == [str(negotiating)]
    assert await ids_for(assignee="me") == [str(negotiating)]
    assert await ids_for(assignee=str(me)) == [str(negotiating)]
    assert await ids_for(assignee="none") == [str(waiting)]
    assert await ids_for(min_overdue="100") == [str(negotiating)]
    assert await ids_for(min_overdue="0") == [str(negotiating), str(waiting)]


async def test_bad_filters_are_refused_field_by_field(shop: Shop) -> None:
    r = await shop.call(
        "GET", "/v1/conversations", state="closed", assignee="someone", min_overdue="-1"
    )

    assert r.status_code == 422
    assert set(_fields(r)) == {"state", "assignee", "min_overdue"}


async def test_pages_walk_the_whole_inbox_once_in_order(shop: Shop) -> None:
    written = []
    for n in range(5):
        who = await shop.customer(f"C-{n}", f"+551191111000{n}")
        written.append(
            await shop.wrote(
                who, "oi", ago=timedelta(minutes=n), wa_id=f"551191111000{n}", priority=n % 2
            )
        )
    everything = [i["id"] for i in (await shop.call("GET", "/v1/conversations")).json()["items"]]

    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = (await shop.call("GET", "/v1/conversations", **params)).json()
        seen += [i["id"] for i in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break

    assert seen == everything
    assert sorted(seen) == sorted(str(w) for w in written)


async def test_a_bad_cursor_is_a_field_error(shop: Shop) -> None:
    r = await shop.call("GET", "/v1/conversations", cursor="nonsense")

    assert r.status_code == 422
    assert _fields(r) == {"cursor": "use next_cursor as given"}


# --- one conversation ---------------------------------------------------------------------------


async def test_the_timeline_tells_the_debtors_story_in_time_order(shop: Shop) -> None:
    maria = await shop.customer("C-1", "+5511987654321")
    await shop.installment("P-1", "C-1", "2025-01-10", "100.00")
    await use_scope(shop.session, SYSTEM)
    sent = datetime(2025, 1, 15, 13, tzinfo=UTC)
    attempt = ContactAttempt(
        tenant_id=shop.party.id,
        customer_id=uuid.UUID(maria["id"]),
        kind="regua",
        channel="whatsapp",
        template_name="quita_atraso_d5_v1",
        state="read",
        contact_day=sent.date(),
        planned_for=sent - timedelta(minutes=1),
        sent_at=sent,
        delivered_at=sent + timedelta(minutes=1),
        read_at=sent + timedelta(minutes=2),
    )
    shop.session.add(attempt)
    await shop.session.flush()
    conversation = await shop.wrote(maria, "vou pagar amanhã", intent="promise")
    note = await shop.call(
        "POST", f"/v1/conversations/{conversation}/notes", {"text": "Cliente prometeu pagar."}
    )
    answer = await shop.call(
        "POST", f"/v1/conversations/{conversation}/messages", {"text": "Combinado, obrigado!"}
    )
    assert (note.status_code, answer.status_code) == (201, 202), (note.text, answer.text)

    r = await shop.call("GET", f"/v1/conversations/{conversation}")

    assert r.status_code == 200, r.text
    timeline = r.json()["timeline"]
    assert [e["type"] for e in timeline] == ["installment", "attempt", "message", "note", "message"]
    installment, sent_attempt, inbound, written, outbound = timeline
    assert installment["due_date"] == "2025-01-10" and installment["status"] == "open"
    assert Decimal(installment["balance"]) > Decimal("100.00")  # fine and interest since then
    assert installment["days_overdue"] > 300
    assert (sent_attempt["state"], sent_attempt["read_at"]) == (
        "read",
        (sent + timedelta(minutes=2)).isoformat().replace("+00:00", "Z"),
    )
    assert (inbound["direction"], inbound["text"], inbound["intent"]) == (
        "in",
        "vou pagar amanhã",
        "promise",
    )
    assert written["text"] == "Cliente prometeu pagar."
    assert written["author_id"] == str(shop.party.owner.id)
    assert (outbound["direction"], outbound["status"], outbound["sent_by"]) == (
        "out",
        "queued",
        str(shop.party.owner.id),
    )
    assert [e["at"] for e in timeline] == sorted(e["at"] for e in timeline)
    assert r.json()["can_reply"] == {"free_text": True, "template": True}


async def test_outside_the_window_only_a_template_may_be_sent(shop: Shop) -> None:
    maria = await shop.customer("C-1", "+5511987654321")
    conversation = await shop.wrote(maria, "oi", ago=timedelta(hours=30))

    detail = await shop.call("GET", f"/v1/conversations/{conversation}")
    r = await shop.call("POST", f"/v1/conversations/{conversation}/messages", {"text": "Olá!"})

    assert detail.json()["can_reply"] == {"free_text": False, "template": True}
    assert detail.json()["conversation"]["window_open"] is False
    assert r.status_code == 409
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["type"] == "https://quita.dev/problems/window_closed"
    timeline = (await shop.call("GET", f"/v1/conversations/{conversation}")).json()["timeline"]
    assert [e["direction"] for e in timeline if e["type"] == "message"] == ["in"]


async def test_outside_the_window_the_template_reminder_goes_under_the_reguas_rules(
    shop: Shop,
) -> None:
    await shop.whatsapp()
    maria = await shop.customer("C-1", "+5511987654321")
    overdue_day = (_now().astimezone(SP) - timedelta(days=6)).date().isoformat()
    await shop.installment("P-1", "C-1", overdue_day, "150.00")
    conversation = await shop.wrote(maria, "oi", ago=timedelta(hours=30))

    first = await shop.call("POST", f"/v1/conversations/{conversation}/remind")
    again = await shop.call("POST", f"/v1/conversations/{conversation}/remind")

    assert first.status_code == 202, first.text
    attempt = first.json()
    assert (attempt["kind"], attempt["state"], attempt["reason"]) == ("manual", "queued", None)
    assert attempt["channel"] == "whatsapp"
    assert [i["installment_external_id"] for i in attempt["items"]] == ["P-1"]
    # a second template the same day is held by the daily cap, as any reminder would be
    assert (again.json()["state"], again.json()["reason"]) == ("skipped", "daily_cap")
    detail = (await shop.call("GET", f"/v1/conversations/{conversation}")).json()
    assert detail["conversation"]["state"] == "pending"
    assert {e["id"]: e["state"] for e in detail["timeline"] if e["type"] == "attempt"} == {
        attempt["id"]: "queued",
        again.json()["id"]: "skipped",
    }
    events = await shop.audit("conversation.reminded")
    assert [e.data["attempt_id"] for e in events] == [attempt["id"], again.json()["id"]]


async def test_no_template_to_a_stranger_a_wrong_number_or_someone_who_owes_nothing(
    shop: Shop,
) -> None:
    stranger = await shop.wrote(None, "quem é?", wa_id="5521999990000", ago=timedelta(hours=30))
    paid_up = await shop.customer("C-2", "+5511911110002")
    nothing_due = await shop.wrote(paid_up, "oi", wa_id="5511911110002", ago=timedelta(hours=30))
    maria = await shop.customer("C-1", "+5511987654321")
    wrong = await shop.wrote(maria, "não sou eu", ago=timedelta(hours=30))
    await shop.call("PATCH", "/v1/customers/C-1/phones/+5511987654321", {"status": "wrong_person"})

    answers = [
        (await shop.call("POST", f"/v1/conversations/{c}/remind")).json()["code"]
        for c in (stranger, nothing_due, wrong)
    ]

    assert answers == ["not_a_customer", "nothing_to_remind", "wrong_number"]
    detail = await shop.call("GET", f"/v1/conversations/{stranger}")
    assert detail.json()["can_reply"] == {"free_text": False, "template": False}


async def test_nothing_is_sent_to_a_number_marked_as_someone_elses(shop: Shop) -> None:
    maria = await shop.customer("C-1", "+5511987654321")
    conversation = await shop.wrote(maria, "não sou eu")
    marked = await shop.call(
        "PATCH", "/v1/customers/C-1/phones/+5511987654321", {"status": "wrong_person"}
    )
    assert marked.status_code == 200, marked.text

    detail = await shop.call("GET", f"/v1/conversations/{conversation}")
    r = await shop.call("POST", f"/v1/conversations/{conversation}/messages", {"text": "Olá"})

    assert detail.json()["can_reply"] == {"free_text": False, "template": False}
    assert r.status_code == 409
    assert r.json()["code"] == "wrong_number"


# --- replies and notes --------------------------------------------------------------------------


async def test_a_reply_inside_the_window_is_queued_once_and_audited(shop: Shop) -> None:
    maria = await shop.customer("C-1", "+5511987654321")
    conversation = await shop.wrote(maria, "qual o valor?")
    key = {"Idempotency-Key": "reply-1", **shop.headers}

    first = await shop.call(
        "POST", f"/v1/conversations/{conversation}/messages", {"text": " R$ 10 "}, headers=key
    )
    again = await shop.call(
        "POST", f"/v1/conversations/{conversation}/messages", {"text": " R$ 10 "}, headers=key
    )

    assert first.status_code == 202, first.text
    assert first.json()["status"] == "queued" and first.json()["text"] == "R$ 10"
    assert again.json()["id"] == first.json()["id"]
    await use_scope(shop.session, SYSTEM)
    sends = await shop.session.scalars(
        select(OutboxJob).where(OutboxJob.actor == "conversations.send")
    )
    assert [j.args["message_id"] for j in sends] == [first.json()["id"]]
    detail = (await shop.call("GET", f"/v1/conversations/{conversation}")).json()
    assert detail["conversation"]["state"] == "pending"  # answered: the debtor's turn
    [event] = await shop.audit("conversation.replied")
    assert event.subject_id == str(conversation)
    assert event.actor_id == str(shop.party.owner.id)


async def test_blank_text_is_refused(shop: Shop) -> None:
    maria = await shop.customer("C-1", "+5511987654321")
    conversation = await shop.wrote(maria, "oi")

    note = await shop.call("POST", f"/v1/conversations/{conversation}/notes", {"text": "   "})
    reply = await shop.call("POST", f"/v1/conversations/{conversation}/messages", {"text": ""})

    assert note.status_code == 422 and _fields(note) == {"text": "must not be blank"}
    assert reply.status_code in (400, 422)


async def test_a_note_is_kept_and_audited_never_sent(shop: Shop) -> None:
    maria = await shop.customer("C-1", "+5511987654321")
    conversation = await shop.wrote(maria, "oi")

    r = await shop.call(
        "POST", f"/v1/conversations/{conversation}/notes", {"text": "Ligar depois das 18h."}
    )

    assert r.status_code == 201, r.text
    assert r.json()["text"] == "Ligar depois das 18h."
    assert len(await shop.audit("conversation.note_added")) == 1
    await use_scope(shop.session, SYSTEM)
    assert (
        await shop.session.scalar(select(OutboxJob).where(OutboxJob.actor == "conversations.send"))
        is None
    )


async def test_a_viewer_reads_but_does_not_work_the_inbox(shop: Shop) -> None:
    maria = await shop.customer("C-1", "+5511987654321")
    conversation = await shop.wrote(maria, "oi")
    _, viewer = await shop.person(Role.VIEWER)

    read = await shop.call("GET", f"/v1/conversations/{conversation}", headers=viewer)
    reply = await shop.call(
        "POST", f"/v1/conversations/{conversation}/messages", {"text": "x"}, headers=viewer
    )

    assert read.status_code == 200
    assert reply.status_code == 403


# --- resolve and reopen -------------------------------------------------------------------------


async def test_resolving_clears_the_priority_and_reopening_brings_it_back(shop: Shop) -> None:
    maria = await shop.customer("C-1", "+5511987654321")
    conversation = await shop.wrote(maria, "já paguei", intent="already_paid", priority=50)

    resolved = await shop.call("POST", f"/v1/conversations/{conversation}/resolve")
    listed = await shop.call("GET", "/v1/conversations", state="resolved")
    reopened = await shop.call("POST", f"/v1/conversations/{conversation}/reopen")

    assert resolved.status_code == 200, resolved.text
    assert (resolved.json()["state"], resolved.json()["priority"]) == ("resolved", 0)
    assert [i["id"] for i in listed.json()["items"]] == [str(conversation)]
    assert reopened.json()["state"] == "open"
    assert len(await shop.audit("conversation.resolved")) == 1
    assert len(await shop.audit("conversation.reopened")) == 1


# --- assignment ---------------------------------------------------------------------------------


async def test_an_operator_is_assigned_and_unassigned(shop: Shop) -> None:
    maria = await shop.customer("C-1", "+5511987654321")
    conversation = await shop.wrote(maria, "oi")
    operator, _ = await shop.person(Role.OPERATOR)
    viewer, _ = await shop.person(Role.VIEWER)
    url = f"/v1/conversations/{conversation}/assign"

    given = await shop.call("POST", url, {"assignee": str(operator)})
    to_viewer = await shop.call("POST", url, {"assignee": str(viewer)})
    to_stranger = await shop.call("POST", url, {"assignee": str(uuid.uuid4())})
    taken_back = await shop.call("POST", url, {"assignee": None})

    assert given.status_code == 200, given.text
    assert given.json()["assignee_id"] == str(operator)
    assert to_viewer.status_code == 422 and "assignee" in _fields(to_viewer)
    assert to_stranger.status_code == 422
    assert taken_back.json()["assignee_id"] is None
    events = await shop.audit("conversation.assigned")
    assert [(e.data["before"], e.data["after"]) for e in events] == [
        (None, str(operator)),
        (str(operator), None),
    ]


async def test_assign_next_takes_the_most_urgent_unassigned_open_conversation(
    shop: Shop,
) -> None:
    calm = await shop.customer("C-1", "+5511911110001")
    urgent = await shop.customer("C-2", "+5511911110002")
    waiting = await shop.customer("C-3", "+5511911110003")
    first = await shop.wrote(calm, "oi", wa_id="5511911110001", ago=timedelta(minutes=1))
    second = await shop.wrote(
        urgent, "contesto", wa_id="5511911110002", priority=50, ago=timedelta(hours=2)
    )
    await shop.wrote(waiting, "ok", wa_id="5511911110003", state="pending")
    operator, headers = await shop.person(Role.OPERATOR)

    taken = [
        await shop.call("POST", "/v1/conversations/assign-next", headers=headers) for _ in range(3)
    ]

    assert [t.status_code for t in taken] == [200, 200, 204]
    assert [t.json()["id"] for t in taken[:2]] == [str(second), str(first)]
    assert {t.json()["assignee_id"] for t in taken[:2]} == {str(operator)}
    mine = await shop.call("GET", "/v1/conversations", assignee="me", headers=headers)
    assert len(mine.json()["items"]) == 2


async def test_an_operator_at_capacity_takes_nothing_more(shop: Shop) -> None:
    for n in range(3):
        who = await shop.customer(f"C-{n}", f"+551191111000{n}")
        await shop.wrote(who, "oi", wa_id=f"551191111000{n}")
    operator, headers = await shop.person(Role.OPERATOR)
    limited = await shop.call(
        "PUT", f"/v1/inbox/operators/{operator}", {"capacity": 1, "available": True}
    )
    assert limited.status_code == 200, limited.text

    first = await shop.call("POST", "/v1/conversations/assign-next", headers=headers)
    full = await shop.call("POST", "/v1/conversations/assign-next", headers=headers)
    listed = (await shop.call("GET", "/v1/conversations", assignee="none")).json()["items"]
    pushed = await shop.call(
        "POST", f"/v1/conversations/{listed[0]['id']}/assign", {"assignee": str(operator)}
    )
    resolved = await shop.call("POST", f"/v1/conversations/{first.json()['id']}/resolve")
    after = await shop.call("POST", "/v1/conversations/assign-next", headers=headers)

    assert first.status_code == 200
    assert full.status_code == 409 and full.json()["code"] == "at_capacity"
    assert pushed.status_code == 409 and pushed.json()["code"] == "at_capacity"
    assert resolved.status_code == 200
    assert after.status_code == 200  # a resolved conversation frees its place
    operators = (await shop.call("GET", "/v1/inbox/operators")).json()
    me = next(o for o in operators if o["user_id"] == str(operator))
    assert (me["capacity"], me["assigned_open"], me["role"]) == (1, 1, "operator")


async def test_an_operator_marked_away_takes_nothing(shop: Shop) -> None:
    maria = await shop.customer("C-1", "+5511987654321")
    await shop.wrote(maria, "oi")
    operator, headers = await shop.person(Role.OPERATOR)
    await shop.call("PUT", f"/v1/inbox/operators/{operator}", {"available": False})

    r = await shop.call("POST", "/v1/conversations/assign-next", headers=headers)

    assert r.status_code == 409 and r.json()["code"] == "operator_unavailable"


async def test_waiting_conversations_are_handed_in_turn_to_operators_who_opted_in(
    shop: Shop, run_jobs: Any
) -> None:
    waiting = []
    for n in range(5):
        who = await shop.customer(f"C-{n}", f"+551191111000{n}")
        minutes = timedelta(minutes=10 - n)  # C-4 wrote last: the most urgent after priority
        waiting.append(await shop.wrote(who, "oi", wa_id=f"551191111000{n}", ago=minutes))
    ana, _ = await shop.person(Role.OPERATOR)
    bia, _ = await shop.person(Role.OPERATOR)
    caio, _ = await shop.person(Role.OPERATOR)  # pulls by hand: never handed anything
    for who, capacity in ((ana, 20), (bia, 1)):
        r = await shop.call(
            "PUT", f"/v1/inbox/operators/{who}", {"capacity": capacity, "auto_assign": True}
        )
        assert r.status_code == 200 and r.json()["auto_assign"] is True, r.text

    await run_jobs()

    def owner_of(c: uuid.UUID, items: list[dict[str, Any]]) -> str | None:
        return next(i["assignee_id"] for i in items if i["id"] == str(c))

    items = (await shop.call("GET", "/v1/conversations")).json()["items"]
    owners = [owner_of(c, items) for c in reversed(waiting)]  # most urgent first
    # ana and bia take turns while bia has room (capacity 1); ana takes the rest
    assert {owners[0], owners[1]} == {str(ana), str(bia)}
    assert owners[2:] == [str(ana)] * 3
    assert str(caio) not in owners
    events = [e for e in await shop.audit("conversation.assigned") if e.data.get("auto")]
    assert len(events) == 5 and {e.actor_type for e in events} == {"system"}

    # bia resolves hers: a new conversation goes to her, whose turn is older than ana's
    bias = next(c for c, o in zip(reversed(waiting), owners, strict=True) if o == str(bia))
    await shop.call("POST", f"/v1/conversations/{bias}/resolve")
    newcomer = await shop.customer("C-9", "+5511911110009")
    late = await shop.wrote(newcomer, "oi", wa_id="5511911110009")
    await run_jobs()
    await shop.call("PUT", f"/v1/inbox/operators/{ana}", {"auto_assign": True})
    await run_jobs()

    items = (await shop.call("GET", "/v1/conversations")).json()["items"]
    assert owner_of(late, items) == str(bia)
    operators = {o["user_id"]: o for o in (await shop.call("GET", "/v1/inbox/operators")).json()}
    assert (operators[str(ana)]["assigned_open"], operators[str(bia)]["assigned_open"]) == (4, 1)
    assert operators[str(caio)]["auto_assign"] is False


async def test_nobody_away_or_full_is_handed_a_conversation(shop: Shop, run_jobs: Any) -> None:
    who = await shop.customer("C-1", "+5511911110001")
    conversation = await shop.wrote(who, "oi", wa_id="5511911110001")
    away, _ = await shop.person(Role.OPERATOR)
    full, _ = await shop.person(Role.OPERATOR)
    await shop.call("PUT", f"/v1/inbox/operators/{away}", {"available": False, "auto_assign": True})
    await shop.call("PUT", f"/v1/inbox/operators/{full}", {"capacity": 0, "auto_assign": True})

    await run_jobs()

    detail = (await shop.call("GET", f"/v1/conversations/{conversation}")).json()
    assert detail["conversation"]["assignee_id"] is None


async def test_the_scheduler_hands_out_what_waits_where_someone_takes_it(
    shop: Shop, run_jobs: Any
) -> None:
    operator, _ = await shop.person(Role.OPERATOR)
    await shop.call("PUT", f"/v1/inbox/operators/{operator}", {"auto_assign": True})
    await run_jobs()  # nothing waits yet
    who = await shop.customer("C-1", "+5511911110001")
    conversation = await shop.wrote(who, "oi", wa_id="5511911110001")

    await use_scope(shop.session, SYSTEM)
    await assignment.hand_out_everywhere(shop.session)
    await run_jobs()

    detail = (await shop.call("GET", f"/v1/conversations/{conversation}")).json()
    assert detail["conversation"]["assignee_id"] == str(operator)


async def test_only_managers_set_capacities_and_only_of_their_own_people(
    shop: Shop, ids: Identities
) -> None:
    operator, headers = await shop.person(Role.OPERATOR)
    stranger = await ids.party("Outra Loja")

    by_operator = await shop.call(
        "PUT", f"/v1/inbox/operators/{operator}", {"capacity": 99}, headers=headers
    )
    elsewhere = await shop.call("PUT", f"/v1/inbox/operators/{stranger.owner.id}", {"capacity": 5})
    too_many = await shop.call("PUT", f"/v1/inbox/operators/{operator}", {"capacity": 501})

    assert by_operator.status_code == 403
    assert elsewhere.status_code == 404
    assert too_many.status_code in (400, 422)


async def test_an_api_client_cannot_take_conversations(shop: Shop, ids: Identities) -> None:
    client = bearer(await ids.token(shop.party, role=None))

    r = await shop.call("POST", "/v1/conversations/assign-next", headers=client)

    assert r.status_code == 422


# --- agencies and other tenants -----------------------------------------------------------------


async def test_an_agency_sees_only_the_mandated_customers_conversations(
    shop: Shop, ids: Identities
) -> None:
    covered = await shop.customer("C-1", "+5511911110001", tags=["cobranca-externa"])
    other = await shop.customer("C-2", "+5511911110002")
    mine = await shop.wrote(covered, "oi", wa_id="5511911110001")
    hidden = await shop.wrote(other, "oi", wa_id="5511911110002")
    stranger = await shop.wrote(None, "quem é?", wa_id="5521999990000")
    agency = await ids.party("Agência", "agency")
    await _mandate(shop, agency, ["read"], ["cobranca-externa"])
    them = bearer(await ids.token(agency))

    listed = await shop.call("GET", "/v1/conversations", headers=them)
    seen = await shop.call("GET", f"/v1/conversations/{mine}", headers=them)
    not_seen = [
        (await shop.call("GET", f"/v1/conversations/{c}", headers=them)).status_code
        for c in (hidden, stranger)
    ]
    reply = await shop.call(
        "POST", f"/v1/conversations/{mine}/messages", {"text": "Olá"}, headers=them
    )
    take = await shop.call("POST", "/v1/conversations/assign-next", headers=them)

    assert [i["id"] for i in listed.json()["items"]] == [str(mine)]
    assert seen.status_code == 200
    assert not_seen == [404, 404]
    assert reply.status_code == 403  # the mandate reads; it does not message
    assert take.status_code == 204


async def test_an_agency_with_a_message_mandate_works_the_conversation(
    shop: Shop, ids: Identities
) -> None:
    covered = await shop.customer("C-1", "+5511911110001")
    conversation = await shop.wrote(covered, "quero negociar", wa_id="5511911110001", priority=50)
    agency = await ids.party("Agência", "agency")
    await _mandate(shop, agency, ["read", "message"], [])
    them = bearer(await ids.token(agency))

    taken = await shop.call("POST", "/v1/conversations/assign-next", headers=them)
    reply = await shop.call(
        "POST", f"/v1/conversations/{conversation}/messages", {"text": "Olá!"}, headers=them
    )
    note = await shop.call(
        "POST", f"/v1/conversations/{conversation}/notes", {"text": "Proposta"}, headers=them
    )
    resolved = await shop.call("POST", f"/v1/conversations/{conversation}/resolve", headers=them)

    assert taken.status_code == 200 and taken.json()["assignee_id"] == str(agency.owner.id)
    assert (reply.status_code, note.status_code, resolved.status_code) == (202, 201, 200)
    [event] = await shop.audit("conversation.replied")
    assert event.tenant_id == agency.id  # the agency's own trail, naming the retailer
    assert event.data["tenant_id"] == str(shop.party.id)


async def test_an_agency_does_not_send_the_retailers_reminders(shop: Shop, ids: Identities) -> None:
    await shop.whatsapp()
    covered = await shop.customer("C-1", "+5511911110001")
    await shop.installment("P-1", "C-1", (_now() - timedelta(days=6)).date().isoformat(), "90.00")
    conversation = await shop.wrote(covered, "oi", wa_id="5511911110001", ago=timedelta(hours=30))
    agency = await ids.party("Agência", "agency")
    await _mandate(shop, agency, ["read", "message"], [])
    them = bearer(await ids.token(agency))

    detail = await shop.call("GET", f"/v1/conversations/{conversation}", headers=them)
    r = await shop.call("POST", f"/v1/conversations/{conversation}/remind", headers=them)

    assert detail.status_code == 200, detail.text
    assert detail.json()["can_reply"] == {"free_text": False, "template": False}
    assert r.status_code == 403
    assert (await shop.call("GET", "/v1/attempts")).json()["items"] == []


async def test_another_retailers_conversation_is_not_found(shop: Shop, ids: Identities) -> None:
    maria = await shop.customer("C-1", "+5511987654321")
    conversation = await shop.wrote(maria, "oi")
    other = bearer(await ids.token(await ids.party("Outra Loja")))

    listed = await shop.call("GET", "/v1/conversations", headers=other)
    answers = [
        (await shop.call(method, f"/v1/conversations/{conversation}{tail}", body, headers=other))
        for method, tail, body in (
            ("GET", "", None),
            ("POST", "/messages", {"text": "x"}),
            ("POST", "/remind", None),
            ("POST", "/notes", {"text": "x"}),
            ("POST", "/assign", {"assignee": None}),
            ("POST", "/resolve", None),
            ("POST", "/reopen", None),
        )
    ]

    assert listed.json()["items"] == []
    assert [a.status_code for a in answers] == [404] * 7


# --- an operator sends an offer --------------------------------------------------------------


async def test_an_offer_goes_as_a_list_inside_the_window_and_as_its_template_outside(
    shop: Shop,
) -> None:
    await shop.whatsapp()
    overdue_day = (_now().astimezone(SP) - timedelta(days=20)).date().isoformat()
    maria = await shop.customer("C-1", "+5511987654321")
    await shop.installment("P-1", "C-1", overdue_day, "300.00")
    joao = await shop.customer("C-2", "+5511987650002")
    await shop.installment("P-2", "C-2", overdue_day, "300.00")
    chatting = await shop.wrote(maria, "quero negociar")
    await shop.wrote(joao, "oi", ago=timedelta(hours=30), wa_id="5511987650002")

    to_maria = (await shop.call("POST", "/v1/customers/C-1/offers")).json()
    in_chat = await shop.call("POST", f"/v1/offers/{to_maria['id']}/send")
    assert in_chat.status_code == 202, in_chat.text
    assert in_chat.json()["via"] == "list" and in_chat.json()["attempt"] is None
    detail = (await shop.call("GET", f"/v1/conversations/{chatting}")).json()
    (listed,) = [
        e for e in detail["timeline"] if e["type"] == "message" and e["direction"] == "out"
    ]
    assert listed["id"] == in_chat.json()["message_id"]
    assert "Temos opções para você quitar" in listed["text"]

    to_joao = (await shop.call("POST", "/v1/customers/C-2/offers")).json()
    outside = await shop.call("POST", f"/v1/offers/{to_joao['id']}/send")
    again = await shop.call("POST", f"/v1/offers/{to_joao['id']}/send")
    assert outside.status_code == 202, outside.text
    body = outside.json()
    assert body["via"] == "template" and "/pagar/" in body["link"]
    attempt = body["attempt"]
    assert (attempt["template_name"], attempt["state"]) == ("quita_oferta_v1", "queued"), attempt
    assert [i["installment_external_id"] for i in attempt["items"]] == ["P-2"]
    assert again.json()["attempt"]["id"] == attempt["id"]  # once per offer
    assert [e.data["via"] for e in await shop.audit("offer.sent")] == ["list", "template"]
