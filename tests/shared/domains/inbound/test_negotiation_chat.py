"""Negotiating in the chat, as the debtor and the operator notice it: "quero parcelar" brings
the offer menu as a WhatsApp list (through the sandbox), a tap on "Entrada + 3x" makes the
agreement and brings its terms and the Pix of the down payment, a replay changes nothing, a
stale menu gets an apology and a fresh one, and outside the window an operator takes it.  Once
the sandbox PSP pays the down payment, the first agreement installment is reminded by the
agreement's own régua, with its exact amount and Pix."""

from __future__ import annotations

from contextlib import AsyncExitStack
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import httpx
import redis.asyncio as aioredis
from sqlalchemy import select, update

from shared.brazil.numbers import format_brl, format_date_br
from shared.brazil.pix import decode
from shared.db import SessionMaker
from shared.domains.channels import templating
from shared.domains.channels.defaults import AGREEMENT_DEFAULTS
from shared.domains.collections import sending
from shared.domains.collections.planner import plan_tenant
from shared.domains.inbound.actions import OPERATOR_REPLY, PRIORITY_HIGH
from shared.domains.money.pixcodes import txid_for
from shared.domains.negotiation import agreement_pay
from shared.domains.negotiation.chat import EXPIRED_APOLOGY, MENU_BUTTON
from shared.models import (
    Agreement,
    AgreementInstallment,
    ContactAttempt,
    Installment,
    MessageTemplate,
    Offer,
    TemplateStatus,
)
from shared.tenancy import SYSTEM, use_scope
from tests.api.test_agreements_api import _pay_by_pix
from tests.conftest import run_lifespan
from tests.shared.domains.inbound import test_actions
from tests.shared.domains.inbound.test_actions import (
    ANA,
    ANA_WA,
    SP,
    Shop,
    _bodies,
    _replay,
    _sandbox_messages,
    _today,
)
from tests.shared.domains.inbound.test_conversations import (
    PHONE_A,
    TOKEN_A,
    WABA_A,
    Jobs,
    _debtor_writes,
    _now_ts,
    _text,
)
from tests.support.pix import PIX_KEY, connection, hooks_app, pix_item
from tests.support.serve import serve

sandbox = test_actions.sandbox
shop = test_actions.shop


async def _lists(sandbox: httpx.AsyncClient) -> list[dict[str, Any]]:
    """The interactive lists the sandbox delivered, in order."""
    activity = await sandbox.get(f"/_sandbox/whatsapp/numbers/{PHONE_A}", params={"wait": "true"})
    return [
        m["payload"]["interactive"]
        for m in activity.json()["sent"]
        if m["type"] == "interactive" and m["payload"]["interactive"]["type"] == "list"
    ]


def _rows(menu: dict[str, Any]) -> list[dict[str, Any]]:
    return [row for section in menu["action"]["sections"] for row in section["rows"]]


async def _taps(sandbox: httpx.AsyncClient, shop: Shop, row: dict[str, Any]) -> None:
    """The debtor taps ``row`` of the list and the webhook reaches us."""
    reply = await sandbox.post(
        f"/_sandbox/whatsapp/numbers/{PHONE_A}/replies",
        json={
            "from": ANA,
            "type": "interactive",
            "interactive_type": "list_reply",
            "reply_id": row["id"],
            "reply_title": row["title"],
        },
    )
    assert reply.status_code == 201, reply.text
    await shop.receive(reply.json())


async def _late_debtor(shop: Shop) -> tuple[Any, list[Installment]]:
    """Ana, with two installments 20 days late, and the retailer's Pix key."""
    await shop.pix()
    ana = await shop.debtor()
    due = _today() - timedelta(days=20)
    originals = [await shop.installment(ana, due, number=n) for n in (1, 2)]
    return ana, originals


async def _agreements(shop: Shop, customer_id: Any) -> list[Agreement]:
    await use_scope(shop.session, SYSTEM)
    rows = await shop.session.scalars(
        select(Agreement)
        .where(Agreement.customer_id == customer_id)
        .execution_options(populate_existing=True)
    )
    return list(rows)


async def _plan(shop: Shop, agreement: Agreement) -> list[AgreementInstallment]:
    await use_scope(shop.session, SYSTEM)
    rows = await shop.session.scalars(
        select(AgreementInstallment)
        .where(AgreementInstallment.agreement_id == agreement.id)
        .order_by(AgreementInstallment.number)
        .execution_options(populate_existing=True)
    )
    return list(rows)


