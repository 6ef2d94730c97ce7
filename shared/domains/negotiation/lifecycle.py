"""How an agreement ends: ``completed`` when every installment is paid; ``void`` when the down
payment is not paid by its date (plus a grace); ``broken`` when a later installment stays unpaid
more than ``BREAK_AFTER_DAYS``; ``cancelled`` by an operator.  One function decides
(:func:`decide`); each ending is applied once (an agreement no longer ``active`` is left alone),
so the scheduler may review the same agreement any number of times.

Void and cancel put the originals back exactly as they were: their status before the agreement
(``open`` or ``partially_paid``; if money reached an original directly meanwhile, the status
that money gives it).  A break puts them back *minus what was paid on the agreement*: that money
is applied to the originals oldest first, as ordinary payments (``source = "agreement"``)
through :func:`payments.record_payment`, each at most the original's balance on the day of the
break.  Recording payments rather than editing ``amount_paid`` keeps the rule "amount_paid is the
sum of its payments", so balances, Pix codes, the dossier and the settled events (an original
fully covered is ``paid``, its messages cancelled, the retailer notified) all follow.  What was
paid beyond the originals' balances (possible when the agreement's interest exceeded its
discounts) is reported as ``unapplied`` on the ``agreement.broken`` event, never invented into a
payment.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from decimal import Decimal

import structlog
from sqlalchemy import exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from shared import clock
from shared.domains import events
from shared.domains.audit.service import Actor
from shared.domains.collections import holds
from shared.domains.money.balance import balance_of, local_date
from shared.domains.negotiation.agreements import (
    AgreementNotActive,
    audit,
    check_negotiator,
    get_agreement,
    installments_of,
    originals_of,
    retailer_scope,
)
from shared.domains.portfolio import payments, status
from shared.domains.portfolio import schemas as portfolio_schemas
from shared.domains.portfolio.service import change_status
from shared.models import (
    Agreement,
    AgreementInstallment,
    AgreementInstallmentStatus,
    AgreementStatus,
    Customer,
    Installment,
    InstallmentStatus,
)
from shared.queue import JobContext, enqueue, job
from shared.queue.scheduler import periodic
from shared.tenancy import Principal

log = structlog.get_logger("quita.agreements")

DOWN_PAYMENT_GRACE_DAYS = 1  # a tenant setting later
BREAK_AFTER_DAYS = 30  # a tenant setting later
SYSTEM_ACTOR = Actor("system", "agreements")
ZERO = Decimal("0.00")


# --- deciding --------------------------------------------------------------------------------


def decide(
    installments: Sequence[AgreementInstallment], today: date, accepted_on: date
) -> tuple[AgreementStatus, str] | None:
    """How an active agreement ends on ``today``, and why; None while it runs.  The down
    payment's deadline counts from its due date or the acceptance, whichever is later."""
    unpaid = [i for i in installments if i.status != AgreementInstallmentStatus.PAID]
    if not unpaid:
        return AgreementStatus.COMPLETED, "every installment paid"
    down = next((i for i in unpaid if i.number == 0), None)
    if down is not None:
        deadline = max(down.due_date, accepted_on) + timedelta(days=DOWN_PAYMENT_GRACE_DAYS)
        if today > deadline:
            return AgreementStatus.VOID, f"down payment due {down.due_date.isoformat()} not paid"
    for inst in unpaid:
        if inst.number > 0 and (today - inst.due_date).days > BREAK_AFTER_DAYS:
            return (
                AgreementStatus.BROKEN,
                f"installment {inst.number} due {inst.due_date.isoformat()} unpaid for more "
                f"than {BREAK_AFTER_DAYS} days",
            )
    return None


def allocate(paid: Decimal, owed: Sequence[Decimal]) -> list[Decimal]:
    """``paid`` spread over balances oldest first, each at most its balance (never negative)."""
    out = []
    left = max(paid, ZERO)
    for balance in owed:
        part = min(left, max(balance, ZERO))
        out.append(part)
        left -= part
    return out


# --- ending ----------------------------------------------------------------------------------


