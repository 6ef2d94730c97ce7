"""SMS webhooks (Twilio-compatible): who signed a callback, the event it carries, and what an
inbound STOP does.

Each SMS channel has its own callback URLs, ``{webhooks}/sms/{channel_id}/status`` (passed as
``StatusCallback`` with every send, see :func:`status_callback_url`) and
``{webhooks}/sms/{channel_id}/inbound`` (set on the Twilio number, see :func:`inbound_url`).
The channel in the path names the one auth token that may have signed the POST
(``X-Twilio-Signature``, ``shared.integrations.sms.signature``), so one retailer's token never
lets anyone write events into another retailer's channel.

Twilio signs the URL exactly as it was given, and behind a proxy or load balancer the webhooks
service sees another one (``http://10.0.0.5:8001/...``).  When ``QUITA_PUBLIC_BASE_URL`` is set,
the URL we gave Twilio was built from it, so the receiver verifies against it plus the path and
query it received (:func:`signed_urls`) and never trusts ``X-Forwarded-*`` headers, which a
caller may write.  Without it (dev, tests, the sandbox) the URL as received is the one signed.

Events get natural keys: statuses ``sms:{MessageSid}:{MessageStatus}``, inbound messages
``sms-in:{MessageSid}``.  An inbound message that is exactly an opt-out keyword (Twilio's and
the Portuguese ones) opts the customer out of SMS here; anything richer ("pare de me mandar
mensagem", "já paguei") is for the conversations layer, which reads the journaled
``sms.message`` events.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from secrets import token_urlsafe
from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import structlog
from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.brazil.errors import InvalidValue
from shared.brazil.phones import whatsapp_key
from shared.config import Environment, Settings, get_settings
from shared.domains import events
from shared.domains.audit.service import record
from shared.domains.channels.service import secrets_of
from shared.domains.collections.holds import cancel_unsent
from shared.domains.inbound.intent_text import fold
from shared.domains.inbound.journal import EventIn, Outcome, handles
from shared.integrations.sms import verify_twilio_signature
from shared.models import (
    AttemptState,
    Channel,
    ChannelKind,
    Customer,
    CustomerPhone,
    WebhookEvent,
)

log = structlog.get_logger("quita.inbound.sms")

PROVIDER = "sms"
SIGNATURE_HEADER = "x-twilio-signature"
STATUS = "sms.status"
MESSAGE = "sms.message"
# Where a status callback URL carries the attempt it reports on (see status_callback_url).
ATTEMPT_PARAM = "attempt"
ATTEMPT_FIELD = "QuitaAttempt"

# Twilio's default opt-out keywords plus the Portuguese ones our debtors write, compared
# case-, accent- and punctuation-insensitively against the whole message (as Twilio does).
OPT_OUT_WORDS = frozenset(
    {"stop", "stopall", "unsubscribe", "cancel", "end", "quit", "optout", "revoke"}
    | {"pare", "parar", "sair", "cancelar"}
)
_EDGES = re.compile(r"^[\W_]+|[\W_]+$")
_SID = re.compile(r"[A-Za-z0-9]{2,64}")
_DEFAULT_PORTS = {"http": 80, "https": 443}
UNSENT = (AttemptState.PLANNED, AttemptState.QUEUED)


class MalformedCallback(ValueError):
    """A body that is not the form Twilio sends, or lacks the fields its kind needs."""


# --- URLs --------------------------------------------------------------------------------------


def status_callback_url(
    channel: Channel, *, attempt_id: uuid.UUID | None = None, settings: Settings | None = None
) -> str | None:
    """The ``StatusCallback`` of a send on ``channel`` (``None`` for a channel that is not SMS,
    or in production without ``public_base_url``: Twilio could not reach a local address).

    ``attempt_id`` rides in the query string, which Twilio signs, so a send whose answer was
    lost (``unknown``, no SID recorded) is still matched to its attempt by its statuses."""
    settings = settings or get_settings()
    if channel.kind != ChannelKind.SMS:
        return None
    if settings.public_base_url is None and settings.env is Environment.PROD:
        return None
    url = f"{settings.webhooks_url()}/sms/{channel.id}/status"
    return f"{url}?{ATTEMPT_PARAM}={attempt_id}" if attempt_id is not None else url


def inbound_url(channel: Channel, *, settings: Settings | None = None) -> str:
    """The URL to set as the Twilio number's "A message comes in" webhook."""
    return f"{(settings or get_settings()).webhooks_url()}/sms/{channel.id}/inbound"


