"""WhatsApp Business Cloud API: request bodies, error classes and the async client.

The contract is ``handbook/reference/whatsapp-cloud-api.md``; every body built here matches one of
its examples.  Each retailer sends from its own phone number with its own token, so the client
takes both per call.
"""

from __future__ import annotations

from shared.integrations.whatsapp.client import (
    SendResult,
    TemplateCreated,
    TemplatePage,
    WhatsAppClient,
)
from shared.integrations.whatsapp.errors import (
    Advice,
    ErrorClass,
    WhatsAppError,
    advice,
    classify,
)
from shared.integrations.whatsapp.payloads import (
    CopyCodeButton,
    Document,
    InvalidPayload,
    ListRow,
    ListSection,
    QuickReplyButton,
    ReplyButton,
    UrlButton,
)

__all__ = [
    "Advice",
    "CopyCodeButton",
    "Document",
    "ErrorClass",
    "InvalidPayload",
    "ListRow",
    "ListSection",
    "QuickReplyButton",
    "ReplyButton",
    "SendResult",
    "TemplateCreated",
    "TemplatePage",
    "UrlButton",
    "WhatsAppClient",
    "WhatsAppError",
    "advice",
    "classify",
]