def _stamp(agreement: Agreement, to: AgreementStatus, reason: str, at: datetime) -> None:
    agreement.status = to
    agreement.end_reason = reason[:200]
    if to is AgreementStatus.VOID:
        agreement.voided_at = at
    elif to is AgreementStatus.BROKEN:
        agreement.broken_at = at
    elif to is AgreementStatus.COMPLETED:
        agreement.completed_at = at
    elif to is AgreementStatus.CANCELLED:
        agreement.cancelled_at = at


def _restored(
    inst: Installment, status_before: str, amount_paid_before: Decimal
) -> InstallmentStatus:
    if inst.amount_paid == amount_paid_before:
        return InstallmentStatus(status_before)
    return status.base_status(inst.amount_paid)  # money reached it directly meanwhile


async def _restore(
    session: AsyncSession, agreement: Agreement, actor: Actor, at: datetime
) -> list[Installment]:
    """Originals still ``renegotiated`` by this agreement back to collection, as they were."""
    back = []
    for original in await originals_of(session, agreement.id):
        inst = await session.get_one(Installment, original.installment_id, with_for_update=True)
        if inst.status != InstallmentStatus.RENEGOTIATED:
            continue  # paid in full meanwhile, or the retailer changed it: its status stands
        new = _restored(inst, original.status_before, original.amount_paid_before)
        await change_status(session, inst, new, f"agreement {agreement.status}", actor, at=at)
        back.append(inst)
    return back


# what the retailer's systems hear when an agreement ends other than by breaking
_ENDED = {
    AgreementStatus.VOID: "agreement.voided",
    AgreementStatus.CANCELLED: "agreement.cancelled",
    AgreementStatus.COMPLETED: "agreement.completed",
}


async def end(
    session: AsyncSession,
    agreement: Agreement,
    to: AgreementStatus,
    reason: str,
    actor: Actor,
    *,
    at: datetime | None = None,
) -> None:
    """End an active agreement (``to`` void, broken, completed or cancelled), restoring its
    originals as that ending requires and cancelling its reminders not sent yet; audited."""
    if agreement.status != AgreementStatus.ACTIVE:
        raise AgreementNotActive(f"The agreement is {agreement.status} already.")
    at = at or clock.now()
    _stamp(agreement, to, reason, at)
    await session.flush()
    # the agreement régua has nothing left to ask: its reminders not sent yet are cancelled
    await holds.cancel_agreement_reminders(
        session, [i.id for i in await installments_of(session, agreement.id)], f"agreement_{to}"
    )
    data: dict[str, object] = {"status": str(to), "reason": reason}
    if to in (AgreementStatus.VOID, AgreementStatus.CANCELLED):
        restored = await _restore(session, agreement, actor, at)
        data["restored"] = [str(i.id) for i in restored]
    elif to is AgreementStatus.BROKEN:
        data.update(await _break(session, agreement, actor, at))
    if to is not AgreementStatus.BROKEN:  # a break tells the retailer's systems itself
        await events.emit(
            session,
            agreement.tenant_id,
            _ENDED[to],
            {"agreement_id": str(agreement.id), **data},
            at,
            customer_id=agreement.customer_id,
        )
    await audit(session, agreement, f"agreement.{to}", actor, data)
    log.info(f"agreement.{to}", agreement_id=str(agreement.id))


async def _break(
    session: AsyncSession, agreement: Agreement, actor: Actor, at: datetime
) -> dict[str, object]:
    restored = await _restore(session, agreement, actor, at)
    paid = sum((i.amount_paid for i in await installments_of(session, agreement.id)), ZERO)
    customer = await session.get_one(Customer, agreement.customer_id)
    day = local_date(at, customer)
    owed = [(await balance_of(session, inst, customer, day)).total for inst in restored]
    parts = allocate(paid, owed)
    by_id = {o.installment_id: o for o in await originals_of(session, agreement.id)}
    principal = _retailer(agreement.tenant_id)
    for n, (inst, part) in enumerate(zip(restored, parts, strict=True)):
        by_id[inst.id].applied_on_break = part
        if part <= 0:
            continue
        await payments.record_payment(
            session,
            principal,
            portfolio_schemas.PaymentIn(
                external_id=f"agreement:{agreement.id.hex}:{n}",
                amount=part,
                paid_at=at,
                method="other",
                installment_id=inst.id,
            ),
            actor,
            source="agreement",
        )
    await session.flush()
    unapplied = paid - sum(parts, ZERO)
    data: dict[str, object] = {
        "agreement_id": str(agreement.id),
        "paid_on_agreement": str(paid),
        "applied": {str(i.id): str(p) for i, p in zip(restored, parts, strict=True)},
        "unapplied": str(unapplied),
        "restored": [str(i.id) for i in restored],
    }
    await events.emit(
        session,
        agreement.tenant_id,
        "agreement.broken",
        {**data, "reason": agreement.end_reason},
        at,
        customer_id=agreement.customer_id,
    )
    return data