def signed_urls(received_url: str, public_base_url: str | None) -> list[str]:
    """The URLs Twilio may have signed for a request received at ``received_url``: rebuilt on
    the public base URL when one is configured, with and without the scheme's default port
    (Twilio's own validator accepts both forms)."""
    parts = urlsplit(received_url)
    if public_base_url:
        public = urlsplit(public_base_url.rstrip("/"))
        parts = parts._replace(
            scheme=public.scheme, netloc=public.netloc, path=public.path + parts.path
        )
    urls = [urlunsplit(parts)]
    default = _DEFAULT_PORTS.get(parts.scheme)
    host = parts.hostname or ""
    if ":" in host:  # an IPv6 literal keeps its brackets
        host = f"[{host}]"
    if default is not None and parts.port == default:
        urls.append(urlunsplit(parts._replace(netloc=host)))
    elif default is not None and parts.port is None:
        urls.append(urlunsplit(parts._replace(netloc=f"{host}:{default}")))
    return urls


# --- verifying and splitting -------------------------------------------------------------------


def parse_form(body: bytes) -> list[tuple[str, str]]:
    """The ``(name, value)`` pairs of a form-encoded body; ``MalformedCallback`` when it is not
    one (not UTF-8, a field without ``=``, a NUL that Postgres could not store)."""
    try:
        text = body.decode("utf-8")
        pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=bool(text))
    except (UnicodeDecodeError, ValueError):
        raise MalformedCallback("the body is not form-encoded UTF-8") from None
    if any("\x00" in name or "\x00" in value for name, value in pairs):
        raise MalformedCallback("the body holds a NUL character")
    return pairs


async def sms_channel(session: AsyncSession, channel_id: uuid.UUID) -> Channel | None:
    return await session.scalar(
        select(Channel).where(Channel.id == channel_id, Channel.kind == ChannelKind.SMS)
    )


def signed_by(
    channel: Channel | None, urls: Sequence[str], params: Sequence[tuple[str, str]], header: str
) -> bool:
    """Whether the channel's auth token (or the previous one, kept during a rotation) signed
    the POST for one of ``urls``.  An unknown channel is checked against a random token, so it
    takes the same path, and gets the same answer, as a forged signature."""
    held = secrets_of(channel) if channel is not None else {"auth_token": token_urlsafe(32)}
    tokens = [held.get("auth_token", ""), held.get("previous_auth_token", "")]
    verified = False
    for url in urls:
        verified |= verify_twilio_signature(url, params, header, tokens)
    return verified


def _fields(params: Sequence[tuple[str, str]]) -> dict[str, str]:
    """One value per name, the first, as Twilio never repeats a name in these callbacks."""
    fields: dict[str, str] = {}
    for name, value in params:
        fields.setdefault(name, value)
    return fields


def _message_sid(fields: dict[str, str]) -> str:
    sid = fields.get("MessageSid") or fields.get("SmsSid") or ""
    if not _SID.fullmatch(sid):
        raise MalformedCallback("MessageSid is missing or not a SID")
    return sid


def status_event(
    channel: Channel,
    params: Sequence[tuple[str, str]],
    *,
    attempt: str | None,
    received_at: datetime,
) -> EventIn:
    """The journal event of a status callback.  Twilio's callbacks carry no time, so the event
    is dated when it reached us."""
    fields = _fields(params)
    sid = _message_sid(fields)
    status = (fields.get("MessageStatus") or fields.get("SmsStatus") or "").strip().lower()
    if not status or len(status) > 32:
        raise MalformedCallback("MessageStatus is missing")
    payload: dict[str, Any] = dict(fields)
    if attempt:
        payload[ATTEMPT_FIELD] = attempt
    return EventIn(
        key=f"sms:{sid}:{status}",
        kind=STATUS,
        payload=payload,
        occurred_at=received_at,
        tenant_id=channel.tenant_id,
        channel_id=channel.id,
    )


def message_event(
    channel: Channel, params: Sequence[tuple[str, str]], *, received_at: datetime
) -> EventIn:
    """The journal event of an inbound message (``From`` is required: it names the sender)."""
    fields = _fields(params)
    sid = _message_sid(fields)
    if not fields.get("From"):
        raise MalformedCallback("From is missing")
    return EventIn(
        key=f"sms-in:{sid}",
        kind=MESSAGE,
        payload=fields,
        occurred_at=received_at,
        tenant_id=channel.tenant_id,
        channel_id=channel.id,
    )


