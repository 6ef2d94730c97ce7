"""Negotiating in the chat: the offer menu as a WhatsApp list, and the debtor's tap on a row.

:func:`send_menu` computes an offer for the customer's overdue installments (as the retailer,
under its policy) and records it as an interactive list message — one row per option, its id
``OFFER:<offer_id>:<option_id>`` — recorded and sent like any reply
(:func:`~shared.domains.inbound.replies.record_outbound`: inside the 24-hour window only, once
per ``dedupe_key``, never resent blindly).  ``None`` when no offer can be made: nothing
overdue, the customer broke more agreements than the policy allows, the window is closed.

:func:`take_choice` accepts the option a row names (``agreements.accept``, the tap's wamid as
idempotency key) and confirms the terms in plain Portuguese with the Pix of what is due now; an
offer that expired or whose installments changed gets an apology and a fresh menu.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from shared.brazil.calendar import timezone_for
from shared.brazil.numbers import format_brl, format_date_br
from shared.domains.audit.service import Actor
from shared.domains.inbound import replies
from shared.domains.money.pixcodes import NothingToPay, PixNotConfigured
from shared.domains.negotiation import agreement_pay, agreements, service
from shared.errors import NotFound, ValidationFailed
from shared.integrations.whatsapp import ListRow
from shared.integrations.whatsapp.payloads import (
    MAX_LIST_ROW_DESCRIPTION,
    MAX_LIST_ROW_TITLE,
    MAX_LIST_ROWS,
)
from shared.models import (
    Agreement,
    Conversation,
    ConversationMessage,
    Customer,
    Offer,
)
from shared.tenancy import Principal

log = structlog.get_logger("quita.negotiation.chat")

ROW_PREFIX = "OFFER:"
# Who the audit trail names for an offer made or accepted in the chat.
ACTOR = Actor("provider", "whatsapp")

# What the debtor reads.
MENU_BUTTON = "Ver opções"
MENU_SECTION = "Opções"
EXPIRED_APOLOGY = "Desculpe, aquela oferta não vale mais. Preparamos novas opções para você."
TAKEN_REPLY = "Essa oferta já foi usada em um acordo. Um atendente vai falar com você em breve."
UNKNOWN_REPLY = "Não conseguimos encontrar essa opção. Um atendente vai falar com você em breve."


@dataclass(frozen=True, slots=True)
class Choice:
    """A row the debtor tapped: the offer and the option it names."""

    offer_id: uuid.UUID
    option_id: str


def choice_of(payload: str | None) -> Choice | None:
    """The offer option a list row's id names (``OFFER:<offer_id>:<option_id>``), if it does."""
    if not payload or not payload.startswith(ROW_PREFIX):
        return None
    offer_ref, _, option_id = payload.removeprefix(ROW_PREFIX).partition(":")
    try:
        offer_id = uuid.UUID(offer_ref)
    except ValueError:
        return None
    return Choice(offer_id, option_id) if option_id else None


def retailer(tenant_id: uuid.UUID) -> Principal:
    """Quita negotiating in the retailer's own chat, under its policy (no agency mandate)."""
    return Principal.retailer_process(tenant_id, "whatsapp", "negotiation-chat")


# --- the menu ----------------------------------------------------------------------------------


async def send_menu(
    session: AsyncSession,
    conversation: Conversation,
    customer: Customer,
    *,
    now: datetime,
    dedupe_key: str,
    reply_to: str | None = None,
    preface: str | None = None,
) -> ConversationMessage | None:
    """Make an offer for the customer's overdue installments and send it as a list; ``None``
    when there is nothing to offer or the window is closed (an operator takes it then)."""
    if not replies.window_open(conversation, now) or await _offers_stopped(session, customer):
        return None
    try:
        async with session.begin_nested():
            offer = await service.make_offer(
                session,
                retailer(customer.tenant_id),
                str(customer.id),
                installment_ids=None,
                terms=None,
                actor=ACTOR,
            )
    except (ValidationFailed, NotFound) as exc:  # nothing overdue: no menu
        log.info("negotiation.no_menu", reason=type(exc).__name__)
        return None
    return await send_list(
        session,
        conversation,
        customer,
        offer,
        now=now,
        dedupe_key=dedupe_key,
        reply_to=reply_to,
        preface=preface,
    )