async def test_quero_parcelar_brings_the_offer_menu_as_a_list(
    shop: Shop, run_jobs: Jobs, sandbox: httpx.AsyncClient
) -> None:
    ana, _ = await _late_debtor(shop)

    await _debtor_writes(sandbox, shop, ANA, "quero parcelar")
    await run_jobs()

    (menu,) = await _lists(sandbox)
    rows = _rows(menu)
    titles = [r["title"] for r in rows]
    assert titles[0].startswith("À vista R$") and "Entrada + 3x" in titles
    assert titles[-1] == "Nova data"
    assert all(len(r["title"]) <= 24 and len(r.get("description", "")) <= 72 for r in rows)
    assert menu["action"]["button"] == MENU_BUTTON
    assert "valem até" in menu["body"]["text"]
    (offer,) = (await shop.session.scalars(select(Offer).where(Offer.customer_id == ana.id))).all()
    assert [r["id"] for r in rows] == [f"OFFER:{offer.id}:{o['id']}" for o in offer.options]
    pay_today = offer.options[0]
    assert titles[0] == f"À vista {format_brl(Decimal(pay_today['negotiated_total']))}"
    conversation = await shop.conversation(ana)
    assert (conversation.intent, conversation.priority) == ("negotiate", PRIORITY_HIGH)
    assert await _bodies(sandbox) == []  # no "um atendente vai falar com você"
    (out,) = [m for m in await shop.messages(conversation) if m.direction == "out"]
    assert (out.kind, out.status, out.text) == ("interactive", "sent", menu["body"]["text"])


async def test_tapping_entrada_mais_3x_makes_the_agreement_and_sends_terms_and_pix(
    shop: Shop, run_jobs: Jobs, sandbox: httpx.AsyncClient
) -> None:
    ana, originals = await _late_debtor(shop)
    await _debtor_writes(sandbox, shop, ANA, "quero parcelar")
    await run_jobs()
    (menu,) = await _lists(sandbox)
    (row,) = [r for r in _rows(menu) if r["title"] == "Entrada + 3x"]

    await _taps(sandbox, shop, row)
    await run_jobs()

    (agreement,) = await _agreements(shop, ana.id)
    assert (agreement.status, agreement.option_id) == ("active", "installments_3")
    for inst in originals:
        assert (await shop.fresh(inst)).status == "renegotiated"
    plan = await _plan(shop, agreement)
    assert [i.number for i in plan] == [0, 1, 2, 3]
    pix = await agreement_pay.pix_for(shop.session, agreement, 0)
    (confirmation,) = await _bodies(sandbox)
    assert format_brl(agreement.negotiated_total) in confirmation
    assert f"Entrada: {format_brl(plan[0].amount)}" in confirmation
    assert f"3 parcelas de {format_brl(plan[1].amount)}" in confirmation
    assert plan[1].due_date.strftime("%d/%m/%Y") in confirmation
    assert confirmation.endswith("Pix copia e cola da entrada:\n" + pix.payload)
    assert pix.amount == plan[0].amount

    await _replay(shop, run_jobs)  # the events once more: nothing new

    assert len(await _agreements(shop, ana.id)) == 1
    assert len(await _lists(sandbox)) == 1 and len(await _bodies(sandbox)) == 1


async def test_paying_today_sends_the_pix_of_the_whole_discounted_amount(
    shop: Shop, run_jobs: Jobs, sandbox: httpx.AsyncClient
) -> None:
    ana, _ = await _late_debtor(shop)
    await _debtor_writes(sandbox, shop, ANA, "quero negociar")
    await run_jobs()
    (menu,) = await _lists(sandbox)

    await _taps(sandbox, shop, _rows(menu)[0])
    await run_jobs()

    (agreement,) = await _agreements(shop, ana.id)
    assert agreement.option_id == "pay_today"
    pix = await agreement_pay.pix_for(shop.session, agreement, 0)
    assert pix.amount == agreement.negotiated_total < agreement.original_total
    (confirmation,) = await _bodies(sandbox)
    assert f"Pagamento único de {format_brl(pix.amount)}" in confirmation
    assert confirmation.endswith(pix.payload)


async def test_an_expired_menu_gets_an_apology_and_a_fresh_one(
    shop: Shop, run_jobs: Jobs, sandbox: httpx.AsyncClient
) -> None:
    ana, originals = await _late_debtor(shop)
    await _debtor_writes(sandbox, shop, ANA, "quero parcelar")
    await run_jobs()
    (first,) = await _lists(sandbox)
    await use_scope(shop.session, SYSTEM)
    await shop.session.execute(
        update(Offer)
        .where(Offer.customer_id == ana.id)
        .values(expires_at=datetime.now(UTC) - timedelta(minutes=1))
    )

    await _taps(sandbox, shop, _rows(first)[1])
    await run_jobs()

    assert await _agreements(shop, ana.id) == []
    assert [(await shop.fresh(i)).status for i in originals] == ["open", "open"]
    again, fresh = await _lists(sandbox)
    assert again == first
    assert fresh["body"]["text"].startswith(EXPIRED_APOLOGY)
    assert _rows(fresh)[0]["id"] != _rows(first)[0]["id"]  # a new offer

    await _taps(sandbox, shop, _rows(fresh)[1])  # the fresh menu works
    await run_jobs()
    assert len(await _agreements(shop, ana.id)) == 1


