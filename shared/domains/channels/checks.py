"""Channel check: send one real message through a channel (WhatsApp, SMS or e-mail) to a number
or address the retailer chooses and report what the provider said — accepted with its message
id, or refused with the error's class, code and what Quita would do about it.  Delivery comes
later, by webhook; ``statuses_of`` reads what the journal heard for the message.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta

import msgspec
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.brazil import InvalidValue
from shared.brazil.phones import normalize_phone
from shared.domains.audit.service import Actor, record
from shared.domains.channels import senders, templates, templating
from shared.domains.channels.senders import Sent
from shared.domains.inbound.whatsapp import STATUS
from shared.errors import Conflict, FieldError, ValidationFailed
from shared.integrations.errors import ProviderError
from shared.models import (
    Channel,
    ChannelKind,
    ChannelStatus,
    MessageTemplate,
    TemplateStatus,
    WebhookEvent,
)

EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


class ChannelTestIn(msgspec.Struct, forbid_unknown_fields=True):
    """Where to send the test (a phone the retailer controls; an address for an e-mail
    channel) and, optionally, which template (approved, on WhatsApp) and which values; sample
    values fill the rest."""

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


def _recipient(channel: Channel, to: str) -> str:
    if channel.kind == ChannelKind.EMAIL:
        address = to.strip()
        if not EMAIL.fullmatch(address):
            raise ValidationFailed(
                "The e-mail address is not valid.", errors=[FieldError("to", "not an e-mail")]
            )
        return address
    try:
        return normalize_phone(to)
    except InvalidValue as exc:
        raise ValidationFailed(
            "The phone number is not valid.", errors=[FieldError("to", exc.reason)]
        ) from None


async def _send(
    session: AsyncSession, channel: Channel, to: str, data: ChannelTestIn
) -> tuple[str, Sent]:
    """Send the check through the channel: an approved template on WhatsApp, the SMS or
    e-mail version of a default reminder otherwise.  The template's name, the provider's answer."""
    values = {**templates.SAMPLE, **data.values}
    try:
        if channel.kind == ChannelKind.WHATSAPP:
            row = await _approved_template(session, channel.tenant_id, data.template_id)
            body = templating.parameters(templating.compile_body(row.body), values)
            header = None
            if row.header and "{{" in row.header:
                header = templating.parameters(templating.compile_body(row.header), values)
            return row.name, await senders.send_whatsapp_template(
                channel,
                to,
                row.name,
                row.language,
                body=body,
                header=header,
                callback_data=f"test:{uuid.uuid4()}",
            )
        row = await _own_template(session, channel, data.template_id)
        if channel.kind == ChannelKind.SMS:
            text = templating.render_jinja(row.body, values)
            return row.name, await senders.send_sms(channel, to, text, status_callback=None)
        return row.name, await senders.send_email(
            channel,
            to,
            subject=templating.render_jinja(row.subject or row.name, values),
            text=templating.render_jinja(row.body, values),
            html=templating.render_jinja(row.html, values, html=True) if row.html else None,
            attempt_id=None,
        )
    except InvalidValue as exc:
        raise ValidationFailed(
            "The values do not fit the template.", errors=[FieldError("values", exc.reason)]
        ) from None


async def _own_template(
    session: AsyncSession, channel: Channel, template_id: uuid.UUID | None
) -> MessageTemplate:
    """An SMS or e-mail template of the channel's kind (the tenant's first one by default)."""
    row: MessageTemplate | None
    if template_id is not None:
        row = await templates.get(session, channel.tenant_id, template_id)
    else:
        row = await session.scalar(
            select(MessageTemplate)
            .where(
                MessageTemplate.tenant_id == channel.tenant_id,
                MessageTemplate.channel_kind == channel.kind,
            )
            .order_by(MessageTemplate.key, MessageTemplate.name)
            .limit(1)
        )
        if row is None:
            raise NotTestable(f"The tenant has no {channel.kind} template.")
    if row.channel_kind != channel.kind:
        raise ValidationFailed(
            "The template is not valid.",
            errors=[FieldError("template_id", f"not a {channel.kind} template")],
        )
    return row


async def run(
    session: AsyncSession, channel: Channel, data: ChannelTestIn, actor: Actor
) -> ChannelTestOut:
    if channel.status != ChannelStatus.ACTIVE:
        raise NotTestable(f"The channel is {channel.status}.")
    to = _recipient(channel, data.to)
    sent_at = datetime.now(UTC)
    name: str | None = None
    sent: Sent | None = None
    refusal = None
    try:
        name, sent = await _send(session, channel, to, data)
    except ProviderError as exc:
        advice = exc.advice(0)
        refusal = Refusal(
            error_class=str(exc.error_class),
            code=getattr(exc, "code", None) or getattr(exc, "smtp_code", None),
            title=getattr(exc, "title", None),
            details=getattr(exc, "details", None) or str(exc),
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
            "template": name,
            "to_last4": to[-4:],
            "accepted": sent is not None,
            "message_id": sent.provider_message_id if sent else None,
            "error_class": refusal.error_class if refusal else None,
            "code": refusal.code if refusal else None,
        },
    )
    return ChannelTestOut(
        channel_id=channel.id,
        to=to,
        template=name,
        accepted=sent is not None,
        message_id=sent.provider_message_id if sent else None,
        provider_status=sent.status if sent else None,
        refusal=refusal,
        sent_at=sent_at,
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
