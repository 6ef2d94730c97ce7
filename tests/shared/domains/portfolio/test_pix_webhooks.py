"""Applying journaled Pix: each one becomes one payment of the installment its txid names —
however often it is processed — and a Pix Quita cannot apply is kept with the reason, never
paid to somebody else's installment."""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.config import Settings
from shared.domains.inbound import journal
from shared.domains.inbound.actions import second_copy_text
from shared.domains.money.pixcodes import txid_for
from shared.domains.portfolio import pix_webhooks
from shared.models import (
    ContactAttempt,
    ContactAttemptItem,
    Conversation,
    ConversationMessage,
    Customer,
    Installment,
    Payment,
    WebhookEvent,
)
from shared.models.pix_connection import PixConnection
from shared.tenancy import SYSTEM, tenant_scope, use_scope
from tests.support.identity import Identities
from tests.support.pix import body, connection, installment, pix_item, retailer


async def _post(session: AsyncSession, conn: PixConnection, *items: dict[str, object]) -> None:
    """What the receiver does with a verified POST, then what the ``inbound`` jobs do."""
    await use_scope(session, SYSTEM)
    events = pix_webhooks.events_for(conn, pix_webhooks.parse(body(*items)))
    await journal.journal(
        session,
        journal.post(
            provider="pix",
            body=body(*items),
            content_type="application/json",
            events=events,
            tenant_id=conn.tenant_id,
        ),
    )
    await _process(session, conn.tenant_id)


async def _process(session: AsyncSession, tenant_id: uuid.UUID) -> None:
    await use_scope(session, SYSTEM)
    pending = list(
        await session.scalars(
            select(WebhookEvent.id).where(WebhookEvent.state == "pending").order_by(WebhookEvent.id)
        )
    )
    await use_scope(session, tenant_scope(tenant_id))
    for event_id in pending:
        await journal.process_event(session, event_id)


async def _reload(session: AsyncSession, inst: Installment) -> Installment:
    await use_scope(session, SYSTEM)
    await session.refresh(inst)
    return inst


async def _events(session: AsyncSession) -> list[WebhookEvent]:
    await use_scope(session, SYSTEM)
    return list(await session.scalars(select(WebhookEvent).order_by(WebhookEvent.id)))


async def test_a_pix_for_the_whole_balance_pays_the_installment_once_even_when_replayed(
    session: AsyncSession, ids: Identities, settings: Settings
) -> None:
    shop = await retailer(session, ids, "Loja Aplica")
    inst = await installment(session, ids, shop, "P-1", "199.90")
    conn, _ = await connection(session, settings, shop)
    item = pix_item(txid_for(inst.id), "199.90")

    await _post(session, conn, item)
    # a replay (quita webhooks replay --all) processes the same event again
    await use_scope(session, SYSTEM)
    (event,) = await _events(session)
    event.state = "pending"
    await session.flush()
    await _process(session, shop.id)

    inst = await _reload(session, inst)
    assert inst.status == "paid" and inst.amount_paid == Decimal("199.90")
    (payment,) = list(await session.scalars(select(Payment)))
    assert payment.external_id == item["endToEndId"] and payment.method == "pix"
    assert payment.source == "pix_webhook" and payment.txid == txid_for(inst.id)
    assert (await _events(session))[0].state == "processed"


async def test_partial_and_over_payments_follow_the_payment_rules(
    session: AsyncSession, ids: Identities, settings: Settings
) -> None:
    shop = await retailer(session, ids, "Loja Parcial")
    inst = await installment(session, ids, shop, "P-1", "300.00")
    conn, _ = await connection(session, settings, shop)

    await _post(session, conn, pix_item(txid_for(inst.id), "120.00"))
    inst = await _reload(session, inst)
    assert inst.status == "partially_paid" and inst.amount_paid == Decimal("120.00")

    await _post(session, conn, pix_item(txid_for(inst.id), "200.00"))
    inst = await _reload(session, inst)
    assert inst.status == "paid" and inst.amount_paid == Decimal("300.00")
    last = await session.scalar(select(Payment).where(Payment.amount == Decimal("200.00")))
    assert last is not None and (last.applied, last.overpaid) == (
        Decimal("180.00"),
        Decimal("20.00"),
    )