async def test_outside_the_window_no_menu_goes_out_and_an_operator_takes_it(
    shop: Shop, run_jobs: Jobs, sandbox: httpx.AsyncClient
) -> None:
    ana, _ = await _late_debtor(shop)

    await shop.receive(_text(ANA_WA, "wamid.LATE1", "quero parcelar", _now_ts(-25 * 3600)))
    await run_jobs()

    assert await _lists(sandbox) == [] and await _bodies(sandbox) == []
    assert list(await shop.session.scalars(select(Offer).where(Offer.customer_id == ana.id))) == []
    conversation = await shop.conversation(ana)
    assert (conversation.state, conversation.intent) == ("open", "negotiate")
    assert conversation.priority == PRIORITY_HIGH


async def test_nothing_overdue_keeps_the_operator_with_priority(
    shop: Shop, run_jobs: Jobs, sandbox: httpx.AsyncClient
) -> None:
    await shop.pix()
    ana = await shop.debtor()
    await shop.installment(ana, _today() + timedelta(days=10))  # not due yet

    await _debtor_writes(sandbox, shop, ANA, "quero parcelar")
    await run_jobs()

    assert await _lists(sandbox) == []
    assert await _bodies(sandbox) == [OPERATOR_REPLY]
    conversation = await shop.conversation(ana)
    assert (conversation.state, conversation.priority) == ("open", PRIORITY_HIGH)


# --- the sandbox refuses a list as Meta does ---------------------------------------------------


def _list_body(to: str, rows: list[dict[str, str]]) -> dict[str, Any]:
    return {
        "messaging_product": "whatsapp",
        "to": to,
        "type": "interactive",
        "interactive": {
            "type": "list",
            "body": {"text": "Escolha uma opção"},
            "action": {"button": MENU_BUTTON, "sections": [{"rows": rows}]},
        },
    }


async def _send_list(sandbox: httpx.AsyncClient, rows: list[dict[str, str]]) -> httpx.Response:
    return await sandbox.post(
        f"/v24.0/{PHONE_A}/messages",
        json=_list_body(ANA_WA, rows),
        headers={"Authorization": f"Bearer {TOKEN_A}"},
    )


async def test_the_sandbox_refuses_a_list_outside_the_window_or_with_fields_too_long(
    shop: Shop, sandbox: httpx.AsyncClient
) -> None:
    row = {"id": "OFFER:x:pay_today", "title": "À vista R$ 180,00", "description": "Hoje"}

    closed = await _send_list(sandbox, [row])
    assert closed.status_code == 400 and closed.json()["error"]["code"] == 131047

    await _debtor_writes(sandbox, shop, ANA, "oi")  # opens the window
    assert (await _send_list(sandbox, [row])).status_code == 200
    for field, value in (("title", "x" * 25), ("description", "y" * 73), ("id", "z" * 201)):
        refused = await _send_list(sandbox, [{**row, field: value}])
        error = refused.json()["error"]
        assert (refused.status_code, error["code"]) == (400, 131009)
        assert f"rows[0].{field}" in error["error_data"]["details"]
    eleven = [{**row, "id": f"row-{n}"} for n in range(11)]
    too_many = await _send_list(sandbox, eleven)
    assert too_many.json()["error"]["code"] == 131009
    assert len(await _lists(sandbox)) == 1


# --- paying the down payment -------------------------------------------------------------------


class _Owner:
    """What ``tests.support.pix.connection`` needs of a retailer."""

    def __init__(self, tenant_id: Any) -> None:
        self.id = tenant_id


async def test_the_pix_sent_in_the_chat_pays_the_down_payment(
    shop: Shop, run_jobs: Jobs, sandbox: httpx.AsyncClient, settings: Any
) -> None:
    ana, originals = await _late_debtor(shop)
    await _debtor_writes(sandbox, shop, ANA, "quero parcelar")
    await run_jobs()
    (menu,) = await _lists(sandbox)
    await _taps(sandbox, shop, next(r for r in _rows(menu) if r["title"] == "Entrada + 3x"))
    await run_jobs()
    (agreement,) = await _agreements(shop, ana.id)
    pix = await agreement_pay.pix_for(shop.session, agreement, 0)
    (confirmation,) = await _bodies(sandbox)
    assert pix.payload in confirmation
    conn, _ = await connection(shop.session, settings, _Owner(shop.tenant_id))

    await _pay_by_pix(shop.session, conn, pix_item(pix.txid, str(pix.amount)))

    down, *rest = await _plan(shop, agreement)
    assert (down.status, down.amount_paid) == ("paid", pix.amount)
    assert [i.status for i in rest] == ["open"] * 3
    assert [(await shop.fresh(i)).status for i in originals] == ["renegotiated"] * 2
    assert (await shop.fresh(agreement)).status == "active"


