"""Templates at the provider: submitting them to the retailer's WABA and keeping their review
status in sync — from the ``message_template_status_update`` webhook as it happens, and from
the template management API (``GET /{waba}/message_templates``) hourly, because webhooks get
lost (contract §6: "reconcile nightly").

A Quita template has one provider status; a tenant normally has one WABA.  With several
WhatsApp channels on different WABAs, the template is submitted to each and the status kept
is the last one heard (noted in docs/architecture.md).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.domains.audit.service import Actor, record
from shared.domains.channels import templating
from shared.domains.channels.senders import whatsapp_client
from shared.domains.channels.service import secrets_of
from shared.domains.channels.templates import SAMPLE
from shared.domains.inbound.journal import Outcome, handles
from shared.domains.inbound.whatsapp import TEMPLATE_STATUS
from shared.errors import Conflict
from shared.integrations.whatsapp import ErrorClass, WhatsAppClient, WhatsAppError
from shared.models import (
    Channel,
    ChannelKind,
    ChannelStatus,
    MessageTemplate,
    TemplateStatus,
    WebhookEvent,
)
from shared.queue import JobContext, RetryLater, enqueue, job
from shared.queue.scheduler import periodic

log = structlog.get_logger("quita.channels.provider")

# Meta's statuses we keep as they are; anything else (IN_APPEAL, ARCHIVED …) is kept as PAUSED
# or DISABLED by what it means for sending: only APPROVED is sendable.
KNOWN = {s.value for s in TemplateStatus} - {TemplateStatus.DRAFT.value}
NOT_SENDABLE = {
    "IN_APPEAL": "REJECTED",
    "LIMIT_EXCEEDED": "REJECTED",
    "FLAGGED": "PAUSED",
    "PENDING_DELETION": "DISABLED",
    "DELETED": "DISABLED",
    "ARCHIVED": "DISABLED",
}

# --- components ---------------------------------------------------------------------------


def components_of(row: MessageTemplate) -> list[dict[str, Any]]:
    """The template as Meta's ``components``: named variables become ``{{1}}``… with sample
    values as the examples the reviewers read (contract §6)."""
    components: list[dict[str, Any]] = []
    if row.header:
        header = templating.compile_body(row.header) if "{{" in row.header else None
        component: dict[str, Any] = {"type": "HEADER", "format": "TEXT"}
        if header is not None:
            component["text"] = header.text
            component["example"] = {"header_text": templating.parameters(header, SAMPLE)}
        else:
            component["text"] = row.header
        components.append(component)
    body = templating.compile_body(row.body)
    component = {"type": "BODY", "text": body.text}
    if body.names:
        component["example"] = {"body_text": [templating.parameters(body, SAMPLE)]}
    components.append(component)
    if row.footer:
        components.append({"type": "FOOTER", "text": row.footer})
    buttons: list[dict[str, Any]] = []
    for button in row.buttons:
        if button.get("type") == "URL":
            url = str(button.get("url", ""))
            item: dict[str, Any] = {"type": "URL", "text": button["text"], "url": url}
            if "{{1}}" in url:
                item["example"] = [url.replace("{{1}}", "exemplo123")]
            buttons.append(item)
        else:
            buttons.append({"type": "QUICK_REPLY", "text": button["text"]})
    if buttons:
        components.append({"type": "BUTTONS", "buttons": buttons})
    return components


def _status(value: str) -> TemplateStatus | None:
    value = value.upper()
    value = NOT_SENDABLE.get(value, value)
    return TemplateStatus(value) if value in KNOWN else None


async def _set_status(
    session: AsyncSession,
    row: MessageTemplate,
    status: TemplateStatus,
    reason: str | None,
    provider_id: str | None,
    source: str,
) -> bool:
    """Apply a provider status; an audit event records each change.  ``True`` if it changed."""
    reason = None if reason in (None, "", "NONE") else reason
    if provider_id and row.provider_template_id != provider_id:
        row.provider_template_id = provider_id
    if row.status == status and row.rejected_reason == reason:
        await session.flush()
        return False
    before = row.status
    row.status, row.rejected_reason = status, reason
    await session.flush()
    await record(
        session,
        "template.status_changed",
        tenant_id=row.tenant_id,
        actor_type="provider",
        actor_id="whatsapp",
        subject_type="template",
        subject_id=str(row.id),
        data={"from": before, "to": status, "reason": reason, "source": source},
    )
    return True


# --- submitting -----------------------------------------------------------------------------


class NoWhatsAppChannel(Conflict):
    code = "no_whatsapp_channel"


class NotSubmittable(Conflict):
    code = "template_not_submittable"


async def active_whatsapp_channels(session: AsyncSession, tenant_id: uuid.UUID) -> list[Channel]:
    return list(
        await session.scalars(
            select(Channel)
            .where(
                Channel.tenant_id == tenant_id,
                Channel.kind == ChannelKind.WHATSAPP,
                Channel.status == ChannelStatus.ACTIVE,
            )
            .order_by(Channel.created_at)
        )
    )


async def request_submission(session: AsyncSession, row: MessageTemplate, actor: Actor) -> None:
    """Queue the template's submission for review (``POST /v1/templates/{id}/submit``)."""
    if row.channel_kind != ChannelKind.WHATSAPP:
        raise NotSubmittable("Only WhatsApp templates are reviewed by the provider.")
    if row.status in (TemplateStatus.PENDING, TemplateStatus.APPROVED):
        raise NotSubmittable(f"The template is already {row.status}.")
    if not await active_whatsapp_channels(session, row.tenant_id):
        raise NoWhatsAppChannel("Connect an active WhatsApp number before submitting templates.")
    row.status, row.rejected_reason = TemplateStatus.PENDING, None
    await session.flush()
    await enqueue(session, submit, tenant_id=row.tenant_id, template_id=str(row.id))
    await record(
        session,
        "template.submitted",
        tenant_id=row.tenant_id,
        actor_type=actor.type,
        actor_id=actor.id,
        subject_type="template",
        subject_id=str(row.id),
        data={"name": row.name, "language": row.language},
    )


