"""The operator inbox: conversations listed and filtered, one conversation's whole story, and
what operators do with it (reply, note, assign, take the next, resolve, reopen).

Who sees what: a retailer's people see every conversation of their retailer, unknown senders
included; an agency sees the conversations of the customers its mandates cover and works
(replies, notes, assigns, resolves) only those whose mandate grants ``message`` — the others
answer 403, what it cannot see 404.  Every change is audited under the caller's own tenant
(the audit log's row-level security accepts nothing else), naming the conversation's tenant.

Assignment: an operator takes the next unassigned open conversation, highest priority first,
as long as fewer than its ``capacity`` conversations assigned to it are not resolved (20 unless a
manager set otherwise); explicit assignment honours the same capacity; and operators who opted
in to ``auto_assign`` are handed waiting conversations in turn (``assignment.py``).

Outside the 24-hour window only a template reaches the person: the inbox sends the reminder the
régua would send (``remind``), under the same governance and with today's amounts.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, time
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    ColumnElement,
    Date,
    Select,
    and_,
    case,
    cast,
    false,
    func,
    literal,
    or_,
    select,
    tuple_,
)
from sqlalchemy.ext.asyncio import AsyncSession

from shared.brazil.documents import mask_document
from shared.brazil.errors import InvalidValue
from shared.brazil.phones import whatsapp_key
from shared.domains.audit.service import Actor, record
from shared.domains.collections import holds
from shared.domains.inbound import schemas
from shared.domains.inbound.assignment import (
    ACTIVITY,
    ROLES,
    URGENCY,
    open_load,
    person_lock,
    queue_hand_out,
)
from shared.domains.inbound.replies import record_outbound, window_open
from shared.domains.money import rules
from shared.domains.money.balance import balance_of, local_date
from shared.domains.portfolio.scoping import visible_customers
from shared.domains.portfolio.status import COLLECTABLE
from shared.errors import Conflict, FieldError, Forbidden, NotFound, ValidationFailed
from shared.models import (
    AttemptState,
    ContactAttempt,
    Conversation,
    ConversationMessage,
    ConversationNote,
    ConversationState,
    Customer,
    CustomerPhone,
    InboxOperator,
    Installment,
    MandateAction,
    Membership,
    PhoneStatus,
    Role,
    Tenant,
)
from shared.models.inbox import DEFAULT_CAPACITY
from shared.pagination import decode_cursor, encode_cursor, invalid_cursor
from shared.tenancy import Principal
from shared.tenancy.principal import PrincipalKind

INBOX_ROLES = ROLES
PREVIEW_CHARS = 120
_COLLECTABLE = tuple(s.value for s in COLLECTABLE)


class WrongNumber(Conflict):
    code = "wrong_number"
    title = "The number is marked as a wrong person's"


class AtCapacity(Conflict):
    code = "at_capacity"
    title = "The operator has as many conversations as it may take"


class OperatorUnavailable(Conflict):
    code = "operator_unavailable"
    title = "The operator is not taking conversations"


# --- who sees what ------------------------------------------------------------------------------


def visible_conversations(
    principal: Principal, action: MandateAction = MandateAction.READ
) -> ColumnElement[bool]:
    """A condition on ``Conversation`` (outer-joined to its ``Customer``): the retailer's own
    conversations, and those of customers a mandate lets ``principal`` act on."""
    own = (
        Conversation.tenant_id == principal.tenant_id
        if principal.tenant_id is not None
        else false()
    )
    return or_(
        own, and_(Conversation.customer_id.isnot(None), visible_customers(principal, action))
    )


def user_id(principal: Principal) -> uuid.UUID | None:
    """The person calling (``None`` for an API client)."""
    if principal.kind is not PrincipalKind.USER:
        return None
    try:
        return uuid.UUID(principal.subject)
    except ValueError:
        return None


def _me(principal: Principal, name: str = "assignee") -> uuid.UUID:
    user = user_id(principal)
    if user is None:
        raise ValidationFailed(
            "Only a person works the inbox.",
            errors=[FieldError(name, "an API client is nobody's 'me'")],
        )
    return user


# --- the list -----------------------------------------------------------------------------------


def _today_of_tenant(now: datetime) -> Any:
    return (
        select(cast(func.timezone(Tenant.time_zone, literal(now)), Date))
        .where(Tenant.id == Conversation.tenant_id)
        .correlate(Conversation)
        .scalar_subquery()
    )


def _overdue_total(now: datetime) -> Any:
    """Principal minus what was paid of the customer's collectable installments due before
    the retailer's today: cheap enough for a list (the timeline shows balances with fees)."""
    return (
        select(func.coalesce(func.sum(Installment.principal - Installment.amount_paid), 0))
        .where(
            Installment.customer_id == Conversation.customer_id,
            Installment.status.in_(_COLLECTABLE),
            Installment.due_date < _today_of_tenant(now),
        )
        .correlate(Conversation)
        .scalar_subquery()
    )


