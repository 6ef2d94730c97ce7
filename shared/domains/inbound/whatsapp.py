"""WhatsApp webhooks: who signed a POST, and the events it carries.

Meta signs the raw body with the app secret (``X-Hub-Signature-256: sha256=<hex>``, contract
§5.3).  Each Quita channel holds its app secret (and the previous one during a rotation), so a
POST is verified against the channels it names — by ``metadata.phone_number_id`` for messages
and statuses, by the WABA id (``entry[].id``) for template and account events.  An event is
accepted only for a channel whose secret verified the signature: knowing one retailer's secret
never lets anyone write events into another retailer's numbers.

Events get the natural keys of contract §5.4: inbound ``message:<wamid>``, statuses
``status:<wamid>:<status>`` (``:<code>`` for failures), template reviews by template, event and
time.  Fields and types we do not act on are journaled all the same (and answered 200).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.domains.channels.service import decrypt_secrets, secrets_of
from shared.domains.inbound.journal import EventIn
from shared.models import Channel, ChannelKind

SIGNATURE_HEADER = "x-hub-signature-256"

STATUS = "whatsapp.status"
MESSAGE = "whatsapp.message"
TEMPLATE_STATUS = "whatsapp.template_status"
USER_PREFERENCES = "whatsapp.user_preferences"
ERRORS = "whatsapp.errors"


def signature(body: bytes, app_secret: str) -> str:
    """The ``X-Hub-Signature-256`` value Meta sends for ``body``."""
    return "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()


def signature_matches(body: bytes, header: str | None, app_secret: str) -> bool:
    """Constant-time comparison of the header with the body's signature under ``app_secret``."""
    if not header or not app_secret:
        return False
    return hmac.compare_digest(signature(body, app_secret), header.strip().lower())


@dataclass(frozen=True, slots=True)
class RawEvent:
    """An event as Meta sent it, not yet routed: the number or WABA it concerns."""

    key: str
    kind: str
    payload: dict[str, Any]
    occurred_at: datetime | None
    phone_number_id: str | None
    waba_id: str | None


@dataclass(slots=True)
class Route:
    """The channels a POST names and the ones whose secret signed it."""

    channels: list[Sender] = field(default_factory=list)
    verified: list[Sender] = field(default_factory=list)

    def channel_of(self, event: RawEvent) -> Sender | None:
        for channel in self.verified:
            if event.phone_number_id and channel.phone_number_id == event.phone_number_id:
                return channel
        if event.phone_number_id is None and event.waba_id:
            for channel in self.verified:
                if channel.waba_id == event.waba_id:
                    return channel
        return None


