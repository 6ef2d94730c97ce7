"""What the SMS sandbox tests share: the Twilio account they register, how they send and wait,
and how they read the form-encoded callbacks the receiver recorded."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

import httpx

from tests.sandbox.receiver import Receiver

ACCOUNT = "AC" + "0123456789abcdef" * 2
TOKEN = "sandbox-twilio-token"
OTHER_ACCOUNT = "AC" + "fedcba9876543210" * 2
OTHER_TOKEN = "other-twilio-token"
FROM = "+5511940028922"
SERVICE = "MG" + "0123456789abcdef" * 2
DEBTOR = "+5511987654321"
MESSAGES = f"/2010-04-01/Accounts/{ACCOUNT}/Messages.json"


def status_url(receiver: Receiver) -> str:
    """Where status callbacks go; the query string is part of what Twilio signs."""
    return receiver.url.replace("/whatsapp", "/sms/twilio/status") + "?tenant=loja-1"


def inbound_url(receiver: Receiver) -> str:
    return receiver.url.replace("/whatsapp", "/sms/twilio/inbound")


async def register_account(client: httpx.AsyncClient, **extra: Any) -> dict[str, Any]:
    fields = {
        "account_sid": ACCOUNT,
        "auth_token": TOKEN,
        "numbers": [FROM],
        "messaging_service_sids": [SERVICE],
        "sent_delay_ms": 5,
        "delivered_delay_ms": 15,
        "callback_retry_base_ms": 5,
        "rate_limit_per_second": 100,
        **extra,
    }
    response = await client.post("/_sandbox/sms/accounts", json=fields)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


async def settle(client: httpx.AsyncClient, account: str = ACCOUNT) -> dict[str, Any]:
    """The account's activity once every pending status change and callback is done."""
    response = await client.get(f"/_sandbox/sms/accounts/{account}/messages?wait=true")
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def forms(receiver: Receiver) -> list[tuple[str, dict[str, str], dict[str, str]]]:
    """Each POST the receiver got: its target (path and query), headers and form fields."""
    return [
        (target, headers, dict(parse_qsl(body.decode(), keep_blank_values=True)))
        for method, target, headers, body in receiver.requests
        if method == "POST"
    ]