def _last_message() -> Any:
    latest = (
        select(ConversationMessage.id)
        .where(ConversationMessage.conversation_id == Conversation.id)
        .order_by(ConversationMessage.occurred_at.desc(), ConversationMessage.created_at.desc())
        .limit(1)
        .correlate(Conversation)
        .scalar_subquery()
    )
    return latest


@dataclass(frozen=True, slots=True)
class InboxFilter:
    state: str | None = None
    intent: str | None = None
    assignee: str | None = None  # me | none | a user id
    min_overdue: str | None = None  # a decimal amount, as the query string carries it


def _base(principal: Principal, now: datetime) -> Select[Any]:
    return (
        select(
            Conversation,
            Customer,
            _overdue_total(now).label("overdue"),
            _last_message().label("last_message_id"),
        )
        .outerjoin(Customer, Customer.id == Conversation.customer_id)
        .where(visible_conversations(principal))
    )


def _filtered(stmt: Select[Any], principal: Principal, f: InboxFilter, now: datetime) -> Any:
    errors: list[FieldError] = []
    if f.state:
        if f.state not in {s.value for s in ConversationState}:
            errors.append(FieldError("state", "must be open, pending or resolved"))
        stmt = stmt.where(Conversation.state == f.state)
    if f.intent:
        stmt = stmt.where(Conversation.intent == f.intent)
    if f.assignee == "none":
        stmt = stmt.where(Conversation.assignee_id.is_(None))
    elif f.assignee == "me":
        stmt = stmt.where(Conversation.assignee_id == _me(principal))
    elif f.assignee:
        try:
            stmt = stmt.where(Conversation.assignee_id == uuid.UUID(f.assignee))
        except ValueError:
            errors.append(FieldError("assignee", "must be me, none or a user id"))
    if f.min_overdue is not None:
        minimum = _amount(f.min_overdue)
        if minimum is None:
            errors.append(FieldError("min_overdue", "must be an amount of at least 0"))
        else:
            stmt = stmt.where(_overdue_total(now) >= minimum)
    if errors:
        raise ValidationFailed("The filters are not valid.", errors=errors)
    return stmt


def _amount(raw: str) -> Decimal | None:
    try:
        value = Decimal(raw)
    except ArithmeticError:
        return None
    return value if value.is_finite() and value >= 0 else None


def _after(cursor: str) -> ColumnElement[bool]:
    """The page after ``cursor`` in the inbox order (priority, activity, id — all descending)."""
    priority, instant, ident = decode_cursor(cursor, 3)
    try:
        key = (int(priority), datetime.fromisoformat(instant), uuid.UUID(ident))
    except ValueError:
        raise invalid_cursor() from None
    return tuple_(Conversation.priority, ACTIVITY, Conversation.id) < key