def _epoch(value: Any) -> datetime | None:
    try:
        return datetime.fromtimestamp(int(value), UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return None


def _items(obj: dict[str, Any], key: str) -> list[Any]:
    """``obj[key]`` when it is a list; an empty list for anything else (a verified body of an
    unexpected shape is journaled, never a 500)."""
    found = obj.get(key)
    return found if isinstance(found, list) else []


def _digest(value: Any) -> str:
    canonical = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


def split(payload: Any) -> list[RawEvent]:
    """Every event of a webhook body, looping over all entries, changes and items (§5.4)."""
    if not isinstance(payload, dict) or not isinstance(payload.get("entry"), list):
        return [
            RawEvent(
                "unrecognized:" + _digest(payload),
                "whatsapp.unrecognized",
                {"body": payload},
                None,
                None,
                None,
            )
        ]
    events: list[RawEvent] = []
    for entry in payload["entry"]:
        if not isinstance(entry, dict):
            continue
        waba_id = str(entry["id"]) if entry.get("id") is not None else None
        for change in _items(entry, "changes"):
            if isinstance(change, dict):
                events.extend(_change(change, waba_id, entry.get("time")))
    return events


def _change(change: dict[str, Any], waba_id: str | None, entry_time: Any) -> Iterable[RawEvent]:
    name = str(change.get("field") or "unknown")
    value = change.get("value")
    if not isinstance(value, dict):
        value = {}
    found = value.get("metadata")
    metadata: dict[str, Any] = found if isinstance(found, dict) else {}
    number = metadata.get("phone_number_id")
    number = str(number) if number is not None else None
    if name == "messages":
        yield from _messages(value, metadata, number, waba_id)
        return
    if name == "message_template_status_update":
        key = ":".join(str(value.get(k, "")) for k in ("message_template_id", "event", "reason"))
        yield RawEvent(
            f"template:{key}:{entry_time}",
            TEMPLATE_STATUS,
            dict(value),
            _epoch(entry_time),
            None,
            waba_id,
        )
        return
    if name == "user_preferences":
        for item in _items(value, "user_preferences"):
            if isinstance(item, dict):
                key = ":".join(
                    str(item.get(k, "")) for k in ("wa_id", "category", "value", "timestamp")
                )
                yield RawEvent(
                    f"preference:{number}:{key}",
                    USER_PREFERENCES,
                    {"metadata": metadata, "contacts": _items(value, "contacts"), **item},
                    _epoch(item.get("timestamp")),
                    number,
                    waba_id,
                )
        return
    # Fields we journal but do not act on (yet): quality, account, category updates …
    yield RawEvent(
        f"{name}:{waba_id}:{_digest(value)}",
        f"whatsapp.{name}",
        dict(value),
        _epoch(entry_time),
        number,
        waba_id,
    )


def _messages(
    value: dict[str, Any], metadata: dict[str, Any], number: str | None, waba_id: str | None
) -> Iterable[RawEvent]:
    contacts = [c for c in _items(value, "contacts") if isinstance(c, dict)]
    for status in _items(value, "statuses"):
        if not isinstance(status, dict) or not status.get("id"):
            continue
        key = f"status:{status['id']}:{status.get('status')}"
        errors = _items(status, "errors")
        if errors and isinstance(errors[0], dict) and errors[0].get("code") is not None:
            key += f":{errors[0]['code']}"
        yield RawEvent(
            key,
            STATUS,
            {"metadata": metadata, **status},
            _epoch(status.get("timestamp")),
            number,
            waba_id,
        )
    for message in _items(value, "messages"):
        if not isinstance(message, dict) or not message.get("id"):
            continue
        sender = message.get("from")
        contact = next((c for c in contacts if c.get("wa_id") == sender), None)
        if contact is None and len(contacts) == 1:
            contact = contacts[0]
        yield RawEvent(
            f"message:{message['id']}",
            MESSAGE,
            {"metadata": metadata, "contact": contact, **message},
            _epoch(message.get("timestamp")),
            number,
            waba_id,
        )
    if value.get("errors"):
        yield RawEvent(
            f"errors:{number}:{_digest(value['errors'])}",
            ERRORS,
            {"metadata": metadata, "errors": value["errors"]},
            None,
            number,
            waba_id,
        )


@dataclass(frozen=True, slots=True)
class Sender:
    """What routing needs of a WhatsApp channel: who it is and the app secrets that sign for
    it."""

    id: uuid.UUID
    tenant_id: uuid.UUID
    phone_number_id: str | None
    waba_id: str | None
    app_secrets: tuple[str, ...]

    def signed(self, body: bytes, header: str | None, *, current_only: bool = False) -> bool:
        secrets = self.app_secrets[:1] if current_only else self.app_secrets
        return any(signature_matches(body, header, secret) for secret in secrets)


# The app secrets of a channel, decrypted, by its stored ciphertext: Meta posts many webhooks a
# second for one number, and each would otherwise decrypt them again.  A changed secret is a new
# ciphertext, so nothing stale is ever used.
_SECRETS: dict[tuple[uuid.UUID, str], tuple[str, ...]] = {}
_SECRETS_MAX = 4096


def _app_secrets(channel_id: uuid.UUID, ciphertext: str) -> tuple[str, ...]:
    key = (channel_id, ciphertext)
    found = _SECRETS.get(key)
    if found is None:
        secrets = decrypt_secrets(channel_id, ciphertext)
        candidates = (secrets.get("app_secret", ""), secrets.get("previous_app_secret", ""))
        found = tuple(c for c in candidates if c)
        if len(_SECRETS) >= _SECRETS_MAX:
            _SECRETS.clear()
        _SECRETS[key] = found
    return found


class RouteCache:
    """The channels POSTs named, as last read, for a few seconds (one per receiving app): Meta
    posts many webhooks a second for one number.  Only a POST the channels' *current* app secret
    verifies is routed from here; any other — signed with a previous secret during a rotation,
    with a new one, or not at all — reads the channels again.  So what this can hold on to, for
    at most ``ttl_s``, is a current secret just replaced, or a number just moved to another
    channel of the same Meta app."""

    def __init__(self, ttl_s: float = 5.0, size: int = 4096) -> None:
        self.ttl_s, self.size = ttl_s, size
        self._routes: dict[RouteKey, tuple[float, list[Sender]]] = {}

    def get(self, key: RouteKey, body: bytes, header: str | None) -> Route | None:
        cached = self._routes.get(key)
        if cached is None or time.monotonic() - cached[0] >= self.ttl_s:
            return None
        found = Route(channels=cached[1])
        found.verified = [s for s in found.channels if s.signed(body, header, current_only=True)]
        return found if found.verified else None

    def put(self, key: RouteKey, channels: list[Sender]) -> None:
        if len(self._routes) >= self.size:
            self._routes.clear()
        self._routes[key] = (time.monotonic(), channels)


RouteKey = tuple[uuid.UUID | None, frozenset[str], frozenset[str]]


async def route(
    session: AsyncSession,
    events: Sequence[RawEvent],
    body: bytes,
    header: str | None,
    *,
    channel_id: uuid.UUID | None = None,
    cache: RouteCache | None = None,
) -> Route:
    """The channels the events name (or only ``channel_id`` when the URL names one) and those
    whose app secret — current or previous — signed ``body``."""
    numbers = {e.phone_number_id for e in events if e.phone_number_id}
    wabas = {e.waba_id for e in events if e.waba_id and not e.phone_number_id}
    key = (channel_id, frozenset(numbers), frozenset(wabas))
    if cache is not None and (found := cache.get(key, body, header)) is not None:
        return found
    found = await _route(session, numbers, wabas, body, header, channel_id)
    if cache is not None and found.channels:
        cache.put(key, found.channels)
    return found


async def _route(
    session: AsyncSession,
    numbers: set[str],
    wabas: set[str],
    body: bytes,
    header: str | None,
    channel_id: uuid.UUID | None,
) -> Route:
    query = select(Channel.id, Channel.tenant_id, Channel.config, Channel.secrets).where(
        Channel.kind == ChannelKind.WHATSAPP
    )
    if channel_id is not None:
        query = query.where(Channel.id == channel_id)
    else:
        if not numbers and not wabas:
            return Route()
        query = query.where(
            or_(
                Channel.config["phone_number_id"].astext.in_(numbers),
                Channel.config["waba_id"].astext.in_(wabas),
            )
        )
    found = Route(
        channels=[
            Sender(
                row.id,
                row.tenant_id,
                row.config.get("phone_number_id"),
                row.config.get("waba_id"),
                _app_secrets(row.id, row.secrets),
            )
            for row in await session.execute(query)
        ]
    )
    found.verified = [sender for sender in found.channels if sender.signed(body, header)]
    return found


def events_for(route: Route, raw: Sequence[RawEvent]) -> tuple[list[EventIn], int]:
    """The journal's events of the verified channels; how many named no verified channel."""
    accepted: list[EventIn] = []
    refused = 0
    for event in raw:
        channel = route.channel_of(event)
        if channel is None and event.kind != "whatsapp.unrecognized":
            refused += 1
            continue
        accepted.append(
            EventIn(
                key=event.key,
                kind=event.kind,
                payload=event.payload,
                occurred_at=event.occurred_at,
                tenant_id=channel.tenant_id if channel else None,
                channel_id=channel.id if channel else None,
            )
        )
    return accepted, refused


async def verify_token_matches(
    session: AsyncSession, token: str, channel_id: uuid.UUID | None = None
) -> bool:
    """The webhook handshake (§5.2): does ``token`` belong to the channel (or any channel)?"""
    if not token:
        return False
    query = select(Channel).where(Channel.kind == ChannelKind.WHATSAPP)
    if channel_id is not None:
        query = query.where(Channel.id == channel_id)
    for channel in await session.scalars(query):
        expected = secrets_of(channel).get("verify_token", "")
        if expected and hmac.compare_digest(expected.encode(), token.encode()):
            return True
    return False
