"""Twilio's request signature, ``X-Twilio-Signature``, for form-encoded webhooks.

Twilio signs each webhook with HMAC-SHA1 keyed by the account's auth token over the URL exactly
as configured (scheme, port and query string included) followed by every POST parameter, name
then value with no separators, names sorted case-sensitively (handbook contract §10.2).  When a
name repeats, its values are appended sorted and once each, as Twilio's own validator
(``twilio.request_validator``) computes it; Twilio's status and inbound webhooks never repeat a
name, so this only matters for our own signer and verifier agreeing with the SDK.

The sandbox signs with ``twilio_signature``; our webhook service verifies with
``verify_twilio_signature``, which accepts several tokens so a rotation has no gap.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable, Mapping, Sequence

__all__ = ["Params", "signed_text", "twilio_signature", "verify_twilio_signature"]

# A plain mapping (one value per name, or a list of values) or the (name, value) pairs of a
# parsed form body, which keep repeated names.
Params = Mapping[str, str | Sequence[str]] | Iterable[tuple[str, str]]


def _values_by_name(params: Params) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    if isinstance(params, Mapping):
        for name, value in params.items():
            values = [value] if isinstance(value, str) else list(value)
            grouped.setdefault(name, []).extend(values)
        return grouped
    for name, value in params:
        grouped.setdefault(name, []).append(value)
    return grouped


def signed_text(url: str, params: Params) -> str:
    """The exact text Twilio signs: the URL, then name+value for each sorted parameter."""
    parts = [url]
    for name, values in sorted(_values_by_name(params).items()):
        parts.extend(name + value for value in sorted(set(values)))
    return "".join(parts)


def twilio_signature(url: str, params: Params, auth_token: str) -> str:
    """The ``X-Twilio-Signature`` value of a form POST of ``params`` to ``url``."""
    digest = hmac.new(
        auth_token.encode(), signed_text(url, params).encode("utf-8"), hashlib.sha1
    ).digest()
    return base64.b64encode(digest).decode("ascii")


def verify_twilio_signature(
    url: str, params: Params, header: str | None, tokens: Sequence[str]
) -> bool:
    """Whether ``header`` signs this request with any of ``tokens`` (current and previous).

    Every token is compared in constant time, so the answer's timing reveals nothing."""
    if not header:
        return False
    given = header.strip().encode()
    matched = False
    for token in tokens:
        if token:
            expected = twilio_signature(url, params, token).encode()
            matched |= hmac.compare_digest(expected, given)
    return matched