def _document(customer: Customer | None) -> str | None:
    if customer is None or not customer.document:
        return None
    try:
        return mask_document(customer.document)
    except InvalidValue:
        return None


def conversation_out(
    c: Conversation,
    customer: Customer | None,
    overdue: Decimal | None,
    last: ConversationMessage | None,
    now: datetime,
) -> schemas.ConversationOut:
    return schemas.ConversationOut(
        id=c.id,
        customer_id=c.customer_id,
        customer_external_id=customer.external_id if customer else None,
        name=customer.name if customer else c.profile_name,
        document=_document(customer),
        state=c.state,
        intent=c.intent,
        priority=c.priority,
        assignee_id=c.assignee_id,
        last_message=schemas.LastMessage(
            direction=last.direction,
            preview=(last.text or "")[:PREVIEW_CHARS] or None,
            at=last.occurred_at,
        )
        if last is not None
        else None,
        last_inbound_at=c.last_inbound_at,
        window_open=window_open(c, now),
        window_expires_at=c.window_expires_at,
        overdue_total=Decimal(overdue or 0).quantize(Decimal("0.01")),
    )


async def _messages(
    session: AsyncSession, ids: list[uuid.UUID | None]
) -> dict[uuid.UUID, ConversationMessage]:
    wanted = [i for i in ids if i is not None]
    if not wanted:
        return {}
    rows = await session.scalars(
        select(ConversationMessage).where(ConversationMessage.id.in_(wanted))
    )
    return {m.id: m for m in rows}


async def list_conversations(
    session: AsyncSession,
    principal: Principal,
    f: InboxFilter,
    now: datetime,
    *,
    cursor: str | None,
    limit: int,
) -> schemas.ConversationPage:
    """The conversations ``principal`` may see, highest priority first, then the most recent
    inbound message first."""
    stmt = _filtered(_base(principal, now), principal, f, now)
    if cursor:
        stmt = stmt.where(_after(cursor))
    rows = (await session.execute(stmt.order_by(*URGENCY).limit(limit + 1))).all()
    more = len(rows) > limit
    rows = rows[:limit]
    last = await _messages(session, [r.last_message_id for r in rows])
    items = [
        conversation_out(c, cust, overdue, last.get(mid), now) for c, cust, overdue, mid in rows
    ]
    tail = rows[-1][0] if rows else None
    return schemas.ConversationPage(
        items=items,
        next_cursor=encode_cursor(
            tail.priority, (tail.last_inbound_at or tail.created_at).isoformat(), tail.id
        )
        if more and tail is not None
        else None,
    )


# --- one conversation ---------------------------------------------------------------------------


@dataclass(slots=True)
class Found:
    conversation: Conversation
    customer: Customer | None
    overdue: Decimal
    last_message_id: uuid.UUID | None


async def find_conversation(
    session: AsyncSession,
    principal: Principal,
    conversation_id: uuid.UUID,
    now: datetime,
    *,
    work: bool = False,
) -> Found:
    """The conversation, if ``principal`` may see it (404 otherwise); with ``work``, also
    change it (403 when a mandate only lets it read), locked for the caller's transaction."""
    may_work = visible_conversations(principal, MandateAction.MESSAGE)
    stmt = _base(principal, now).add_columns(case((may_work, True), else_=False).label("work"))
    stmt = stmt.where(Conversation.id == conversation_id)
    if work:
        stmt = stmt.with_for_update(of=Conversation)
    row = (await session.execute(stmt.execution_options(populate_existing=True))).one_or_none()
    if row is None:
        raise NotFound("The conversation was not found.")
    if work and not row.work:
        raise Forbidden("Your mandate lets you read this conversation, not work it.")
    return Found(row[0], row[1], row[2], row[3])


