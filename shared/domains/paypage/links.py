"""Signed links to the payment page: ``{pay_base_url}/pagar/<token>``.

A token names one message (``a``: the page shows what it asked for, as of the day it is
opened) or one offer (``o``: the page lists its options), and when the link stops working.
It is 21 bytes — kind, id, expiry (Unix seconds) — and an HMAC-SHA256 of them cut to 12 bytes,
in base64url: 44 characters, short enough for an SMS.  Nothing about the debtor is in it, and
it is stored nowhere: the key (``crypto.mac_keys("paylink")``, derived from
``QUITA_SECRET_KEYS``) is the only thing that makes one.  A link with a good signature but past
its expiry is told apart from a forged one, so the page can say "expired" rather than "not
found".
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import struct
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from shared.config import get_settings
from shared.crypto import mac_keys

ATTEMPT = "a"
OFFER = "o"
_KINDS = frozenset({ATTEMPT, OFFER})
_PURPOSE = "paylink"
_BODY = struct.Struct(">c16sI")  # kind, id, expiry
MAC_BYTES = 12
# how long after an offer expires its link still opens (to say so, or show the agreement made)
AFTER_OFFER = timedelta(days=7)


@dataclass(frozen=True, slots=True)
class Link:
    kind: str
    ident: uuid.UUID
    expires_at: datetime

    def expired(self, now: datetime) -> bool:
        return now >= self.expires_at


def token(kind: str, ident: uuid.UUID, expires_at: datetime) -> str:
    if kind not in _KINDS:
        raise ValueError(f"unknown link kind {kind!r}")
    body = _BODY.pack(kind.encode(), ident.bytes, int(expires_at.timestamp()))
    return _b64(body + _mac(mac_keys(_PURPOSE)[0], body))


def read(text: str) -> Link | None:
    """The link ``text`` names when a configured key signed it (expired or not), else None."""
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return None
    if len(raw) != _BODY.size + MAC_BYTES:
        return None
    body, mac = raw[: _BODY.size], raw[_BODY.size :]
    if not any(hmac.compare_digest(mac, _mac(key, body)) for key in mac_keys(_PURPOSE)):
        return None
    kind, ident, expires = _BODY.unpack(body)
    if kind.decode() not in _KINDS:
        return None
    return Link(kind.decode(), uuid.UUID(bytes=ident), datetime.fromtimestamp(expires, UTC))


def url(kind: str, ident: uuid.UUID, expires_at: datetime) -> str:
    return f"{get_settings().pay_base_url}/pagar/{token(kind, ident, expires_at)}"


def for_message(attempt_id: uuid.UUID, now: datetime) -> str:
    """The link a reminder carries: open for ``pay_link_days`` from when it is sent."""
    return url(ATTEMPT, attempt_id, now + timedelta(days=get_settings().pay_link_days))


def for_offer(offer_id: uuid.UUID, offer_expires_at: datetime) -> str:
    """The link to an offer's options: open a week beyond the offer, to say it expired or to
    show the agreement made from it."""
    return url(OFFER, offer_id, offer_expires_at + AFTER_OFFER)


def _mac(key: bytes, body: bytes) -> bytes:
    return hmac.new(key, body, hashlib.sha256).digest()[:MAC_BYTES]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")
