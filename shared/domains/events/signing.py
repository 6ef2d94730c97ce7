"""Standard Webhooks signing: ``whsec_`` secrets and the three headers of every request.

The secret is 32 random bytes, base64, prefixed ``whsec_`` (what the ``standardwebhooks``
libraries take as is).  While a rotated-out secret is still valid, each request carries two
signatures, space-separated, so a receiver verifies with either the old or the new secret.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Sequence
from datetime import datetime

from standardwebhooks import Webhook

PREFIX = "whsec_"
SECRET_BYTES = 32


def new_secret() -> str:
    return PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii")


def headers(
    message_id: str, sent_at: datetime, body: bytes, signing_secrets: Sequence[str]
) -> dict[str, str]:
    """``webhook-id``, ``webhook-timestamp`` and ``webhook-signature`` (one ``v1,<base64>`` per
    secret) for ``body``."""
    signatures = [Webhook(s).sign(message_id, sent_at, body) for s in signing_secrets]
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(sent_at.timestamp())),
        "webhook-signature": " ".join(signatures),
    }
