"""Replies that act: what Quita does with each message a known customer sends.

:func:`respond` reads the intent of an inbound message just recorded in a customer's
conversation (:mod:`~shared.domains.inbound.intents`) and :func:`act` carries it out, in the
caller's transaction:

* ``opt_out`` — the customer is opted out of WhatsApp, SMS and e-mail (a "pare" is the debtor's
  clear will not to be collected on any channel: LGPD, CDC art. 42), the messages not sent yet
  are cancelled, and the stop is confirmed once (a second "pare" changes nothing);
* ``wrong_person`` — the phone that wrote is marked wrong and nothing more is said about any
  debt; what was about to go to that number is cancelled, the customer's other channels go on;
* ``already_paid`` — the régua is held for the tenant's ``paid_hold_days`` while an operator
  confirms, and the receipt is asked for (a receipt sent afterwards joins the same hold);
* ``second_copy`` — the amount as of the debtor's today, item by item, with the Pix code;
* ``negotiate`` — with something overdue and the window open, the offer menu as a list
  (:mod:`~shared.domains.negotiation.chat`); a tap on one of its rows makes the agreement and
  confirms it with the Pix; otherwise an operator, with priority (who sees the conversation
  either way);
* ``promise`` — the régua waits until the promised date plus a day of grace;
* ``dispute`` — the open installments are marked disputed, the régua is held, an operator
  looks;
* anything else waits in the inbox.

Every reply goes through :func:`~shared.domains.inbound.replies.record_outbound` with a
``dedupe_key`` derived from the inbound message (or from the hold it answers), and holds are
never opened twice, so an event processed again acts once.  A customer marked do-not-contact
by the retailer gets no automatic answer: what they wrote waits for an operator.

A message *superseded* by a newer one (read late: Meta does not deliver in order) still
restricts — an opt-out, a wrong person, a dispute, a hold apply — but gets no automatic answer
other than the confirmation of such a restriction: an older "manda o pix" read after a newer
"pare" must not send the Pix.  Nor does it change the intent the inbox shows.

:func:`change_number` applies WhatsApp's notice that the customer moved to a new number.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import structlog
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from shared.brazil.calendar import timezone_for
from shared.brazil.errors import InvalidValue
from shared.brazil.numbers import format_brl, format_date_br
from shared.brazil.phones import normalize_phone, whatsapp_key, whatsapp_variants
from shared.domains import events
from shared.domains.audit.service import Actor
from shared.domains.collections.content import compose
from shared.domains.collections.holds import cancel_unsent
from shared.domains.collections.planner import REMIND_AHEAD_DAYS
from shared.domains.collections.service import UNSENT, audit
from shared.domains.inbound.assignment import queue_hand_out
from shared.domains.inbound.intents import CONFIDENCE_PAYLOAD, Intent, IntentKind, classify
from shared.domains.inbound.replies import WindowClosed, record_outbound
from shared.domains.money import rules
from shared.domains.money.balance import local_date
from shared.domains.negotiation import chat
from shared.domains.portfolio.service import set_status
from shared.domains.portfolio.status import COLLECTABLE
from shared.models import (
    CollectionHold,
    CollectionSettings,
    ContactAttempt,
    Conversation,
    ConversationMessage,
    ConversationState,
    Customer,
    CustomerPhone,
    HoldKind,
    Installment,
    InstallmentStatus,
    PhoneStatus,
    PixSettings,
    Tenant,
)

log = structlog.get_logger("quita.conversations.actions")

K = IntentKind
# Who the audit trail names for what a debtor's WhatsApp reply changed.
ACTOR = Actor("provider", "whatsapp")
OPT_OUT_CHANNELS = ("whatsapp", "sms", "email")

# Conversation priority, 0-100 (higher first in the inbox).  An automatic action never lowers
# it: clearing it is the operator's decision when the conversation is resolved.
PRIORITY_NORMAL = 0
PRIORITY_HIGH = 50
HIGH_PRIORITY = frozenset({K.NEGOTIATE, K.DISPUTE, K.ALREADY_PAID})
# What only restricts collection: its confirmation is said even for a message read late.
RESTRICTIVE = frozenset({K.OPT_OUT, K.WRONG_PERSON, K.DISPUTE})

# The default when the tenant has no collection settings row (the row's own default is 3).
PAID_HOLD_DAYS = 3
# A promise holds the régua through the promised day and this many days more, so a payment
# made late on that day has time to land before the next reminder.
PROMISE_GRACE_DAYS = 1

# What the debtor reads.
OPTED_OUT_REPLY = "Pronto, você não receberá mais mensagens de cobrança por aqui."
WRONG_PERSON_REPLY = "Obrigado, vamos corrigir nosso cadastro."
ASK_RECEIPT_REPLY = "Obrigado! Pode nos enviar o comprovante por aqui?"
RECEIPT_THANKS_REPLY = "Recebemos, obrigado! Vamos conferir o pagamento e retornamos se preciso."
NOTHING_OPEN_REPLY = "Não encontramos valores em aberto no seu nome no momento."
OPERATOR_REPLY = "Um atendente vai falar com você em breve."
DISPUTE_REPLY = "Recebemos sua mensagem. Um atendente vai analisar e responder por aqui."


@dataclass(frozen=True, slots=True)
class Acted:
    """What was done about one message: its intent, a short note for the journal, and the
    reply recorded (``None`` when nothing was said back)."""

    intent: IntentKind
    note: str
    reply: ConversationMessage | None = None


@dataclass(slots=True)
class _Turn:
    """One message being acted on, with what the actions share."""

    session: AsyncSession
    conversation: Conversation
    message: ConversationMessage
    customer: Customer
    intent: Intent
    now: datetime
    phone: CustomerPhone | None
    superseded: bool = False

    @property
    def wamid(self) -> str:
        return self.message.provider_message_id or str(self.message.id)

    async def say(self, text: str, key: str | None = None) -> ConversationMessage | None:
        """Answer inside the window, once per ``key`` (by default the inbound message); a
        do-not-contact customer, a closed window (a late replay) or a message a newer one
        superseded (unless it confirms a restriction) gets nothing."""
        if self.customer.do_not_contact:
            return None
        if self.superseded and self.intent.kind not in RESTRICTIVE:
            log.info("conversations.reply_skipped", reason="superseded")
            return None
        try:
            return await record_outbound(
                self.session,
                self.conversation,
                text=text,
                reply_to=self.message.provider_message_id,
                dedupe_key=key or f"action:{self.wamid}",
                now=self.now,
            )
        except WindowClosed:
            log.info("conversations.reply_skipped", reason="window_closed")
            return None

    async def audit(self, action: str, subject: tuple[str, uuid.UUID], **data: object) -> None:
        await audit(
            self.session,
            action,
            self.customer.tenant_id,
            ACTOR,
            subject,
            {"source": "whatsapp_reply", "message_id": self.wamid, **data},
        )


# --- entry points ------------------------------------------------------------------------------


async def respond(
    session: AsyncSession,
    conversation: Conversation,
    wamid: str,
    now: datetime,
    *,
    phone: CustomerPhone | None = None,
    waiting: bool = False,
    superseded: bool = False,
) -> Acted | None:
    """Classify the customer's message ``wamid`` (dates read in the debtor's own time, on the
    day they wrote) and act on it.  ``phone``: the phone it came from; ``waiting``: the
    conversation already waited for an operator before this message; ``superseded``: a newer
    message of the customer was read before this one."""
    message = await session.scalar(
        select(ConversationMessage).where(
            ConversationMessage.tenant_id == conversation.tenant_id,
            ConversationMessage.provider_message_id == wamid,
        )
    )
    customer = await _customer(session, conversation)
    if message is None or customer is None:
        return None
    intent = classify(
        message.text,
        payload=message.payload,
        today=local_date(message.occurred_at, customer),
        media=message.kind if message.media_id else None,
    )
    if chat.choice_of(message.payload) is not None:  # a row of the offer menu
        intent = Intent(K.NEGOTIATE, chat.ROW_PREFIX, CONFIDENCE_PAYLOAD)
    return await act(
        session,
        conversation,
        message,
        intent,
        now,
        phone=phone,
        waiting=waiting,
        superseded=superseded,
    )


async def act(
    session: AsyncSession,
    conversation: Conversation,
    message: ConversationMessage,
    intent: Intent,
    now: datetime,
    *,
    phone: CustomerPhone | None = None,
    waiting: bool = False,
    superseded: bool = False,
) -> Acted:
    """Carry out ``intent`` for the customer of ``conversation`` (see the module docstring) and
    route the conversation: open for an operator when it needs one, else waiting for the
    debtor.  A message acted on before is left alone."""
    customer = await _customer(session, conversation)
    if customer is None:
        raise ValueError("actions are for a customer's conversation")
    if message.intent is not None:
        return Acted(IntentKind(message.intent), "acted before")
    turn = _Turn(session, conversation, message, customer, intent, now, phone, superseded)
    acted, needs_operator = await _ACTIONS[intent.kind](turn)
    message.intent = intent.kind.value
    route(
        conversation, intent.kind, needs_operator=needs_operator or waiting, superseded=superseded
    )
    if customer.do_not_contact:
        conversation.state = ConversationState.OPEN
    if conversation.state == ConversationState.OPEN and conversation.assignee_id is None:
        await queue_hand_out(session, conversation.tenant_id)  # someone may take it now
    await session.flush()
    log.info(
        "conversations.acted",
        conversation_id=str(conversation.id),
        intent=intent.kind.value,
        confidence=intent.confidence,
        replied=acted.reply is not None,
    )
    return acted


async def _customer(session: AsyncSession, conversation: Conversation) -> Customer | None:
    if conversation.customer_id is None:
        return None
    return await session.scalar(
        select(Customer)
        .where(
            Customer.id == conversation.customer_id,
            Customer.tenant_id == conversation.tenant_id,
        )
        .with_for_update()
        .execution_options(populate_existing=True)
    )


def route(
    conversation: Conversation,
    kind: IntentKind,
    *,
    needs_operator: bool,
    superseded: bool = False,
) -> None:
    """What the inbox shows: the conversation's latest meaningful intent (an ``other`` does not
    hide an earlier request), its priority (never lowered here), and its state.  A superseded
    message may only call an operator: the intent and state a newer message set stay."""
    if conversation.intent is None or (kind is not K.OTHER and not superseded):
        conversation.intent = kind.value
    if kind in HIGH_PRIORITY:
        conversation.priority = max(conversation.priority or PRIORITY_NORMAL, PRIORITY_HIGH)
    if superseded:
        if needs_operator:
            conversation.state = ConversationState.OPEN
        return
    if needs_operator or (conversation.priority or PRIORITY_NORMAL) >= PRIORITY_HIGH:
        conversation.state = ConversationState.OPEN
    elif kind in (K.OPT_OUT, K.WRONG_PERSON):
        conversation.state = ConversationState.RESOLVED
    else:
        conversation.state = ConversationState.PENDING


# --- the actions (each returns what it did and whether an operator must look) ------------------


async def _opt_out(turn: _Turn) -> tuple[Acted, bool]:
    customer = turn.customer
    added = [c for c in OPT_OUT_CHANNELS if c not in customer.opted_out]
    if added:
        customer.opted_out = [*customer.opted_out, *added]
    cancelled = await cancel_unsent(turn.session, customer, "opted_out")
    if not added and not cancelled:
        return Acted(K.OPT_OUT, "opted out before"), False
    await turn.audit(
        "customer.opted_out",
        ("customer", customer.id),
        channels=added,
        attempts_cancelled=len(cancelled),
    )
    if added:
        await events.emit(
            turn.session,
            customer.tenant_id,
            "customer.opted_out",
            {"channels": added, "source": "whatsapp_reply"},
            turn.message.occurred_at,
            customer_id=customer.id,
        )
    reply = await turn.say(OPTED_OUT_REPLY) if added else None
    return Acted(K.OPT_OUT, f"opted out of {', '.join(added) or 'nothing new'}", reply), False


async def _wrong_person(turn: _Turn) -> tuple[Acted, bool]:
    phone = turn.phone
    if phone is None:  # matched by BSUID or by a quoted reminder: no number to mark
        reply = await turn.say(WRONG_PERSON_REPLY)
        return Acted(K.WRONG_PERSON, "no phone to mark: for an operator", reply), True
    cancelled = 0
    if phone.status != PhoneStatus.WRONG_PERSON:
        phone.status = PhoneStatus.WRONG_PERSON
        phone.status_changed_at = turn.now
        # what the régua was about to send to this number (WhatsApp or SMS)
        cancelled = len(
            await cancel_unsent(
                turn.session, turn.customer, "phone_wrong_person", recipient=phone.number
            )
        )
        await turn.audit(
            "customer_phone.marked_wrong",
            ("customer", turn.customer.id),
            phone_last4=phone.number[-4:],
            attempts_cancelled=cancelled,
        )
    reply = await turn.say(WRONG_PERSON_REPLY)
    return Acted(K.WRONG_PERSON, f"phone marked wrong, {cancelled} cancelled", reply), False


async def _already_paid(turn: _Turn) -> tuple[Acted, bool]:
    settings = await turn.session.get(CollectionSettings, turn.customer.tenant_id)
    days = settings.paid_hold_days if settings is not None else PAID_HOLD_DAYS
    hold, created = await _hold(turn, HoldKind.PAID_CLAIM, turn.now + timedelta(days=days))
    if turn.message.media_id is not None:  # the receipt itself (a photo, a PDF)
        reply = await turn.say(RECEIPT_THANKS_REPLY, key=f"receipt:{hold.id}")
    else:
        reply = await turn.say(ASK_RECEIPT_REPLY, key=f"ask-receipt:{hold.id}")
    note = "held" if created else "hold already open"
    return Acted(K.ALREADY_PAID, f"{note} until {hold.until:%Y-%m-%d}", reply), True


async def _promise(turn: _Turn) -> tuple[Acted, bool]:
    promised = turn.intent.promise_date
    if promised is None:
        return Acted(K.PROMISE, "no date: for an operator"), True
    zone = ZoneInfo(timezone_for(turn.customer.state, turn.customer.city))
    resume = promised + timedelta(days=1 + PROMISE_GRACE_DAYS)
    await _hold(turn, HoldKind.PROMISE, datetime.combine(resume, time(0), zone))
    reply = await turn.say(f"Combinado, anotamos o pagamento para {promised:%d/%m}.")
    return Acted(K.PROMISE, f"promise for {promised.isoformat()}", reply), False


async def _dispute(turn: _Turn) -> tuple[Acted, bool]:
    disputed = 0
    for inst in await _collectable(turn.session, turn.customer, lock=True):
        changed = await set_status(
            turn.session, inst, InstallmentStatus.DISPUTED, "contestada pelo cliente", ACTOR
        )
        disputed += changed
    await _hold(turn, HoldKind.DISPUTE, None)
    reply = await turn.say(DISPUTE_REPLY)
    return Acted(K.DISPUTE, f"{disputed} installment(s) disputed", reply), True


async def _negotiate(turn: _Turn) -> tuple[Acted, bool]:
    """A tap on a row of the menu makes the agreement; a wish to negotiate gets the menu when
    an offer can be made; else an operator takes it, with priority."""
    if not turn.customer.do_not_contact and not turn.superseded:
        choice = chat.choice_of(turn.message.payload)
        args = (turn.session, turn.conversation, turn.customer)
        if choice is not None:
            taken = await chat.take_choice(*args, choice, wamid=turn.wamid, now=turn.now)
            return Acted(K.NEGOTIATE, taken.note, taken.reply), taken.needs_operator
        menu = await chat.send_menu(
            *args, now=turn.now, dedupe_key=f"action:{turn.wamid}", reply_to=turn.wamid
        )
        if menu is not None:
            return Acted(K.NEGOTIATE, "offer menu sent", menu), False
    reply = await turn.say(OPERATOR_REPLY)
    return Acted(K.NEGOTIATE, "for an operator", reply), True


async def _other(turn: _Turn) -> tuple[Acted, bool]:
    return Acted(K.OTHER, "for the inbox"), True


async def _second_copy(turn: _Turn) -> tuple[Acted, bool]:
    text, evidence = await second_copy_text(
        turn.session, turn.customer, local_date(turn.now, turn.customer), turn.message.id
    )
    reply = await turn.say(text)
    if reply is not None and evidence is not None and not reply.details:
        reply.details = {"amounts": evidence}
    note = "amounts sent" if evidence is not None else "nothing open"
    return Acted(K.SECOND_COPY, note, reply), False


_ACTIONS = {
    K.OPT_OUT: _opt_out,
    K.WRONG_PERSON: _wrong_person,
    K.DISPUTE: _dispute,
    K.ALREADY_PAID: _already_paid,
    K.PROMISE: _promise,
    K.SECOND_COPY: _second_copy,
    K.NEGOTIATE: _negotiate,
    K.OTHER: _other,
}


# --- a new number ------------------------------------------------------------------------------


def _e164_of(wa_id: str) -> str | None:
    """The phone number a ``wa_id`` is (with the ninth digit when it lacks it), if valid."""
    try:
        candidates = whatsapp_variants(wa_id)
    except InvalidValue:
        return None
    for digits in candidates:
        try:
            return normalize_phone("+" + digits)
        except InvalidValue:
            continue
    return None


async def change_number(
    session: AsyncSession,
    conversation: Conversation,
    phone: CustomerPhone | None,
    new_wa_id: str,
    wamid: str,
    now: datetime,
) -> str:
    """Apply WhatsApp's notice that the customer of ``conversation`` moved from ``phone`` to
    ``new_wa_id`` (contract §5.6 h): the new number becomes an active phone of theirs, the old
    one is marked unreachable so nothing more goes to it, and what was waiting to go to the old
    number goes to the new one.  Audited; a second notice changes nothing.  A short note."""
    customer = await _customer(session, conversation)
    if customer is None or phone is None:
        return "number change: no phone of a customer to move"
    number = _e164_of(new_wa_id)
    if number is None:
        return "number change: the new number is not valid"
    if whatsapp_key(number) == phone.wa_key:
        return "number change: the same number"
    conversation.wa_id = new_wa_id
    new, added = await _phone_for(session, customer, number, new_wa_id)
    changed = added
    if not new.active:
        new.active, changed = True, True
    if phone.status == PhoneStatus.VALID:
        phone.status, phone.status_changed_at = PhoneStatus.UNREACHABLE, now
        changed = True
    moved = await session.execute(
        update(ContactAttempt)
        .where(
            ContactAttempt.tenant_id == customer.tenant_id,
            ContactAttempt.customer_id == customer.id,
            ContactAttempt.state.in_(UNSENT),
            ContactAttempt.recipient == phone.number,
        )
        .values(recipient=number)
        .returning(ContactAttempt.id)
    )
    moved_ids = [str(row.id) for row in moved]
    if not changed and not moved_ids:
        return "number change: applied before"
    await session.flush()
    await audit(
        session,
        "customer_phone.number_changed",
        customer.tenant_id,
        ACTOR,
        ("customer", customer.id),
        {
            "source": "whatsapp_system_message",
            "message_id": wamid,
            "old_phone_last4": phone.number[-4:],
            "new_phone_last4": number[-4:],
            "attempts_moved": moved_ids,
        },
    )
    log.info("conversations.number_changed", customer_id=str(customer.id), moved=len(moved_ids))
    return f"number changed, {len(moved_ids)} attempt(s) moved"


async def _phone_for(
    session: AsyncSession, customer: Customer, number: str, wa_id: str
) -> tuple[CustomerPhone, bool]:
    """The customer's phone ``number`` (``True`` when it is added now, after the others)."""
    found = await session.scalar(
        select(CustomerPhone)
        .where(CustomerPhone.customer_id == customer.id, CustomerPhone.number == number)
        .with_for_update()
    )
    if found is not None:
        return found, False
    last = await session.scalar(
        select(func.max(CustomerPhone.position)).where(CustomerPhone.customer_id == customer.id)
    )
    phone = CustomerPhone(
        tenant_id=customer.tenant_id,
        customer_id=customer.id,
        number=number,
        position=(last if last is not None else -1) + 1,
        active=True,
        wa_key=whatsapp_key(number),
        whatsapp_id=wa_id,
        status=PhoneStatus.VALID,
    )
    session.add(phone)
    await session.flush()
    return phone, True