async def wrong_number(session: AsyncSession, c: Conversation) -> bool:
    """Is the number this person writes from marked as someone else's?"""
    if c.customer_id is None or not c.wa_id:
        return False
    try:
        key = whatsapp_key(c.wa_id)
    except InvalidValue:
        key = c.wa_id
    wrong = await session.scalar(
        select(func.count())
        .select_from(CustomerPhone)
        .where(
            CustomerPhone.customer_id == c.customer_id,
            CustomerPhone.wa_key == key,
            CustomerPhone.status == PhoneStatus.WRONG_PERSON,
        )
    )
    return bool(wrong)


async def can_reply(
    session: AsyncSession,
    c: Conversation,
    customer: Customer | None,
    now: datetime,
    *,
    own: bool = True,
) -> schemas.CanReply:
    """What may be sent now: free text inside the window; a template reminder (the retailer's
    own people only, since it is a collection message under the régua's governance) to a
    customer who may still be contacted on WhatsApp."""
    if await wrong_number(session, c):
        return schemas.CanReply(free_text=False, template=False)
    may_template = (
        own
        and customer is not None
        and not customer.do_not_contact
        and "whatsapp" not in (customer.opted_out or [])
    )
    return schemas.CanReply(free_text=window_open(c, now), template=may_template)


def _midnight(day: Any, zone: str) -> datetime:
    return datetime.combine(day, time(0), tzinfo=ZoneInfo(zone))


async def _installments(
    session: AsyncSession, customer: Customer, now: datetime
) -> list[schemas.TimelineEntry]:
    zone = await session.scalar(select(Tenant.time_zone).where(Tenant.id == customer.tenant_id))
    rows = list(
        await session.scalars(
            select(Installment)
            .where(Installment.customer_id == customer.id)
            .order_by(Installment.due_date, Installment.id)
        )
    )
    versions = await rules.versions(session, customer.tenant_id) if rows else []
    today = local_date(now, customer)
    out: list[schemas.TimelineEntry] = []
    for i in rows:
        balance = None
        if i.status in COLLECTABLE:
            balance = await balance_of(session, i, customer, today, versions=versions)
        out.append(
            schemas.InstallmentEntry(
                at=_midnight(i.due_date, zone or "America/Sao_Paulo"),
                id=i.id,
                external_id=i.external_id,
                number=i.number,
                count=i.count,
                due_date=i.due_date,
                status=i.status,
                principal=i.principal,
                amount_paid=i.amount_paid,
                balance=balance.total if balance else None,
                days_overdue=balance.days_overdue if balance else None,
            )
        )
    return out


async def _attempts(session: AsyncSession, customer: Customer) -> list[schemas.TimelineEntry]:
    rows = await session.scalars(
        select(ContactAttempt).where(ContactAttempt.customer_id == customer.id)
    )
    return [
        schemas.AttemptEntry(
            at=a.sent_at or a.planned_for,
            id=a.id,
            kind=a.kind,
            channel=a.channel,
            template_name=a.template_name,
            state=a.state,
            reason=a.reason,
            planned_for=a.planned_for,
            sent_at=a.sent_at,
            delivered_at=a.delivered_at,
            read_at=a.read_at,
            failed_at=a.failed_at,
        )
        for a in rows
    ]


async def _thread(session: AsyncSession, c: Conversation) -> list[schemas.TimelineEntry]:
    messages = await session.scalars(
        select(ConversationMessage).where(ConversationMessage.conversation_id == c.id)
    )
    notes = await session.scalars(
        select(ConversationNote).where(ConversationNote.conversation_id == c.id)
    )
    out: list[schemas.TimelineEntry] = [
        schemas.MessageEntry(
            at=m.occurred_at,
            id=m.id,
            direction=m.direction,
            kind=m.kind,
            text=m.text,
            payload=m.payload,
            intent=m.intent,
            status=m.status,
            sent_by=m.sent_by,
            attempt_id=m.attempt_id,
        )
        for m in messages
    ]
    out.extend(
        schemas.NoteEntry(at=n.created_at, id=n.id, author_id=n.author_id, text=n.text)
        for n in notes
    )
    return out


