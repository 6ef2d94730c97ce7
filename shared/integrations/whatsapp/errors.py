"""What a WhatsApp Cloud API error means for the sender, and what to do next.

Meta asks integrators to key on the error ``code`` and not on the HTTP status or the deprecated
``error_subcode`` (contract §3), so ``classify`` looks the code up in the table of §3.3 first and
uses the HTTP status only for codes the table does not know.  ``advice`` turns a class into a
decision for the reminder worker: retry (and when), fall back to another channel, or stop the
retailer's WhatsApp channel altogether.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from shared.integrations.errors import ErrorClass, ProviderError

__all__ = ["CODE_CLASSES", "Advice", "ErrorClass", "WhatsAppError", "advice", "classify"]


_C = ErrorClass

# Contract §3.3, one entry per code of the table.  Codes not in the table that Meta still lists
# in the same families are covered by the ranges in ``_class_of_code``.
CODE_CLASSES: dict[int, ErrorClass] = {
    0: _C.AUTH,
    190: _C.AUTH,
    3: _C.AUTH,
    10: _C.AUTH,
    4: _C.RATE_LIMITED,
    80007: _C.RATE_LIMITED,
    130429: _C.RATE_LIMITED,
    131056: _C.PAIR_LIMITED,
    131048: _C.POLICY,
    131064: _C.POLICY,
    368: _C.POLICY,
    131031: _C.POLICY,
    130497: _C.POLICY,
    1: _C.TRANSIENT,
    2: _C.TRANSIENT,
    33: _C.AUTH,
    100: _C.INVALID_REQUEST,
    130403: _C.UNDELIVERABLE,
    130472: _C.POLICY,
    131000: _C.TRANSIENT,
    131005: _C.AUTH,
    131008: _C.INVALID_REQUEST,
    131009: _C.INVALID_REQUEST,
    131016: _C.TRANSIENT,
    131021: _C.INVALID_REQUEST,
    131026: _C.UNDELIVERABLE,
    131037: _C.AUTH,
    131042: _C.POLICY,
    131045: _C.AUTH,
    131047: _C.REENGAGE,
    131049: _C.POLICY,
    131050: _C.POLICY,
    131051: _C.INVALID_REQUEST,
    131052: _C.INVALID_REQUEST,
    131053: _C.INVALID_REQUEST,
    131057: _C.TRANSIENT,
    131062: _C.INVALID_REQUEST,
    131063: _C.TEMPLATE_PROBLEM,
    132000: _C.TEMPLATE_PROBLEM,
    132001: _C.TEMPLATE_PROBLEM,
    132005: _C.TEMPLATE_PROBLEM,
    132007: _C.TEMPLATE_PROBLEM,
    132012: _C.TEMPLATE_PROBLEM,
    132015: _C.TEMPLATE_PROBLEM,
    132016: _C.TEMPLATE_PROBLEM,
    132018: _C.TEMPLATE_PROBLEM,
    133010: _C.AUTH,
    134011: _C.INVALID_REQUEST,
    135000: _C.INVALID_REQUEST,
    # Legacy On-Premises / Twilio codes for a closed window; they do not exist in the Cloud API
    # but a proxy in front of it may still answer with them.
    470: _C.REENGAGE,
    63016: _C.REENGAGE,
}

# Per-recipient policy outcomes: the channel is healthy, only this person cannot get this
# message now.  Everything else in POLICY is account-wide.
_RECIPIENT_POLICY = frozenset({131049, 131050, 130472})


def _class_of_code(code: int) -> ErrorClass | None:
    known = CODE_CLASSES.get(code)
    if known is not None:
        return known
    if 200 <= code <= 299:  # the table's "200-299": permission missing
        return _C.AUTH
    if 132000 <= code <= 132999:  # template family
        return _C.TEMPLATE_PROBLEM
    return None


def classify(http_status: int | None, code: int | None, subcode: int | None = None) -> ErrorClass:
    """The class of an error from its Graph ``code``; the HTTP status decides only for codes
    outside the table (and for bodies without a code).  ``subcode`` is deprecated by Meta and
    does not change the class: a 190 is an auth error whatever its subcode."""
    del subcode
    if code is not None:
        known = _class_of_code(code)
        if known is not None:
            return known
    if http_status is None or http_status >= 500:
        return _C.TRANSIENT
    if http_status == 429:
        return _C.RATE_LIMITED
    if http_status in (401, 403):
        return _C.AUTH
    return _C.INVALID_REQUEST


@dataclass(frozen=True, slots=True)
class Advice:
    """What the worker does after a failed attempt.

    ``retry`` with ``delay_s`` seconds of wait (``None``: no retry); ``fallback``: send the
    reminder through another channel (SMS); ``stop_channel``: pause every WhatsApp send of this
    retailer until someone fixes the account.
    """

    retry: bool
    delay_s: float | None
    fallback: bool
    stop_channel: bool


TRANSIENT_MAX_ATTEMPTS = 3  # §3.3: "retry ≤3 with backoff, then dead-letter"
PAIR_MAX_ATTEMPTS = 6  # 1 + 4 + 16 + 64 + 256 + 1024 s, about 23 min in all
RATE_MAX_DELAY_S = 3600.0
_DAY_S = 24 * 3600.0

_GIVE_UP = Advice(retry=False, delay_s=None, fallback=True, stop_channel=False)
_BUG = Advice(retry=False, delay_s=None, fallback=False, stop_channel=False)
_STOP = Advice(retry=False, delay_s=None, fallback=True, stop_channel=True)


def _retry_after(delay_s: float) -> Advice:
    return Advice(retry=True, delay_s=delay_s, fallback=False, stop_channel=False)


def _rate_limited(attempt: int, code: int | None) -> Advice:
    # App (4) and WABA (80007) limits reset in minutes; phone throughput (130429) in seconds.
    base = 60.0 if code in (4, 80007) else 1.0
    return _retry_after(min(base * 2**attempt, RATE_MAX_DELAY_S))


def _policy(code: int | None) -> Advice:
    if code == 131049:  # per-user marketing cap: retrying within 24 h just fails again
        return _retry_after(_DAY_S)
    if code in _RECIPIENT_POLICY:  # the user opted out of marketing, or an experiment group
        return _BUG
    return _STOP


def _transient(attempt: int, code: int | None) -> Advice:
    if attempt >= TRANSIENT_MAX_ATTEMPTS:
        return _GIVE_UP
    if code == 131057:  # maintenance mode, e.g. a throughput upgrade: about a minute
        return _retry_after(60.0)
    return _retry_after(2.0 * 2**attempt)


def advice(cls: ErrorClass, attempt: int, code: int | None = None) -> Advice:
    """What to do after failure number ``attempt`` (0 for the first failure) of class ``cls``.

    ``code`` refines classes that group different waits (rate limits, policy, maintenance).
    """
    if attempt < 0:
        raise ValueError("attempt counts failures from 0")
    match cls:
        case _C.RATE_LIMITED:
            return _rate_limited(attempt, code)
        case _C.PAIR_LIMITED:
            # §4.2: "try again 4^X seconds later, where X = 0, and increases by 1 after each
            # failed attempt".
            return _retry_after(4.0**attempt) if attempt < PAIR_MAX_ATTEMPTS else _GIVE_UP
        case _C.REENGAGE:
            # Not a fallback: the next step is a template on this same channel.
            return _BUG
        case _C.UNDELIVERABLE | _C.TEMPLATE_PROBLEM:
            return _GIVE_UP
        case _C.AUTH:
            return _STOP
        case _C.POLICY:
            return _policy(code)
        case _C.INVALID_REQUEST:
            return _BUG
        case _C.TRANSIENT:
            return _transient(attempt, code)


@dataclass
class WhatsAppError(ProviderError):
    """A failed Cloud API call.  ``body`` is the parsed error object (``{"error": {...}}``) or
    ``None`` for network failures; ``maybe_sent`` is true when the request may have reached
    Meta (a read timeout), so resending blindly could deliver the message twice."""

    error_class: ErrorClass
    message: str
    http_status: int | None = None
    code: int | None = None
    subcode: int | None = None
    title: str | None = None
    details: str | None = None
    fbtrace_id: str | None = None
    body: dict[str, Any] | None = field(default=None, repr=False)
    maybe_sent: bool = False

    def __str__(self) -> str:
        return f"whatsapp {self.error_class} (code {self.code}, http {self.http_status})"

    def advice(self, attempt: int) -> Advice:
        return advice(self.error_class, attempt, self.code)

    @classmethod
    def from_response(cls, http_status: int, body: Any) -> WhatsAppError:
        """The error of a response: the Graph error object when there is one (contract
        §3.1), else a coarse class from the HTTP status."""
        error = body.get("error") if isinstance(body, dict) else None
        if not isinstance(error, dict):
            return cls(
                error_class=classify(http_status, None),
                message=f"HTTP {http_status} without an error object",
                http_status=http_status,
                body=body if isinstance(body, dict) else None,
            )
        code = _int_or_none(error.get("code"))
        subcode = _int_or_none(error.get("error_subcode"))
        error_data = error.get("error_data")
        details = error_data.get("details") if isinstance(error_data, dict) else None
        message = str(error.get("message") or "")
        return cls(
            error_class=classify(http_status, code, subcode),
            message=message,
            http_status=http_status,
            code=code,
            subcode=subcode,
            title=_title(error, message),
            details=details if isinstance(details, str) else None,
            fbtrace_id=_str_or_none(error.get("fbtrace_id")),
            body=body,
        )


def _title(error: dict[str, Any], message: str) -> str | None:
    """``error_user_title`` or the message without its ``(#code)`` prefix.  For people only:
    Meta will change titles, logic keys on ``code``."""
    user_title = error.get("error_user_title") or error.get("title")
    if isinstance(user_title, str):
        return user_title
    if message.startswith("(#"):
        _, _, rest = message.partition(") ")
        return rest or None
    return message or None


def _int_or_none(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None
