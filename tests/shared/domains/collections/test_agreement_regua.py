"""The agreement régua, with the clock frozen on the days that matter: each agreement installment
is reminded on its own steps (-2, 0, +3 days), once however often the planner runs, as a message
of its own asking for what is still due on it with its Pix; a payment cancels the reminder
before it goes, and so does the agreement ending."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

import httpx
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from shared.brazil.numbers import format_brl, format_date_br
from shared.brazil.pix import decode
from shared.domains.audit.service import Actor
from shared.domains.collections import sending
from shared.domains.evidence import dossier as evidence
from shared.domains.evidence import dossier_html
from shared.domains.money.pixcodes import txid_for
from shared.domains.negotiation import agreement_pay, agreements, lifecycle
from shared.domains.negotiation import service as negotiation
from shared.domains.paypage import links
from shared.domains.paypage import service as paypage
from shared.models import (
    Agreement,
    AgreementInstallment,
    CollectionSettings,
    ContactAttempt,
    ContactAttemptItem,
    Customer,
)
from shared.tenancy import Principal
from tests.shared.domains.collections import test_sending
from tests.shared.domains.collections.test_planner import Shop
from tests.shared.domains.collections.test_sending import MARIA, SP, _sent_at_sandbox

sandbox = test_sending.sandbox  # the WhatsApp and SMS sandbox those tests send through
shop = test_sending.shop  # a retailer with both channels, a Pix key, every template approved
ACTOR = Actor("cli", None)


class Plan:
    """An agreement "entrada + 3x" of Maria's two overdue installments, made today."""

    def __init__(
        self, customer: Customer, agreement: Agreement, rows: list[AgreementInstallment]
    ) -> None:
        self.customer, self.agreement, self.rows = customer, agreement, rows
        self.down, self.first = rows[0], rows[1]
        self.accepted_on = agreement.created_at.astimezone(SP).date()


async def _agreement(shop: Shop) -> Plan:
    maria = await shop.customer(phone=MARIA)
    late = datetime.now(SP).date() - timedelta(days=20)
    for _ in range(2):
        await shop.installment(maria, late)
    quita = Principal.retailer_process(shop.tenant_id, "test", "test")
    offer = await negotiation.make_offer(
        shop.session, quita, maria.external_id, installment_ids=None, terms=None, actor=ACTOR
    )
    agreement, _ = await agreements.accept(shop.session, quita, offer.id, "installments_3", ACTOR)
    rows = await agreements.installments_of(shop.session, agreement.id)
    assert [r.number for r in rows] == [0, 1, 2, 3]
    return Plan(maria, agreement, rows)


async def _pay(session: AsyncSession, inst: AgreementInstallment, amount: Decimal) -> None:
    await agreement_pay.record_payment(
        session,
        inst,
        external_id=f"E2E{uuid.uuid4().hex[:20]}",
        amount=amount,
        paid_at=datetime.now(UTC),
        method="pix",
        source="pix_webhook",
        txid=txid_for(inst.id),
        actor=ACTOR,
    )


def _at(day: date) -> datetime:
    """Ten in the morning of ``day`` in São Paulo (the debtor's and the retailer's time)."""
    return datetime.combine(day, time(10), tzinfo=SP)


async def _reminders(shop: Shop, plan: Plan) -> list[ContactAttempt]:
    rows = await shop.session.scalars(
        select(ContactAttempt)
        .where(ContactAttempt.customer_id == plan.customer.id, ContactAttempt.kind == "agreement")
        .order_by(ContactAttempt.contact_day, ContactAttempt.created_at)
        .execution_options(populate_existing=True)
    )
    return list(rows)


async def _planned_on(shop: Shop, plan: Plan, day: date) -> ContactAttempt:
    """The first installment's reminder the planner queues on ``day``."""
    await shop.plan(_at(day))
    (reminder,) = [r for r in await _reminders(shop, plan) if r.state == "queued"]
    return reminder