# --- holds -------------------------------------------------------------------------------------


async def _hold(turn: _Turn, kind: HoldKind, until: datetime | None) -> tuple[CollectionHold, bool]:
    """The customer's active hold of ``kind`` (a later promise moves its date), else a new one;
    either way what had not been sent yet is cancelled.  ``True`` when it was created."""
    session, customer = turn.session, turn.customer
    hold = await session.scalar(
        select(CollectionHold)
        .where(
            CollectionHold.tenant_id == customer.tenant_id,
            CollectionHold.customer_id == customer.id,
            CollectionHold.installment_id.is_(None),
            CollectionHold.kind == kind,
            CollectionHold.released_at.is_(None),
            (CollectionHold.until.is_(None)) | (CollectionHold.until > turn.now),
        )
        .order_by(CollectionHold.created_at.desc())
        .limit(1)
        .with_for_update()
    )
    created = hold is None
    if hold is None:
        hold = CollectionHold(
            tenant_id=customer.tenant_id,
            customer_id=customer.id,
            kind=kind,
            reason=f"mensagem do cliente ({turn.intent.matched or kind.value})"[:300],
            until=until,
            created_by="provider:whatsapp",
        )
        session.add(hold)
        await session.flush()
    elif kind is HoldKind.PROMISE and until is not None and hold.until != until:
        hold.until = until
    else:
        return hold, False
    cancelled = await cancel_unsent(session, customer, f"hold_{kind.value}")
    await turn.audit(
        "hold.created" if created else "hold.changed",
        ("customer", customer.id),
        hold_id=str(hold.id),
        kind=kind.value,
        until=until.isoformat() if until else None,
        cancelled_attempts=[str(a.id) for a in cancelled],
    )
    return hold, created


