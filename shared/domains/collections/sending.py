"""Sending one contact attempt: never twice, never lost (DESIGN rule 4).

The ``collections.send`` job, for an attempt in ``queued``:

1. re-checks, right before sending, what may have changed since planning — paid or
   renegotiated installments (nothing left: ``cancelled``), do-not-contact, opt-outs, holds,
   prescription (> 5 years), the phone's status, the contact window (outside it: wait);
2. computes the balances as of the debtor's today and renders the template;
3. takes a token from the number's rate bucket in Redis (shared by every worker);
4. marks the attempt ``sending`` and **commits** — from here on a crash cannot lead to a blind
   resend: a job that finds its attempt ``sending`` marks it ``unknown``, and the provider's
   status webhook (which carries our attempt id) settles it;
5. calls the provider and records the outcome: ``sent`` with the provider's id; a retry (back to
   ``queued``) only for errors that prove nothing was sent; ``unknown`` when it may have been;
   ``failed`` otherwise, with the step's fallback channel queued when the error calls for it.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import structlog
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from shared import clock
from shared.domains.channels import senders, templating
from shared.domains.collections import cadences
from shared.domains.collections.attempts import next_state
from shared.domains.collections.content import Content, compose
from shared.domains.collections.planner import phone_block_reason
from shared.domains.collections.window import place_of
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
    Installment,
    MessageTemplate,
    TemplateStatus,
    Tenant,
)
from shared.queue import JobContext, RetryLater, enqueue, job

log = structlog.get_logger("quita.collections.send")

S = AttemptState
OPEN = ("open", "partially_paid")
PRESCRIPTION_YEARS = 5  # CC art. 206 §5 I: a debt in a written instrument prescribes in 5 years
SHORT_WAIT_S = 2.0  # a rate-limit wait this short is slept in place; longer ones reschedule
# Meta's 80 msg/s is counted by Meta's clock; a margin keeps network jitter from bunching
# our sends into more than 80 in one of its seconds.
THROUGHPUT_MARGIN = 0.9
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
async def send(ctx: JobContext, *, attempt_id: str) -> None:
    await send_attempt(ctx.session, uuid.UUID(attempt_id), now=clock.now())


async def enqueue_send(session: AsyncSession, attempt: ContactAttempt) -> None:
    await enqueue(
        session,
        send,
        tenant_id=attempt.tenant_id,
        not_before=attempt.planned_for,
        attempt_id=str(attempt.id),
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


async def send_attempt(
    session: AsyncSession, attempt_id: uuid.UUID, *, now: datetime | None = None
) -> AttemptState | None:
    """Run the attempt's send once; its state afterwards (``None``: no such attempt)."""
    attempt = await session.scalar(
        select(ContactAttempt).where(ContactAttempt.id == attempt_id).with_for_update()
    )
    if attempt is None:
        return None
    if attempt.state == S.SENDING:
        # A previous run committed "sending" and never recorded the outcome (a crash, a lost
        # connection): the message may be out.  Never resend; the status webhook will tell.
        _move(attempt, S.UNKNOWN, "outcome_lost")
        await session.flush()
        log.warning("collections.outcome_lost", attempt_id=str(attempt.id))
        return attempt.state
    if attempt.state != S.QUEUED:
        return attempt.state  # done, cancelled or skipped already
    now = now or clock.now()
    prepared = await _prepare(session, attempt, now)
    if prepared is None:
        await session.flush()
        return attempt.state
    await _take_token(prepared)
    _move(attempt, S.SENDING)
    attempt.tries += 1
    await session.commit()  # the point of no blind return: see the module's docstring
    try:
        sent = await prepared.deliver()
    except ProviderError as exc:
        await session.refresh(attempt, with_for_update=True)
        if _current(attempt) == S.SENDING:
            await _failed(session, attempt, prepared, exc)
        return attempt.state
    # a status webhook may have moved the attempt on while the call was answered
    await session.refresh(attempt, with_for_update=True)
    if _current(attempt) == S.SENDING:
        _move(attempt, S.SENT)
    attempt.provider_message_id = attempt.provider_message_id or sent.provider_message_id
    await session.flush()
    log.info("collections.sent", attempt_id=str(attempt.id), channel=attempt.channel)
    return attempt.state


