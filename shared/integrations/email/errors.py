"""What a failed SMTP send means for the reminder worker, in the classes WhatsApp already uses.

The worker decides retry, fallback or stop from ``ErrorClass`` and ``advice`` whatever the
channel, so e-mail failures are sorted into the same classes (``shared.integrations.whatsapp``)
instead of a parallel set: a mailbox that does not exist is ``UNDELIVERABLE`` (another channel),
a greylisting or full-queue 4xx is ``TRANSIENT`` (retry later), a rejected login is ``AUTH``
(stop the retailer's e-mail channel until someone fixes it).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from shared.integrations.errors import ErrorClass, ProviderError
from shared.integrations.whatsapp.errors import Advice, advice

__all__ = ["EmailError", "class_of_reply"]

# 530: authentication required; 534/535/538: mechanism too weak, bad credentials, TLS needed.
_AUTH_CODES = frozenset({530, 534, 535, 538})
# 552 to MAIL or DATA: message too big; 555: a MAIL/RCPT parameter the server does not know.
_REQUEST_CODES = frozenset({552, 555})


def class_of_reply(code: int, *, recipient: bool) -> ErrorClass:
    """The class of an SMTP error reply; ``recipient`` for replies to RCPT (about a mailbox)."""
    if code in _AUTH_CODES:
        return ErrorClass.AUTH
    if code < 500:  # 421, 450, 451, 452: greylisting, busy, full queue
        return ErrorClass.TRANSIENT
    if recipient:  # 550, 551, 553: no such mailbox, not here, bad name
        return ErrorClass.UNDELIVERABLE
    if code in _REQUEST_CODES:
        return ErrorClass.INVALID_REQUEST
    # A 5xx to MAIL FROM or DATA: our sender or content is refused (relay denied, SPF, spam);
    # every message of this sender would fail alike.
    return ErrorClass.POLICY


@dataclass
class EmailError(ProviderError):
    """A failed send.  ``smtp_code`` is the server's reply code (``None`` for network
    failures); ``maybe_sent`` is true when the connection broke after the server had taken the
    message body, so it may be delivered and resending blindly could deliver it twice.
    ``refused`` holds the per-recipient replies when every recipient was refused."""

    error_class: ErrorClass
    message: str
    smtp_code: int | None = None
    maybe_sent: bool = False
    refused: dict[str, tuple[int, str]] = field(default_factory=dict, repr=False)

    def __str__(self) -> str:
        return f"email {self.error_class} (smtp {self.smtp_code}): {self.message}"

    def advice(self, attempt: int) -> Advice:
        # No code: WhatsApp's codes refine its advice, SMTP codes would only collide with them.
        return advice(self.error_class, attempt)
