"""What the portfolio API reads and writes (msgspec structs: decoded at the edge, in OpenAPI).

Money travels as decimal strings (``"250.00"``); dates as ``YYYY-MM-DD``; instants as UTC ISO
8601.  Numbers are accepted on input too, and parsed exactly (never through a float).
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

import msgspec

ExternalId = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^\S(.*\S)?$")]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
PhoneText = Annotated[str, msgspec.Meta(max_length=30)]
Tag = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
ChannelName = Literal["whatsapp", "sms", "email"]
PhoneStatusName = Literal["valid", "wrong_person", "unreachable"]
StatusName = Literal[
    "open", "partially_paid", "paid", "renegotiated", "disputed", "written_off", "cancelled"
]
# What a retailer's system may set directly; the rest follow from payments and agreements.
SettableStatus = Literal["open", "paid", "disputed", "written_off", "cancelled"]
PaymentMethod = Literal["pix", "boleto", "cash", "card", "transfer", "other"]


class CustomerIn(msgspec.Struct, forbid_unknown_fields=True):
    """A customer as the retailer knows it.  ``phones`` become the active numbers, in order
    (what Quita learned about a number — wrong person, WhatsApp id — is kept).  The contact
    flags are changed only when sent."""

    name: Name
    document: Annotated[str, msgspec.Meta(max_length=20)] | None = None
    phones: Annotated[
        list[Annotated[str, msgspec.Meta(max_length=30)]], msgspec.Meta(max_length=10)
    ] = msgspec.field(default_factory=list)
    email: Annotated[str, msgspec.Meta(max_length=254)] | None = None
    state: Annotated[str, msgspec.Meta(min_length=2, max_length=2)] | None = None
    city: Annotated[str, msgspec.Meta(max_length=100)] | None = None
    tags: Annotated[list[Tag], msgspec.Meta(max_length=50)] = msgspec.field(default_factory=list)
    attributes: dict[str, Any] = msgspec.field(default_factory=dict)
    opted_out: list[ChannelName] | None = None
    do_not_contact: bool | None = None
    do_not_contact_reason: Annotated[str, msgspec.Meta(max_length=200)] | None = None


class PhoneOut(msgspec.Struct):
    number: str
    status: str
    active: bool
    whatsapp_id: str | None
    no_call_list_since: date | None


class PhoneUpdate(msgspec.Struct, forbid_unknown_fields=True):
    """What an operator records about one number: a wrong person, an unreachable line, the
    date it entered a do-not-contact list such as Procon-SP's "Não Me Ligue"."""

    status: PhoneStatusName | None = None
    no_call_list_since: date | None = None
    clear_no_call_list: bool = False


class CustomerOut(msgspec.Struct):
    id: uuid.UUID
    external_id: str
    name: str
    document: str | None
    document_kind: str | None
    phones: list[str]
    phone_details: list[PhoneOut]
    email: str | None
    state: str | None
    city: str | None
    time_zone: str
    tags: list[str]
    opted_out: list[str]
    do_not_contact: bool
    do_not_contact_reason: str | None
    attributes: dict[str, Any]
    created_at: datetime
    updated_at: datetime


class InstallmentIn(msgspec.Struct, forbid_unknown_fields=True):
    """One installment of a crediário contract.  ``status`` may be set to ``open`` (back to
    collection), ``paid`` (settled outside Quita), ``disputed``, ``written_off`` or
    ``cancelled``; payments and agreements drive the others."""

    customer_external_id: ExternalId
    principal: Decimal
    due_date: date
    contract: Annotated[str, msgspec.Meta(max_length=64)] | None = None
    number: Annotated[int, msgspec.Meta(ge=1, le=9999)] | None = None
    count: Annotated[int, msgspec.Meta(ge=1, le=9999)] | None = None
    boleto_line: Annotated[str, msgspec.Meta(max_length=80)] | None = None
    payment_url: Annotated[str, msgspec.Meta(max_length=2000, pattern=r"^https://\S+$")] | None = (
        None
    )
    description: Annotated[str, msgspec.Meta(max_length=300)] | None = None
    status: SettableStatus | None = None
    status_reason: Annotated[str, msgspec.Meta(max_length=200)] | None = None


