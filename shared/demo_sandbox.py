"""The demo retailer's senders, connected to the sandbox for ``make run``.

The first seed creates the demo WhatsApp number, SMS sender and e-mail sender (the sandbox's
SMTP sink) with fresh random credentials (nothing secret lives in the code).  The sandbox keeps
its state in memory, so ``quita demo link`` (a process of the Procfile) registers the number,
the SMS account and the retailer's Pix key at the sandbox PSP there — webhook URL, app secret,
verify token — and keeps them registered: every few seconds it checks the sandbox still knows
them and, after a sandbox restart, registers them again (the number with the templates Quita
already has approved; the Pix key with a new URL token).  Draft
templates are submitted for review once, the way a retailer would, so the demo shows the
review's verdict arriving by signed webhook.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.config import Settings
from shared.domains.audit.service import Actor
from shared.domains.channels import schemas, templating
from shared.domains.channels import service as channels
from shared.domains.channels.provider import request_submission
from shared.domains.portfolio import pix_connections
from shared.models import (
    Channel,
    ChannelKind,
    ChannelStatus,
    MessageTemplate,
    PixConnectionStatus,
    PixSettings,
    TemplateStatus,
)

DEMO_PHONE_NUMBER_ID = "100000000000001"
DEMO_WABA_ID = "100000000000099"
DEMO_SMS_FROM = "+5511940001234"
WAITING = "waiting for the sandbox (quita demo link)"
DEMO_ACTOR = Actor("system", "demo")


async def ensure_channels(session: AsyncSession, tenant_id: uuid.UUID, settings: Settings) -> None:
    """The demo's WhatsApp number, SMS sender and e-mail sender, all in the sandbox (created
    once, with random credentials)."""
    kinds = set(await session.scalars(select(Channel.kind).where(Channel.tenant_id == tenant_id)))
    sandbox = settings.base_url("sandbox")
    wanted: list[schemas.ChannelIn] = [
        schemas.WhatsAppIn(
            name="WhatsApp da Loja Demo (sandbox)",
            phone_number_id=DEMO_PHONE_NUMBER_ID,
            waba_id=DEMO_WABA_ID,
            display_number="+55 11 4000-1234",
            access_token="sandbox-" + secrets.token_urlsafe(24),
            app_secret=secrets.token_urlsafe(24),
            verify_token=secrets.token_urlsafe(16),
        ),
        schemas.SmsIn(
            name="SMS da Loja Demo (sandbox)",
            account_sid="AC" + secrets.token_hex(16),
            auth_token=secrets.token_urlsafe(24),
            from_number=DEMO_SMS_FROM,
            base_url=sandbox,
        ),
        schemas.EmailIn(
            name="E-mail da Loja Demo (sandbox)",
            host=settings.sandbox_smtp_host,
            port=settings.sandbox_smtp_port or 8025,
            from_address="cobranca@lojademo.com.br",
            from_name="Loja Demo",
            starttls=False,
        ),
    ]
    for data in wanted:
        if type(data).__struct_config__.tag not in kinds:
            channel = await channels.create(session, tenant_id, data, DEMO_ACTOR)
            if channel.kind != ChannelKind.EMAIL:
                # nothing may go out before `quita demo link` has registered it in the sandbox
                channel.status, channel.status_reason = ChannelStatus.PAUSED, WAITING
    await session.flush()


@dataclass(frozen=True, slots=True)
class LinkResult:
    registered: bool  # the sandbox did not know the number and now does
    submitted: int  # draft templates sent for review


async def link(
    session: AsyncSession, http: httpx.AsyncClient, settings: Settings, channel: Channel
) -> LinkResult:
    """Make sure the sandbox knows ``channel``'s number (or SMS account); submit draft
    WhatsApp templates once."""
    if channel.kind == ChannelKind.SMS:
        return await _link_sms(http, channel)
    number = channel.config["phone_number_id"]
    known = await http.get(f"/_sandbox/whatsapp/numbers/{number}")
    registered = False
    if known.status_code == 404:
        creds = channels.secrets_of(channel)
        response = await http.post(
            "/_sandbox/whatsapp/numbers",
            json={
                "phone_number_id": number,
                "waba_id": channel.config["waba_id"],
                "display_phone_number": "551140001234",
                "access_token": creds["access_token"],
                "app_secret": creds["app_secret"],
                "verify_token": creds["verify_token"],
                "webhook_url": f"{settings.base_url('webhooks')}/whatsapp",
                "sent_delay_ms": 800,
                "delivered_delay_ms": 2000,
                "read_delay_ms": 6000,
            },
        )
        response.raise_for_status()
        approved = [
            {"name": row.name, "language": row.language, "body": _provider_body(row)}
            for row in await _templates(session, channel, TemplateStatus.APPROVED)
        ]
        waba = await http.post(
            f"/_sandbox/whatsapp/wabas/{channel.config['waba_id']}",
            json={"review_delay_ms": 3000, "templates": approved},
        )
        waba.raise_for_status()
        registered = True
    drafts = await _templates(session, channel, TemplateStatus.DRAFT)
    _resume(channel)  # submissions need an active number; sends wait for the verdict
    for row in drafts:
        await request_submission(session, row, DEMO_ACTOR)
    return LinkResult(registered, len(drafts))


def _resume(channel: Channel) -> None:
    if channel.status == ChannelStatus.PAUSED and channel.status_reason == WAITING:
        channel.status, channel.status_reason = ChannelStatus.ACTIVE, None


def _provider_body(row: MessageTemplate) -> str:
    return templating.compile_body(row.body).text


async def _templates(
    session: AsyncSession, channel: Channel, status: TemplateStatus
) -> list[MessageTemplate]:
    return list(
        await session.scalars(
            select(MessageTemplate).where(
                MessageTemplate.tenant_id == channel.tenant_id,
                MessageTemplate.channel_kind == ChannelKind.WHATSAPP,
                MessageTemplate.status == status,
            )
        )
    )


async def _link_sms(http: httpx.AsyncClient, channel: Channel) -> LinkResult:
    account = channel.config["account_sid"]
    known = await http.get(f"/_sandbox/sms/accounts/{account}/messages")
    if known.status_code != 404:
        _resume(channel)
        return LinkResult(False, 0)
    response = await http.post(
        "/_sandbox/sms/accounts",
        json={
            "account_sid": account,
            "auth_token": channels.secrets_of(channel)["auth_token"],
            "numbers": [channel.config["from_number"]],
        },
    )
    response.raise_for_status()
    _resume(channel)
    return LinkResult(True, 0)


async def link_pix(
    session: AsyncSession, http: httpx.AsyncClient, settings: Settings, tenant_id: uuid.UUID
) -> bool:
    """Make sure the sandbox PSP holds the demo retailer's Pix key and posts its payments to a
    connection of the retailer's (a new URL token when the sandbox forgot it: only the token's
    hash is kept, so the old URL cannot be given again).  ``True`` when it registered now."""
    pix = await session.get(PixSettings, tenant_id)
    if pix is None:
        return False
    known = await http.get(f"/_sandbox/pix/connections/{pix.key}")
    if known.status_code != 404:
        known.raise_for_status()
        return False
    active = [
        row
        for row in await pix_connections.list_for(session, tenant_id)
        if row.status == PixConnectionStatus.ACTIVE
    ]
    if active:
        url = await pix_connections.rotate(session, active[0], DEMO_ACTOR, settings)
    else:
        data = pix_connections.PixConnectionIn(name="PSP da Loja Demo (sandbox)", psp="Sandbox")
        _, url = await pix_connections.create(session, tenant_id, data, DEMO_ACTOR, settings)
    response = await http.post(
        "/_sandbox/pix/connections", json={"key": pix.key, "webhook_url": url}
    )
    response.raise_for_status()
    return True