async def cancel(
    session: AsyncSession,
    principal: Principal,
    agreement_id: uuid.UUID,
    reason: str,
    actor: Actor,
) -> Agreement:
    """An operator calls the agreement off: its originals back as they were (409 unless
    active); an agency only under the agreement's mandate, if it still allows negotiating."""
    agreement = await get_agreement(session, principal, agreement_id, lock=True)
    check_negotiator(principal, agreement.mandate_id, f"Agreement {agreement_id}")
    async with retailer_scope(session, agreement.tenant_id):
        await end(session, agreement, AgreementStatus.CANCELLED, reason.strip(), actor)
    if principal.tenant_id != agreement.tenant_id:
        await audit(
            session,
            agreement,
            "agreement.cancelled",
            actor,
            {"tenant_id": str(agreement.tenant_id), "reason": reason.strip()},
            principal.tenant_id,
        )
    return agreement


def _retailer(tenant_id: uuid.UUID) -> Principal:
    """Quita applying an agreement's money for the retailer (its own portfolio only)."""
    return Principal.retailer_process(tenant_id, "agreements", "agreements")


async def review(
    session: AsyncSession, agreement_id: uuid.UUID, now: datetime | None = None
) -> str:
    """End the agreement if :func:`decide` says so; what happened (idempotent)."""
    agreement = await session.get(Agreement, agreement_id, with_for_update=True)
    if agreement is None or agreement.status != AgreementStatus.ACTIVE:
        return "not active"
    now = now or clock.now()
    customer = await session.get_one(Customer, agreement.customer_id)
    today = local_date(now, customer)
    decision = decide(
        await installments_of(session, agreement.id),
        today,
        local_date(agreement.created_at, customer),
    )
    if decision is None:
        return "active"
    to, reason = decision
    await end(session, agreement, to, reason, SYSTEM_ACTOR, at=now)
    return str(to)


# --- the scheduler ---------------------------------------------------------------------------

REVIEW_JOB = "negotiation.review_agreement"


async def due_for_review(session: AsyncSession, today: date) -> list[tuple[uuid.UUID, uuid.UUID]]:
    """``(tenant, agreement)`` of active agreements with an unpaid installment due by ``today``
    (a day of slack for time zones west of UTC) or nothing left unpaid."""
    unpaid = select(AgreementInstallment.id).where(
        AgreementInstallment.agreement_id == Agreement.id,
        AgreementInstallment.status != AgreementInstallmentStatus.PAID,
    )
    rows = await session.execute(
        select(Agreement.tenant_id, Agreement.id).where(
            Agreement.status == AgreementStatus.ACTIVE,
            exists(unpaid.where(AgreementInstallment.due_date < today)) | ~exists(unpaid),
        )
    )
    return [(t, a) for t, a in rows.all()]


@periodic("negotiation.agreements", every=timedelta(hours=1))
async def schedule_reviews(session: AsyncSession) -> None:
    now = clock.now()
    stamp = now.strftime("%Y%m%d%H")
    for tenant_id, agreement_id in await due_for_review(session, now.date()):
        await enqueue(
            session,
            REVIEW_JOB,
            tenant_id=tenant_id,
            dedupe_key=f"{REVIEW_JOB}:{agreement_id}:{stamp}",
            agreement_id=str(agreement_id),
        )


@job(REVIEW_JOB, queue="default", max_attempts=10)
async def review_agreement(ctx: JobContext, *, agreement_id: str) -> None:
    outcome = await review(ctx.session, uuid.UUID(agreement_id))
    log.info("agreement.reviewed", agreement_id=agreement_id, outcome=outcome)
