"""What the webhook endpoints API reads and writes.  The signing secret comes out once: in the
answer that creates it (creation, rotation)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

import msgspec

Url = Annotated[str, msgspec.Meta(min_length=1, max_length=2048)]
Description = Annotated[str, msgspec.Meta(max_length=300)]
EventType = Annotated[str, msgspec.Meta(min_length=1, max_length=60)]


class EndpointIn(msgspec.Struct, forbid_unknown_fields=True):
    """A URL of your systems to receive events.  ``event_types`` empty (the default): all."""

    url: Url
    description: Description | None = None
    event_types: list[EventType] = []


class EndpointUpdate(msgspec.Struct, forbid_unknown_fields=True):
    """Change what is sent (each only when given); ``enabled`` turns the endpoint off or back on
    (back on: what waited is sent, in order)."""

    url: Url | None = None
    description: Description | None = None
    event_types: list[EventType] | None = None
    enabled: bool | None = None


class RotateIn(msgspec.Struct, forbid_unknown_fields=True):
    """How long the current secret keeps signing next to the new one (hours; 0 ends it now)."""

    overlap_hours: Annotated[int, msgspec.Meta(ge=0, le=168)] = 24


class EndpointOut(msgspec.Struct):
    id: uuid.UUID
    url: str
    description: str | None
    event_types: list[str]
    status: str
    disabled_reason: str | None
    disabled_at: datetime | None
    failure_streak: int
    failing_since: datetime | None
    last_success_at: datetime | None
    previous_secret_valid_until: datetime | None
    created_at: datetime
    updated_at: datetime


class EndpointWithSecret(EndpointOut):
    """The endpoint and its signing secret — shown this once; keep it in your receiver."""

    secret: str


class DeliveryOut(msgspec.Struct):
    id: uuid.UUID
    event_id: uuid.UUID  # the ``webhook-id`` the receiver saw
    event_type: str
    occurred_at: datetime
    state: str
    attempts: int
    next_attempt_at: datetime | None
    last_attempt_at: datetime | None
    last_status: int | None
    last_error: str | None
    delivered_at: datetime | None
    replay: bool
    created_at: datetime


class DeliveryPage(msgspec.Struct):
    items: list[DeliveryOut]
    next_cursor: str | None


class ReplayOut(msgspec.Struct):
    """How many deliveries were queued again."""

    queued: int
