"""Agreements (acordos): an offer's option accepted by the debtor (in the chat, or by phone with
an operator recording it) becomes an agreement with its own installments — number 0 the down
payment — copied from the stored option, never recomputed.  Its original installments become
``renegotiated`` and stop being collected; what each was before is kept so that voiding or
cancelling puts it back exactly.  Services flush, never commit.

An agency accepts only offers made under one of its mandates that still allows ``negotiate``.
The originals, their contact attempts and their audit trail are the retailer's rows (written only
under the retailer's own scope); after those checks the change is made in that scope
(:func:`retailer_scope`), and the agency's own trail names it too.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from shared import clock
from shared.domains import events
from shared.domains.audit.service import Actor, record
from shared.domains.collections import holds
from shared.domains.money import rules
from shared.domains.money.balance import balance_of, local_date
from shared.domains.negotiation import agreement_schemas as schemas
from shared.domains.negotiation.service import NEGOTIABLE, get_offer
from shared.domains.portfolio.service import change_status
from shared.errors import Conflict, FieldError, NotFound, ValidationFailed
from shared.models import (
    Agreement,
    AgreementInstallment,
    AgreementOriginal,
    AgreementStatus,
    Customer,
    Installment,
    InstallmentStatus,
    MandateAction,
    Offer,
    Payment,
    TenantKind,
)
from shared.pagination import encode_cursor, older_than
from shared.tenancy import Principal, current_scope, tenant_scope, use_scope

RENEGOTIATED_REASON = "agreement"


class OfferExpired(Conflict):
    code = "offer_expired"


class OfferStale(Conflict):
    code = "offer_stale"


class OfferAccepted(Conflict):
    code = "offer_already_accepted"


class AgreementNotActive(Conflict):
    code = "agreement_not_active"


def by(actor: Actor) -> str:
    return f"{actor.type}:{actor.id}" if actor.id else actor.type


@asynccontextmanager
async def retailer_scope(session: AsyncSession, retailer_id: uuid.UUID) -> AsyncIterator[None]:
    """Write the retailer's own rows (installments, attempts, its audit trail) for a caller the
    application has already authorized; the caller's scope is back afterwards."""
    before = current_scope(session)
    if before is None or before.system or before.tenant_id == retailer_id:
        yield
        return
    await session.flush()
    await use_scope(session, tenant_scope(retailer_id))
    try:
        yield
        await session.flush()
    finally:
        await use_scope(session, before)


# --- accepting an offer ----------------------------------------------------------------------


def _option(offer: Offer, option_id: str) -> dict[str, Any]:
    for option in offer.options:
        if option.get("id") == option_id:
            return option
    known = ", ".join(str(o.get("id")) for o in offer.options)
    raise ValidationFailed(
        "The offer has no such option.",
        errors=[FieldError("option_id", f"not an option of this offer (its options: {known})")],
    )


def check_negotiator(principal: Principal, mandate_id: uuid.UUID | None, what: str) -> None:
    """An agency acts only under the mandate of the offer or agreement (``what``), if that
    mandate still allows negotiating."""
    if principal.tenant_kind is not TenantKind.AGENCY:
        return
    grant = next((g for g in principal.grants if g.mandate_id == mandate_id), None)
    if grant is None or MandateAction.NEGOTIATE not in grant.actions:
        raise NotFound(f"{what} was not found.")


async def _paid_by(session: AsyncSession, inst: Installment, customer: Customer, day: date) -> Any:
    """What was applied to ``inst`` by payments of ``day`` or before (the debtor's dates)."""
    rows = await session.execute(
        select(Payment.paid_at, Payment.applied).where(Payment.installment_id == inst.id)
    )
    return sum(
        (applied for at, applied in rows.all() if local_date(at, customer) <= day), Decimal(0)
    )


async def _originals(session: AsyncSession, offer: Offer, customer: Customer) -> list[Installment]:
    """The offer's installments, locked, if they are still what the offer was computed from:
    collectable, with the same balance on the offer's day and nothing paid since."""
    rows = list(
        await session.scalars(
            select(Installment)
            .where(Installment.id.in_(offer.installment_ids))
            .order_by(Installment.due_date, Installment.id)
            .with_for_update()
        )
    )
    basis = {b["installment_id"]: Decimal(b["total"]) for b in offer.basis}
    versions = await rules.versions(session, customer.tenant_id)
    stale: list[str] = []
    for inst in rows:
        if inst.status not in NEGOTIABLE:
            stale.append(f"{inst.external_id} is {inst.status}")
            continue
        b = await balance_of(session, inst, customer, offer.as_of, versions=versions)
        paid_then = await _paid_by(session, inst, customer, offer.as_of)
        if b.total != basis.get(str(inst.id)) or inst.amount_paid != paid_then:
            stale.append(f"{inst.external_id} changed since the offer")
    if len(rows) != len(offer.installment_ids):
        stale.append("an installment of the offer no longer exists")
    if stale:
        raise OfferStale(
            "The offer's installments changed since it was made ("
            + "; ".join(stale)
            + "); make a new offer."
        )
    return rows


