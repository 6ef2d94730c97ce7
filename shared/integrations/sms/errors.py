"""What a Twilio Messaging error means for the sender, in the WhatsApp client's classes.

The reminder worker already decides retries and fallbacks from
``shared.integrations.whatsapp.errors.ErrorClass``; SMS failures reuse that enum so one policy
serves both channels.  Twilio's error body is ``{"code", "message", "more_info", "status"}``;
like Meta, Twilio asks integrators to key on ``code``, so the HTTP status decides only for codes
the table does not know.

================================================  ===================  ========================
Twilio code (meaning)                             ErrorClass           why
================================================  ===================  ========================
20003 / 20005 (authenticate / account inactive)   ``AUTH``             credentials: stop the
                                                                       channel
21211 (invalid To), 21614 (not a mobile),         ``UNDELIVERABLE``    this phone cannot get
21612 / 21408 (cannot route / region blocked),                         SMS: next channel
30003 / 30005 / 30006 (unreachable / unknown /
landline; asynchronous, in ``ErrorCode``)
21610 (recipient replied STOP)                    ``POLICY``           opted out: never text
                                                                       again (``opted_out``)
20429, 14107, HTTP 429                            ``RATE_LIMITED``     back off, retry
21602 (Body required), 21617 (Body too long),     ``INVALID_REQUEST``  a bug in our request:
21603 / 21604 (From / To required)                                     no retry, no fallback
21606 (From is not a number of this account)      ``AUTH``             the tenant's sender
                                                                       setup: stop the channel
HTTP 5xx, timeouts, network errors                ``TRANSIENT``        retry a few times;
                                                                       ``maybe_sent`` when it
                                                                       may have arrived
any other code or 4xx                             ``INVALID_REQUEST``  permanent until a person
                                                                       looks (401/403: AUTH)
================================================  ===================  ========================

``ErrorClass`` has no "configuration" member: 21606 is grouped with ``AUTH`` because, like a
revoked token, nothing changes until the tenant fixes its sender, and the whole SMS channel of
that tenant should pause.  21610 is ``POLICY`` but per recipient: ``SmsError.opted_out`` tells
the caller to record the opt-out instead of pausing the channel.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from shared.integrations.errors import ErrorClass, ProviderError
from shared.integrations.whatsapp.errors import Advice, advice

__all__ = ["CODE_CLASSES", "OPTED_OUT", "SmsError", "classify"]

_C = ErrorClass

OPTED_OUT = 21610

CODE_CLASSES: dict[int, ErrorClass] = {
    20003: _C.AUTH,
    20005: _C.AUTH,
    21211: _C.UNDELIVERABLE,
    21614: _C.UNDELIVERABLE,
    21612: _C.UNDELIVERABLE,
    21408: _C.UNDELIVERABLE,
    30003: _C.UNDELIVERABLE,
    30005: _C.UNDELIVERABLE,
    30006: _C.UNDELIVERABLE,
    OPTED_OUT: _C.POLICY,
    20429: _C.RATE_LIMITED,
    14107: _C.RATE_LIMITED,
    21602: _C.INVALID_REQUEST,
    21617: _C.INVALID_REQUEST,
    21603: _C.INVALID_REQUEST,
    21604: _C.INVALID_REQUEST,
    21606: _C.AUTH,
}


def classify(http_status: int | None, code: int | None) -> ErrorClass:
    """The class of a Twilio error from its ``code``, else from the HTTP status."""
    if code is not None and code in CODE_CLASSES:
        return CODE_CLASSES[code]
    if http_status is None or http_status >= 500:
        return _C.TRANSIENT
    if http_status == 429:
        return _C.RATE_LIMITED
    if http_status in (401, 403):
        return _C.AUTH
    return _C.INVALID_REQUEST


@dataclass
class SmsError(ProviderError):
    """A failed Twilio Messaging call.  ``body`` is Twilio's error object (``None`` for network
    failures); ``maybe_sent`` is true when the request may have reached Twilio, so resending
    blindly could text the debtor twice."""

    error_class: ErrorClass
    message: str
    http_status: int | None = None
    code: int | None = None
    more_info: str | None = None
    retry_after_s: float | None = None
    body: dict[str, Any] | None = field(default=None, repr=False)
    maybe_sent: bool = False

    def __str__(self) -> str:
        return f"sms {self.error_class} (code {self.code}, http {self.http_status})"

    def advice(self, attempt: int) -> Advice:
        if self.opted_out:
            # one recipient said STOP: never text them again, but the channel is fine
            return Advice(retry=False, delay_s=None, fallback=True, stop_channel=False)
        found = advice(self.error_class, attempt)
        if found.retry and self.retry_after_s is not None:
            return Advice(True, max(found.delay_s or 0.0, self.retry_after_s), False, False)
        return found

    @property
    def opted_out(self) -> bool:
        """The recipient replied STOP to this sender: record it and never text them again."""
        return self.code == OPTED_OUT

    @classmethod
    def from_response(
        cls, http_status: int, body: Any, *, retry_after: str | None = None
    ) -> SmsError:
        """The error of a failed response, from Twilio's error body when there is one."""
        error = body if isinstance(body, dict) else {}
        code = _int_or_none(error.get("code"))
        more_info = error.get("more_info")
        return cls(
            error_class=classify(http_status, code),
            message=str(error.get("message") or f"HTTP {http_status}"),
            http_status=http_status,
            code=code,
            more_info=more_info if isinstance(more_info, str) else None,
            retry_after_s=_seconds(retry_after),
            body=body if isinstance(body, dict) else None,
            # A 5xx may come after Twilio created the message; there is no idempotency key.
            maybe_sent=http_status >= 500,
        )


def _int_or_none(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def _seconds(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None