@job("channels.submit_template", queue="default", max_attempts=8, min_backoff_s=10.0)
async def submit(ctx: JobContext, *, template_id: str) -> None:
    """Create the template in every active WABA of the tenant; a name that already exists
    there is adopted with its current status instead."""
    session = ctx.session
    row = await session.get(MessageTemplate, uuid.UUID(template_id), with_for_update=True)
    if row is None or row.status != TemplateStatus.PENDING:
        return  # edited again or deleted meanwhile: a later submission carries the new text
    client = whatsapp_client()
    for channel in await active_whatsapp_channels(session, row.tenant_id):
        waba, token = channel.config["waba_id"], secrets_of(channel)["access_token"]
        try:
            if row.provider_template_id:
                # known to the provider already: an edit, which goes back to review
                await client.edit_template(row.provider_template_id, token, components_of(row))
                continue
            created = await client.create_template(
                waba,
                token,
                row.name,
                row.language,
                row.category,  # type: ignore[arg-type]
                components_of(row),
            )
        except WhatsAppError as exc:
            if exc.subcode == 2388024:  # this name and language exist in the WABA already
                await _reconcile_one(session, client, channel, row)
                continue
            if exc.error_class in (ErrorClass.RATE_LIMITED, ErrorClass.TRANSIENT):
                raise RetryLater(ctx.attempt * 30.0, f"whatsapp {exc.code}") from exc
            await _set_status(
                session, row, TemplateStatus.REJECTED, _reason(exc), None, "submission"
            )
            log.warning("template.submit_refused", template_id=template_id, code=exc.code)
            return
        status = _status(created.status) or TemplateStatus.PENDING
        await _set_status(session, row, status, None, created.id, "submission")


def _reason(exc: WhatsAppError) -> str:
    detail = exc.details or exc.message or "refused"
    return f"{exc.code}: {detail}"[:100]


