"""Channel check: send one real message through a channel to a number the retailer chooses and
report what the provider said — accepted with its message id, or refused with the error's class,
code and what Quita would do about it.  Delivery comes later, by webhook; ``statuses_of``
reads what the journal heard for the message.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.brazil import InvalidValue
from shared.brazil.phones import normalize_phone
from shared.domains.audit.service import Actor, record
from shared.domains.channels import templates, templating
from shared.domains.channels.provider import whatsapp_client
from shared.domains.channels.service import secrets_of
from shared.domains.inbound.whatsapp import STATUS
from shared.errors import Conflict, FieldError, ValidationFailed
from shared.integrations.whatsapp import WhatsAppError
from shared.models import (
    Channel,
    ChannelKind,
    ChannelStatus,
    MessageTemplate,
    TemplateStatus,
    WebhookEvent,
)


class ChannelTestIn(msgspec.Struct, forbid_unknown_fields=True):
    """Where to send the test (a phone the retailer controls) and, optionally, which approved
    template and which values; sample values fill the rest."""

    to: str
    template_id: uuid.UUID | None = None
    values: dict[str, str] = msgspec.field(default_factory=dict)


class Refusal(msgspec.Struct):
    error_class: str
    code: int | None
    title: str | None
    details: str | None
    retry: bool
    retry_after_s: float | None
    fallback: bool
    stop_channel: bool


class ChannelTestOut(msgspec.Struct):
    channel_id: uuid.UUID
    to: str
    template: str | None
    accepted: bool
    message_id: str | None
    provider_status: str | None
    refusal: Refusal | None
    sent_at: datetime


class StatusHeard(msgspec.Struct):
    status: str
    at: datetime | None
    error_code: int | None = None
    error_title: str | None = None


class NotTestable(Conflict):
    code = "channel_not_testable"


async def _approved_template(
    session: AsyncSession, tenant_id: uuid.UUID, template_id: uuid.UUID | None
) -> MessageTemplate:
    row: MessageTemplate | None
    if template_id is not None:
        row = await templates.get(session, tenant_id, template_id)
        if row.channel_kind != ChannelKind.WHATSAPP:
            raise ValidationFailed(
                "The template is not valid.",
                errors=[FieldError("template_id", "not a WhatsApp template")],
            )
    else:
        row = await session.scalar(
            select(MessageTemplate)
            .where(
                MessageTemplate.tenant_id == tenant_id,
                MessageTemplate.channel_kind == ChannelKind.WHATSAPP,
                MessageTemplate.status == TemplateStatus.APPROVED,
            )
            .order_by(MessageTemplate.key, MessageTemplate.name)
            .limit(1)
        )
        if row is None:
            raise NotTestable("No WhatsApp template is approved yet: submit one for review first.")
    if row.status != TemplateStatus.APPROVED:
        raise NotTestable(f"The template {row.name} is {row.status}; only APPROVED ones send.")
    return row


async def run(
    session: AsyncSession, channel: Channel, data: ChannelTestIn, actor: Actor
) -> ChannelTestOut:
    if channel.kind != ChannelKind.WHATSAPP:
        raise NotTestable(f"Checking a {channel.kind} channel is not available yet.")
    if channel.status != ChannelStatus.ACTIVE:
        raise NotTestable(f"The channel is {channel.status}.")
    try:
        to = normalize_phone(data.to)
    except InvalidValue as exc:
        raise ValidationFailed(
            "The phone number is not valid.", errors=[FieldError("to", exc.reason)]
        ) from None
    row = await _approved_template(session, channel.tenant_id, data.template_id)
    values = {**templates.SAMPLE, **data.values}
    try:
        parameters = templating.parameters(templating.compile_body(row.body), values)
        header = None
        if row.header and "{{" in row.header:
            header = templating.parameters(templating.compile_body(row.header), values)
    except InvalidValue as exc:
        raise ValidationFailed(
            "The values do not fit the template.", errors=[FieldError("values", exc.reason)]
        ) from None
    sent_at = datetime.now(UTC)
    result: dict[str, Any] = {"accepted": False, "message_id": None, "provider_status": None}
    refusal = None
    try:
        answer = await whatsapp_client().send_template(
            channel.config["phone_number_id"],
            secrets_of(channel)["access_token"],
            to.lstrip("+"),
            row.name,
            row.language,
            callback_data=f"test:{uuid.uuid4()}",
            body=parameters,
            header=header,
        )
        result = {
            "accepted": True,
            "message_id": answer.message_id,
            "provider_status": answer.message_status,
        }
    except WhatsAppError as exc:
        advice = exc.advice(1)
        refusal = Refusal(
            error_class=str(exc.error_class),
            code=exc.code,
            title=exc.title,
            details=exc.details,
            retry=advice.retry,
            retry_after_s=advice.delay_s,
            fallback=advice.fallback,
            stop_channel=advice.stop_channel,
        )
    await record(
        session,
        "channel.tested",
        tenant_id=channel.tenant_id,
        actor_type=actor.type,
        actor_id=actor.id,
        subject_type="channel",
        subject_id=str(channel.id),
        data={
            "template": row.name,
            "to_last4": to[-4:],
            "accepted": result["accepted"],
            "message_id": result["message_id"],
            "error_class": refusal.error_class if refusal else None,
            "code": refusal.code if refusal else None,
        },
    )
    return ChannelTestOut(
        channel_id=channel.id,
        to=to,
        template=row.name,
        refusal=refusal,
        sent_at=sent_at,
        **result,
    )


async def statuses_of(
    session: AsyncSession, channel: Channel, message_id: str
) -> list[StatusHeard]:
    """The status webhooks journaled for one message of the channel (the last day's)."""
    rows = await session.scalars(
        select(WebhookEvent)
        .where(
            WebhookEvent.channel_id == channel.id,
            WebhookEvent.kind == STATUS,
            WebhookEvent.received_at >= datetime.now(UTC) - timedelta(days=1),
            WebhookEvent.payload["id"].astext == message_id,
        )
        .order_by(WebhookEvent.occurred_at, WebhookEvent.id)
    )
    heard = []
    for event in rows:
        errors = event.payload.get("errors") or [{}]
        heard.append(
            StatusHeard(
                status=str(event.payload.get("status")),
                at=event.occurred_at,
                error_code=errors[0].get("code"),
                error_title=errors[0].get("title"),
            )
        )
    return heard
