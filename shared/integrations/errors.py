"""What any provider's failure means for the sender: one set of classes for WhatsApp, SMS and
e-mail, so the collection engine decides retry, fallback or stop the same way on every channel.

Each provider's error (``WhatsAppError``, ``SmsError``, ``EmailError``) is a ``ProviderError``
with its class and whether the message may have gone out anyway (``maybe_sent``: a timeout
after the request was written) — the one fact that forbids a blind resend.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shared.integrations.whatsapp.errors import Advice

__all__ = ["ErrorClass", "ProviderError"]


class ErrorClass(StrEnum):
    RATE_LIMITED = "rate_limited"  # app, account or number throughput: back off
    PAIR_LIMITED = "pair_limited"  # too many messages to this recipient: wait 4^n s
    REENGAGE = "reengage"  # the 24 h window is closed: send a template instead
    UNDELIVERABLE = "undeliverable"  # this contact cannot get messages here: other channel
    TEMPLATE_PROBLEM = "template_problem"  # the template or its parameters are wrong or paused
    AUTH = "auth"  # token, permission or sender setup: stop the channel
    POLICY = "policy"  # account or recipient restricted by the provider: stop or wait
    INVALID_REQUEST = "invalid_request"  # a bug in the request
    TRANSIENT = "transient"  # the provider or the network failed: retry a few times


class ProviderError(Exception):
    """Base of the providers' errors; subclasses are dataclasses that set these two fields."""

    error_class: ErrorClass
    maybe_sent: bool

    def advice(self, attempt: int) -> Advice:
        """Retry (when), fall back or stop the channel after failure number ``attempt``
        (0 for the first)."""
        raise NotImplementedError