_ORDER = {
    schemas.InstallmentEntry: 0,
    schemas.AttemptEntry: 1,
    schemas.MessageEntry: 2,
    schemas.NoteEntry: 3,
}


async def conversation_detail(
    session: AsyncSession, principal: Principal, found: Found, now: datetime
) -> schemas.ConversationDetail:
    """The conversation with everything about its debtor in time order: installments (with
    today's balance), contact attempts and their statuses, messages either way, notes."""
    c, customer = found.conversation, found.customer
    timeline: list[schemas.TimelineEntry] = await _thread(session, c)
    if customer is not None:
        timeline += await _installments(session, customer, now)
        timeline += await _attempts(session, customer)
    timeline.sort(key=lambda e: (e.at, _ORDER[type(e)], e.id))
    return schemas.ConversationDetail(
        conversation=await found_out(session, found, now),
        can_reply=await can_reply(
            session, c, customer, now, own=principal.tenant_id == c.tenant_id
        ),
        timeline=timeline,
    )


async def found_out(session: AsyncSession, found: Found, now: datetime) -> schemas.ConversationOut:
    """The inbox line of a conversation found by :func:`find_conversation`."""
    last = None
    if found.last_message_id is not None:
        last = await session.get(ConversationMessage, found.last_message_id)
    return conversation_out(found.conversation, found.customer, found.overdue, last, now)


# --- what operators do --------------------------------------------------------------------------


async def _audit(
    session: AsyncSession,
    principal: Principal,
    action: str,
    c: Conversation,
    **data: object,
) -> None:
    await record(
        session,
        action,
        tenant_id=principal.tenant_id,
        actor_type=Actor.of(principal).type,
        actor_id=Actor.of(principal).id,
        subject_type="conversation",
        subject_id=str(c.id),
        data={"tenant_id": str(c.tenant_id), "customer_id": str(c.customer_id), **data},
    )


def _text(value: str, name: str = "text") -> str:
    stripped = value.strip()
    if not stripped:
        raise ValidationFailed("The text is empty.", errors=[FieldError(name, "must not be blank")])
    return stripped


async def reply(
    session: AsyncSession,
    principal: Principal,
    found: Found,
    text: str,
    now: datetime,
    *,
    idempotency_key: str | None = None,
) -> ConversationMessage:
    """Free text to the person, queued to leave after the commit: inside the window only
    (``WindowClosed``: a template is needed), never to a number marked wrong."""
    c = found.conversation
    body = _text(text)
    if await wrong_number(session, c):
        raise WrongNumber("this number belongs to someone else: nothing is sent to it")
    key = f"inbox:{principal.subject}:{idempotency_key}"[:160] if idempotency_key else None
    if key is not None:
        earlier = await session.scalar(
            select(ConversationMessage).where(
                ConversationMessage.tenant_id == c.tenant_id, ConversationMessage.dedupe_key == key
            )
        )
        if earlier is not None:  # the same request again: the same message, nothing new
            return earlier
    message = await record_outbound(
        session, c, text=body, sent_by=user_id(principal), dedupe_key=key, now=now
    )
    if c.state == ConversationState.OPEN:
        c.state = ConversationState.PENDING  # answered: the debtor's turn
    await _audit(session, principal, "conversation.replied", c, message_id=str(message.id))
    await session.flush()
    return message


class NotACustomer(Conflict):
    code = "not_a_customer"
    title = "The sender is not one of your customers"