# --- second copy -------------------------------------------------------------------------------


async def _collectable(
    session: AsyncSession, customer: Customer, *, lock: bool = False
) -> list[Installment]:
    """The customer's installments Quita collects, oldest first."""
    query = (
        select(Installment)
        .where(
            Installment.tenant_id == customer.tenant_id,
            Installment.customer_id == customer.id,
            Installment.status.in_(COLLECTABLE),
        )
        .order_by(Installment.due_date, Installment.external_id)
    )
    return list(await session.scalars(query.with_for_update() if lock else query))


async def second_copy_text(
    session: AsyncSession, customer: Customer, today: date, txid_of: uuid.UUID
) -> tuple[str, dict[str, object] | None]:
    """The message with what the customer owes on ``today`` — what is overdue or due within
    the next days, as a reminder "now" covers — item by item, with the Pix code for the total
    (``txid_of`` names the charge when it spans several installments), and its evidence
    (``None`` when nothing is open)."""
    until = today + timedelta(days=REMIND_AHEAD_DAYS)
    due = [i for i in await _collectable(session, customer) if i.due_date <= until]
    tenant = await session.get(Tenant, customer.tenant_id)
    if not due or tenant is None:
        return NOTHING_OPEN_REPLY, None
    content = await compose(
        session,
        tenant,
        customer,
        due,
        today,
        txid_of=due[0].id if len(due) == 1 else txid_of,
        versions=await rules.versions(session, customer.tenant_id),
        pix_settings=await session.scalar(
            select(PixSettings).where(PixSettings.tenant_id == customer.tenant_id)
        ),
        link="",  # the reply carries the Pix itself (or the retailer's own payment URL)
    )
    if content.total <= 0:
        return NOTHING_OPEN_REPLY, None
    values = content.values
    lines = [f"Valores atualizados em {format_date_br(today)}:"]
    for item in content.amounts["installments"]:
        due_on = date.fromisoformat(item["due_date"])
        total = format_brl(Decimal(item["total"]))
        lines.append(f"• Parcela {item['label']} (venc. {format_date_br(due_on)}): {total}")
    lines.append(f"Total: {values['valor_total']}")
    if content.pix:
        lines += ["", "Pix copia e cola:", content.pix]
    elif values["link_pagamento"]:
        lines += ["", f"Para pagar: {values['link_pagamento']}"]
    creditor = values["razao_social"]
    if values["cnpj_empresa"]:
        creditor += f", CNPJ {values['cnpj_empresa']}"
    lines += ["", f"Credor: {creditor}"]
    return "\n".join(lines), content.amounts
