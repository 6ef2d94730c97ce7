"""E-mail reminders over SMTP: building the message and sending it (aiosmtplib).

E-mail is the last fallback after WhatsApp and SMS.  Failures are sorted into the WhatsApp
integration's ``ErrorClass`` so the reminder worker decides retry, fallback or stop the same
way for every channel.
"""

from __future__ import annotations

from shared.integrations.email.client import (
    EmailResult,
    Security,
    SmtpConfig,
    SmtpSender,
    mask_email,
)
from shared.integrations.email.errors import EmailError, class_of_reply
from shared.integrations.email.message import (
    ATTEMPT_HEADER,
    InvalidEmail,
    build_message,
    message_id_of,
)

__all__ = [
    "ATTEMPT_HEADER",
    "EmailError",
    "EmailResult",
    "InvalidEmail",
    "Security",
    "SmtpConfig",
    "SmtpSender",
    "build_message",
    "class_of_reply",
    "mask_email",
    "message_id_of",
]
