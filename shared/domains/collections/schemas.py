"""What the collection engine's API reads and writes (msgspec structs: decoded at the edge, in
OpenAPI).

Ranges and references are checked by the service, field by field, so one answer names every
field that is wrong (``steps[1].variants[0].template``) rather than the first one msgspec finds.
Money travels as decimal strings; days as ``YYYY-MM-DD``; instants as UTC ISO 8601.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

import msgspec

Tag = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
CadenceKindField = Annotated[
    Literal["regua", "agreement"],
    msgspec.Meta(
        description="What the régua reminds: 'regua' — the retailer's installments (around "
        "their due dates); 'agreement' — the installments of active agreements (acordos), "
        "which are never mixed with the others in one message. Set when the régua is created; "
        "it cannot change afterwards."
    ),
]
Hours = Annotated[list[str], msgspec.Meta(min_length=2, max_length=2)]


def _weekdays() -> list[str]:
    return ["08:00", "20:00"]


def _saturday() -> list[str]:
    return ["08:00", "14:00"]


class WindowIn(msgspec.Struct, forbid_unknown_fields=True):
    """Hours (``["HH:MM", "HH:MM"]``, end exclusive) per kind of day, ``null`` for no contact
    at all.  Never wider than the law's Monday-Friday 08:00-20:00, Saturday 08:00-14:00."""

    weekdays: Hours | None = msgspec.field(default_factory=_weekdays)
    saturday: Hours | None = msgspec.field(default_factory=_saturday)
    avoid_carnival: bool = False


class SettingsIn(msgspec.Struct, forbid_unknown_fields=True):
    """The whole of a tenant's contact governance (what is left out takes its default)."""

    window: WindowIn = msgspec.field(default_factory=WindowIn)
    daily_cap: int = 1
    weekly_cap: int = 3
    catch_up_days: int = 2
    paid_hold_days: int = 3
    fallback_after_hours: int = 24


class WindowOut(msgspec.Struct):
    weekdays: list[str] | None
    saturday: list[str] | None
    avoid_carnival: bool


class SettingsOut(msgspec.Struct):
    window: WindowOut
    daily_cap: int
    weekly_cap: int
    catch_up_days: int
    paid_hold_days: int
    fallback_after_hours: int
    updated_at: datetime


class VariantIn(msgspec.Struct, forbid_unknown_fields=True):
    """A template name (it must exist for the step's channel and its fallback) and its share."""

    template: str
    weight: int = 1


class StepIn(msgspec.Struct, forbid_unknown_fields=True):
    """One moment of a régua, ``offset_days`` from the due date (negative: before it)."""

    offset_days: int
    channel: str
    variants: list[VariantIn]
    fallback_channel: str | None = None
    holdout_percent: int = 0
    min_amount: Decimal | None = None
    tags_any: list[Tag] = msgspec.field(default_factory=list)
    max_days_overdue: int | None = None


class CadenceIn(msgspec.Struct, forbid_unknown_fields=True):
    """A régua.  ``steps`` is the whole list: steps left out are removed, a step whose
    ``offset_days`` is kept stays the same step (its history stays attached).  An
    ``agreement`` régua's offsets count from each agreement installment's due date."""

    name: Annotated[str, msgspec.Meta(max_length=100)]
    steps: list[StepIn]
    kind: CadenceKindField = "regua"
    tags_any: list[Tag] = msgspec.field(default_factory=list)
    priority: int = 100
    active: bool = True


class VariantOut(msgspec.Struct):
    template: str
    weight: int


class StepOut(msgspec.Struct):
    id: uuid.UUID
    offset_days: int
    channel: str
    fallback_channel: str | None
    variants: list[VariantOut]
    holdout_percent: int
    min_amount: Decimal | None
    tags_any: list[str]
    max_days_overdue: int | None


class CadenceOut(msgspec.Struct):
    id: uuid.UUID
    name: str
    kind: Annotated[str, msgspec.Meta(description="regua or agreement (see CadenceIn.kind)")]
    is_default: bool
    tags_any: list[str]
    priority: int
    active: bool
    steps: list[StepOut]
    created_at: datetime
    updated_at: datetime


class PinIn(msgspec.Struct, forbid_unknown_fields=True):
    """The régua the customer follows whatever its tags; ``null`` returns it to its segment's
    (or the default) régua."""

    cadence_id: uuid.UUID | None


class PinOut(msgspec.Struct):
    customer_id: uuid.UUID
    cadence_id: uuid.UUID | None
    cadence_name: str | None


