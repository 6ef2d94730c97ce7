"""In-memory state of one WhatsApp sandbox process: numbers, WABAs and templates, contacts,
customer service windows, what was sent and received, rate-limit buckets and injected faults.

The sandbox is single-process by design: it is a demo and test stand-in for Meta's Cloud API, so
its state lives in this process's memory and is lost on restart.  Run it with one worker; two
workers would each see half of the numbers, windows and buckets.  Nothing here is thread-safe;
everything runs on the server's event loop.
"""

from __future__ import annotations

import base64
import random
import re
import secrets
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

WINDOW_SECONDS = 24 * 60 * 60
PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z0-9_]+)\s*\}\}")


def digits(number: str) -> str:
    """The digits of a phone number as Meta accepts it (``+`` and separators dropped)."""
    return re.sub(r"[\s()+-]", "", number)


def canonical(number: str) -> str:
    """The 13-digit form of a Brazilian mobile (9th digit restored); other numbers unchanged."""
    number = digits(number)
    if number.startswith("55") and len(number) == 12 and number[4] in "6789":
        return number[:4] + "9" + number[4:]
    return number


def legacy(number: str) -> str:
    """The 12-digit WhatsApp id of an older Brazilian account (9th digit removed)."""
    number = canonical(number)
    if number.startswith("55") and len(number) == 13 and number[4] == "9":
        return number[:4] + number[5:]
    return number


def new_wamid() -> str:
    """A message id shaped like Meta's (``wamid.`` + base64), opaque and unique."""
    return "wamid." + base64.b64encode(b"HBgM" + secrets.token_bytes(24)).decode()


def placeholders(text: str) -> int:
    """How many distinct ``{{n}}`` / ``{{name}}`` placeholders a template text has."""
    return len(set(PLACEHOLDER.findall(text)))


@dataclass
class FaultRule:
    """Answer a send with ``code`` with this probability (``async_`` → as a failed status)."""

    code: int
    probability: float
    async_: bool = False


@dataclass
class NumberConfig:
    """One business phone number and how the sandbox behaves for it (delays in ms)."""

    phone_number_id: str
    waba_id: str
    display_phone_number: str
    access_token: str
    app_secret: str
    webhook_url: str | None = None
    verify_token: str | None = None
    sent_delay_ms: int = 10
    delivered_delay_ms: int = 30
    read_delay_ms: int = 60
    duplicate_probability: float = 0.0
    out_of_order_probability: float = 0.0
    batch_size: int = 1
    webhook_retries: int = 3
    webhook_retry_base_ms: int = 50
    throughput_per_second: int = 80
    pair_burst: int = 45
    pair_interval_ms: int = 6000
    latency_ms: int = 0
    faults: list[FaultRule] = field(default_factory=list)


@dataclass
class Contact:
    """A WhatsApp user as the sandbox knows it; unknown numbers are ordinary reachable users."""

    phone: str
    name: str = "Cliente Sandbox"
    legacy_wa_id: bool = False
    undeliverable: bool = False
    undeliverable_sync: bool = False
    read_receipts: bool = True

    @property
    def wa_id(self) -> str:
        return legacy(self.phone) if self.legacy_wa_id else canonical(self.phone)


@dataclass
class Template:
    """A message template of one WABA, keyed by (name, language)."""

    id: str
    name: str
    language: str
    category: str
    components: list[dict[str, Any]]
    status: str = "PENDING"
    rejected_reason: str = "NONE"
    parameter_format: str = "POSITIONAL"

    @property
    def body_text(self) -> str:
        for component in self.components:
            if str(component.get("type", "")).upper() == "BODY":
                return str(component.get("text", ""))
        return ""

    def as_graph(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "language": self.language,
            "status": self.status,
            "category": self.category,
            "parameter_format": self.parameter_format,
            "components": self.components,
            "rejected_reason": self.rejected_reason,
        }


@dataclass
class Waba:
    """A WhatsApp Business Account: its templates and the review the sandbox simulates."""

    waba_id: str
    review_delay_ms: int = 50
    rejected_words: list[str] = field(default_factory=lambda: ["ameaça", "processo", "polícia"])
    templates: dict[tuple[str, str], Template] = field(default_factory=dict)

    def find_rejected_word(self, text: str) -> str | None:
        lowered = text.lower()
        return next((w for w in self.rejected_words if w.lower() in lowered), None)


class SlidingWindow:
    """At most ``limit`` events in any ``seconds``-long window (Meta: 80 messages per second)."""

    def __init__(self) -> None:
        self.events: deque[float] = deque()

    def take(self, limit: int, now: float, seconds: float = 1.0) -> bool:
        while self.events and self.events[0] <= now - seconds:
            self.events.popleft()
        if len(self.events) >= limit:
            return False
        self.events.append(now)
        return True