def plan_of(option: dict[str, Any]) -> list[tuple[int, date, Decimal]]:
    plan: list[tuple[int, date, Decimal]] = []
    down = option.get("down_payment")
    if down and Decimal(down["amount"]) > 0:
        plan.append((0, date.fromisoformat(down["due_date"]), Decimal(down["amount"])))
    for item in option["installments"]:
        plan.append(
            (int(item["number"]), date.fromisoformat(item["due_date"]), Decimal(item["amount"]))
        )
    return plan


def agreement_from(offer: Offer, option: dict[str, Any], actor: Actor, now: datetime) -> Agreement:
    """The agreement row an option makes, its amounts copied from the stored option."""
    down = option.get("down_payment")
    return Agreement(
        id=uuid.uuid4(),
        tenant_id=offer.tenant_id,
        customer_id=offer.customer_id,
        offer_id=offer.id,
        option_id=str(option["id"]),
        mandate_id=offer.mandate_id,
        policy_version=offer.policy_version,
        status=AgreementStatus.ACTIVE,
        original_total=Decimal(option["original_total"]),
        negotiated_total=Decimal(option["negotiated_total"]),
        interest=Decimal(option["interest"]),
        down_payment_amount=Decimal(down["amount"]) if down else Decimal("0.00"),
        down_payment_due=date.fromisoformat(down["due_date"]) if down else None,
        created_by=by(actor),
        created_at=now,
    )


async def accept(
    session: AsyncSession,
    principal: Principal,
    offer_id: uuid.UUID,
    option_id: str,
    actor: Actor,
    *,
    idempotency_key: str | None = None,
) -> tuple[Agreement, bool]:
    """Make the agreement of ``option_id`` — ``(agreement, created)``: a retry with the same
    ``idempotency_key`` answers the one made.  409 when the offer was accepted already, expired
    or its installments changed since; the originals become ``renegotiated``."""
    offer = await get_offer(session, principal, offer_id)
    check_negotiator(principal, offer.mandate_id, f"Offer {offer.id}")
    await session.refresh(offer, with_for_update=True)  # one acceptance at a time
    key = f"{principal.subject}:{idempotency_key}"[:200] if idempotency_key else None
    earlier = await session.scalar(select(Agreement).where(Agreement.offer_id == offer.id))
    if earlier is not None:
        if key is not None and earlier.idempotency_key == key and earlier.option_id == option_id:
            return earlier, False
        raise OfferAccepted("The offer was accepted already; make a new offer.")
    option = _option(offer, option_id)
    now = clock.now()
    if now >= offer.expires_at:
        raise OfferExpired(f"The offer expired at {offer.expires_at.isoformat()}; make a new one.")
    customer = await session.get_one(Customer, offer.customer_id)
    async with retailer_scope(session, offer.tenant_id):
        originals = await _originals(session, offer, customer)
        agreement = agreement_from(offer, option, actor, now)
        agreement.idempotency_key = key
        session.add(agreement)
        await session.flush()
        for number, due, amount in plan_of(option):
            session.add(
                AgreementInstallment(
                    tenant_id=offer.tenant_id,
                    agreement_id=agreement.id,
                    number=number,
                    due_date=due,
                    amount=amount,
                    amount_paid=Decimal("0.00"),
                )
            )
        for inst in originals:
            session.add(
                AgreementOriginal(
                    tenant_id=offer.tenant_id,
                    agreement_id=agreement.id,
                    installment_id=inst.id,
                    amount_paid_before=inst.amount_paid,
                    status_before=str(inst.status),
                )
            )
            await change_status(
                session, inst, InstallmentStatus.RENEGOTIATED, RENEGOTIATED_REASON, actor, at=now
            )
        await session.flush()
        await holds.cancel_pointless(session, [i.id for i in originals], "renegotiated")
        data = _created_data(agreement, option)
        await audit(session, agreement, "agreement.created", actor, data)
        await events.emit(
            session,
            agreement.tenant_id,
            "agreement.created",
            {"agreement_id": agreement.id, **data},
            now,
            customer_id=agreement.customer_id,
        )
    if principal.tenant_id != offer.tenant_id:  # the agency's own trail names it too
        await audit(session, agreement, "agreement.created", actor, data, principal.tenant_id)
    return agreement, True


def _created_data(agreement: Agreement, option: dict[str, Any]) -> dict[str, Any]:
    return {
        "tenant_id": str(agreement.tenant_id),
        "offer_id": str(agreement.offer_id),
        "option_id": agreement.option_id,
        "mandate_id": str(agreement.mandate_id) if agreement.mandate_id else None,
        "policy_version": agreement.policy_version,
        "negotiated_total": str(agreement.negotiated_total),
        "interest": str(agreement.interest),
        "down_payment": option.get("down_payment"),
        "installments": option["installments"],
    }


async def audit(
    session: AsyncSession,
    agreement: Agreement,
    action: str,
    actor: Actor,
    data: dict[str, Any],
    tenant_id: uuid.UUID | None = None,
) -> None:
    await record(
        session,
        action,
        tenant_id=tenant_id or agreement.tenant_id,
        actor_type=actor.type,
        actor_id=actor.id,
        subject_type="agreement",
        subject_id=str(agreement.id),
        data=data,
    )