class BoletoOut(msgspec.Struct):
    line: str
    barcode: str
    bank: str | None
    amount: Decimal | None
    due_date: date | None


class InstallmentOut(msgspec.Struct):
    id: uuid.UUID
    external_id: str
    customer_id: uuid.UUID
    customer_external_id: str
    contract: str | None
    number: int | None
    count: int | None
    label: str | None
    principal: Decimal
    due_date: date
    status: str
    status_reason: str | None
    collectable: bool
    amount_paid: Decimal
    settled_at: datetime | None
    boleto: BoletoOut | None
    payment_url: str | None
    description: str | None
    created_at: datetime
    updated_at: datetime


class CustomerPage(msgspec.Struct):
    """A page of a list; pass ``next_cursor`` back as ``cursor`` for the next one."""

    items: list[CustomerOut]
    next_cursor: str | None


class InstallmentPage(msgspec.Struct):
    items: list[InstallmentOut]
    next_cursor: str | None


class BalanceOut(msgspec.Struct):
    """What the installment costs if paid on ``as_of``: each component rounded half-up to the
    centavo, and ``total`` their exact sum."""

    installment_id: uuid.UUID
    as_of: date
    principal: Decimal
    correction: Decimal
    fine: Decimal
    interest: Decimal
    discount: Decimal
    paid: Decimal
    total: Decimal
    days_overdue: int
    due_date: date
    effective_due_date: date
    fee_rule_version: int
    status: str


class PixSettingsIn(msgspec.Struct, forbid_unknown_fields=True):
    key: Annotated[str, msgspec.Meta(min_length=1, max_length=77)]
    merchant_name: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    city: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]


class PixSettingsOut(msgspec.Struct):
    key: str
    key_type: str
    merchant_name: str
    city: str
    updated_at: datetime


class PixOut(msgspec.Struct):
    """A static Pix BR Code ("copia e cola") for the balance on ``as_of``; ``txid`` names the
    installment, so the payment can be matched back to it."""

    installment_id: uuid.UUID
    as_of: date
    payload: str
    txid: str
    amount: Decimal
    key_type: str
    merchant_name: str
    city: str
    qr_svg_url: str
    qr_png_url: str


class PaymentIn(msgspec.Struct, forbid_unknown_fields=True):
    """A payment received for an installment.  ``external_id`` makes it idempotent: the same
    id with the same content answers the recorded payment; with other content, 409."""

    external_id: ExternalId
    amount: Decimal
    paid_at: datetime
    method: PaymentMethod
    installment_id: uuid.UUID | None = None
    installment_external_id: ExternalId | None = None
    txid: Annotated[str, msgspec.Meta(max_length=35)] | None = None


class PaymentOut(msgspec.Struct):
    id: uuid.UUID
    external_id: str
    installment_id: uuid.UUID
    amount: Decimal
    applied: Decimal
    overpaid: Decimal
    balance_before: Decimal
    balance_after: Decimal
    paid_at: datetime
    method: str
    source: str
    txid: str | None
    installment_status: str
    created_at: datetime


class FeeRuleIn(msgspec.Struct, forbid_unknown_fields=True):
    """A new version of the tenant's late-fee rule, in force for installments falling due on or
    after ``effective_from`` (today or later: past balances never change)."""

    effective_from: date
    fine_percent: Decimal = Decimal("2")
    monthly_interest_percent: Decimal = Decimal("1")
    correction_index: Literal["ipca"] | None = None
    discount_percent: Decimal = Decimal("0")
    discount_days_before_due: Annotated[int, msgspec.Meta(ge=0, le=365)] = 0
    business_day_grace: bool = True


class FeeRuleOut(msgspec.Struct):
    version: int
    effective_from: date
    fine_percent: Decimal
    monthly_interest_percent: Decimal
    correction_index: str | None
    discount_percent: Decimal
    discount_days_before_due: int
    business_day_grace: bool
    created_by: str | None
    created_at: datetime