async def test_a_pix_without_a_txid_of_ours_is_kept_unmatched_with_the_reason(
    session: AsyncSession, ids: Identities, settings: Settings
) -> None:
    shop = await retailer(session, ids, "Loja Sem Txid")
    conn, _ = await connection(session, settings, shop)

    await _post(session, conn, pix_item(None, "10.00"), pix_item("PEDIDO123", "20.00"))

    events = await _events(session)
    assert [e.state for e in events] == ["ignored", "ignored"]
    assert "no txid" in (events[0].result or "")
    assert "not one of Quita's" in (events[1].result or "")
    assert list(await session.scalars(select(Payment))) == []
    await use_scope(session, tenant_scope(shop.id))
    page = await pix_webhooks.received(session, shop.id, unmatched_only=True)
    assert [(p.amount, p.state) for p in page.items] == [
        (Decimal("20.00"), "unmatched"),
        (Decimal("10.00"), "unmatched"),
    ]
    assert page.items[0].reason and page.items[0].installment_id is None


async def test_another_retailers_txid_is_never_applied(
    session: AsyncSession, ids: Identities, settings: Settings
) -> None:
    mine = await retailer(session, ids, "Loja Minha")
    theirs = await retailer(session, ids, "Loja Alheia")
    their_inst = await installment(session, ids, theirs, "P-9", "50.00")
    my_conn, _ = await connection(session, settings, mine)

    await _post(session, my_conn, pix_item(txid_for(their_inst.id), "50.00"))

    their_inst = await _reload(session, their_inst)
    assert their_inst.status == "open" and their_inst.amount_paid == 0
    (event,) = await _events(session)
    assert event.state == "ignored" and "no installment of this retailer" in (event.result or "")


async def test_a_pix_for_a_cancelled_installment_is_kept_unmatched(
    session: AsyncSession, ids: Identities, settings: Settings
) -> None:
    shop = await retailer(session, ids, "Loja Cancelada")
    inst = await installment(session, ids, shop, "P-1", "40.00")
    conn, _ = await connection(session, settings, shop)
    await use_scope(session, SYSTEM)
    inst.status = "cancelled"
    await session.flush()

    await _post(session, conn, pix_item(txid_for(inst.id), "40.00"))

    (event,) = await _events(session)
    assert event.state == "ignored" and "cancelled" in (event.result or "")
    assert list(await session.scalars(select(Payment))) == []


async def test_a_devolucao_reverses_nothing_and_says_so(
    session: AsyncSession, ids: Identities, settings: Settings
) -> None:
    shop = await retailer(session, ids, "Loja Devolve")
    inst = await installment(session, ids, shop, "P-1", "70.00")
    conn, _ = await connection(session, settings, shop)
    item = pix_item(txid_for(inst.id), "70.00")
    await _post(session, conn, item)

    refund = {
        "id": "D1",
        "rtrId": "D" + item["endToEndId"][1:],
        "valor": "70.00",
        "status": "DEVOLVIDO",
    }
    await _post(session, conn, {**item, "devolucoes": [refund]})

    inst = await _reload(session, inst)
    assert inst.status == "paid" and inst.amount_paid == Decimal("70.00")
    refund_event = (await _events(session))[-1]
    assert refund_event.kind == "pix.refund" and refund_event.state == "ignored"
    assert "no payment was reversed" in (refund_event.result or "")


@hypothesis_settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    total_cents=st.integers(min_value=2, max_value=10_000_000),
    cuts=st.lists(st.floats(min_value=0.0, max_value=1.0), min_size=1, max_size=6),
)
async def test_any_split_of_the_amount_into_pix_sums_exactly_in_amount_paid(
    session: AsyncSession,
    ids: Identities,
    settings: Settings,
    total_cents: int,
    cuts: list[float],
) -> None:
    points = sorted({min(max(int(total_cents * c), 1), total_cents - 1) for c in cuts})
    bounds = [0, *points, total_cents]
    parts = [Decimal(b - a) / 100 for a, b in itertools.pairwise(bounds) if b > a]
    total = Decimal(total_cents) / 100
    shop = await retailer(session, ids, f"Loja {uuid.uuid4().hex[:8]}")
    inst = await installment(session, ids, shop, "P-1", f"{total:.2f}")
    conn, _ = await connection(session, settings, shop)

    await _post(session, conn, *[pix_item(txid_for(inst.id), f"{p:.2f}") for p in parts])

    inst = await _reload(session, inst)
    assert sum(parts) == total
    assert inst.amount_paid == total and inst.status == "paid"
    paid = list(await session.scalars(select(Payment).where(Payment.installment_id == inst.id)))
    assert len(paid) == len(parts) and sum(p.overpaid for p in paid) == 0


