"""Sending one message through a tenant's channel: the channel's credentials, the right client,
the provider's answer as a ``Sent`` — or a ``ProviderError`` with its class.

The collection engine and the channel check both send through here, so a reminder and a test
message leave the same way.  Clients are pooled per event loop (one per worker process); tests
and benchmarks point them elsewhere with :func:`using_clients`.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis

from shared.config import get_settings
from shared.domains.channels.service import secrets_of
from shared.integrations.email import Security, SmtpConfig, SmtpSender, build_message
from shared.integrations.sms import SmsClient
from shared.integrations.whatsapp import WhatsAppClient
from shared.models import Channel
from shared.ratelimit import RateLimiter

__all__ = ["Clients", "Sent", "send_email", "send_sms", "send_whatsapp_template", "using_clients"]


@dataclass(frozen=True, slots=True)
class Sent:
    """The provider accepted the message (accepted, not delivered): its id and first status."""

    provider_message_id: str
    status: str | None = None
    to: str | None = None


@dataclass(slots=True)
class Clients:
    """The clients of one event loop: WhatsApp, SMS by base URL (a channel may name its own
    Twilio-compatible endpoint), SMTP, and the Redis rate limiter every worker shares (the
    provider's throughput per number is a limit of all of them together)."""

    whatsapp: WhatsAppClient
    sms: dict[str, SmsClient] = field(default_factory=dict)
    smtp: SmtpSender = field(default_factory=SmtpSender)
    sms_transport: Any = None
    redis: aioredis.Redis | None = None
    _limiter: RateLimiter | None = None

    @property
    def limiter(self) -> RateLimiter:
        if self._limiter is None:
            if self.redis is None:
                self.redis = aioredis.Redis.from_url(get_settings().redis_url)
            self._limiter = RateLimiter(self.redis, prefix="quita:send")
        return self._limiter

    def sms_for(self, base_url: str) -> SmsClient:
        client = self.sms.get(base_url)
        if client is None:
            client = self.sms[base_url] = SmsClient(base_url=base_url, transport=self.sms_transport)
        return client


_per_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Clients] = (
    weakref.WeakKeyDictionary()
)
_override: list[Clients] = []


def clients() -> Clients:
    if _override:
        return _override[-1]
    loop = asyncio.get_running_loop()
    found = _per_loop.get(loop)
    if found is None:
        found = _per_loop[loop] = Clients(WhatsAppClient.from_settings(get_settings()))
    return found


def whatsapp_client() -> WhatsAppClient:
    """The pooled WhatsApp client of this event loop (or a test's)."""
    return clients().whatsapp


@contextmanager
def using_clients(
    whatsapp: WhatsAppClient, *, sms_transport: Any = None, redis: aioredis.Redis | None = None
) -> Iterator[Clients]:
    """Send through ``whatsapp`` (SMS through ``sms_transport``, limits in ``redis``) — tests
    and benchmarks."""
    chosen = Clients(whatsapp, sms_transport=sms_transport, redis=redis)
    _override.append(chosen)
    try:
        yield chosen
    finally:
        _override.remove(chosen)


async def send_whatsapp_template(
    channel: Channel,
    to: str,
    name: str,
    language: str,
    *,
    body: list[str],
    header: list[str] | None,
    callback_data: str,
) -> Sent:
    answer = await whatsapp_client().send_template(
        channel.config["phone_number_id"],
        secrets_of(channel)["access_token"],
        to.lstrip("+"),
        name,
        language,
        callback_data=callback_data,
        body=body,
        header=header,
    )
    return Sent(answer.message_id, answer.message_status, answer.wa_id or None)


async def send_sms(channel: Channel, to: str, text: str, *, status_callback: str | None) -> Sent:
    base_url = channel.config.get("base_url") or get_settings().sms_api_url
    answer = (
        await clients()
        .sms_for(base_url)
        .send(
            channel.config["account_sid"],
            secrets_of(channel)["auth_token"],
            channel.config["from_number"],
            to,
            text,
            status_callback=status_callback,
        )
    )
    return Sent(answer.sid, answer.status, answer.to)


def smtp_config(channel: Channel) -> SmtpConfig:
    config = channel.config
    port = int(config.get("port") or 587)
    security: Security = (
        "tls" if port == 465 else "starttls" if config.get("starttls", True) else "none"
    )
    return SmtpConfig(
        host=config["host"],
        port=port,
        username=config.get("username"),
        password=secrets_of(channel).get("password"),
        security=security,
    )


async def send_email(
    channel: Channel,
    to: str,
    *,
    subject: str,
    text: str,
    html: str | None,
    attempt_id: str | None,
    unsubscribe_url: str | None = None,
) -> Sent:
    config = channel.config
    sender = config["from_address"]
    message = build_message(
        from_addr=sender,
        from_name=config.get("from_name") or channel.name,
        to=to,
        subject=subject,
        text=text,
        html=html,
        message_id_domain=sender.rpartition("@")[2],
        attempt_id=attempt_id,
        unsubscribe_url=unsubscribe_url,
    )
    answer = await clients().smtp.send(smtp_config(channel), message)
    return Sent(answer.message_id, "accepted", to)