@dataclass
class TokenBucket:
    """Burst of ``capacity``, one token back every ``interval`` seconds (the pair rate limit)."""

    tokens: float
    updated: float

    def take(self, capacity: int, interval: float, now: float) -> bool:
        self.tokens = min(capacity, self.tokens + (now - self.updated) / interval)
        self.updated = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


@dataclass
class Outbound:
    """A message a business number sent, with every status the sandbox produced for it."""

    id: str
    to: str
    wa_id: str
    type: str
    payload: dict[str, Any]
    biz_opaque_callback_data: str | None
    pricing_category: str
    billable: bool
    created_at: float
    statuses: list[str] = field(default_factory=list)
    # (sent, delivered, read) delays at send time: when each tick shows in the chat page.
    status_delays_ms: tuple[int, int, int] | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "to": self.to,
            "wa_id": self.wa_id,
            "type": self.type,
            "payload": self.payload,
            "biz_opaque_callback_data": self.biz_opaque_callback_data,
            "statuses": self.statuses,
        }


@dataclass
class NumberState:
    """A number's configuration plus what happened on it."""

    config: NumberConfig
    sent: list[Outbound] = field(default_factory=list)
    received: list[dict[str, Any]] = field(default_factory=list)
    deliveries: list[dict[str, Any]] = field(default_factory=list)
    read_by_business: set[str] = field(default_factory=set)
    throughput: SlidingWindow = field(default_factory=SlidingWindow)
    pairs: dict[str, TokenBucket] = field(default_factory=dict)
    windows: dict[str, float] = field(default_factory=dict)
    # wamid → sandbox clock when a debtor's message arrived (its ``timestamp`` may be backdated
    # and has whole seconds); orders a chat.
    arrivals: dict[str, float] = field(default_factory=dict)

    def window_open(self, recipient: str, now: float) -> bool:
        opened = self.windows.get(canonical(recipient))
        return opened is not None and now - opened < WINDOW_SECONDS

    def pair_allows(self, recipient: str, now: float) -> bool:
        key = canonical(recipient)
        bucket = self.pairs.setdefault(key, TokenBucket(self.config.pair_burst, now))
        return bucket.take(self.config.pair_burst, self.config.pair_interval_ms / 1000, now)

    def find_sent(self, wamid: str) -> Outbound | None:
        return next((m for m in self.sent if m.id == wamid), None)


class SandboxState:
    """Everything one sandbox process knows; ``reset()`` empties it (tests, demo restarts)."""

    def __init__(self, seed: int | None = None) -> None:
        self.numbers: dict[str, NumberState] = {}
        self.wabas: dict[str, Waba] = {}
        self.contacts: dict[str, Contact] = {}
        # Dice for simulated faults and quirks, seedable for reproducible demos; not crypto.
        self.random = random.Random(seed)  # noqa: S311
        self.clock = time.time
        self._template_ids = 1192339204654000

    def reset(self, seed: int | None = None) -> None:
        self.numbers.clear()
        self.wabas.clear()
        self.contacts.clear()
        self.random = random.Random(seed)  # noqa: S311

    def register(self, config: NumberConfig) -> NumberState:
        """Add or replace a number, keeping its history and windows (rate buckets restart);
        its WABA is created on first use."""
        number = NumberState(config)
        previous = self.numbers.get(config.phone_number_id)
        if previous is not None:
            number.sent, number.received = previous.sent, previous.received
            number.deliveries, number.windows = previous.deliveries, previous.windows
            number.read_by_business = previous.read_by_business
            number.arrivals = previous.arrivals
        self.numbers[config.phone_number_id] = number
        self.waba(config.waba_id)
        return number

    def waba(self, waba_id: str) -> Waba:
        return self.wabas.setdefault(waba_id, Waba(waba_id))

    def numbers_of(self, waba_id: str) -> list[NumberState]:
        return [n for n in self.numbers.values() if n.config.waba_id == waba_id]

    def token_known(self, token: str) -> bool:
        return any(
            secrets.compare_digest(n.config.access_token, token) for n in self.numbers.values()
        )

    def contact(self, number: str) -> Contact:
        key = canonical(number)
        return self.contacts.get(key) or Contact(phone=key)

    def add_template(self, waba: Waba, **fields: Any) -> Template:
        self._template_ids += 1
        template = Template(id=str(self._template_ids), **fields)
        waba.templates[(template.name, template.language)] = template
        return template

    def roll(self, probability: float) -> bool:
        return probability > 0 and self.random.random() < probability
