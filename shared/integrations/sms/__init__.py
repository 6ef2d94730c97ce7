"""Twilio Programmable Messaging: the SMS fallback of WhatsApp reminders.

The contract is ``handbook/reference/whatsapp-cloud-api.md`` §10: form-encoded sends with HTTP
Basic auth, status callbacks signed with ``X-Twilio-Signature``, GSM-7 / UCS-2 segments.  Each
tenant sends from its own Twilio account, so the client takes its SID and token per call.
"""

from __future__ import annotations

from shared.integrations.sms.client import (
    API_VERSION,
    OurStatus,
    SmsClient,
    SmsResult,
    map_status,
)
from shared.integrations.sms.errors import OPTED_OUT, SmsError, classify
from shared.integrations.sms.segments import (
    Encoding,
    SegmentCount,
    count_segments,
    gsm_fold,
    is_gsm7,
    segments,
)
from shared.integrations.sms.signature import twilio_signature, verify_twilio_signature

__all__ = [
    "API_VERSION",
    "OPTED_OUT",
    "Encoding",
    "OurStatus",
    "SegmentCount",
    "SmsClient",
    "SmsError",
    "SmsResult",
    "classify",
    "count_segments",
    "gsm_fold",
    "is_gsm7",
    "map_status",
    "segments",
    "twilio_signature",
    "verify_twilio_signature",
]