async def send_list(
    session: AsyncSession,
    conversation: Conversation,
    customer: Customer,
    offer: Offer,
    *,
    now: datetime,
    dedupe_key: str,
    reply_to: str | None = None,
    preface: str | None = None,
) -> ConversationMessage:
    """Record ``offer`` as a list message to send in ``conversation`` (inside the window:
    ``replies.WindowClosed`` otherwise), once per ``dedupe_key``."""
    body = menu_text(offer, customer, preface)
    rows = menu_rows(offer)
    interactive = {
        "type": "list",
        "body": {"text": body},
        "action": {
            "button": MENU_BUTTON,
            "sections": [
                {"title": MENU_SECTION, "rows": [_row_json(r) for r in rows]},
            ],
        },
    }
    return await replies.record_outbound(
        session,
        conversation,
        text=body,
        interactive=interactive,
        details={"offer_id": str(offer.id)},
        reply_to=reply_to,
        dedupe_key=dedupe_key,
        now=now,
    )


async def _offers_stopped(session: AsyncSession, customer: Customer) -> bool:
    policy = await service.current_policy(session, customer.tenant_id)
    return await service.offers_stopped(session, customer, policy.max_broken_agreements)


def _local(at: datetime, customer: Customer) -> datetime:
    return at.astimezone(ZoneInfo(timezone_for(customer.state, customer.city)))


def menu_text(offer: Offer, customer: Customer, preface: str | None = None) -> str:
    """The list's body: what the options are for and until when they hold."""
    until = _local(offer.expires_at, customer)
    total = sum((Decimal(b["total"]) for b in offer.basis), Decimal(0))
    lines = [
        f"Temos opções para você quitar {format_brl(total)} em atraso.",
        f"Escolha uma delas em “{MENU_BUTTON}”. As condições valem até "
        f"{format_date_br(until.date())} às {until:%H:%M}.",
    ]
    return "\n".join([preface, "", *lines] if preface else lines)


def menu_rows(offer: Offer) -> list[ListRow]:
    """One row per option of ``offer`` (at most the ten a list shows)."""
    return [
        ListRow(
            id=f"{ROW_PREFIX}{offer.id}:{option['id']}",
            title=_fit(row_title(option), MAX_LIST_ROW_TITLE),
            description=_fit(row_description(option), MAX_LIST_ROW_DESCRIPTION),
        )
        for option in offer.options[:MAX_LIST_ROWS]
    ]


def _row_json(row: ListRow) -> dict[str, str]:
    out = {"id": row.id, "title": row.title}
    if row.description:
        out["description"] = row.description
    return out