async def _reconcile_one(
    session: AsyncSession, client: WhatsAppClient, channel: Channel, row: MessageTemplate
) -> None:
    token = secrets_of(channel)["access_token"]
    page = await client.list_templates(channel.config["waba_id"], token, name=row.name)
    for item in page.templates:
        if item.get("name") == row.name and item.get("language") == row.language:
            status = _status(str(item.get("status", "")))
            if status is not None:
                await _set_status(
                    session, row, status, item.get("rejected_reason"), str(item.get("id")), "sync"
                )


# --- keeping in sync --------------------------------------------------------------------------


@handles(TEMPLATE_STATUS)
async def on_template_status(session: AsyncSession, event: WebhookEvent) -> Outcome:
    """``message_template_status_update``: the review's verdict, a pause, a disable."""
    value = event.payload
    status = _status(str(value.get("event", "")))
    if status is None or event.tenant_id is None:
        return Outcome.ignored(f"template event {value.get('event')!r}")
    name, language = value.get("message_template_name"), value.get("message_template_language")
    row = await session.scalar(
        select(MessageTemplate)
        .where(
            MessageTemplate.tenant_id == event.tenant_id,
            MessageTemplate.channel_kind == ChannelKind.WHATSAPP,
            MessageTemplate.name == name,
            MessageTemplate.language == language,
        )
        .with_for_update()
    )
    if row is None:
        return Outcome.ignored("no such template in Quita")
    if row.status == TemplateStatus.DRAFT:
        # edited after submission: the provider's verdict is about the old text
        return Outcome.ignored("the template was edited since it was submitted")
    provider_id = value.get("message_template_id")
    changed = await _set_status(
        session,
        row,
        status,
        value.get("reason"),
        str(provider_id) if provider_id is not None else None,
        "webhook",
    )
    return Outcome.done(f"{row.name} {status}" if changed else "already applied")


@job("channels.sync_templates", queue="default", max_attempts=5, min_backoff_s=60.0)
async def sync_templates(ctx: JobContext, *, channel_id: str) -> None:
    """Read every template of the channel's WABA and apply the statuses Quita has missed."""
    session = ctx.session
    channel = await session.get(Channel, uuid.UUID(channel_id))
    if channel is None or channel.status != ChannelStatus.ACTIVE:
        return
    rows = {
        (row.name, row.language): row
        for row in await session.scalars(
            select(MessageTemplate).where(
                MessageTemplate.tenant_id == channel.tenant_id,
                MessageTemplate.channel_kind == ChannelKind.WHATSAPP,
                MessageTemplate.status != TemplateStatus.DRAFT,
            )
        )
    }
    client, token = whatsapp_client(), secrets_of(channel)["access_token"]
    after: str | None = None
    while True:
        try:
            page = await client.list_templates(
                channel.config["waba_id"], token, limit=100, after=after
            )
        except WhatsAppError as exc:
            if exc.error_class in (ErrorClass.RATE_LIMITED, ErrorClass.TRANSIENT):
                raise RetryLater(120.0, f"whatsapp {exc.code}") from exc
            log.warning("template.sync_failed", channel_id=channel_id, code=exc.code)
            return
        for item in page.templates:
            row = rows.get((str(item.get("name")), str(item.get("language"))))
            status = _status(str(item.get("status", "")))
            if row is not None and status is not None:
                provider_id = str(item["id"]) if item.get("id") is not None else None
                reason = item.get("rejected_reason")
                await _set_status(session, row, status, reason, provider_id, "sync")
        if page.after is None:
            return
        after = page.after


@periodic("channels.sync_templates", every=timedelta(hours=1))
async def schedule_sync(session: AsyncSession) -> None:
    """Hourly: one sync job per active WhatsApp number (webhooks get lost)."""
    channels = await session.execute(
        select(Channel.id, Channel.tenant_id).where(
            Channel.kind == ChannelKind.WHATSAPP, Channel.status == ChannelStatus.ACTIVE
        )
    )
    for channel_id, tenant_id in channels:
        await enqueue(
            session,
            sync_templates,
            tenant_id=tenant_id,
            channel_id=str(channel_id),
            dedupe_key=f"sync_templates:{channel_id}:{_hour()}",
        )


def _hour() -> str:
    return datetime.now(UTC).strftime("%Y%m%d%H")