async def test_each_agreement_installment_is_reminded_on_its_steps_days_once(
    shop: Shop,
) -> None:
    plan = await _agreement(shop)
    await _pay(shop.session, plan.down, plan.down.amount)
    due = plan.first.due_date

    day = plan.accepted_on
    while day <= due + timedelta(days=5):
        await shop.plan(_at(day))
        await shop.plan(_at(day))  # a second run (or a second scheduler) adds nothing
        day += timedelta(days=1)

    reminders = await _reminders(shop, plan)
    assert [(r.contact_day, r.offset_days, r.template_name) for r in reminders] == [
        (due - timedelta(days=2), -2, "quita_acordo_lembrete_v1"),
        (due, 0, "quita_acordo_vence_hoje_v1"),
        (due + timedelta(days=3), 3, "quita_acordo_atraso_v1"),
    ]
    assert {r.state for r in reminders} == {"queued"}
    items = (
        await shop.session.execute(
            select(
                ContactAttemptItem.installment_id, ContactAttemptItem.agreement_installment_id
            ).where(ContactAttemptItem.attempt_id.in_([r.id for r in reminders]))
        )
    ).all()
    assert items == [(None, plan.first.id)] * 3
    # the originals are renegotiated: the retailer's régua says nothing about them
    others = await shop.attempts(plan.customer)
    assert {a.kind for a in others} == {"agreement"}


async def test_a_reminder_asks_for_what_is_still_due_with_the_installments_own_pix(
    shop: Shop, sandbox: httpx.AsyncClient, session: AsyncSession
) -> None:
    plan = await _agreement(shop)
    await _pay(session, plan.down, plan.down.amount)
    await _pay(session, plan.first, Decimal("10.00"))  # a part of the first, paid early
    reminder = await _planned_on(shop, plan, plan.first.due_date - timedelta(days=2))

    state = await sending.send_attempt(session, reminder.id, now=reminder.planned_for)

    assert state == "sent"
    (message,) = await _sent_at_sandbox(sandbox)
    template = message["payload"]["template"]
    assert template["name"] == "quita_acordo_lembrete_v1"
    parameters = [p["text"] for p in template["components"][0]["parameters"]]
    still_due = plan.first.amount - Decimal("10.00")
    assert "1 de 3" in parameters
    assert format_brl(still_due) in parameters
    assert format_date_br(plan.first.due_date) in parameters
    pix = decode(next(p for p in parameters if p.startswith("000201")))
    assert (pix.amount, pix.txid) == (still_due, txid_for(plan.first.id))
    await session.refresh(reminder)
    assert reminder.rendered_text is not None
    assert "parcela 1 de 3 do seu acordo" in reminder.rendered_text
    assert reminder.amounts is not None and reminder.amounts["totals"]["total"] == str(still_due)
    assert reminder.amounts["totals"]["fine"] == "0.00"  # the agreement's terms are fixed

    # the payment page of the message (a retailer may add {{link_pagamento}} to these
    # templates) asks for the same amount with the same Pix
    found = await paypage.find(
        session, links.Link(links.ATTEMPT, reminder.id, reminder.planned_for + timedelta(days=7))
    )
    assert found is not None
    bill = await paypage.bill(session, found, reminder.planned_for)
    assert [(line.label, line.total) for line in bill.lines] == [
        ("Parcela 1 de 3 do acordo", still_due)
    ]
    assert bill.total == still_due and bill.pix is not None
    assert decode(bill.pix).txid == txid_for(plan.first.id)
    await _pay(session, plan.first, still_due)
    paid = await paypage.bill(session, found, reminder.planned_for)
    assert (paid.settled, paid.lines) == ("paid", [])

    # the customer's dossier names the agreement installment the reminder asked for, and the
    # agreement with its plan
    dossier = await evidence.build(session, plan.customer, reminder.planned_for)
    (sent,) = [a for a in dossier["contact_attempts"] if a["id"] == str(reminder.id)]
    assert sent["installments"] == [f"agreement {plan.agreement.id} #1"]
    (made,) = dossier["agreements"]
    assert made["id"] == str(plan.agreement.id) and made["status"] == "active"
    assert [(i["number"], i["amount_paid"]) for i in made["installments"]][:2] == [
        (0, str(plan.down.amount)),
        (1, str(plan.first.amount)),
    ]
    assert {e["type"] for e in dossier["timeline"]} >= {"agreement", "contact_attempt"}
    page = dossier_html.render(dossier)
    assert "<h2>Acordos</h2>" in page and f"agreement {plan.agreement.id} #1" in page