def attempt_of(payload: dict[str, Any]) -> uuid.UUID | None:
    """The attempt a status callback URL named (see :func:`status_callback_url`)."""
    try:
        return uuid.UUID(str(payload[ATTEMPT_FIELD]))
    except (KeyError, ValueError):
        return None


# --- opt-out -----------------------------------------------------------------------------------


def opt_out_keyword(body: str | None, opt_out_type: str | None = None) -> str | None:
    """The opt-out keyword a message is (``"pare"`` for "Pare!"), or ``None``.

    Twilio's Advanced Opt-Out marks the keywords a tenant configured there with
    ``OptOutType=STOP``; that counts too.  A sentence that merely contains a keyword is not one
    (the conversations layer reads intent)."""
    if (opt_out_type or "").strip().upper() == "STOP":
        return "stop"
    word = _EDGES.sub("", fold(body or "").strip())
    return word if word in OPT_OUT_WORDS else None


@dataclass(frozen=True, slots=True)
class OptedOut:
    """Who an opt-out reached: the customers found by the number, how many attempts stopped."""

    customers: list[uuid.UUID]
    cancelled: int


async def customers_by_phone(
    session: AsyncSession, tenant_id: uuid.UUID, number: str
) -> list[Customer]:
    """The tenant's customers holding ``number`` (E.164, or the same 9-insensitive key),
    locked for update."""
    matches = [CustomerPhone.number == number]
    try:
        matches.append(CustomerPhone.wa_key == whatsapp_key(number))
    except InvalidValue:
        pass  # a short code or an alphanumeric sender: only the exact number can match
    holders = select(CustomerPhone.customer_id).where(
        CustomerPhone.tenant_id == tenant_id, or_(*matches)
    )
    found = await session.scalars(
        select(Customer)
        .where(Customer.tenant_id == tenant_id, Customer.id.in_(holders))
        .order_by(Customer.id)
        .with_for_update()
    )
    return list(found)


async def opt_out_of_sms(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    number: str,
    *,
    source: str,
    evidence: dict[str, Any],
) -> OptedOut:
    """Opt every customer of the tenant holding ``number`` out of SMS and cancel their SMS
    attempts not sent yet; each change is audited with its ``evidence`` (never the full
    number).  Running it again changes nothing and audits nothing."""
    customers = await customers_by_phone(session, tenant_id, number)
    cancelled = 0
    for customer in customers:
        newly = ChannelKind.SMS not in customer.opted_out
        if newly:
            customer.opted_out = [*customer.opted_out, ChannelKind.SMS.value]
            await events.emit(
                session,
                tenant_id,
                "customer.opted_out",
                {"channels": [ChannelKind.SMS.value], "source": source},
                customer_id=customer.id,
            )
        stopped = len(await cancel_unsent(session, customer, "opted_out", channel=ChannelKind.SMS))
        cancelled += stopped
        if newly or stopped:
            await record(
                session,
                "customer.opted_out",
                tenant_id=tenant_id,
                actor_type="provider",
                actor_id=PROVIDER,
                subject_type="customer",
                subject_id=str(customer.id),
                data={
                    "channel": ChannelKind.SMS.value,
                    "source": source,
                    "phone_last4": number[-4:],
                    "attempts_cancelled": stopped,
                    **evidence,
                },
            )
    await session.flush()
    return OptedOut([c.id for c in customers], cancelled)


@handles(MESSAGE)
async def on_message(session: AsyncSession, event: WebhookEvent) -> Outcome:
    """An inbound SMS: an opt-out keyword opts the sender out of SMS; everything else is kept
    for the conversations layer."""
    payload = event.payload
    word = opt_out_keyword(payload.get("Body"), payload.get("OptOutType"))
    if word is None:
        return Outcome.done("kept for the conversations layer")
    if event.tenant_id is None:
        return Outcome.ignored("an opt-out for no tenant")
    done = await opt_out_of_sms(
        session,
        event.tenant_id,
        str(payload.get("From", "")),
        source="sms_keyword",
        evidence={"keyword": word, "message_sid": payload.get("MessageSid")},
    )
    log.info(
        "inbound.sms_opt_out",
        event_id=event.id,
        customers=len(done.customers),
        cancelled=done.cancelled,
    )
    if not done.customers:
        return Outcome.done(f"opt-out ({word}) from a number of no customer")
    return Outcome.done(
        f"opt-out ({word}): {len(done.customers)} customer(s), {done.cancelled} attempt(s) "
        "cancelled"
    )