async def _psp_pays(
    sandbox: httpx.AsyncClient,
    shop: Shop,
    settings: Any,
    sessionmaker: SessionMaker,
    redis: aioredis.Redis,
    copia_e_cola: str,
) -> None:
    """The debtor pays ``copia_e_cola`` at the sandbox PSP, which posts the BCB webhook over
    HTTP to the webhooks service (on a real port, in the test's transaction); the ``inbound``
    job then applies it."""
    _, token = await connection(shop.session, settings, _Owner(shop.tenant_id))
    async with AsyncExitStack() as stack:
        hooks = hooks_app(settings, sessionmaker=sessionmaker, redis=redis)
        await stack.enter_async_context(run_lifespan(hooks))
        url = await stack.enter_async_context(serve(hooks))
        registered = await sandbox.post(
            "/_sandbox/pix/connections",
            json={"key": PIX_KEY, "webhook_url": f"{url}/pix/{token}", "retry_base_ms": 5},
        )
        assert registered.status_code == 201, registered.text
        paid = await sandbox.post(
            "/_sandbox/pix/pay",
            json={"copia_e_cola": copia_e_cola, "payer": {"nome": "Ana Exemplo"}},
        )
        assert paid.status_code == 201, paid.text
        assert [d["outcome"] for d in paid.json()["deliveries"]] == [200]


async def _agreement_templates_approved(shop: Shop, sandbox: httpx.AsyncClient) -> None:
    """The retailer's agreement templates went through Meta's review (in the sandbox's WABA)."""
    seeds = [
        {"name": d.name, "body": templating.compile_body(d.body).text} for d in AGREEMENT_DEFAULTS
    ]
    await sandbox.post(f"/_sandbox/whatsapp/wabas/{WABA_A}", json={"templates": seeds})
    await use_scope(shop.session, SYSTEM)
    await shop.session.execute(
        update(MessageTemplate)
        .where(
            MessageTemplate.tenant_id == shop.tenant_id,
            MessageTemplate.name.in_([d.name for d in AGREEMENT_DEFAULTS]),
        )
        .values(status=TemplateStatus.APPROVED)
    )


async def test_once_the_psp_pays_the_down_payment_the_agreement_regua_reminds_the_first(
    shop: Shop,
    run_jobs: Jobs,
    sandbox: httpx.AsyncClient,
    settings: Any,
    sessionmaker: SessionMaker,
    redis: aioredis.Redis,
) -> None:
    ana, originals = await _late_debtor(shop)
    await _agreement_templates_approved(shop, sandbox)
    await _debtor_writes(sandbox, shop, ANA, "quero parcelar")
    await run_jobs()
    (menu,) = await _lists(sandbox)
    await _taps(sandbox, shop, next(r for r in _rows(menu) if r["title"] == "Entrada + 3x"))
    await run_jobs()
    (agreement,) = await _agreements(shop, ana.id)
    down_pix = await agreement_pay.pix_for(shop.session, agreement, 0)

    await _psp_pays(sandbox, shop, settings, sessionmaker, redis, down_pix.payload)
    await run_jobs()

    down, first, *_ = await _plan(shop, agreement)
    assert (down.status, down.amount_paid) == ("paid", down_pix.amount)
    assert [(await shop.fresh(i)).status for i in originals] == ["renegotiated"] * 2
    # the first agreement installment's reminder day (two days before it falls due), frozen
    reminder_day = first.due_date - timedelta(days=2)
    now = datetime.combine(reminder_day, time(10), tzinfo=SP)
    for _ in range(2):  # however often the scheduler plans that day
        await plan_tenant(shop.session, shop.tenant_id, now)
    (reminder,) = await shop.session.scalars(
        select(ContactAttempt).where(
            ContactAttempt.customer_id == ana.id, ContactAttempt.kind == "agreement"
        )
    )
    assert (reminder.state, reminder.contact_day) == ("queued", reminder_day)

    sent = await sending.send_attempt(shop.session, reminder.id, now=max(now, reminder.planned_for))

    assert sent == "sent"
    (message,) = [m for m in await _sandbox_messages(sandbox) if m["type"] == "template"]
    assert message["to"] == ANA_WA
    assert message["payload"]["template"]["name"] == "quita_acordo_lembrete_v1"
    parameters = [p["text"] for p in message["payload"]["template"]["components"][0]["parameters"]]
    assert "1 de 3" in parameters and format_date_br(first.due_date) in parameters
    assert format_brl(first.amount) in parameters
    pix = decode(next(p for p in parameters if p.startswith("000201")))
    assert (pix.amount, pix.txid) == (first.amount, txid_for(first.id))
