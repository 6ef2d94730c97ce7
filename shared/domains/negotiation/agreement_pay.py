"""Paying an agreement: the Pix BR Code of one of its installments, and a payment received for
one (a Pix whose txid names it: the installment's id in base 36, as for original installments).

A payment is recorded once by its ``external_id`` (the Pix's endToEndId): a replay answers the
payment already recorded.  The part beyond what the installment still owes is kept as
``overpaid``.  A paid installment's reminders not sent yet are cancelled.  When the last
installment is paid the agreement is ``completed`` at once.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.domains.audit.service import Actor, record
from shared.domains.collections import holds
from shared.domains.money.pixcodes import (
    NothingToPay,
    copia_e_cola,
    id_for_txid,
    settings_of,
    txid_for,
)
from shared.domains.negotiation import agreement_schemas as schemas
from shared.domains.negotiation import lifecycle
from shared.domains.negotiation.agreements import AgreementNotActive, installments_of
from shared.errors import Conflict, NotFound
from shared.models import (
    Agreement,
    AgreementInstallment,
    AgreementInstallmentStatus,
    AgreementPayment,
    AgreementStatus,
)

ZERO = Decimal("0.00")


class AgreementPaymentConflict(Conflict):
    code = "payment_conflict"


async def installment_of(
    session: AsyncSession, agreement: Agreement, number: int
) -> AgreementInstallment:
    found = await session.scalar(
        select(AgreementInstallment).where(
            AgreementInstallment.agreement_id == agreement.id,
            AgreementInstallment.number == number,
        )
    )
    if found is None:
        raise NotFound(f"The agreement has no installment {number}.")
    return found


async def pix_for(
    session: AsyncSession, agreement: Agreement, number: int
) -> schemas.AgreementPixOut:
    """The BR Code (copia e cola) for what installment ``number`` still owes."""
    inst = await installment_of(session, agreement, number)
    if agreement.status != AgreementStatus.ACTIVE:
        raise AgreementNotActive(f"The agreement is {agreement.status}; there is nothing to pay.")
    due = inst.amount - inst.amount_paid
    if inst.status == AgreementInstallmentStatus.PAID or due <= 0:
        raise NothingToPay(f"Installment {number} of the agreement is paid.")
    settings = await settings_of(session, agreement.tenant_id)
    txid = txid_for(inst.id)
    return schemas.AgreementPixOut(
        agreement_id=agreement.id,
        number=inst.number,
        due_date=inst.due_date,
        amount=due,
        payload=copia_e_cola(settings, due, txid),
        txid=txid,
        key_type=settings.key_type,
        merchant_name=settings.merchant_name,
        city=settings.city,
    )


async def named_by_txid(
    session: AsyncSession, tenant_id: uuid.UUID, txid: str
) -> AgreementInstallment | None:
    """The retailer's agreement installment a txid of ours names, if any."""
    ident = id_for_txid(txid)
    if ident is None:
        return None
    found: AgreementInstallment | None = await session.scalar(
        select(AgreementInstallment).where(
            AgreementInstallment.id == ident, AgreementInstallment.tenant_id == tenant_id
        )
    )
    return found


async def record_payment(
    session: AsyncSession,
    inst: AgreementInstallment,
    *,
    external_id: str,
    amount: Decimal,
    paid_at: datetime,
    method: str,
    source: str,
    txid: str | None,
    actor: Actor,
) -> tuple[AgreementPayment, bool]:
    """Apply a payment to an agreement installment of an active agreement; ``created`` is
    False on a replay of the same ``external_id``."""
    existing = await session.scalar(
        select(AgreementPayment).where(
            AgreementPayment.tenant_id == inst.tenant_id,
            AgreementPayment.external_id == external_id,
        )
    )
    if existing is not None:
        if existing.agreement_installment_id == inst.id and existing.amount == amount:
            return existing, False
        raise AgreementPaymentConflict(
            f"A different payment was already recorded with external_id {external_id}."
        )
    agreement = await session.get_one(Agreement, inst.agreement_id, with_for_update=True)
    if agreement.status != AgreementStatus.ACTIVE:
        raise AgreementNotActive(
            f"The agreement is {agreement.status}; the payment was not applied to it."
        )
    await session.refresh(inst, with_for_update=True)
    applied = min(amount, max(inst.amount - inst.amount_paid, ZERO))
    payment = AgreementPayment(
        tenant_id=inst.tenant_id,
        agreement_installment_id=inst.id,
        external_id=external_id,
        amount=amount,
        applied=applied,
        overpaid=amount - applied,
        paid_at=paid_at,
        method=method,
        source=source,
        txid=txid,
    )
    session.add(payment)
    inst.amount_paid += applied
    if inst.amount_paid >= inst.amount:
        inst.status, inst.paid_at = AgreementInstallmentStatus.PAID, paid_at
    elif inst.amount_paid > 0:
        inst.status = AgreementInstallmentStatus.PARTIALLY_PAID
    await session.flush()
    if inst.status == AgreementInstallmentStatus.PAID:  # its reminders have nothing to ask
        await holds.cancel_agreement_reminders(session, [inst.id], "paid")
    await record(
        session,
        "agreement.payment_recorded",
        tenant_id=inst.tenant_id,
        actor_type=actor.type,
        actor_id=actor.id,
        subject_type="agreement",
        subject_id=str(agreement.id),
        data={
            "number": inst.number,
            "external_id": external_id,
            "amount": str(amount),
            "applied": str(applied),
            "overpaid": str(payment.overpaid),
            "paid_at": paid_at.isoformat(),
        },
    )
    rows = await installments_of(session, agreement.id)
    if all(i.status == AgreementInstallmentStatus.PAID for i in rows):
        await lifecycle.end(
            session, agreement, AgreementStatus.COMPLETED, "every installment paid", actor
        )
    return payment, True