class HoldIn(msgspec.Struct, forbid_unknown_fields=True):
    """Collection paused for the customer (or for one installment, by id or external id) until
    ``until`` or until released.  ``dispute``: the debtor contests the debt."""

    kind: str
    reason: Annotated[str, msgspec.Meta(max_length=300)]
    until: datetime | None = None
    installment_ref: str | None = None


class HoldOut(msgspec.Struct):
    id: uuid.UUID
    customer_id: uuid.UUID
    installment_id: uuid.UUID | None
    kind: str
    reason: str | None
    until: datetime | None
    released_at: datetime | None
    active: bool
    created_by: str | None
    created_at: datetime
    cancelled_attempts: int = 0  # queued messages the new hold cancelled


class AttemptOut(msgspec.Struct):
    id: uuid.UUID
    customer_id: uuid.UUID
    customer_external_id: str
    kind: str
    state: str
    reason: str | None
    cadence_id: uuid.UUID | None
    step_id: uuid.UUID | None
    offset_days: int | None
    template_name: str | None
    channel: str
    fallback_channel: str | None
    recipient: str | None
    contact_day: date
    planned_for: datetime
    queued_at: datetime | None
    sending_at: datetime | None
    sent_at: datetime | None
    delivered_at: datetime | None
    read_at: datetime | None
    failed_at: datetime | None
    tries: int
    provider_message_id: str | None
    error_class: str | None
    error_code: int | None
    created_at: datetime


class AttemptItemOut(msgspec.Struct, omit_defaults=True):
    """An installment the attempt is about: the retailer's (``installment_id`` and its external
    id) or, for an agreement's reminder, an agreement installment (``agreement_installment_id``
    and ``agreement_installment_number``, 0 the down payment; then the first two are null)."""

    installment_id: uuid.UUID | None
    installment_external_id: str | None
    step_id: uuid.UUID | None
    agreement_installment_id: uuid.UUID | None = None
    agreement_installment_number: int | None = None


class AttemptDetail(AttemptOut):
    """An attempt with its evidence: what it covers, what governance decided, what it asked."""

    fallback_of: uuid.UUID | None = None
    items: list[AttemptItemOut] = msgspec.field(default_factory=list)
    decisions: list[dict[str, Any]] = msgspec.field(default_factory=list)
    amounts: dict[str, Any] | None = None
    rendered_sha256: str | None = None
    pricing: dict[str, Any] | None = None  # as the provider reported it (WhatsApp: billable,
    # pricing_model, category, type)


class AttemptPage(msgspec.Struct):
    items: list[AttemptOut]
    next_cursor: str | None


class CampaignIn(msgspec.Struct, forbid_unknown_fields=True):
    """Who a campaign would reach: customers with any of ``tags_any`` (everyone when empty) and
    an open installment in the overdue range and above the amount."""

    tags_any: list[Tag] = msgspec.field(default_factory=list)
    min_days_overdue: int | None = None
    max_days_overdue: int | None = None
    min_amount: Decimal | None = None


class CampaignPreview(msgspec.Struct):
    customers: int
    would_contact: int
    held_back: int
    reasons: dict[str, int]


class CampaignNew(msgspec.Struct, forbid_unknown_fields=True):
    """A one-off message to a segment: ``filter`` picks the customers (the preview's body),
    ``template_name`` is sent on ``channel`` (``fallback_channel`` when it cannot reach them);
    it must exist for both, and be APPROVED on WhatsApp."""

    name: Annotated[str, msgspec.Meta(max_length=100)]
    template_name: Annotated[str, msgspec.Meta(max_length=512)]
    channel: str
    fallback_channel: str | None = None
    filter: CampaignIn = msgspec.field(default_factory=CampaignIn)


class CampaignCounts(msgspec.Struct):
    """What governance did when the campaign was created, per customer."""

    matched: int
    queued: int
    held: dict[str, int]


class CampaignOut(msgspec.Struct):
    id: uuid.UUID
    name: str
    filter: CampaignIn
    template_name: str
    channel: str
    fallback_channel: str | None
    created_by: str | None
    created_at: datetime
    counts: CampaignCounts


class CampaignDetail(CampaignOut):
    """A campaign with how it is going now: its messages (and the fallbacks they led to) by
    state, and the reasons of those held back, cancelled or failed."""

    states: dict[str, int] = msgspec.field(default_factory=dict)
    reasons: dict[str, int] = msgspec.field(default_factory=dict)


class CampaignPage(msgspec.Struct):
    items: list[CampaignOut]
    next_cursor: str | None