def _fit(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def row_title(option: dict[str, Any]) -> str:
    """ "À vista R$ 180,00", "Entrada + 3x", "Nova data"."""
    if option["kind"] == "pay_today":
        title = f"À vista {format_brl(Decimal(option['negotiated_total']))}"
        return title if len(title) <= MAX_LIST_ROW_TITLE else str(option["title"])
    return str(option["title"])


def row_description(option: dict[str, Any]) -> str:
    """The amounts of an option in a line."""
    down = option.get("down_payment")
    plan = option["installments"]
    if option["kind"] == "pay_today":
        discount = Decimal(option["original_total"]) - Decimal(option["negotiated_total"])
        text = "Pagamento hoje"
        return f"{text}, desconto de {format_brl(discount)}" if discount > 0 else text
    if not down and len(plan) == 1:
        return f"{format_brl(Decimal(plan[0]['amount']))} em {_day(plan[0]['due_date'])}"
    head = f"Entrada {format_brl(Decimal(down['amount']))} hoje + " if down else ""
    return f"{head}{len(plan)}x de {format_brl(Decimal(plan[0]['amount']))}"


def _day(iso: str) -> str:
    return format_date_br(date.fromisoformat(iso))


# --- the debtor's tap --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Taken:
    """What a tap on a row led to: a note for the journal, the agreement made (if any), the
    reply recorded (if any) and whether an operator must look."""

    note: str
    agreement: Agreement | None
    reply: ConversationMessage | None
    needs_operator: bool


async def take_choice(
    session: AsyncSession,
    conversation: Conversation,
    customer: Customer,
    choice: Choice,
    *,
    wamid: str,
    now: datetime,
) -> Taken:
    """Accept the option the debtor tapped and confirm it with the Pix of what is due now; an
    expired or stale offer gets an apology and a fresh menu.  Replies are keyed by ``wamid``."""
    offer = await session.get(Offer, choice.offer_id)
    if offer is None or offer.customer_id != customer.id:
        reply = await _say(session, conversation, UNKNOWN_REPLY, wamid, now)
        return Taken("unknown offer: for an operator", None, reply, True)
    try:
        async with session.begin_nested():
            agreement, _ = await agreements.accept(
                session,
                retailer(customer.tenant_id),
                offer.id,
                choice.option_id,
                ACTOR,
                idempotency_key=f"whatsapp:{wamid}",
            )
    except (agreements.OfferExpired, agreements.OfferStale) as exc:
        menu = await send_menu(
            session,
            conversation,
            customer,
            now=now,
            dedupe_key=f"action:{wamid}",
            reply_to=wamid,
            preface=EXPIRED_APOLOGY,
        )
        if menu is None:
            reply = await _say(session, conversation, EXPIRED_APOLOGY, wamid, now)
            return Taken(f"{exc.code}, no new offer: for an operator", None, reply, True)
        return Taken(f"{exc.code}: a fresh menu", None, menu, False)
    except agreements.OfferAccepted:
        reply = await _say(session, conversation, TAKEN_REPLY, wamid, now)
        return Taken("offer accepted before: for an operator", None, reply, True)
    except ValidationFailed:  # no such option in the offer
        reply = await _say(session, conversation, UNKNOWN_REPLY, wamid, now)
        return Taken("unknown option: for an operator", None, reply, True)
    option = next(o for o in offer.options if o.get("id") == agreement.option_id)
    text = confirmation_text(option, await _pix(session, agreement))
    reply = await _say(session, conversation, text, wamid, now)
    if reply is not None and not reply.details:
        reply.details = {"agreement_id": str(agreement.id)}
    return Taken(f"agreement {agreement.id} made", agreement, reply, False)


async def _say(
    session: AsyncSession, conversation: Conversation, text: str, wamid: str, now: datetime
) -> ConversationMessage | None:
    try:
        return await replies.record_outbound(
            session,
            conversation,
            text=text,
            reply_to=wamid,
            dedupe_key=f"action:{wamid}",
            now=now,
        )
    except replies.WindowClosed:
        log.info("negotiation.reply_skipped", reason="window_closed")
        return None


async def _pix(session: AsyncSession, agreement: Agreement) -> str | None:
    """The copia e cola of the agreement's first installment still owed (the down payment,
    or the whole amount paid today); ``None`` when the retailer has no Pix key."""
    number = 0 if agreement.down_payment_amount > 0 else 1
    try:
        return (await agreement_pay.pix_for(session, agreement, number)).payload
    except (PixNotConfigured, NothingToPay, NotFound):
        return None


def confirmation_text(option: dict[str, Any], pix: str | None) -> str:
    """The agreement's terms in plain Portuguese, and the Pix for what is due first."""
    down = option.get("down_payment")
    plan = option["installments"]
    total = Decimal(option["negotiated_total"])
    original = Decimal(option["original_total"])
    lines = ["Acordo fechado! Confira as condições:"]
    lines.append(
        f"• Total do acordo: {format_brl(total)}"
        + (f" (em vez de {format_brl(original)})" if total < original else "")
    )
    if down and not plan:
        lines.append(f"• Pagamento único de {format_brl(Decimal(down['amount']))} até hoje")
    elif down:
        lines.append(f"• Entrada: {format_brl(Decimal(down['amount']))} até hoje")
    if plan:
        amounts = [Decimal(i["amount"]) for i in plan]
        count = "1 parcela" if len(plan) == 1 else f"{len(plan)} parcelas"
        if len(set(amounts)) == 1:
            each = f" de {format_brl(amounts[0])}"
        else:
            each = ": " + ", ".join(format_brl(a) for a in amounts)
        first = "vencimento em" if len(plan) == 1 else "a primeira vence em"
        lines.append(f"• {count}{each}, {first} {_day(plan[0]['due_date'])}")
    interest = Decimal(option.get("interest") or 0)
    if interest > 0:
        lines.append(f"• Juros do parcelamento: {format_brl(interest)}")
    if pix:
        what = "da entrada" if down and plan else ("do pagamento" if down else "da parcela")
        lines += ["", f"Pix copia e cola {what}:", pix]
    return "\n".join(lines)


# --- sending an interactive message ------------------------------------------------------------
