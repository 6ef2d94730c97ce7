"""In-memory state of the SMS sandbox: Twilio accounts, what each sent and received, phones that
opted out or cannot be reached, and each account's request rate.

Like the WhatsApp sandbox (``state.py``) it is single-process by design and lost on restart; run
the sandbox with one worker.  Everything runs on the server's event loop, nothing is thread-safe.
"""

from __future__ import annotations

import re
import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

from services.sandbox.state import SlidingWindow

API_VERSION = "2010-04-01"
E164 = re.compile(r"\+[1-9]\d{7,14}")
ACCOUNT_SID = re.compile(r"AC[0-9a-fA-F]{32}")
# Twilio's default opt-out and opt-in keywords, plus the Portuguese ones our debtors use.
OPT_OUT_WORDS = frozenset(
    {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "PARE", "SAIR"}
)
OPT_IN_WORDS = frozenset({"START", "YES", "UNSTOP", "VOLTAR"})


def new_sid(prefix: str = "SM") -> str:
    """A SID shaped like Twilio's: two letters and 32 hex digits."""
    return prefix + secrets.token_hex(16)


def rfc2822(at: float) -> str:
    """Twilio's date format: ``Mon, 04 May 2026 12:00:00 +0000``."""
    return format_datetime(datetime.fromtimestamp(at, UTC))


def keyword(body: str) -> str | None:
    """``"STOP"`` or ``"START"`` when an inbound body is exactly an opt-out or opt-in word."""
    word = body.strip().upper()
    if word in OPT_OUT_WORDS:
        return "STOP"
    if word in OPT_IN_WORDS:
        return "START"
    return None


@dataclass
class SmsAccountConfig:
    """A Twilio account of the sandbox, its senders and how it behaves (delays in ms)."""

    account_sid: str
    auth_token: str
    numbers: list[str]
    messaging_service_sids: list[str] = field(default_factory=list)
    inbound_url: str | None = None
    sent_delay_ms: int = 10
    delivered_delay_ms: int = 30
    callback_retries: int = 3
    callback_retry_base_ms: int = 50
    rate_limit_per_second: int = 10


@dataclass
class SmsMessage:
    """An outbound message and everything the sandbox did with it."""

    sid: str
    account_sid: str
    to: str
    from_: str
    body: str
    num_segments: int
    created_at: float
    messaging_service_sid: str | None = None
    status_callback: str | None = None
    request: dict[str, str] = field(default_factory=dict)
    status: str = "queued"
    error_code: int | None = None
    sent_at: float | None = None
    updated_at: float | None = None
    statuses: list[str] = field(default_factory=list)

    def resource(self) -> dict[str, Any]:
        """The Message resource as Twilio's REST API renders it."""
        uri = f"/{API_VERSION}/Accounts/{self.account_sid}/Messages/{self.sid}"
        return {
            "account_sid": self.account_sid,
            "api_version": API_VERSION,
            "body": self.body,
            "date_created": rfc2822(self.created_at),
            "date_sent": rfc2822(self.sent_at) if self.sent_at else None,
            "date_updated": rfc2822(self.updated_at or self.created_at),
            "direction": "outbound-api",
            "error_code": self.error_code,
            "error_message": None,
            "from": self.from_,
            "messaging_service_sid": self.messaging_service_sid,
            "num_media": "0",
            "num_segments": str(self.num_segments),
            "price": None,
            "price_unit": "USD",
            "sid": self.sid,
            "status": self.status,
            "subresource_uris": {"media": f"{uri}/Media.json"},
            "to": self.to,
            "uri": f"{uri}.json",
        }

    def as_dict(self) -> dict[str, Any]:
        """What the control API shows: the resource, the callbacks' statuses and the form the
        client posted."""
        return {**self.resource(), "statuses": self.statuses, "request": self.request}


@dataclass
class SmsAccount:
    """An account's configuration plus what happened on it."""

    config: SmsAccountConfig
    messages: list[SmsMessage] = field(default_factory=list)
    received: list[dict[str, str]] = field(default_factory=list)
    deliveries: list[dict[str, Any]] = field(default_factory=list)
    # phone → (status, ErrorCode) its messages end in instead of delivered
    unreachable: dict[str, tuple[str, int]] = field(default_factory=dict)
    opted_out: set[str] = field(default_factory=set)
    rate: SlidingWindow = field(default_factory=SlidingWindow)

    def find(self, sid: str) -> SmsMessage | None:
        return next((m for m in self.messages if m.sid == sid), None)

    def sender_for(self, from_: str | None, service_sid: str | None) -> str | None:
        """The number a send leaves from, ``None`` when neither ``From`` nor the Messaging
        Service belongs to the account."""
        if from_:
            return from_ if from_ in self.config.numbers else None
        if service_sid and service_sid in self.config.messaging_service_sids:
            return self.config.numbers[0] if self.config.numbers else None
        return None


class SmsState:
    """Every account one sandbox process knows; ``reset()`` empties it."""

    def __init__(self) -> None:
        self.accounts: dict[str, SmsAccount] = {}
        self.clock = time.time

    def reset(self) -> None:
        self.accounts.clear()

    def register(self, config: SmsAccountConfig) -> SmsAccount:
        """Add or replace an account, keeping its history, opt-outs and unreachable phones."""
        account = SmsAccount(config)
        previous = self.accounts.get(config.account_sid)
        if previous is not None:
            account.messages, account.received = previous.messages, previous.received
            account.deliveries, account.unreachable = previous.deliveries, previous.unreachable
            account.opted_out = previous.opted_out
        self.accounts[config.account_sid] = account
        return account

    def authenticate(self, account_sid: str, token: str) -> SmsAccount | None:
        account = self.accounts.get(account_sid)
        if account is None or not secrets.compare_digest(account.config.auth_token, token):
            return None
        return account