async def remind(
    session: AsyncSession, principal: Principal, found: Found, now: datetime
) -> ContactAttempt:
    """The template outside the window: the reminder the régua would send now, about what the
    customer owes today, with the same governance (the answer is the attempt, ``queued`` for the
    next allowed instant or ``skipped`` with the reason).  Only the retailer's own people send
    it (a collection message); never to an unknown sender or a number marked wrong."""
    c, customer = found.conversation, found.customer
    if principal.tenant_id != c.tenant_id:
        raise Forbidden("Only the retailer's own people send reminders.")
    if customer is None:
        raise NotACustomer("nothing about a debt is sent to someone who is not your customer")
    if await wrong_number(session, c):
        raise WrongNumber("this number belongs to someone else: nothing is sent to it")
    attempt = await holds.remind(session, customer, Actor.of(principal), now)
    if c.state == ConversationState.OPEN and attempt.state != AttemptState.SKIPPED:
        c.state = ConversationState.PENDING  # answered: the debtor's turn
    await _audit(session, principal, "conversation.reminded", c, attempt_id=str(attempt.id))
    await session.flush()
    return attempt


async def add_note(
    session: AsyncSession, principal: Principal, found: Found, text: str
) -> ConversationNote:
    c = found.conversation
    note = ConversationNote(
        tenant_id=c.tenant_id, conversation_id=c.id, author_id=user_id(principal), text=_text(text)
    )
    session.add(note)
    await session.flush()
    await session.refresh(note)
    await _audit(session, principal, "conversation.note_added", c, note_id=str(note.id))
    return note


async def resolve(session: AsyncSession, principal: Principal, found: Found) -> None:
    """Closed by an operator: the priority is cleared (a new message from the debtor reopens
    it at the priority its intent earns)."""
    c = found.conversation
    if c.state != ConversationState.RESOLVED or c.priority:
        before = c.state
        c.state, c.priority = ConversationState.RESOLVED, 0
        await _audit(session, principal, "conversation.resolved", c, before=before)
        if c.assignee_id is not None and before != ConversationState.RESOLVED:
            await queue_hand_out(session, c.tenant_id)  # a place is free
    await session.flush()


async def reopen(session: AsyncSession, principal: Principal, found: Found) -> None:
    c = found.conversation
    if c.state != ConversationState.OPEN:
        before = c.state
        c.state = ConversationState.OPEN
        await _audit(session, principal, "conversation.reopened", c, before=before)
    await session.flush()


# --- assignment ---------------------------------------------------------------------------------


async def _settings_of(
    session: AsyncSession, tenant_id: uuid.UUID, user_id: uuid.UUID
) -> tuple[int, bool]:
    row = await session.scalar(
        select(InboxOperator).where(
            InboxOperator.tenant_id == tenant_id, InboxOperator.user_id == user_id
        )
    )
    return (row.capacity, row.available) if row else (DEFAULT_CAPACITY, True)


async def _check_room(session: AsyncSession, tenant_id: uuid.UUID, user_id: uuid.UUID) -> None:
    """Refuse one more conversation for ``user_id`` when it is away or full.  Serialized per
    person, so two takes at once cannot both squeeze into the last place."""
    await session.execute(select(person_lock(user_id)))
    capacity, available = await _settings_of(session, tenant_id, user_id)
    if not available:
        raise OperatorUnavailable("the operator is marked as not taking conversations")
    taken = (await open_load(session, [user_id]))[user_id]
    if taken >= capacity:
        raise AtCapacity(f"the operator already has {taken} of {capacity} conversations")


async def _member_role(
    session: AsyncSession, tenant_id: uuid.UUID, user_id: uuid.UUID
) -> Role | None:
    role = await session.scalar(
        select(Membership.role).where(
            Membership.tenant_id == tenant_id, Membership.user_id == user_id
        )
    )
    return Role(role) if role else None


async def assign(
    session: AsyncSession, principal: Principal, found: Found, assignee: uuid.UUID | None
) -> None:
    """Give the conversation to a person of the caller's own tenant who works the inbox (or
    to nobody), within that person's capacity."""
    c = found.conversation
    if assignee == c.assignee_id:
        return
    if assignee is not None:
        tenant = principal.tenant_id
        role = await _member_role(session, tenant, assignee) if tenant else None
        if role not in INBOX_ROLES or tenant is None:
            raise ValidationFailed(
                "The assignee does not work this inbox.",
                errors=[FieldError("assignee", "must be an owner, admin or operator of yours")],
            )
        await _check_room(session, tenant, assignee)
    before = c.assignee_id
    c.assignee_id = assignee
    await _audit(
        session,
        principal,
        "conversation.assigned",
        c,
        before=str(before) if before else None,
        after=str(assignee) if assignee else None,
    )
    await session.flush()