# --- reading ---------------------------------------------------------------------------------


def _visible(principal: Principal) -> Any:
    if principal.tenant_kind is TenantKind.AGENCY:
        return Agreement.mandate_id.in_([g.mandate_id for g in principal.grants])
    return Agreement.tenant_id == principal.tenant_id


async def get_agreement(
    session: AsyncSession, principal: Principal, agreement_id: uuid.UUID, *, lock: bool = False
) -> Agreement:
    """A retailer sees its agreements; an agency those made under its own mandates."""
    stmt = select(Agreement).where(Agreement.id == agreement_id, _visible(principal))
    row = await session.scalar(stmt.with_for_update() if lock else stmt)
    if row is None or principal.tenant_id is None:
        raise NotFound(f"Agreement {agreement_id} was not found.")
    return row


async def list_agreements(
    session: AsyncSession,
    principal: Principal,
    *,
    status: str | None = None,
    customer_id: uuid.UUID | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> schemas.AgreementPage:
    """Newest first."""
    stmt = select(Agreement).where(_visible(principal))
    if status is not None:
        stmt = stmt.where(Agreement.status == status)
    if customer_id is not None:
        stmt = stmt.where(Agreement.customer_id == customer_id)
    if cursor is not None:
        stmt = stmt.where(older_than(cursor, Agreement.created_at, Agreement.id))
    stmt = stmt.order_by(Agreement.created_at.desc(), Agreement.id.desc()).limit(limit + 1)
    rows = list(await session.scalars(stmt))
    more, rows = len(rows) > limit, rows[:limit]
    paid = await _paid(session, [r.id for r in rows])
    return schemas.AgreementPage(
        items=[agreement_out(r, paid.get(r.id, Decimal("0.00"))) for r in rows],
        next_cursor=encode_cursor(rows[-1].created_at.isoformat(), rows[-1].id)
        if more and rows
        else None,
    )


async def _paid(session: AsyncSession, ids: list[uuid.UUID]) -> dict[uuid.UUID, Decimal]:
    if not ids:
        return {}
    rows = await session.execute(
        select(AgreementInstallment.agreement_id, func.sum(AgreementInstallment.amount_paid))
        .where(AgreementInstallment.agreement_id.in_(ids))
        .group_by(AgreementInstallment.agreement_id)
    )
    return {a: total for a, total in rows.all()}


async def installments_of(
    session: AsyncSession, agreement_id: uuid.UUID
) -> list[AgreementInstallment]:
    return list(
        await session.scalars(
            select(AgreementInstallment)
            .where(AgreementInstallment.agreement_id == agreement_id)
            .order_by(AgreementInstallment.number)
        )
    )


async def originals_of(session: AsyncSession, agreement_id: uuid.UUID) -> list[AgreementOriginal]:
    return list(
        await session.scalars(
            select(AgreementOriginal)
            .join(Installment, Installment.id == AgreementOriginal.installment_id)
            .where(AgreementOriginal.agreement_id == agreement_id)
            .order_by(Installment.due_date, Installment.id)
        )
    )


def agreement_out(
    row: Agreement,
    amount_paid: Decimal,
    installments: list[AgreementInstallment] | None = None,
    originals: list[AgreementOriginal] | None = None,
) -> schemas.AgreementOut:
    return schemas.AgreementOut(
        id=row.id,
        customer_id=row.customer_id,
        offer_id=row.offer_id,
        option_id=row.option_id,
        mandate_id=row.mandate_id,
        policy_version=row.policy_version,
        status=str(row.status),
        original_total=row.original_total,
        negotiated_total=row.negotiated_total,
        interest=row.interest,
        down_payment_amount=row.down_payment_amount,
        down_payment_due=row.down_payment_due,
        amount_paid=amount_paid,
        created_by=row.created_by,
        created_at=row.created_at,
        voided_at=row.voided_at,
        broken_at=row.broken_at,
        completed_at=row.completed_at,
        cancelled_at=row.cancelled_at,
        end_reason=row.end_reason,
        installments=None
        if installments is None
        else [
            schemas.AgreementInstallmentOut(
                number=i.number,
                due_date=i.due_date,
                amount=i.amount,
                amount_paid=i.amount_paid,
                status=str(i.status),
                paid_at=i.paid_at,
            )
            for i in installments
        ],
        originals=None
        if originals is None
        else [
            schemas.AgreementOriginalOut(
                installment_id=o.installment_id,
                status_before=o.status_before,
                amount_paid_before=o.amount_paid_before,
                applied_on_break=o.applied_on_break,
            )
            for o in originals
        ],
    )


async def detail_out(session: AsyncSession, row: Agreement) -> schemas.AgreementOut:
    installments = await installments_of(session, row.id)
    paid = sum((i.amount_paid for i in installments), Decimal("0.00"))
    return agreement_out(row, paid, installments, await originals_of(session, row.id))