async def _message_about(
    session: AsyncSession, shop_id: uuid.UUID, *installments: Installment
) -> uuid.UUID:
    """A reminder about several installments: its Pix carries the message's id."""
    await use_scope(session, tenant_scope(shop_id))
    attempt = ContactAttempt(
        id=uuid.uuid4(),
        tenant_id=shop_id,
        customer_id=installments[0].customer_id,
        kind="manual",
        channel="whatsapp",
        contact_day=date.today(),
        planned_for=datetime.now(UTC),
    )
    session.add(attempt)
    await session.flush()
    session.add_all(
        ContactAttemptItem(attempt_id=attempt.id, installment_id=i.id, tenant_id=shop_id)
        for i in installments
    )
    await session.flush()
    await use_scope(session, SYSTEM)
    return attempt.id


async def test_the_pix_of_a_message_about_several_installments_pays_them_oldest_first(
    session: AsyncSession, ids: Identities, settings: Settings
) -> None:
    shop = await retailer(session, ids, "Loja Várias")
    first = await installment(session, ids, shop, "P-1", "100.00")
    second = await installment(session, ids, shop, "P-2", "150.00")
    conn, _ = await connection(session, settings, shop)
    message = await _message_about(session, shop.id, second, first)
    item = pix_item(txid_for(message), "260.00")

    await _post(session, conn, item)
    await _post(session, conn, item)  # the PSP delivers it again

    first, second = await _reload(session, first), await _reload(session, second)
    assert (first.status, first.amount_paid) == ("paid", Decimal("100.00"))
    assert (second.status, second.amount_paid) == ("paid", Decimal("150.00"))
    payments = list(await session.scalars(select(Payment).order_by(Payment.external_id)))
    assert [(p.external_id, p.amount, p.overpaid) for p in payments] == [
        (item["endToEndId"], Decimal("100.00"), Decimal("0.00")),
        (f"{item['endToEndId']}/2", Decimal("160.00"), Decimal("10.00")),
    ]
    assert [e.state for e in await _events(session)] == ["processed"]
    (listed,) = (await pix_webhooks.received(session, shop.id)).items
    assert (listed.state, listed.installment_id) == ("applied", first.id)  # not the message's id


async def test_a_short_pix_of_such_a_message_pays_the_oldest_and_leaves_the_rest(
    session: AsyncSession, ids: Identities, settings: Settings
) -> None:
    shop = await retailer(session, ids, "Loja Curta")
    first = await installment(session, ids, shop, "P-1", "100.00")
    second = await installment(session, ids, shop, "P-2", "150.00")
    conn, _ = await connection(session, settings, shop)
    message = await _message_about(session, shop.id, first, second)

    await _post(session, conn, pix_item(txid_for(message), "130.00"))

    first, second = await _reload(session, first), await _reload(session, second)
    assert (first.status, first.amount_paid) == ("paid", Decimal("100.00"))
    assert (second.status, second.amount_paid) == ("partially_paid", Decimal("30.00"))


async def test_the_pix_of_a_second_copy_in_the_chat_pays_the_installments_it_listed(
    session: AsyncSession, ids: Identities, settings: Settings
) -> None:
    shop = await retailer(session, ids, "Loja Segunda Via")
    first = await installment(session, ids, shop, "P-1", "80.00")
    second = await installment(session, ids, shop, "P-2", "120.00")
    conn, _ = await connection(session, settings, shop)
    await use_scope(session, tenant_scope(shop.id))
    customer = await session.get_one(Customer, first.customer_id)
    chat = Conversation(tenant_id=shop.id, customer_id=customer.id)
    session.add(chat)
    await session.flush()
    asked = ConversationMessage(
        tenant_id=shop.id,
        conversation_id=chat.id,
        direction="in",
        kind="text",
        text="segunda via",
        provider_message_id="wamid.SEGUNDAVIA",
        occurred_at=datetime.now(UTC),
    )
    session.add(asked)
    await session.flush()
    # two days before they fall due, both are what a second copy lists
    text, amounts = await second_copy_text(
        session, customer, date.today() + timedelta(days=8), asked.id
    )
    assert amounts is not None and "R$\xa0200,00" in text
    session.add(
        ConversationMessage(
            tenant_id=shop.id,
            conversation_id=chat.id,
            direction="out",
            kind="text",
            text=text,
            details={"amounts": amounts},
            occurred_at=datetime.now(UTC),
        )
    )
    await session.flush()

    await _post(session, conn, pix_item(str(amounts["pix_txid"]), "200.00"))

    first, second = await _reload(session, first), await _reload(session, second)
    assert (first.status, second.status) == ("paid", "paid")