async def take_next(session: AsyncSession, principal: Principal, now: datetime) -> uuid.UUID | None:
    """Assign the caller the next unassigned open conversation it may work — highest
    priority first, then the most recent message — or ``None`` when there is none.
    Conversations another operator is taking at the same instant are skipped, not waited for."""
    me = _me(principal, "principal")
    if principal.tenant_id is None:
        raise Forbidden("Only a tenant's people work an inbox.")
    await _check_room(session, principal.tenant_id, me)
    conversation = await session.scalar(
        select(Conversation)
        .outerjoin(Customer, Customer.id == Conversation.customer_id)
        .where(
            visible_conversations(principal, MandateAction.MESSAGE),
            Conversation.state == ConversationState.OPEN,
            Conversation.assignee_id.is_(None),
        )
        .order_by(*URGENCY)
        .limit(1)
        .with_for_update(of=Conversation, skip_locked=True)
    )
    if conversation is None:
        return None
    conversation.assignee_id = me
    await _audit(
        session, principal, "conversation.assigned", conversation, after=str(me), took=True
    )
    await session.flush()
    return conversation.id


# --- operators' settings ------------------------------------------------------------------------


async def operators(session: AsyncSession, tenant_id: uuid.UUID) -> list[schemas.OperatorOut]:
    """The tenant's people who work the inbox, with their capacity and current load."""
    rows = (
        await session.execute(
            select(Membership.user_id, Membership.role, InboxOperator)
            .outerjoin(
                InboxOperator,
                and_(
                    InboxOperator.tenant_id == Membership.tenant_id,
                    InboxOperator.user_id == Membership.user_id,
                ),
            )
            .where(Membership.tenant_id == tenant_id, Membership.role.in_(INBOX_ROLES))
            .order_by(Membership.created_at, Membership.user_id)
        )
    ).all()
    load = await open_load(session, [r[0] for r in rows])
    return [
        schemas.OperatorOut(
            user_id=user,
            role=role,
            capacity=op.capacity if op else DEFAULT_CAPACITY,
            available=op.available if op else True,
            auto_assign=op.auto_assign if op else False,
            assigned_open=load[user],
        )
        for user, role, op in rows
    ]


async def set_operator(
    session: AsyncSession,
    principal: Principal,
    tenant_id: uuid.UUID,
    user_id: uuid.UUID,
    data: schemas.OperatorIn,
) -> schemas.OperatorOut:
    if await _member_role(session, tenant_id, user_id) not in INBOX_ROLES:
        raise NotFound("No operator of yours has this id.")
    row = await session.scalar(
        select(InboxOperator)
        .where(InboxOperator.tenant_id == tenant_id, InboxOperator.user_id == user_id)
        .with_for_update()
    )
    if row is None:
        row = InboxOperator(tenant_id=tenant_id, user_id=user_id)
        session.add(row)
    row.capacity, row.available, row.auto_assign = data.capacity, data.available, data.auto_assign
    await session.flush()
    if row.auto_assign and row.available:
        await queue_hand_out(session, tenant_id)
    await record(
        session,
        "inbox_operator.updated",
        tenant_id=tenant_id,
        actor_type=Actor.of(principal).type,
        actor_id=Actor.of(principal).id,
        subject_type="user",
        subject_id=str(user_id),
        data={
            "capacity": data.capacity,
            "available": data.available,
            "auto_assign": data.auto_assign,
        },
    )
    return next(o for o in await operators(session, tenant_id) if o.user_id == user_id)
