"""What the sandbox tests share: the sandbox number they register and how."""

from __future__ import annotations

from typing import Any

import httpx

from tests.sandbox.receiver import VERIFY_TOKEN

PHONE_ID = "106540352242922"
WABA_ID = "102290129340398"
TOKEN = "sandbox-token"
SECRET = "sandbox-app-secret"
DEBTOR = "5511987654321"
BODY = "Olá {{1}}, sua compra na {{2}} no valor de {{3}} vence em {{4}}."


async def register(client: httpx.AsyncClient, **extra: Any) -> dict[str, Any]:
    fields = {
        "phone_number_id": PHONE_ID,
        "waba_id": WABA_ID,
        "display_phone_number": "551140028922",
        "access_token": TOKEN,
        "app_secret": SECRET,
        "verify_token": VERIFY_TOKEN,
        "sent_delay_ms": 5,
        "delivered_delay_ms": 15,
        "read_delay_ms": 25,
        "webhook_retry_base_ms": 5,
        **extra,
    }
    response = await client.post("/_sandbox/whatsapp/numbers", json=fields)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result
