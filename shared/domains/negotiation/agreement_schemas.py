"""What the agreements API reads and writes (money as decimal strings in JSON)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated

import msgspec


class AcceptIn(msgspec.Struct, forbid_unknown_fields=True):
    """The option of the offer the debtor chose (its ``id`` in the offer's ``options``)."""

    option_id: Annotated[str, msgspec.Meta(min_length=1, max_length=40)]


class CancelIn(msgspec.Struct, forbid_unknown_fields=True):
    reason: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]


class AgreementInstallmentOut(msgspec.Struct):
    number: int  # 0: the down payment
    due_date: date
    amount: Decimal
    amount_paid: Decimal
    status: str
    paid_at: datetime | None


class AgreementOriginalOut(msgspec.Struct):
    installment_id: uuid.UUID
    status_before: str
    amount_paid_before: Decimal
    applied_on_break: Decimal | None


class AgreementOut(msgspec.Struct):
    id: uuid.UUID
    customer_id: uuid.UUID
    offer_id: uuid.UUID
    option_id: str
    mandate_id: uuid.UUID | None
    policy_version: int
    status: str
    original_total: Decimal
    negotiated_total: Decimal
    interest: Decimal
    down_payment_amount: Decimal
    down_payment_due: date | None
    amount_paid: Decimal
    created_by: str | None
    created_at: datetime
    voided_at: datetime | None
    broken_at: datetime | None
    completed_at: datetime | None
    cancelled_at: datetime | None
    end_reason: str | None
    installments: list[AgreementInstallmentOut] | None = None
    originals: list[AgreementOriginalOut] | None = None


class AgreementPage(msgspec.Struct):
    items: list[AgreementOut]
    next_cursor: str | None


class AgreementPixOut(msgspec.Struct):
    """The BR Code (copia e cola) for what is still due on one agreement installment."""

    agreement_id: uuid.UUID
    number: int
    due_date: date
    amount: Decimal
    payload: str
    txid: str
    key_type: str
    merchant_name: str
    city: str
