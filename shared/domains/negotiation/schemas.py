"""What the negotiation API reads and writes (msgspec structs; money and percentages are
decimal strings in JSON)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any

import msgspec

from shared.domains.collections.schemas import AttemptDetail

IDS = Annotated[list[uuid.UUID], msgspec.Meta(min_length=1, max_length=200)]


class PolicyIn(msgspec.Struct, forbid_unknown_fields=True):
    """The whole negotiation policy; saving it makes a new version (offers keep theirs)."""

    max_discount_fees_percent: Decimal
    max_discount_principal_percent: Decimal
    min_down_payment_percent: Decimal
    max_installments: int
    min_installment_amount: Decimal
    monthly_interest_percent: Decimal
    offer_validity_hours: int
    max_broken_agreements: int


class PolicyOut(PolicyIn):
    """A version of the policy: the limits, and which version, by whom, when."""

    version: int
    created_by: str | None
    created_at: datetime | None


class LimitsIn(msgspec.Struct, forbid_unknown_fields=True):
    """An agency's limits under one mandate; null leaves the retailer's policy in force, a value
    may only be tighter than the policy's."""

    max_discount_fees_percent: Decimal | None = None
    max_discount_principal_percent: Decimal | None = None
    min_down_payment_percent: Decimal | None = None
    max_installments: int | None = None
    min_installment_amount: Decimal | None = None
    monthly_interest_percent: Decimal | None = None
    offer_validity_hours: int | None = None
    max_broken_agreements: int | None = None


class LimitsOut(LimitsIn, kw_only=True):
    """A mandate's own limits (null: the policy's in force) and the limits in force."""

    mandate_id: uuid.UUID
    effective: dict[str, Any]  # the limits in force: the tighter of these and the policy
    policy_version: int
    updated_at: datetime | None


class OfferIn(msgspec.Struct, forbid_unknown_fields=True):
    """Which overdue installments to negotiate (default: all of the customer's)."""

    installment_ids: IDS | None = None


class CustomOfferIn(msgspec.Struct, forbid_unknown_fields=True):
    """An operator's own terms: discounts in R$, the down payment due today (default: the
    minimum; everything when there are no installments), the number of monthly installments
    and the first one's due date (default: a month from today)."""

    discount_fees: Decimal = Decimal("0")
    discount_principal: Decimal = Decimal("0")
    down_payment: Decimal | None = None
    installments: Annotated[int, msgspec.Meta(ge=0, le=120)] = 0
    first_due_date: date | None = None
    installment_ids: IDS | None = None


class OfferOut(msgspec.Struct):
    id: uuid.UUID
    customer_id: uuid.UUID
    kind: str
    policy_version: int
    mandate_id: uuid.UUID | None
    installment_ids: list[uuid.UUID]
    as_of: date
    limits: dict[str, Any]
    basis: list[dict[str, Any]]
    options: list[dict[str, Any]]
    created_at: datetime
    expires_at: datetime
    expired: bool


class OfferSentOut(msgspec.Struct):
    """How an offer went to the debtor: ``list`` — a WhatsApp list in the open 24-hour window
    (``message_id``, its conversation message) — or ``template`` — the retailer's offer template
    with the link, as a contact attempt under the régua's governance (``attempt``: queued for
    the next allowed instant, or skipped with the reason).  ``link`` opens the offer on the
    payment page (the debtor confirms the first three digits of their CPF/CNPJ there)."""

    offer_id: uuid.UUID
    via: str
    link: str
    message_id: uuid.UUID | None = None
    attempt: AttemptDetail | None = None
