"""Issue #6's walk, over real HTTP as a retailer and its debtors live it: reminders leave through
the sandbox, their statuses and the debtors' answers arrive as signed webhooks at the webhooks
service (on a real port), the jobs act on them, and the operator reads the result in the inbox.

Ana taps "Já paguei" on a read reminder: the régua is held for her and the operator finds her at
the top of the inbox.  Bruno answers "pare": nothing more reaches him, on any channel.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import update

from shared import clock
from shared.config import Settings
from shared.domains.channels.defaults import QUICK_REPLIES
from shared.domains.collections.window import DEFAULT as DEFAULT_WINDOW
from shared.domains.evidence import dossier
from shared.models import ContactAttempt
from shared.tenancy import SYSTEM, use_scope
from tests.sandbox.test_end_to_end import PHONE_ID, SECRET, TOKEN, VERIFY, WABA_ID, World, _owner
from tests.sandbox.test_end_to_end import world as world  # the fixture
from tests.support.jobs import drain

SP = ZoneInfo("America/Sao_Paulo")
ANA, BRUNO = "+5511987650071", "+5511987650072"
SMS_ACCOUNT, SMS_TOKEN, SMS_FROM = "AC" + "0" * 32, "sms-token", "+5511940000001"


def _a_contact_morning() -> datetime:
    """10:00 in São Paulo on the latest day, today or before, when debtors may be contacted
    and that moment has passed (the sandbox stamps its webhooks with the real clock)."""
    now = datetime.now(UTC)
    day = now.astimezone(SP).date()
    while True:
        morning = datetime.combine(day, time(10), SP)
        if DEFAULT_WINDOW.hours_on(day, "SP") is not None and morning <= now:
            return morning.astimezone(UTC)
        day -= timedelta(days=1)


class Retailer:
    def __init__(self, world: World, headers: dict[str, str]) -> None:
        self.world, self.headers = world, headers

    async def call(self, method: str, path: str, body: Any = None, **params: Any) -> Any:
        r = await self.world.api.request(
            method, path, json=body, params=params or None, headers=self.headers
        )
        assert r.status_code < 300, (path, r.status_code, r.text)
        return r.json() if r.content else None

    async def debtor(self, ref: str, phone: str, due: str) -> None:
        await self.call(
            "PUT",
            f"/v1/customers/{ref}",
            {"name": f"Cliente {ref}", "phones": [phone], "state": "SP", "city": "São Paulo"},
        )
        body = {"customer_external_id": ref, "principal": "189.90", "due_date": due}
        await self.call("PUT", f"/v1/installments/P-{ref}", body)

    async def approve_templates(self) -> None:
        for template in await self.call("GET", "/v1/templates/"):
            if template["channel_kind"] == "whatsapp":
                await self.call("POST", f"/v1/templates/{template['id']}/submit")
        await drain(self.world.maker)  # the submissions reach the sandbox's template API
        await asyncio.sleep(0.05)  # its review
        await self.world.settle()  # the verdicts arrive by signed webhook

    async def remind(self, ref: str) -> dict[str, Any]:
        attempt: dict[str, Any] = await self.call("POST", f"/v1/customers/{ref}/remind")
        await drain(self.world.maker)  # the send job, through the sandbox
        await self.world.settle()  # statuses arrive signed and are applied
        return attempt

    async def attempt(self, attempt_id: str) -> dict[str, Any]:
        found: dict[str, Any] = await self.call("GET", f"/v1/attempts/{attempt_id}")
        return found


async def _sent_to(world: World, phone: str) -> list[dict[str, Any]]:
    activity = (await world.sandbox.get(f"/_sandbox/whatsapp/numbers/{PHONE_ID}")).json()
    return [m for m in activity["sent"] if m["to"] == phone.lstrip("+")]


async def _answer(world: World, phone: str, **reply: Any) -> None:
    r = await world.sandbox.post(
        f"/_sandbox/whatsapp/numbers/{PHONE_ID}/replies", json={"from": phone, **reply}
    )
    assert r.status_code == 201, r.text
    await world.settle()


async def _open_shop(
    world: World, settings: Settings, monkeypatch: pytest.MonkeyPatch, morning: datetime
) -> Retailer:
    """A retailer with its WhatsApp number and SMS account connected, Pix set, templates
    approved, and Ana and Bruno owing R$ 189,90 due today."""
    monkeypatch.setattr(clock, "now", lambda: morning)
    shop = Retailer(world, await _owner(world, settings))
    await shop.call(
        "POST",
        "/v1/channels",
        {
            "kind": "whatsapp",
            "name": "WhatsApp da loja",
            "phone_number_id": PHONE_ID,
            "waba_id": WABA_ID,
            "display_number": "+55 11 4000-0001",
            "access_token": TOKEN,
            "app_secret": SECRET,
            "verify_token": VERIFY,
        },
    )
    await shop.call(
        "POST",
        "/v1/channels",
        {
            "kind": "sms",
            "name": "SMS da loja",
            "account_sid": SMS_ACCOUNT,
            "auth_token": SMS_TOKEN,
            "from_number": SMS_FROM,
        },
    )
    # the sandbox would carry any SMS sent to them
    registered = await world.sandbox.post(
        "/_sandbox/sms/accounts",
        json={"account_sid": SMS_ACCOUNT, "auth_token": SMS_TOKEN, "numbers": [SMS_FROM]},
    )
    assert registered.status_code == 201, registered.text
    await shop.call(
        "PUT",
        "/v1/settings/pix",
        {"key": "11222333000181", "merchant_name": "Loja Ponta a Ponta", "city": "São Paulo"},
    )
    await shop.approve_templates()
    due = morning.astimezone(SP).date().isoformat()
    await shop.debtor("ANA", ANA, due)
    await shop.debtor("BRUNO", BRUNO, due)
    return shop


async def test_ja_paguei_holds_the_regua_for_the_operator_and_pare_stops_every_channel(
    world: World, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    morning = _a_contact_morning()
    shop = await _open_shop(world, settings, monkeypatch, morning)

    # the reminders leave, are delivered and read
    first = {ref: await shop.remind(ref) for ref in ("ANA", "BRUNO")}
    for ref, attempt in first.items():
        seen = await shop.attempt(attempt["id"])
        assert (seen["state"], seen["channel"]) == ("read", "whatsapp"), (ref, seen)
    [to_ana] = await _sent_to(world, ANA)
    assert "189,90" in str(to_ana["payload"])

    # Ana taps "Já paguei" on it
    paid = next(b for b in QUICK_REPLIES if b["text"] == "Já paguei")
    await _answer(
        world,
        ANA,
        type="button",
        text=paid["text"],
        payload=paid["payload"],
        context_id=to_ana["id"],
    )
    inbox = await shop.call("GET", "/v1/conversations")
    top = inbox["items"][0]
    assert (top["customer_external_id"], top["intent"], top["state"]) == (
        "ANA",
        "already_paid",
        "open",
    )
    assert top["priority"] > 0
    story = await shop.call("GET", f"/v1/conversations/{top['id']}")
    answers = [e for e in story["timeline"] if e["type"] == "message" and e["direction"] == "in"]
    assert [(e["payload"], e["intent"]) for e in answers] == [(paid["payload"], "already_paid")]
    held = await shop.call("POST", "/v1/customers/ANA/remind")
    assert (held["state"], held["reason"]) == ("skipped", "hold_paid_claim")
    # she was asked for the receipt, once, inside the window she opened
    assert len(await _sent_to(world, ANA)) == 2

    # Bruno answers "pare": confirmed once, then nothing more on any channel
    await _answer(world, BRUNO, type="text", text="pare de me mandar mensagem")
    assert len(await _sent_to(world, BRUNO)) == 2  # the reminder and the confirmation
    monkeypatch.setattr(clock, "now", lambda: morning + timedelta(days=1))
    later = await shop.call("POST", "/v1/customers/BRUNO/remind")
    await drain(world.maker)
    await world.settle()
    assert (later["state"], later["reason"]) == ("skipped", "opted_out"), later
    customer = await shop.call("GET", "/v1/customers/BRUNO")
    assert set(customer["opted_out"]) >= {"whatsapp", "sms"}
    assert len(await _sent_to(world, BRUNO)) == 2
    sms = (await world.sandbox.get(f"/_sandbox/sms/accounts/{SMS_ACCOUNT}/messages")).json()
    assert sms["messages"] == []


async def test_anas_dossier_tells_her_story_and_proves_the_text_she_read(
    world: World, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    morning = _a_contact_morning()
    shop = await _open_shop(world, settings, monkeypatch, morning)
    reminder = await shop.remind("ANA")
    [to_ana] = await _sent_to(world, ANA)
    paid = next(b for b in QUICK_REPLIES if b["text"] == "Já paguei")
    await _answer(
        world,
        ANA,
        type="button",
        text=paid["text"],
        payload=paid["payload"],
        context_id=to_ana["id"],
    )

    document = await shop.call("GET", "/v1/customers/ANA/dossier")

    assert document["customer"]["external_id"] == "ANA"
    assert [p["number"] for p in document["customer"]["phones"]] == [ANA]
    [installment] = document["installments"]
    assert (installment["external_id"], installment["principal"]) == ("P-ANA", "189.90")
    [attempt] = document["contact_attempts"]
    assert attempt["id"] == reminder["id"]
    assert "189,90" in attempt["rendered_text"] and "P-ANA" in attempt["rendered_text"]
    assert attempt["text_matches_hash"] is True
    assert [s["status"] for s in attempt["provider_statuses"]] == ["sent", "delivered", "read"]
    assert attempt["amounts"]["totals"]["total"] == "189.90"
    ins = [m for m in document["messages"] if m["direction"] == "in"]
    outs = [m for m in document["messages"] if m["direction"] == "out"]
    assert [(m["payload"], m["intent"]) for m in ins] == [(paid["payload"], "already_paid")]
    assert len(outs) == 1  # the request for the receipt
    assert [h["kind"] for h in document["holds"]] == ["paid_claim"]
    actions = [e["action"] for e in document["audit_events"]]
    assert "customer.reminded" in actions
    kinds = [e["type"] for e in document["timeline"]]
    assert {"installment", "contact_attempt", "message", "hold", "audit_event"} <= set(kinds)
    assert [e["at"] for e in document["timeline"]] == sorted(e["at"] for e in document["timeline"])
    assert document["export_sha256"] == dossier.digest(document)

    page = await world.api.get("/v1/customers/ANA/dossier.html", headers=shop.headers)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "Dossiê do cliente" in page.text and "Cliente ANA" in page.text
    assert "Texto confere com o hash registrado no envio" in page.text
    assert page.headers["x-export-sha256"] in page.text

    # an edit of the stored text afterwards shows
    async with world.maker() as session:
        await use_scope(session, SYSTEM)
        await session.execute(
            update(ContactAttempt)
            .where(ContactAttempt.id == uuid.UUID(reminder["id"]))
            .values(rendered_text=ContactAttempt.rendered_text + " (editado)")
        )
        await session.commit()
    edited = await shop.call("GET", "/v1/customers/ANA/dossier")
    assert edited["contact_attempts"][0]["text_matches_hash"] is False
