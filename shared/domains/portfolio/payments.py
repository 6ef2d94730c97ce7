"""Payments: money received for an installment, recorded once, applied to its balance.

A payment is idempotent by the caller's ``external_id``: the same id with the same content
answers the payment already recorded; with different content, 409.  The part of a payment
beyond the balance on its date is recorded as overpaid (never lost, never applied twice).
When the balance reaches zero the installment is settled and a ``portfolio.installment_settled``
job is written to the outbox in the same transaction; collections (pending contact attempts)
and outbound webhooks listen to it.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.domains.audit.service import Actor, record
from shared.domains.money.balance import balance_of, local_date
from shared.domains.portfolio import schemas, status
from shared.domains.portfolio.scoping import writer_tenant
from shared.domains.portfolio.service import change_status, find_installment, money
from shared.errors import Conflict, FieldError, ValidationFailed
from shared.models import Customer, Installment, InstallmentStatus, Payment
from shared.queue import outbox
from shared.tenancy import Principal


class PaymentConflict(Conflict):
    code = "payment_conflict"


def _same(p: Payment, data: schemas.PaymentIn, installment_id: uuid.UUID) -> bool:
    return (
        p.installment_id == installment_id
        and p.amount == data.amount
        and p.paid_at == data.paid_at
        and p.method == data.method
        and (p.txid or None) == (data.txid or None)
    )


async def record_payment(
    session: AsyncSession,
    principal: Principal,
    data: schemas.PaymentIn,
    actor: Actor,
    *,
    source: str = "api",
) -> tuple[Payment, Installment, bool]:
    """Record ``data``; ``(payment, installment, created)`` — ``created`` is False on a replay."""
    tenant_id = writer_tenant(principal)
    errors: list[FieldError] = []
    amount = money(data.amount, "amount", errors)
    if data.paid_at.tzinfo is None:
        errors.append(FieldError("paid_at", "must carry a time zone offset (e.g. Z or -03:00)"))
    elif data.paid_at > datetime.now(UTC) + timedelta(minutes=5):
        errors.append(FieldError("paid_at", "must not be in the future"))
    ref = (data.installment_id and str(data.installment_id)) or data.installment_external_id
    if ref is None:
        errors.append(
            FieldError(
                "installment_id", "name the installment (installment_id or installment_external_id)"
            )
        )
    if errors:
        raise ValidationFailed("The payment is not valid.", errors=errors)
    assert ref is not None
    inst, _ = await find_installment(session, principal, ref, for_update=True)
    if inst.tenant_id != tenant_id:  # an agency never records payments for a retailer
        raise PaymentConflict("Payments are recorded by the retailer that owns the installment.")

    existing = await session.scalar(
        select(Payment).where(
            Payment.tenant_id == tenant_id, Payment.external_id == data.external_id
        )
    )
    if existing is not None:
        if _same(existing, data, inst.id):
            return existing, inst, False
        raise PaymentConflict(
            f"A different payment was already recorded with external_id {data.external_id}."
        )

    if inst.status == InstallmentStatus.CANCELLED:
        raise status.StatusConflict("A cancelled installment cannot receive payments.")
    customer = await session.get_one(Customer, inst.customer_id)
    paid_on = local_date(data.paid_at, customer)
    before = await balance_of(session, inst, customer, paid_on)
    owed = before.total if inst.status != InstallmentStatus.PAID else Decimal(0)
    applied = min(amount, owed)
    payment = Payment(
        id=uuid.uuid4(),
        tenant_id=tenant_id,
        installment_id=inst.id,
        external_id=data.external_id,
        amount=amount,
        applied=applied,
        overpaid=amount - applied,
        balance_before=owed,
        paid_at=data.paid_at,
        method=data.method,
        source=source,
        txid=data.txid,
    )
    session.add(payment)
    inst.amount_paid = inst.amount_paid + applied
    await session.flush()
    await record(
        session,
        "payment.recorded",
        tenant_id=tenant_id,
        actor_type=actor.type,
        actor_id=actor.id,
        subject_type="installment",
        subject_id=str(inst.id),
        data={
            "payment_id": str(payment.id),
            "external_id": data.external_id,
            "amount": str(amount),
            "applied": str(applied),
            "overpaid": str(payment.overpaid),
            "balance_before": str(owed),
            "paid_at": data.paid_at.isoformat(),
            "method": data.method,
        },
    )
    if inst.status != InstallmentStatus.PAID:
        new = status.after_payment(InstallmentStatus(inst.status), owed - applied)
        if new != inst.status:
            await change_status(session, inst, new, None, actor, at=data.paid_at)
            if new is InstallmentStatus.PAID:
                await outbox.enqueue(
                    session,
                    "portfolio.installment_settled",
                    tenant_id=tenant_id,
                    dedupe_key=f"settled:{inst.id}:{payment.id}",
                    installment_id=str(inst.id),
                    payment_id=str(payment.id),
                )
    await session.refresh(inst)  # server-side updated_at
    await session.refresh(payment)
    return payment, inst, True


def payment_out(p: Payment, inst: Installment) -> schemas.PaymentOut:
    return schemas.PaymentOut(
        id=p.id,
        external_id=p.external_id,
        installment_id=p.installment_id,
        amount=p.amount,
        applied=p.applied,
        overpaid=p.overpaid,
        balance_before=p.balance_before,
        balance_after=p.balance_before - p.applied,
        paid_at=p.paid_at,
        method=p.method,
        source=p.source,
        txid=p.txid,
        installment_status=inst.status,
        created_at=p.created_at,
    )
