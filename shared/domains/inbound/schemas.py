"""What the operator inbox API reads and writes (msgspec structs: decoded at the edge, in
OpenAPI).

Money travels as decimal strings, days as ``YYYY-MM-DD``, instants as UTC ISO 8601.  A
conversation's ``timeline`` mixes four kinds of entries, told apart by ``type``.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated

import msgspec

Text = Annotated[str, msgspec.Meta(min_length=1, max_length=4096)]
NoteText = Annotated[str, msgspec.Meta(min_length=1, max_length=4000)]


class LastMessage(msgspec.Struct):
    direction: str
    preview: str | None
    at: datetime


class ConversationOut(msgspec.Struct):
    """One line of the inbox.  ``overdue_total`` is the sum of principal minus what was paid
    of the customer's open installments due before the retailer's today (no fees)."""

    id: uuid.UUID
    customer_id: uuid.UUID | None
    customer_external_id: str | None
    name: str | None  # the customer's, else the WhatsApp profile name of an unknown sender
    document: str | None  # masked
    state: str
    intent: str | None
    priority: int
    assignee_id: uuid.UUID | None
    last_message: LastMessage | None
    last_inbound_at: datetime | None
    window_open: bool
    window_expires_at: datetime | None
    overdue_total: Decimal


class ConversationPage(msgspec.Struct):
    items: list[ConversationOut]
    next_cursor: str | None


class CanReply(msgspec.Struct):
    """``free_text``: the 24-hour window is open and the number is not marked as a wrong
    person's.  ``template``: only a template may reach this person now (outside the window;
    sent through the régua or a reminder)."""

    free_text: bool
    template: bool


class InstallmentEntry(msgspec.Struct, tag="installment", tag_field="type"):
    at: datetime  # the due date, at midnight in the retailer's time zone
    id: uuid.UUID
    external_id: str
    number: int | None
    count: int | None
    due_date: date
    status: str
    principal: Decimal
    amount_paid: Decimal
    balance: Decimal | None  # what is owed today with fees; null once no longer collectable
    days_overdue: int | None


class AttemptEntry(msgspec.Struct, tag="attempt", tag_field="type"):
    at: datetime  # sent, else planned
    id: uuid.UUID
    kind: str
    channel: str
    template_name: str | None
    state: str
    reason: str | None
    planned_for: datetime
    sent_at: datetime | None
    delivered_at: datetime | None
    read_at: datetime | None
    failed_at: datetime | None


class MessageEntry(msgspec.Struct, tag="message", tag_field="type"):
    at: datetime
    id: uuid.UUID
    direction: str
    kind: str
    text: str | None
    payload: str | None
    intent: str | None
    status: str | None
    sent_by: uuid.UUID | None
    attempt_id: uuid.UUID | None


class NoteEntry(msgspec.Struct, tag="note", tag_field="type"):
    at: datetime
    id: uuid.UUID
    author_id: uuid.UUID | None
    text: str


TimelineEntry = InstallmentEntry | AttemptEntry | MessageEntry | NoteEntry


class ConversationDetail(msgspec.Struct):
    conversation: ConversationOut
    can_reply: CanReply
    timeline: list[TimelineEntry]


class ReplyIn(msgspec.Struct, forbid_unknown_fields=True):
    """Free text to the person, inside the 24-hour window only."""

    text: Text


class MessageOut(msgspec.Struct):
    id: uuid.UUID
    conversation_id: uuid.UUID
    direction: str
    text: str | None
    status: str | None
    sent_by: uuid.UUID | None
    occurred_at: datetime


class NoteIn(msgspec.Struct, forbid_unknown_fields=True):
    text: NoteText


class NoteOut(msgspec.Struct):
    id: uuid.UUID
    conversation_id: uuid.UUID
    author_id: uuid.UUID | None
    text: str
    created_at: datetime


class AssignIn(msgspec.Struct, forbid_unknown_fields=True):
    """A member of the caller's own tenant who works the inbox, or null to unassign."""

    assignee: uuid.UUID | None


class OperatorIn(msgspec.Struct, forbid_unknown_fields=True):
    """``auto_assign``: hand this person waiting conversations in turn, up to ``capacity``,
    while ``available``."""

    capacity: Annotated[int, msgspec.Meta(ge=0, le=500)] = 20
    available: bool = True
    auto_assign: bool = False


class OperatorOut(msgspec.Struct):
    user_id: uuid.UUID
    role: str
    capacity: int
    available: bool
    auto_assign: bool
    assigned_open: int  # assigned to them and not resolved
