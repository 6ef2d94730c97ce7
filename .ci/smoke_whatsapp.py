"""Smoke check of the demo's WhatsApp loop on a running `make run`: the default templates get
approved by the sandbox's review (verdict by signed webhook), a channel check sends one, and its
statuses come back through the webhooks service; the SMS and e-mail senders answer their
checks.  Usage: smoke_whatsapp.py API_URL TOKEN."""

from __future__ import annotations

import sys
import time
from typing import Any

import httpx

API = httpx.Client(
    base_url=sys.argv[1], headers={"Authorization": f"Bearer {sys.argv[2]}"}, timeout=10
)


def call(method: str, path: str, body: Any = None, **params: str) -> Any:
    response = API.request(method, path, json=body, params=params or None)
    response.raise_for_status()
    return response.json()


def until(what: str, check: Any, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(1)
    raise SystemExit(f"smoke: {what} did not happen in {timeout:.0f} s")


def approved() -> bool:
    rows = call("GET", "/v1/templates/", channel_kind="whatsapp")
    return bool(rows) and all(r["status"] == "APPROVED" for r in rows)


until("templates approved", approved, 90)
channel = next(c for c in call("GET", "/v1/channels/") if c["kind"] == "whatsapp")
sent = call("POST", f"/v1/channels/{channel['id']}/test", {"to": "+55 11 98765-4321"})
if not sent["accepted"]:
    raise SystemExit(f"smoke: the channel check was refused: {sent['refusal']}")


def statuses() -> list[str] | None:
    path = f"/v1/channels/{channel['id']}/tests"
    heard = [s["status"] for s in call("GET", path, message_id=sent["message_id"])]
    return heard if "read" in heard else None


heard = until("the read status", statuses, 60)
print(f"whatsapp: templates approved by webhook; test message statuses {heard}")

for kind, to in (("sms", "+55 11 98765-4321"), ("email", "maria@exemplo.com.br")):
    channel = next(c for c in call("GET", "/v1/channels/") if c["kind"] == kind)
    checked = call("POST", f"/v1/channels/{channel['id']}/test", {"to": to})
    if not checked["accepted"]:
        raise SystemExit(f"smoke: the {kind} check was refused: {checked['refusal']}")
    print(f"{kind}: channel check accepted ({checked['message_id']})")


def planned() -> list[dict[str, Any]] | None:
    items: list[dict[str, Any]] = call("GET", "/v1/attempts")["items"]
    return items or None


attempts = until("the régua planned the demo's reminders", planned, 120)
print(f"collections: {len(attempts)} attempt(s) planned by the régua, e.g. {attempts[0]['state']}")