async def test_paying_the_installment_cancels_its_reminder_before_it_goes(
    shop: Shop, sandbox: httpx.AsyncClient, session: AsyncSession
) -> None:
    plan = await _agreement(shop)
    await _pay(session, plan.down, plan.down.amount)
    reminder = await _planned_on(shop, plan, plan.first.due_date - timedelta(days=2))

    await _pay(session, plan.first, plan.first.amount)

    await session.refresh(reminder)
    assert (reminder.state, reminder.reason) == ("cancelled", "paid")
    assert await sending.send_attempt(session, reminder.id, now=reminder.planned_for) == (
        "cancelled"
    )
    assert await _sent_at_sandbox(sandbox) == []


async def test_the_sender_checks_again_that_the_installment_is_still_open(
    shop: Shop, sandbox: httpx.AsyncClient, session: AsyncSession
) -> None:
    plan = await _agreement(shop)
    await _pay(session, plan.down, plan.down.amount)
    reminder = await _planned_on(shop, plan, plan.first.due_date - timedelta(days=2))
    # paid in a way that did not reach the queued reminder (a race with the planner)
    await session.execute(
        update(AgreementInstallment)
        .where(AgreementInstallment.id == plan.first.id)
        .values(status="paid", amount_paid=plan.first.amount)
    )

    state = await sending.send_attempt(session, reminder.id, now=reminder.planned_for)

    await session.refresh(reminder)
    assert (state, reminder.reason) == ("cancelled", "paid")
    assert await _sent_at_sandbox(sandbox) == []


async def test_a_void_agreement_cancels_its_reminders_and_none_goes(
    shop: Shop, sandbox: httpx.AsyncClient, session: AsyncSession
) -> None:
    plan = await _agreement(shop)  # the down payment is never paid
    day = plan.first.due_date - timedelta(days=2)
    reminder = await _planned_on(shop, plan, day)

    assert await lifecycle.review(session, plan.agreement.id, _at(day)) == "void"

    await session.refresh(reminder)
    assert (reminder.state, reminder.reason) == ("cancelled", "agreement_void")
    assert await sending.send_attempt(session, reminder.id, now=reminder.planned_for) == (
        "cancelled"
    )
    assert await _sent_at_sandbox(sandbox) == []


async def test_an_agreement_reminder_is_never_merged_with_the_retailers_installments(
    shop: Shop,
) -> None:
    plan = await _agreement(shop)
    await _pay(shop.session, plan.down, plan.down.amount)
    day = plan.first.due_date - timedelta(days=2)
    await shop.installment(plan.customer, day + timedelta(days=3))  # its D-3 is the same day
    settings = await shop.session.scalar(
        select(CollectionSettings).where(CollectionSettings.tenant_id == shop.tenant_id)
    )
    assert settings is not None
    settings.daily_cap = 2
    await shop.session.flush()

    await shop.plan(_at(day))

    queued = [a for a in await shop.attempts(plan.customer) if a.state == "queued"]
    assert sorted((a.kind, a.template_name) for a in queued) == [
        ("agreement", "quita_acordo_lembrete_v1"),
        ("regua", "quita_lembrete_d3_v1"),
    ]
    for attempt in queued:
        items = (
            await shop.session.execute(
                select(
                    ContactAttemptItem.installment_id,
                    ContactAttemptItem.agreement_installment_id,
                ).where(ContactAttemptItem.attempt_id == attempt.id)
            )
        ).one()
        assert (items[1] is not None) == (attempt.kind == "agreement")
        assert (items[0] is not None) == (attempt.kind == "regua")


async def test_under_the_daily_cap_the_agreement_reminder_goes_and_the_other_waits(
    shop: Shop,
) -> None:
    plan = await _agreement(shop)
    await _pay(shop.session, plan.down, plan.down.amount)
    day = plan.first.due_date - timedelta(days=2)
    await shop.installment(plan.customer, day + timedelta(days=3))

    await shop.plan(_at(day))

    decided = {a.kind: (a.state, a.reason) for a in await shop.attempts(plan.customer)}
    assert decided == {"agreement": ("queued", None), "regua": ("skipped", "daily_cap")}
