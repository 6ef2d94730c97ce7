"""What the channels API reads and writes.  Credentials go in, never out: a channel answers
with which secrets it holds (``has_...``), not their values."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
Secret = Annotated[str, msgspec.Meta(min_length=1, max_length=1000)]
Digits = Annotated[str, msgspec.Meta(pattern=r"^[0-9]{1,32}$")]


class WhatsAppIn(msgspec.Struct, forbid_unknown_fields=True, tag="whatsapp", tag_field="kind"):
    """A WhatsApp Business number of the retailer's own WABA (Cloud API)."""

    name: Name
    phone_number_id: Digits
    waba_id: Digits
    display_number: Annotated[str, msgspec.Meta(max_length=30)]
    access_token: Secret
    app_secret: Secret
    verify_token: Secret
    throughput_per_s: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 80
    messaging_tier: Annotated[str, msgspec.Meta(max_length=32)] | None = None


class SmsIn(msgspec.Struct, forbid_unknown_fields=True, tag="sms", tag_field="kind"):
    """A Twilio-compatible Messages API sender."""

    name: Name
    account_sid: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    auth_token: Secret
    from_number: Annotated[str, msgspec.Meta(max_length=30)]
    base_url: Annotated[str, msgspec.Meta(pattern=r"^https?://\S+$")] | None = None
    # the messages per second the account takes (Twilio answers 20429 beyond it)
    throughput_per_s: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 10


class EmailIn(msgspec.Struct, forbid_unknown_fields=True, tag="email", tag_field="kind"):
    """An SMTP sender."""

    name: Name
    host: Annotated[str, msgspec.Meta(min_length=1, max_length=253)]
    from_address: Annotated[str, msgspec.Meta(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]
    port: Annotated[int, msgspec.Meta(ge=1, le=65535)] = 587
    username: Annotated[str, msgspec.Meta(max_length=254)] | None = None
    password: Secret | None = None
    from_name: Annotated[str, msgspec.Meta(max_length=100)] | None = None
    starttls: bool = True


ChannelIn = WhatsAppIn | SmsIn | EmailIn


class ChannelUpdate(msgspec.Struct, forbid_unknown_fields=True):
    """Rename, pause or resume a channel, or replace credentials (each only when sent).  A new
    WhatsApp app secret keeps the previous one valid for webhook signatures until
    ``drop_previous_app_secret``."""

    name: Name | None = None
    status: Literal["active", "paused"] | None = None
    access_token: Secret | None = None
    app_secret: Secret | None = None
    verify_token: Secret | None = None
    auth_token: Secret | None = None
    password: Secret | None = None
    drop_previous_app_secret: bool = False
    throughput_per_s: Annotated[int, msgspec.Meta(ge=1, le=1000)] | None = None


class ChannelOut(msgspec.Struct):
    id: uuid.UUID
    kind: str
    name: str
    status: str
    status_reason: str | None
    config: dict[str, Any]
    secrets_held: list[str]
    created_at: datetime
    updated_at: datetime