def _current(attempt: ContactAttempt) -> AttemptState:
    """The attempt's state as last read (a function, so a refresh is not narrowed away)."""
    return attempt.state


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
            return await senders.send_sms(self.channel, a.recipient, text, status_callback=None)
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


async def _prepare(
    session: AsyncSession, attempt: ContactAttempt, now: datetime
) -> Prepared | None:
    """Re-check governance and build the message; ``None`` when it must not go (the attempt
    is moved and the reason recorded) — or ``RetryLater`` outside the contact window."""
    customer = await session.get(Customer, attempt.customer_id)
    tenant = await session.get(Tenant, attempt.tenant_id)
    if customer is None or tenant is None:
        _move(attempt, S.CANCELLED, "customer_gone")
        return None
    installments = list(
        await session.scalars(
            select(Installment)
            .join(ContactAttemptItem, ContactAttemptItem.installment_id == Installment.id)
            .where(ContactAttemptItem.attempt_id == attempt.id, Installment.status.in_(OPEN))
        )
    )
    if not installments:
        _move(attempt, S.CANCELLED, "nothing_due")
        return None
    if customer.do_not_contact:
        _move(attempt, S.SKIPPED, "do_not_contact")
        return None
    holds = list(
        await session.execute(
            select(CollectionHold.installment_id, CollectionHold.kind).where(
                CollectionHold.customer_id == attempt.customer_id,
                CollectionHold.released_at.is_(None),
                (CollectionHold.until.is_(None)) | (CollectionHold.until > now),
            )
        )
    )
    customer_hold = next((kind for item, kind in holds if item is None), None)
    if customer_hold is not None:
        _move(attempt, S.SKIPPED, f"hold_{customer_hold}")
        return None
    held_items = {item for item, _ in holds if item is not None}
    installments = [i for i in installments if i.id not in held_items]
    if not installments:
        _move(attempt, S.SKIPPED, "hold_installment")
        return None
    place = place_of(customer.state, customer.city, attempt.recipient)
    today = now.astimezone(ZoneInfo(place.zones[0])).date()
    limit = _years_before(today, PRESCRIPTION_YEARS)
    live = [i for i in installments if i.due_date > limit]
    if not live:
        _move(attempt, S.SKIPPED, "prescribed")
        return None
    if attempt.channel in customer.opted_out:
        _move(attempt, S.SKIPPED, "opted_out")
        return None
    if attempt.channel != "email" and not await _phone_usable(session, attempt, today):
        return None
    settings = await session.get(CollectionSettings, attempt.tenant_id)
    window = cadences.window_of(settings)
    when = window.next_allowed(now, place)
    if when > now:
        _decide(attempt, "contact_window", until=when.isoformat())
        attempt.planned_for = when
        await session.flush()
        await session.commit()
        raise RetryLater((when - now).total_seconds(), "outside the contact window")
    channel = await session.scalar(
        select(Channel)
        .where(
            Channel.tenant_id == attempt.tenant_id,
            Channel.kind == attempt.channel,
            Channel.status == ChannelStatus.ACTIVE,
        )
        .order_by(Channel.created_at)
        .limit(1)
    )
    if channel is None:
        paused = await session.scalar(
            select(Channel.id)
            .where(
                Channel.tenant_id == attempt.tenant_id,
                Channel.kind == attempt.channel,
                Channel.status == ChannelStatus.PAUSED,
            )
            .limit(1)
        )
        if paused is not None:  # the retailer paused it: wait for the resume
            raise RetryLater(PAUSED_WAIT_S, "channel paused")
        return await _fall_back_or(session, attempt, "no_channel")
    content = await compose(
        session,
        tenant,
        customer,
        live,
        today,
        txid_of=live[0].id if len(live) == 1 else attempt.id,
    )
    template = await _template(session, attempt, content)
    if template is not None and template.status == TemplateStatus.PENDING:
        # under the provider's review (minutes, at most a day): wait for the verdict
        _decide(attempt, "template_in_review", template=template.name)
        await session.flush()
        await session.commit()
        raise RetryLater(REVIEW_WAIT_S, "template under review")
    if template is None or template.status != TemplateStatus.APPROVED:
        return await _fall_back_or(session, attempt, "template_not_approved")
    prepared = Prepared(attempt, channel, template, content)
    attempt.channel_id, attempt.template_id = channel.id, template.id
    attempt.amounts = content.amounts
    attempt.rendered_sha256 = hashlib.sha256(prepared.rendered().encode()).hexdigest()
    return prepared


