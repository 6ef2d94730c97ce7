"""The e-mail that tells a retailer's owners and admins that Quita disabled one of their webhook
endpoints — in Portuguese, short, with what to do next.

It leaves through the tenant's own active e-mail channel (the same sending as e-mail reminders);
a tenant without one is told nothing by e-mail, and the log says so (the endpoint's status and
the audit trail still show it).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import structlog
from sqlalchemy import select

from shared.domains.channels import senders
from shared.integrations.email import mask_email
from shared.models import (
    Channel,
    ChannelKind,
    ChannelStatus,
    EndpointStatus,
    Membership,
    Role,
    Tenant,
    User,
    WebhookEndpoint,
)
from shared.queue import JobContext

log = structlog.get_logger("quita.events")

WHY = {
    "gone": "o endereço respondeu 410 (Gone), que significa que ele não existe mais",
    "failing": "as entregas falharam seguidamente desde {since}",
}


def compose(tenant: Tenant, endpoint: WebhookEndpoint, reason: str) -> tuple[str, str]:
    """The subject and text of the notice."""
    zone = ZoneInfo(tenant.time_zone)
    since = endpoint.failing_since or endpoint.disabled_at
    why = WHY.get(reason, WHY["failing"]).format(since=_when(since, zone))
    host = urlsplit(endpoint.url).hostname or endpoint.url
    subject = f"Quita: webhook para {host} desativado"
    text = (
        f"Olá,\n\n"
        f"O endpoint de webhooks {endpoint.url} da {tenant.name} foi desativado pela Quita em "
        f"{_when(endpoint.disabled_at, zone)}, porque {why}"
        f" (última tentativa: {endpoint.failure_streak} falha(s) seguida(s)).\n\n"
        "Enquanto estiver desativado, ele não recebe eventos. Depois de corrigir o sistema que "
        "recebe os webhooks, reative-o pela API (PATCH /v1/webhook-endpoints/"
        f'{endpoint.id} com {{"enabled": true}}): o que ficou na fila será enviado, em ordem. '
        "Eventos abandonados podem ser reenviados com "
        f"POST /v1/webhook-endpoints/{endpoint.id}/replay?since=...\n\n"
        "Equipe Quita\n"
    )
    return subject, text


def _when(instant: datetime | None, zone: ZoneInfo) -> str:
    if instant is None:
        return "agora"
    return instant.astimezone(zone).strftime("%d/%m/%Y às %H:%M")


async def send_disabled_notice(ctx: JobContext, endpoint_id: uuid.UUID, reason: str) -> int:
    """E-mail the owners and admins of the endpoint's tenant; how many were written to."""
    session = ctx.session
    endpoint = await session.get(WebhookEndpoint, endpoint_id)
    if endpoint is None or endpoint.status != EndpointStatus.DISABLED:
        return 0  # deleted or enabled again meanwhile: nothing to tell
    tenant = await session.get_one(Tenant, endpoint.tenant_id)
    recipients = list(
        await session.scalars(
            select(User.email)
            .join(Membership, Membership.user_id == User.id)
            .where(
                Membership.tenant_id == tenant.id,
                Membership.role.in_([Role.OWNER, Role.ADMIN]),
                User.active.is_(True),
            )
            .order_by(User.email)
        )
    )
    channel = await session.scalar(
        select(Channel)
        .where(
            Channel.tenant_id == tenant.id,
            Channel.kind == ChannelKind.EMAIL,
            Channel.status == ChannelStatus.ACTIVE,
        )
        .order_by(Channel.created_at)
        .limit(1)
    )
    if channel is None or not recipients:
        log.warning(
            "events.disabled_notice_unsent",
            endpoint_id=str(endpoint_id),
            why="no active e-mail channel" if channel is None else "no owner or admin",
        )
        return 0
    subject, text = compose(tenant, endpoint, reason)
    for address in recipients:
        await senders.send_email(
            channel, address, subject=subject, text=text, html=None, attempt_id=None
        )
        log.info(
            "events.disabled_notice_sent", endpoint_id=str(endpoint_id), to=mask_email(address)
        )
    return len(recipients)
