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

# Pix: the sandbox PSP pays an open installment's code; the PSP webhook settles it
SANDBOX = httpx.Client(base_url=sys.argv[1].replace(":8000", ":8002"), timeout=10)
code = call("GET", "/v1/installments/PAR-0003-01/pix")["payload"]


def psp_ready() -> bool:
    paid = SANDBOX.post("/_sandbox/pix/pay", json={"copia_e_cola": code})
    return paid.status_code == 201 and paid.json()["deliveries"][-1]["outcome"] == 200


until("the sandbox PSP holding the demo's Pix key", psp_ready, 60)


def settled() -> bool:
    return bool(call("GET", "/v1/installments/PAR-0003-01")["status"] == "paid")


until("the Pix settling the installment", settled, 60)
print("pix: paid in the sandbox PSP, settled by its signed webhook")

dossier = API.get("/v1/customers/CLI-0003/dossier.html")
dossier.raise_for_status()
if "Dossiê do cliente" not in dossier.text:
    raise SystemExit("smoke: the dossier did not render")
print(f"evidence: dossier of CLI-0003 rendered ({len(dossier.text)} bytes)")
