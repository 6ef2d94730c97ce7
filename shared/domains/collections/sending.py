"""Sending contact attempts: never twice, never lost (DESIGN rule 4).

The ``collections.send`` job sends a batch of one tenant's queued attempts (the planner puts up
to ``SEND_BATCH_SIZE`` of them in a job; "send now", fallbacks and the sweeper send one).  A batch
reads what its attempts share once — the retailer, its settings, channels, templates, fee rules
and Pix key — and then, for each attempt:

1. re-checks, right before sending, what may have changed since planning — paid or
   renegotiated installments (nothing left: ``cancelled``; for an agreement's reminder, its
   installment paid or the agreement ended), do-not-contact, opt-outs, holds,
   prescription (> 5 years), the phone's status, the contact window (outside it: a new job
   waits for the next allowed instant);
2. computes the balances as of the debtor's today and renders the template;
3. reserves a slot in the number's rate bucket in Redis (shared by every worker, with the
   recipient's pair limit), waits for it, and only then marks the attempt ``sending`` and
   **commits** (what step 2 decided and computed is committed with the first marks, or before
   anything waits: the row locks never outlast a Redis call) — from here on a crash cannot
   lead to a blind resend: a job that finds its attempt ``sending`` marks it ``unknown``, and
   the provider's status webhook (which carries our attempt id) settles it.  Messages are
   marked a small group at a time (those whose slots fall within ``MARK_SPAN_S``), which keeps
   that window a fraction of a second however large the batch (and a message a crash left
   unsent is sent again once the provider's silence proves it: the sweeper);
4. calls the provider (the batch's calls run concurrently) and records the outcomes: ``sent``
   with the provider's id; a retry (back to ``queued``, in a new job) only for errors that
   prove nothing was sent; ``unknown`` when it may have been; ``failed`` otherwise, with the
   step's fallback channel queued when the error calls for it.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import structlog
from sqlalchemy import String, bindparam, select, text, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import UUID as PG_UUID
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from shared import clock
from shared.domains.audit.service import Actor, record_many
from shared.domains.channels import senders, templating
from shared.domains.channels.defaults import OFFER
from shared.domains.collections import agreement_reminders, cadences
from shared.domains.collections.agreement_reminders import AGREEMENT_KIND
from shared.domains.collections.attempts import next_state
from shared.domains.collections.content import AgreementItem, Content, compose, compose_agreement
from shared.domains.collections.planner import (
    DEFAULT_SMS_THROUGHPUT,
    SEND_BATCH_SIZE,
    pace_of,
    phone_block_reason,
)
from shared.domains.collections.window import place_of
from shared.domains.inbound import sms as sms_webhooks
from shared.domains.money import rules
from shared.domains.paypage import links as paylinks
from shared.errors import AppError
from shared.integrations.errors import ProviderError
from shared.models import (
    AttemptState,
    Channel,
    ChannelStatus,
    CollectionHold,
    CollectionSettings,
    ContactAttempt,
    ContactAttemptItem,
    Customer,
    CustomerPhone,
    FeeRuleVersion,
    Installment,
    MessageTemplate,
    Offer,
    PixSettings,
    TemplateStatus,
    Tenant,
)
from shared.queue import JobContext, RetryLater, enqueue, job

log = structlog.get_logger("quita.collections.send")

S = AttemptState
OPEN = ("open", "partially_paid")
PRESCRIPTION_YEARS = 5  # CC art. 206 §5 I: a debt in a written instrument prescribes in 5 years
SHORT_WAIT_S = 2.0  # a rate-limit wait this short is slept in place; longer ones reschedule
LATE_S = 0.1  # a message this late for its slot is booked again rather than sent in a bunch
MAX_REBOOKS = 3  # per batch: a loop too busy even for that sends late rather than spin
PAIR_RATE, PAIR_BURST = 1 / 6, 45  # contract §4.2: ~1 message per 6 s to one user, bursts of 45
DISCOUNT_KEYS = {"lembrete_d3": "lembrete_d3_desconto"}
REVIEW_WAIT_S = 60.0
PAUSED_WAIT_S = 300.0


def callback_data(attempt_id: uuid.UUID) -> str:
    """What every send carries back in its status webhooks (``biz_opaque_callback_data``)."""
    return f"attempt:{attempt_id}"


def attempt_of_callback(value: str | None) -> uuid.UUID | None:
    if not value or not value.startswith("attempt:"):
        return None
    try:
        return uuid.UUID(value.removeprefix("attempt:"))
    except ValueError:
        return None


@job("collections.send", queue="send", max_attempts=8, min_backoff_s=5.0)
async def send(
    ctx: JobContext, *, attempt_ids: Sequence[str] = (), attempt_id: str | None = None
) -> None:
    ids = [*attempt_ids, *([attempt_id] if attempt_id else [])]
    await send_batch(ctx.session, [uuid.UUID(i) for i in ids], now=clock.now())


async def enqueue_send(session: AsyncSession, attempt: ContactAttempt) -> None:
    await enqueue_sends(session, attempt.tenant_id, [attempt.id], attempt.planned_for)


async def enqueue_sends(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    attempt_ids: Sequence[uuid.UUID],
    not_before: datetime | None,
) -> None:
    """The send jobs of ``attempt_ids`` (one tenant's), ``SEND_BATCH_SIZE`` attempts per job."""
    for start in range(0, len(attempt_ids), SEND_BATCH_SIZE):
        chunk = attempt_ids[start : start + SEND_BATCH_SIZE]
        await enqueue(
            session,
            send,
            tenant_id=tenant_id,
            not_before=not_before,
            attempt_ids=[str(i) for i in chunk],
        )


def _move(attempt: ContactAttempt, to: AttemptState, reason: str | None = None) -> None:
    attempt.state = next_state(attempt.state, to)
    if reason is not None:
        attempt.reason = reason
    stamp = {S.SENDING: "sending_at", S.SENT: "sent_at", S.FAILED: "failed_at"}.get(to)
    if stamp:
        setattr(attempt, stamp, datetime.now(UTC))


def _decide(attempt: ContactAttempt, rule: str, **details: Any) -> None:
    attempt.decisions = [*attempt.decisions, {"rule": rule, "at_send": True, **details}]


@dataclass(frozen=True, slots=True)
class Later:
    """The attempt cannot go now but will: a new send job at ``at``."""

    at: datetime
    reason: str


async def send_attempt(
    session: AsyncSession, attempt_id: uuid.UUID, *, now: datetime | None = None
) -> AttemptState | None:
    """Send one attempt (a batch of one); its state afterwards (``None``: no such attempt)."""
    return (await send_batch(session, [attempt_id], now=now)).get(attempt_id)


async def send_batch(
    session: AsyncSession, attempt_ids: Sequence[uuid.UUID], *, now: datetime | None = None
) -> dict[uuid.UUID, AttemptState]:
    """Run the sends of one tenant's attempts once; their states afterwards."""
    attempts = list(
        await session.scalars(
            select(ContactAttempt)
            .where(ContactAttempt.id.in_(attempt_ids))
            .order_by(ContactAttempt.id)
            .with_for_update()
        )
    )
    now = now or clock.now()
    queued = [a for a in attempts if a.state == S.QUEUED]
    channels = await _channels(session, queued)
    await _check_room(channels, queued)
    for attempt in attempts:
        if attempt.state == S.SENDING:
            # A previous run committed "sending" and never recorded the outcome (a crash, a
            # lost connection): the message may be out.  Never resend; the webhook will tell.
            _move(attempt, S.UNKNOWN, "outcome_lost")
            log.warning("collections.outcome_lost", attempt_id=str(attempt.id))
    ready: list[Prepared] = []
    later: dict[datetime, list[ContactAttempt]] = defaultdict(list)
    if queued:
        shared = await _Shared.load(session, queued, now, channels)
        for attempt in queued:
            # pricing a message is CPU work that awaits nothing: let the other batches' marked
            # messages reach the provider between two (a crash before a marked message leaves
            # is an outcome nobody can learn — keep that moment short)
            await asyncio.sleep(0)
            outcome = await _prepare(session, shared, attempt, now)
            if isinstance(outcome, Later):
                attempt.planned_for = outcome.at
                later[outcome.at].append(attempt)
            elif outcome is not None:
                ready.append(outcome)
    for at, waiting in later.items():
        await enqueue_sends(session, waiting[0].tenant_id, [a.id for a in waiting], at)
    if ready:
        # what was decided and computed is committed there, with the first marks or before
        # the first wait: a payment or a webhook is never held up by the provider calls
        await _deliver_all(session, ready)
    else:  # nothing waits, nothing leaves: the job's own commit keeps it
        await session.flush()
    return {a.id: a.state for a in attempts}


class Prepared:
    """Everything the provider call needs, computed before ``sending`` is committed."""

    def __init__(
        self,
        attempt: ContactAttempt,
        channel: Channel,
        template: MessageTemplate,
        content: Content,
    ) -> None:
        self.attempt, self.channel, self.template, self.content = (
            attempt,
            channel,
            template,
            content,
        )

    async def deliver(self) -> senders.Sent:
        a, row, values = self.attempt, self.template, self.content.values
        assert a.recipient is not None
        if self.channel.kind == "whatsapp":
            header = None
            if row.header and "{{" in row.header:
                header = templating.parameters(templating.compile_body(row.header), values)
            return await senders.send_whatsapp_template(
                self.channel,
                a.recipient,
                row.name,
                row.language,
                body=templating.parameters(templating.compile_body(row.body), values),
                header=header,
                callback_data=callback_data(a.id),
            )
        if self.channel.kind == "sms":
            text = templating.render_jinja(row.body, values)
            return await senders.send_sms(
                self.channel,
                a.recipient,
                text,
                status_callback=sms_webhooks.status_callback_url(self.channel, attempt_id=a.id),
            )
        return await senders.send_email(
            self.channel,
            a.recipient,
            subject=templating.render_jinja(row.subject or row.name, values),
            text=templating.render_jinja(row.body, values),
            html=templating.render_jinja(row.html, values, html=True) if row.html else None,
            attempt_id=str(a.id),
        )

    def rendered(self) -> str:
        row, values = self.template, self.content.values
        if self.channel.kind == "whatsapp":
            return templating.render(row.body, values)
        return templating.render_jinja(row.body, values)


@dataclass(slots=True)
class _Shared:
    """What the attempts of one batch share, read once: the retailer's data, and each
    customer's, installments, holds and phones in one query apiece."""

    tenant: Tenant | None
    settings: CollectionSettings | None
    channels: list[Channel]  # active and paused, oldest first
    templates: dict[str, list[MessageTemplate]]  # by channel kind
    versions: list[FeeRuleVersion]
    pix: PixSettings | None
    customers: dict[uuid.UUID, Customer]
    installments: dict[uuid.UUID, list[Installment]]  # open ones, by attempt
    holds: dict[uuid.UUID, list[tuple[uuid.UUID | None, str]]]  # by customer
    phones: dict[tuple[uuid.UUID, str], CustomerPhone] = field(default_factory=dict)
    # agreement reminders: the open installments of active agreements, by attempt, and why an
    # attempt has none left ("paid", "agreement_void" ...)
    agreement_items: dict[uuid.UUID, list[AgreementItem]] = field(default_factory=dict)
    agreement_gone: dict[uuid.UUID, str] = field(default_factory=dict)

    @classmethod
    async def load(
        cls,
        session: AsyncSession,
        attempts: Sequence[ContactAttempt],
        now: datetime,
        channels: list[Channel],
    ) -> _Shared:
        tenant_id = attempts[0].tenant_id
        customer_ids = {a.customer_id for a in attempts}
        kinds = {a.channel for a in attempts}
        templates: dict[str, list[MessageTemplate]] = defaultdict(list)
        for row in await session.scalars(
            select(MessageTemplate).where(
                MessageTemplate.tenant_id == tenant_id, MessageTemplate.channel_kind.in_(kinds)
            )
        ):
            templates[row.channel_kind].append(row)
        installments: dict[uuid.UUID, list[Installment]] = defaultdict(list)
        for attempt_id, inst in await session.execute(
            select(ContactAttemptItem.attempt_id, Installment)
            .join(Installment, ContactAttemptItem.installment_id == Installment.id)
            .where(
                ContactAttemptItem.attempt_id.in_([a.id for a in attempts]),
                Installment.status.in_(OPEN),
            )
        ):
            installments[attempt_id].append(inst)
        holds: dict[uuid.UUID, list[tuple[uuid.UUID | None, str]]] = defaultdict(list)
        for customer_id, installment_id, kind in await session.execute(
            select(
                CollectionHold.customer_id, CollectionHold.installment_id, CollectionHold.kind
            ).where(
                CollectionHold.customer_id.in_(customer_ids),
                CollectionHold.released_at.is_(None),
                (CollectionHold.until.is_(None)) | (CollectionHold.until > now),
            )
        ):
            holds[customer_id].append((installment_id, kind))
        phones = {
            (p.customer_id, p.number): p
            for p in await session.scalars(
                select(CustomerPhone).where(CustomerPhone.customer_id.in_(customer_ids))
            )
        }
        owed, gone = await agreement_reminders.still_owed(
            session, [a.id for a in attempts if a.kind == AGREEMENT_KIND]
        )
        # the retailer, its settings and its Pix key: one row (both keyed by the tenant)
        retailer = (
            await session.execute(
                select(Tenant, CollectionSettings, PixSettings)
                .outerjoin(CollectionSettings, CollectionSettings.tenant_id == Tenant.id)
                .outerjoin(PixSettings, PixSettings.tenant_id == Tenant.id)
                .where(Tenant.id == tenant_id)
            )
        ).one_or_none()
        tenant, settings, pix = retailer if retailer is not None else (None, None, None)
        return cls(
            agreement_items=owed,
            agreement_gone=gone,
            tenant=tenant,
            settings=settings,
            channels=channels,
            templates=templates,
            versions=await rules.versions(session, tenant_id),
            pix=pix,
            customers={
                c.id: c
                for c in await session.scalars(
                    select(Customer).where(Customer.id.in_(customer_ids))
                )
            },
            installments=installments,
            holds=holds,
            phones=phones,
        )

    def channel(self, kind: str, status: ChannelStatus) -> Channel | None:
        return next((c for c in self.channels if c.kind == kind and c.status == status), None)


async def _channels(session: AsyncSession, attempts: Sequence[ContactAttempt]) -> list[Channel]:
    """The tenant's active and paused channels of the attempts' kinds, oldest first."""
    if not attempts:
        return []
    return list(
        await session.scalars(
            select(Channel)
            .where(
                Channel.tenant_id == attempts[0].tenant_id,
                Channel.kind.in_({a.channel for a in attempts}),
                Channel.status.in_([ChannelStatus.ACTIVE, ChannelStatus.PAUSED]),
            )
            .order_by(Channel.created_at)
        )
    )


def _bucket(channel: Channel) -> tuple[str, float]:
    """The sender's bucket in Redis and the rate we hold it to: a WhatsApp number's, or an SMS
    account's (its limit is the account's, over all its numbers)."""
    if channel.kind == "sms":
        rate = pace_of(channel.config, DEFAULT_SMS_THROUGHPUT)
        return f"sms:{channel.config['account_sid']}", rate
    return f"wa:{channel.config['phone_number_id']}", pace_of(channel.config)


async def _check_room(channels: list[Channel], queued: Sequence[ContactAttempt]) -> None:
    """A batch for a WhatsApp number or an SMS account already booked beyond a short wait goes
    back to the queue before any work is done, so a worker's threads turn to other retailers'
    batches meanwhile."""
    for kind in ("whatsapp", "sms"):
        sender = next((c for c in channels if c.kind == kind and c.status == "active"), None)
        if sender is None or not any(a.channel == kind for a in queued):
            continue
        key, rate = _bucket(sender)
        peek = await senders.clients().limiter.hit(key, rate=rate, burst=1, cost=0)
        if peek.retry_after_s > SHORT_WAIT_S:
            raise RetryLater(peek.retry_after_s, f"the {kind} sender is busy")


async def _prepare(
    session: AsyncSession, shared: _Shared, attempt: ContactAttempt, now: datetime
) -> Prepared | Later | None:
    """Re-check governance and build the message; ``None`` when it must not go (the attempt
    is moved and the reason recorded), ``Later`` when it must wait."""
    customer = shared.customers.get(attempt.customer_id)
    tenant = shared.tenant
    if customer is None or tenant is None:
        _move(attempt, S.CANCELLED, "customer_gone")
        return None
    # an agreement's reminder asks for its open installments while the agreement is active;
    # any other message for the retailer's installments still in collection
    of_agreement = attempt.kind == AGREEMENT_KIND
    owed = shared.agreement_items.get(attempt.id, [])
    installments = shared.installments.get(attempt.id, [])
    if of_agreement and not owed:
        _move(attempt, S.CANCELLED, shared.agreement_gone.get(attempt.id, "nothing_due"))
        return None
    if not of_agreement and not installments:
        _move(attempt, S.CANCELLED, "nothing_due")
        return None
    if customer.do_not_contact:
        _move(attempt, S.SKIPPED, "do_not_contact")
        return None
    holds = shared.holds.get(customer.id, [])
    customer_hold = next((kind for item, kind in holds if item is None), None)
    if customer_hold is not None:
        _move(attempt, S.SKIPPED, f"hold_{customer_hold}")
        return None
    held_items = {item for item, _ in holds if item is not None}
    installments = [i for i in installments if i.id not in held_items]
    if not of_agreement and not installments:
        _move(attempt, S.SKIPPED, "hold_installment")
        return None
    offer = None
    if attempt.offer_id is not None:  # an offer sent outside the window: its options
        offer = await session.get(Offer, attempt.offer_id)
        if offer is None or now >= offer.expires_at:
            _move(attempt, S.SKIPPED, "offer_expired")
            return None
    place = place_of(customer.state, customer.city, attempt.recipient)
    today = now.astimezone(ZoneInfo(place.zones[0])).date()
    limit = _years_before(today, PRESCRIPTION_YEARS)
    live = [i for i in installments if i.due_date > limit]
    if not of_agreement and not live:
        _move(attempt, S.SKIPPED, "prescribed")
        return None
    if attempt.channel in customer.opted_out:
        _move(attempt, S.SKIPPED, "opted_out")
        return None
    if attempt.channel != "email" and not _phone_usable(shared, attempt, today):
        return None
    when = cadences.window_of(shared.settings).next_allowed(now, place)
    if when > now:
        _decide(attempt, "contact_window", until=when.isoformat())
        return Later(when, "outside the contact window")
    channel = shared.channel(attempt.channel, ChannelStatus.ACTIVE)
    if channel is None:
        if shared.channel(attempt.channel, ChannelStatus.PAUSED) is not None:
            # the retailer paused it: wait for the resume
            return Later(now + timedelta(seconds=PAUSED_WAIT_S), "channel paused")
        return await _fall_back_or(session, attempt, "no_channel")
    if offer is None and not of_agreement and _offers(shared, attempt):
        # a régua step whose template is the offer's: the offer is made now, for what the
        # message is about (nothing overdue, or offers stopped: the message's own page)
        offer = await _make_offer(session, attempt, [i.id for i in live], now)
    if offer is not None:
        attempt.offer_id = offer.id
        link = paylinks.for_offer(offer.id, offer.expires_at)
    else:
        link = paylinks.for_message(attempt.id, now)
    if of_agreement:
        content = compose_agreement(
            tenant, customer, owed, today, pix_settings=shared.pix, link=link
        )
    else:
        content = await compose(
            session,
            tenant,
            customer,
            live,
            today,
            txid_of=live[0].id if len(live) == 1 else attempt.id,
            versions=shared.versions,
            pix_settings=shared.pix,
            link=link,
        )
    template = _template(shared.templates.get(attempt.channel, []), attempt, content)
    if template is not None and template.status == TemplateStatus.PENDING:
        # under the provider's review (minutes, at most a day): wait for the verdict
        _decide(attempt, "template_in_review", template=template.name)
        return Later(now + timedelta(seconds=REVIEW_WAIT_S), "template under review")
    if template is None or template.status != TemplateStatus.APPROVED:
        return await _fall_back_or(session, attempt, "template_not_approved")
    prepared = Prepared(attempt, channel, template, content)
    attempt.channel_id, attempt.template_id = channel.id, template.id
    attempt.amounts = content.amounts
    # the evidence of what it said: the text as the debtor reads it, and its hash
    attempt.rendered_text = prepared.rendered()
    attempt.rendered_sha256 = hashlib.sha256(attempt.rendered_text.encode()).hexdigest()
    return prepared


def _offers(shared: _Shared, attempt: ContactAttempt) -> bool:
    """Is the attempt's template the offer's (``quita_oferta_v1`` or the retailer's own)?"""
    return any(
        t.name == attempt.template_name and t.key == OFFER.key
        for t in shared.templates.get(attempt.channel, [])
    )


async def _make_offer(
    session: AsyncSession, attempt: ContactAttempt, installment_ids: list[uuid.UUID], now: datetime
) -> Offer | None:
    from shared.domains.negotiation import chat, service  # negotiation builds on collections

    try:
        async with session.begin_nested():
            offer = await service.make_offer(
                session,
                chat.retailer(attempt.tenant_id),
                str(attempt.customer_id),
                installment_ids=installment_ids,
                terms=None,
                actor=SENDER,
                now=now,
            )
    except AppError as exc:
        _decide(attempt, "offer", made=False, why=exc.code)
        return None
    _decide(attempt, "offer", made=True, offer_id=str(offer.id))
    return offer


def _years_before(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February
        return day.replace(year=day.year - years, day=28)


def _phone_usable(shared: _Shared, attempt: ContactAttempt, today: date) -> bool:
    phone = shared.phones.get((attempt.customer_id, attempt.recipient or ""))
    if phone is None or not phone.active:
        reason: str | None = "phone_removed"
    else:
        reason = phone_block_reason(phone.status, phone.no_call_list_since, today)
    if reason is not None:
        _move(attempt, S.SKIPPED, reason)
        return False
    return True


def _template(
    rows: Sequence[MessageTemplate], attempt: ContactAttempt, content: Content
) -> MessageTemplate | None:
    chosen = next((r for r in rows if r.name == attempt.template_name), None)
    if chosen is not None and content.discount > 0 and chosen.key in DISCOUNT_KEYS:
        # the D-3 reminder with the early-payment discount, when the fee rule offers one
        swap = next((r for r in rows if r.key == DISCOUNT_KEYS[chosen.key]), None)
        if swap is not None and swap.status == TemplateStatus.APPROVED:
            chosen = swap
    return chosen


async def _fall_back_or(
    session: AsyncSession, attempt: ContactAttempt, reason: str
) -> Prepared | None:
    """The attempt cannot go on its channel: queue the fallback channel, or fail."""
    _move(attempt, S.FAILED, reason)
    await queue_fallback(session, attempt)
    return None


async def queue_fallback(session: AsyncSession, attempt: ContactAttempt) -> ContactAttempt | None:
    """A new attempt on the step's fallback channel, covering the same installments."""
    kind = attempt.fallback_channel
    if kind is None:
        return None
    customer = await session.get(Customer, attempt.customer_id)
    if customer is None or kind in customer.opted_out:
        return None
    recipient = customer.email if kind == "email" else attempt.recipient
    if kind != "email" and attempt.channel == "email":
        recipient = await session.scalar(
            select(CustomerPhone.number)
            .where(
                CustomerPhone.customer_id == customer.id,
                CustomerPhone.active,
                CustomerPhone.status == "valid",
            )
            .order_by(CustomerPhone.position)
            .limit(1)
        )
    if recipient is None:
        return None
    fallback = ContactAttempt(
        id=uuid.uuid4(),
        tenant_id=attempt.tenant_id,
        customer_id=attempt.customer_id,
        kind=attempt.kind,
        cadence_id=attempt.cadence_id,
        step_id=attempt.step_id,
        offset_days=attempt.offset_days,
        template_name=attempt.template_name,
        channel=kind,
        fallback_channel=None,
        fallback_of=attempt.id,
        campaign_id=attempt.campaign_id,
        recipient=recipient,
        state=S.QUEUED,
        contact_day=attempt.contact_day,
        planned_for=datetime.now(UTC),
        decisions=[{"rule": "fallback", "from": attempt.channel, "reason": attempt.reason}],
    )
    session.add(fallback)
    await session.flush()
    items = await session.execute(
        select(
            ContactAttemptItem.installment_id, ContactAttemptItem.agreement_installment_id
        ).where(ContactAttemptItem.attempt_id == attempt.id)
    )
    # the fallback covers the same installments without claiming the step a second time
    session.add_all(
        ContactAttemptItem(
            attempt_id=fallback.id,
            installment_id=i,
            agreement_installment_id=g,
            tenant_id=attempt.tenant_id,
            step_id=None,
        )
        for i, g in items
    )
    await session.flush()
    await enqueue_send(session, fallback)
    return fallback


# --- the calls ---------------------------------------------------------------------------------

_MARK_SENDING = text(
    """UPDATE contact_attempts
          SET state = :sending, sending_at = now(), tries = tries + 1, updated_at = now()
        WHERE id = ANY(:ids) AND state = :queued
    RETURNING id"""
).bindparams(bindparam("ids", type_=ARRAY(PG_UUID(as_uuid=True))))
# messages whose slots fall this close to the first of a group are marked ``sending`` with it,
# in one transaction: a crash between that commit and their calls can leave at most this much
# of a number's sends ``unknown`` (the sweeper sends them again once the provider's silence
# shows it never had them), and a busy number pays one commit per group, not per message
MARK_SPAN_S = 0.25


_Due = tuple[float, int, Prepared]  # (loop time of the slot, order, message)


async def _deliver_all(session: AsyncSession, ready: list[Prepared]) -> None:
    """Book the batch's slots in its senders' buckets (the WhatsApp number's, the SMS
    account's; e-mail goes at once); mark the messages ``sending`` (committed) a group at a
    time — those whose slots fall within ``MARK_SPAN_S`` — and call the provider at each one's
    slot — the calls overlap — then record every outcome in one transaction.
    The session's uncommitted work (the prepared messages) is committed with the first group,
    or before the first wait for a slot, whichever comes first.

    A message that reaches its slot more than ``LATE_S`` late (a busy event loop, a slow
    commit) is not sent late: the rest are booked again, since sending them at once would bunch
    them with the next batch's slots into more than the number's rate in one second."""
    loop = asyncio.get_running_loop()
    deferred: dict[float, list[Prepared]] = defaultdict(list)
    due: list[_Due] = [
        (loop.time(), index, p) for index, p in enumerate(ready) if p.channel.kind == "email"
    ]
    due += await _book([p for p in ready if p.channel.kind == "whatsapp"], len(ready), deferred)
    due += await _book([p for p in ready if p.channel.kind == "sms"], 2 * len(ready), deferred)
    due.sort(key=lambda d: (d[0], d[1]))
    calls: list[tuple[Prepared, asyncio.Task[senders.Sent]]] = []
    marked: set[uuid.UUID] = set()
    rebooked = 0
    pending = True  # the prepared messages are not committed yet
    while due:
        at, order, prepared = due[0]
        late = loop.time() - at > LATE_S
        if late and prepared.channel.kind == "whatsapp" and rebooked < MAX_REBOOKS:
            rebooked += 1
            rest = [d for d in due if d[2].channel.kind == "whatsapp"]
            due = [d for d in due if d[2].channel.kind != "whatsapp"]
            due += await _book([p for _, _, p in rest], order, deferred)
            due.sort(key=lambda d: (d[0], d[1]))
            continue
        if (wait := at - loop.time()) > 0:
            if pending:  # no row lock is held while waiting
                await session.commit()
                pending = False
                continue  # its slot is checked again: the commit took time
            await asyncio.sleep(wait)
        if prepared.attempt.id not in marked:
            group = [p.attempt.id for slot, _, p in due if slot - at <= MARK_SPAN_S]
            group = [i for i in group if i not in marked]
            if pending:
                await session.flush()  # the prepared rows first, in this same transaction
            got = await session.execute(
                _MARK_SENDING,
                {"ids": group, "sending": next_state(S.QUEUED, S.SENDING), "queued": S.QUEUED},
            )
            marked.update(got.scalars())
            await session.commit()  # the point of no blind return: see the module's docstring
            pending = False
            # cancelled (a payment, an opt-out) since they were prepared: not sent
            gone = set(group) - marked
            due = [d for d in due if d[2].attempt.id not in gone]
            continue  # its slot is checked again: the commit took time
        due.pop(0)
        calls.append((prepared, asyncio.create_task(prepared.deliver())))
    results = await asyncio.gather(*(task for _, task in calls), return_exceptions=True)
    await _record(session, [p for p, _ in calls], results)
    for delay_s, waiting in deferred.items():
        # a wait for room in the rate bucket is a real duration (the clock may be fixed in
        # tests and benches; the outbox releases jobs by the database's time)
        await _defer(session, waiting, datetime.now(UTC) + timedelta(seconds=delay_s))


async def _book(
    messages: list[Prepared], order: int, deferred: dict[float, list[Prepared]]
) -> list[_Due]:
    """Consecutive slots in the sender's bucket for ``messages`` (one tenant's, on one channel),
    on WhatsApp each recipient's pair limit allowing; what gets no slot soon is added to
    ``deferred``."""
    if not messages:
        return []
    channel = messages[0].channel
    key, rate = _bucket(channel)
    start = asyncio.get_running_loop().time()
    limiter = senders.clients().limiter
    if channel.kind == "whatsapp":
        number = channel.config["phone_number_id"]
        booking = await limiter.reserve(
            key,
            rate=rate,
            max_wait_s=SHORT_WAIT_S,
            each=[f"wa-pair:{number}:{p.attempt.recipient}" for p in messages],
            each_rate=PAIR_RATE,
            each_burst=PAIR_BURST,
        )
    else:
        booking = await limiter.reserve(
            key, rate=rate, max_wait_s=SHORT_WAIT_S, count=len(messages)
        )
    if not booking.booked:  # other batches took the room: later
        deferred[booking.wait_s] += messages
        return []
    due: list[_Due] = []
    for index, (prepared, slot) in enumerate(zip(messages, booking.slots, strict=True)):
        if slot is None:  # this recipient had too many messages of late
            deferred[1 / PAIR_RATE].append(prepared)
        else:
            due.append((start + slot, order + index, prepared))
    return due


async def _defer(session: AsyncSession, waiting: list[Prepared], at: datetime) -> None:
    """Messages the bucket had no room for: ``queued`` (again, for those marked ``sending``
    with their group and never called), in a job at ``at``."""
    attempts = [p.attempt for p in waiting]
    ids = [a.id for a in attempts]
    await session.execute(
        update(ContactAttempt)
        .where(ContactAttempt.id.in_(ids), ContactAttempt.state == S.SENDING)
        .values(state=next_state(S.SENDING, S.QUEUED), tries=ContactAttempt.tries - 1)
    )
    await session.execute(
        update(ContactAttempt)
        .where(ContactAttempt.id.in_(ids), ContactAttempt.state == S.QUEUED)
        .values(planned_for=at)
    )
    await enqueue_sends(session, attempts[0].tenant_id, [a.id for a in attempts], at)
    await session.flush()


# every call of a batch accepted (the usual case): each attempt still ``sending`` becomes
# ``sent``, each keeps the first provider id it got (a status webhook may have come first), in
# one statement that locks the rows in id order as the general case's select does
_RECORD_SENT = text(
    """WITH locked AS MATERIALIZED (
           SELECT id FROM contact_attempts WHERE id = ANY(:ids) ORDER BY id FOR UPDATE)
       UPDATE contact_attempts a
          SET state = CASE WHEN a.state = :sending THEN :sent ELSE a.state END,
              sent_at = CASE WHEN a.state = :sending THEN :at ELSE a.sent_at END,
              provider_message_id = coalesce(a.provider_message_id, v.message_id),
              updated_at = CASE WHEN a.state = :sending OR a.provider_message_id IS NULL
                                THEN now() ELSE a.updated_at END
         FROM locked
         JOIN unnest(CAST(:ids AS uuid[]), CAST(:message_ids AS text[])) AS v (id, message_id)
           ON v.id = locked.id
        WHERE a.id = locked.id
    RETURNING a.id, a.state, a.reason, a.tries, a.sending_at, a.sent_at, a.delivered_at,
              a.read_at, a.failed_at, a.provider_message_id, a.error_class, a.error_code,
              a.updated_at"""
).bindparams(
    bindparam("ids", type_=ARRAY(PG_UUID(as_uuid=True))),
    bindparam("message_ids", type_=ARRAY(String())),
)


async def _record(
    session: AsyncSession, called: list[Prepared], results: Sequence[senders.Sent | BaseException]
) -> None:
    """The outcome of each call, on the attempt as it is now (a status webhook may have moved
    it on while the call was answered)."""
    if not called:
        return
    if all(isinstance(r, senders.Sent) for r in results):
        await _record_sent(session, called, [r for r in results if isinstance(r, senders.Sent)])
        return
    current = {
        a.id: a
        for a in await session.scalars(
            select(ContactAttempt)
            .where(ContactAttempt.id.in_([p.attempt.id for p in called]))
            .order_by(ContactAttempt.id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    }
    later: dict[datetime, list[uuid.UUID]] = defaultdict(list)
    for prepared, result in zip(called, results, strict=True):
        attempt = current[prepared.attempt.id]
        if isinstance(result, ProviderError):
            if attempt.state == S.SENDING:
                at = await _failed(session, attempt, prepared, result)
                if at is not None:
                    later[at].append(attempt.id)
            continue
        if isinstance(result, BaseException):
            # not the provider's answer: a bug or a cancelled task — the message may be out
            if attempt.state == S.SENDING:
                _move(attempt, S.UNKNOWN, "send_error")
            log.error(
                "collections.send_error",
                attempt_id=str(attempt.id),
                exc_info=(type(result), result, result.__traceback__),
            )
            continue
        if attempt.state == S.SENDING:
            _move(attempt, S.SENT)
        attempt.provider_message_id = attempt.provider_message_id or result.provider_message_id
        log.info("collections.sent", attempt_id=str(attempt.id), channel=attempt.channel)
    for at, ids in later.items():
        await enqueue_sends(session, current[ids[0]].tenant_id, ids, at)
    await session.flush()
    await _audit_outcomes(session, [current[p.attempt.id] for p in called])


async def _record_sent(
    session: AsyncSession, called: list[Prepared], results: list[senders.Sent]
) -> None:
    """:func:`_record` when every call was accepted: one statement, whose answer is copied onto
    the session's attempts (as the general case's reload does)."""
    rows = await session.execute(
        _RECORD_SENT,
        {
            "ids": [p.attempt.id for p in called],
            "message_ids": [r.provider_message_id for r in results],
            "sending": S.SENDING,
            "sent": S.SENT,
            "at": datetime.now(UTC),
        },
    )
    attempts = {p.attempt.id: p.attempt for p in called}
    for row in rows.mappings():
        attempt = attempts[row["id"]]
        for column, value in row.items():
            if column != "id":
                set_committed_value(attempt, column, value)
        log.info("collections.sent", attempt_id=str(attempt.id), channel=attempt.channel)
    await _audit_outcomes(session, [p.attempt for p in called])


async def _audit_outcomes(session: AsyncSession, attempts: Sequence[ContactAttempt]) -> None:
    """The evidence of each contact, sealed with the audit trail: what left, to whom, saying
    what (a retry later is not an outcome)."""
    await record_many(
        session,
        SENDER,
        [
            (
                f"attempt.{a.state}",
                a.tenant_id,
                ("contact_attempt", a.id),
                _evidence(a),
            )
            for a in attempts
            if a.state in _OUTCOMES
        ],
    )


# the outcomes of a call kept in the audit trail (a retry later is not one)
_OUTCOMES = frozenset({S.SENT, S.FAILED, S.UNKNOWN})
SENDER = Actor("system", "collections.send")


def _evidence(attempt: ContactAttempt) -> dict[str, Any]:
    totals = (attempt.amounts or {}).get("totals", {})
    return {
        "customer_id": str(attempt.customer_id),
        "channel": attempt.channel,
        "template_name": attempt.template_name,
        "rendered_sha256": attempt.rendered_sha256,
        "total": totals.get("total"),
        "pix_txid": (attempt.amounts or {}).get("pix_txid"),
        "provider_message_id": attempt.provider_message_id,
        "error_code": attempt.error_code,
    }


async def _failed(
    session: AsyncSession, attempt: ContactAttempt, prepared: Prepared, exc: ProviderError
) -> datetime | None:
    """Record a refused or lost call; retry only what proves nothing was sent (the instant of
    the retry is returned)."""
    attempt.error_class = str(exc.error_class)
    attempt.error_code = getattr(exc, "code", None) or getattr(exc, "smtp_code", None)
    if exc.maybe_sent:
        _move(attempt, S.UNKNOWN, "maybe_sent")
        log.warning("collections.maybe_sent", attempt_id=str(attempt.id))
        return None
    advice = exc.advice(attempt.tries - 1)
    if advice.stop_channel:
        await session.execute(
            update(Channel)
            .where(Channel.id == prepared.channel.id)
            .values(status=ChannelStatus.STOPPED, status_reason=f"{exc.error_class}: {exc}"[:300])
        )
    if advice.retry and advice.delay_s is not None:
        _move(attempt, S.QUEUED, str(exc.error_class))
        attempt.planned_for = datetime.now(UTC) + timedelta(seconds=advice.delay_s)  # real time
        return attempt.planned_for
    _move(attempt, S.FAILED, str(exc.error_class))
    if advice.fallback:
        await queue_fallback(session, attempt)
    log.info("collections.failed", attempt_id=str(attempt.id), error_class=str(exc.error_class))
    return None