def _years_before(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February
        return day.replace(year=day.year - years, day=28)


async def _phone_usable(session: AsyncSession, attempt: ContactAttempt, today: date) -> bool:
    phone = await session.scalar(
        select(CustomerPhone).where(
            CustomerPhone.customer_id == attempt.customer_id,
            CustomerPhone.number == attempt.recipient,
        )
    )
    if phone is None or not phone.active:
        reason: str | None = "phone_removed"
    else:
        reason = phone_block_reason(phone.status, phone.no_call_list_since, today)
    if reason is not None:
        _move(attempt, S.SKIPPED, reason)
        return False
    return True


async def _template(
    session: AsyncSession, attempt: ContactAttempt, content: Content
) -> MessageTemplate | None:
    rows = {
        (row.name, row.key): row
        for row in await session.scalars(
            select(MessageTemplate).where(
                MessageTemplate.tenant_id == attempt.tenant_id,
                MessageTemplate.channel_kind == attempt.channel,
            )
        )
    }
    chosen = next((r for (name, _), r in rows.items() if name == attempt.template_name), None)
    if chosen is not None and content.discount > 0 and chosen.key in DISCOUNT_KEYS:
        # the D-3 reminder with the early-payment discount, when the fee rule offers one
        swap = next((r for (_, key), r in rows.items() if key == DISCOUNT_KEYS[chosen.key]), None)
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
    items = await session.scalars(
        select(ContactAttemptItem.installment_id).where(ContactAttemptItem.attempt_id == attempt.id)
    )
    # the fallback covers the same installments without claiming the step a second time
    session.add_all(
        ContactAttemptItem(
            attempt_id=fallback.id, installment_id=i, tenant_id=attempt.tenant_id, step_id=None
        )
        for i in items
    )
    await session.flush()
    await enqueue_send(session, fallback)
    return fallback


async def _take_token(prepared: Prepared) -> None:
    """Wait for the number's throughput (and the recipient's pair limit) in the shared bucket;
    a short wait is slept here, a long one reschedules the job."""
    channel = prepared.channel
    if channel.kind != "whatsapp":
        return
    limiter = senders.clients().limiter
    number = channel.config["phone_number_id"]
    rate = float(channel.config.get("throughput_per_s") or 80) * THROUGHPUT_MARGIN
    checks = (
        (f"wa:{number}", rate, 1),
        (f"wa-pair:{number}:{prepared.attempt.recipient}", PAIR_RATE, PAIR_BURST),
    )
    for key, per_s, burst in checks:
        while True:
            decision = await limiter.hit(key, rate=per_s, burst=burst)
            if decision.allowed:
                break
            if decision.retry_after_s > SHORT_WAIT_S:
                raise RetryLater(decision.retry_after_s, "rate limit")
            await asyncio.sleep(decision.retry_after_s)


async def _failed(
    session: AsyncSession, attempt: ContactAttempt, prepared: Prepared, exc: ProviderError
) -> None:
    """Record a refused or lost call; retry only what proves nothing was sent."""
    attempt.error_class = str(exc.error_class)
    attempt.error_code = getattr(exc, "code", None) or getattr(exc, "smtp_code", None)
    if exc.maybe_sent:
        _move(attempt, S.UNKNOWN, "maybe_sent")
        await session.flush()
        log.warning("collections.maybe_sent", attempt_id=str(attempt.id))
        return
    advice = exc.advice(attempt.tries - 1)
    if advice.stop_channel:
        await session.execute(
            update(Channel)
            .where(Channel.id == prepared.channel.id)
            .values(status=ChannelStatus.STOPPED, status_reason=f"{exc.error_class}: {exc}"[:300])
        )
    if advice.retry and advice.delay_s is not None:
        _move(attempt, S.QUEUED, str(exc.error_class))
        attempt.planned_for = datetime.now(UTC) + timedelta(seconds=advice.delay_s)
        await session.flush()
        await session.commit()
        raise RetryLater(advice.delay_s, f"provider {exc.error_class}")
    _move(attempt, S.FAILED, str(exc.error_class))
    if advice.fallback:
        await queue_fallback(session, attempt)
    await session.flush()
    log.info("collections.failed", attempt_id=str(attempt.id), error_class=str(exc.error_class))
