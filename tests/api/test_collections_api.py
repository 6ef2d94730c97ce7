"""The collection engine through the API, as a retailer's managers, operators and systems use
it: governance settings, réguas, pins, holds, reminders, the attempts they leave behind and a
campaign's preview."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from shared.domains.audit.service import Actor
from shared.domains.channels import schemas as channel_schemas
from shared.domains.channels import service as channels
from shared.domains.identity import schemas as identity_schemas
from shared.domains.identity import service as identity
from shared.domains.identity.service import CLI_ACTOR
from shared.models import (
    AuditEvent,
    ContactAttempt,
    ContactAttemptItem,
    Customer,
    MessageTemplate,
    Role,
)
from shared.tenancy import SYSTEM, use_scope
from tests.support.identity import Identities, Party, bearer

SP = ZoneInfo("America/Sao_Paulo")
ACTOR = Actor("cli", None)
SMS_STEP = {
    "offset_days": 5,
    "channel": "sms",
    "fallback_channel": "email",
    "variants": [{"template": "quita_atraso_d5_v1", "weight": 1}],
}


def today() -> date:
    return datetime.now(SP).date()


class Shop:
    """A retailer with WhatsApp and SMS senders, seen through its API client's token."""

    def __init__(self, api: httpx.AsyncClient, party: Party, token: str) -> None:
        self.api, self.party, self.headers = api, party, bearer(token)

    async def call(
        self, method: str, path: str, body: Any = None, *, headers: Any = None, **params: Any
    ) -> httpx.Response:
        return await self.api.request(
            method, path, json=body, params=params, headers=headers or self.headers
        )

    async def customer(self, ext: str, **fields: Any) -> dict[str, Any]:
        body = {"name": "Maria da Silva", "phones": ["+5511987654321"], "state": "SP", **fields}
        r = await self.call("PUT", f"/v1/customers/{ext}", body)
        assert r.status_code in (200, 201), r.text
        return dict(r.json())

    async def installment(self, ext: str, customer: str, due: date) -> dict[str, Any]:
        body = {"customer_external_id": customer, "principal": "250.00", "due_date": str(due)}
        r = await self.call("PUT", f"/v1/installments/{ext}", body)
        assert r.status_code in (200, 201), r.text
        return dict(r.json())

    async def cadence(self, name: str, *steps: dict[str, Any], **fields: Any) -> httpx.Response:
        return await self.call(
            "POST", "/v1/cadences", {"name": name, "steps": list(steps or [SMS_STEP]), **fields}
        )


@pytest.fixture
async def shop(api: httpx.AsyncClient, ids: Identities, session: AsyncSession) -> Shop:
    party = await ids.party("Loja Régua")
    await use_scope(session, SYSTEM)
    for data in (
        channel_schemas.WhatsAppIn(
            name="WhatsApp",
            phone_number_id=str(uuid.uuid4().int)[:15],
            waba_id="1",
            display_number="+55 11 4000-0000",
            access_token="t",
            app_secret="s",
            verify_token="v",
        ),
        channel_schemas.SmsIn(
            name="SMS", account_sid="AC1", auth_token="t", from_number="+5511940000000"
        ),
    ):
        await channels.create(session, party.tenant.id, data, ACTOR)
    return Shop(api, party, await ids.token(party, role=None))


async def _as(ids: Identities, shop: Shop, role: Role) -> dict[str, str]:
    return bearer(await ids.token(shop.party, role=role))


async def _audit(session: AsyncSession, action: str) -> list[AuditEvent]:
    await use_scope(session, SYSTEM)
    return list(await session.scalars(select(AuditEvent).where(AuditEvent.action == action)))


def _fields(r: httpx.Response) -> dict[str, str]:
    return {e["field"]: e["message"] for e in r.json().get("errors", [])}


# --- settings -----------------------------------------------------------------------------------


async def test_settings_start_at_the_lawful_defaults(shop: Shop) -> None:
    r = await shop.call("GET", "/v1/settings/collections")

    assert r.status_code == 200, r.text
    assert r.json()["window"] == {
        "weekdays": ["08:00", "20:00"],
        "saturday": ["08:00", "14:00"],
        "avoid_carnival": False,
    }
    assert (r.json()["daily_cap"], r.json()["weekly_cap"]) == (1, 3)


async def test_a_manager_narrows_the_window_and_tightens_the_caps(
    shop: Shop, session: AsyncSession
) -> None:
    body = {
        "window": {"weekdays": ["09:00", "18:00"], "saturday": None, "avoid_carnival": True},
        "daily_cap": 2,
        "weekly_cap": 4,
        "catch_up_days": 1,
        "paid_hold_days": 5,
        "fallback_after_hours": 12,
    }

    r = await shop.call("PUT", "/v1/settings/collections", body)
    again = await shop.call("GET", "/v1/settings/collections")

    assert r.status_code == 200, r.text
    assert again.json()["window"] == body["window"]
    assert again.json()["daily_cap"] == 2
    events = await _audit(session, "collection_settings.updated")
    assert len(events) == 1
    assert events[0].data["after"]["daily_cap"] == 2


async def test_a_window_wider_than_the_law_is_refused_naming_the_field_and_the_limit(
    shop: Shop,
) -> None:
    body = {"window": {"weekdays": ["07:00", "20:00"], "saturday": ["08:00", "16:00"]}}

    r = await shop.call("PUT", "/v1/settings/collections", body)

    assert r.status_code == 422
    assert r.headers["content-type"].startswith("application/problem+json")
    assert _fields(r) == {
        "window.weekdays": "the law allows at most 08:00-20:00",
        "window.saturday": "the law allows at most 08:00-14:00",
    }


async def test_a_window_that_ends_before_it_starts_is_refused(shop: Shop) -> None:
    body = {"window": {"weekdays": ["18:00", "09:00"], "saturday": ["9h", "12h"]}}

    r = await shop.call("PUT", "/v1/settings/collections", body)

    assert r.status_code == 422
    assert _fields(r) == {
        "window.weekdays": "the start must come before the end",
        "window.saturday": 'must be two times such as ["08:00", "20:00"]',
    }


async def test_caps_out_of_range_are_refused_field_by_field(shop: Shop) -> None:
    body = {"daily_cap": 4, "weekly_cap": 0, "catch_up_days": 16, "fallback_after_hours": 0}

    r = await shop.call("PUT", "/v1/settings/collections", body)

    assert r.status_code == 422
    assert set(_fields(r)) == {"daily_cap", "weekly_cap", "catch_up_days", "fallback_after_hours"}


async def test_a_weekly_cap_below_the_daily_cap_is_refused(shop: Shop) -> None:
    r = await shop.call("PUT", "/v1/settings/collections", {"daily_cap": 3, "weekly_cap": 2})

    assert r.status_code == 422
    assert _fields(r) == {"weekly_cap": "must not be lower than daily_cap"}


async def test_operators_and_viewers_cannot_change_the_settings(
    shop: Shop, ids: Identities
) -> None:
    for role in (Role.OPERATOR, Role.VIEWER):
        headers = await _as(ids, shop, role)
        r = await shop.call("PUT", "/v1/settings/collections", {}, headers=headers)
        assert r.status_code == 403, role


# --- cadences -----------------------------------------------------------------------------------


async def test_every_retailer_starts_with_the_default_regua(shop: Shop) -> None:
    r = await shop.call("GET", "/v1/cadences")

    assert r.status_code == 200
    [default] = r.json()
    assert default["is_default"] is True
    assert [s["offset_days"] for s in default["steps"]] == [-3, -1, 0, 1, 5, 15]


async def test_a_segment_regua_is_created_and_read_back(shop: Shop, session: AsyncSession) -> None:
    r = await shop.cadence("Crediário", SMS_STEP, tags_any=["crediario"], priority=10)

    assert r.status_code == 201, r.text
    created = r.json()
    got = await shop.call("GET", f"/v1/cadences/{created['id']}")
    assert got.json() == created
    assert created["tags_any"] == ["crediario"]
    assert created["steps"][0]["variants"] == [{"template": "quita_atraso_d5_v1", "weight": 1}]
    assert len(await _audit(session, "cadence.created")) == 1


async def test_a_whatsapp_step_needs_an_approved_template(
    shop: Shop, session: AsyncSession
) -> None:
    step = {**SMS_STEP, "channel": "whatsapp", "fallback_channel": "sms"}

    draft = await shop.cadence("WhatsApp", step)
    await use_scope(session, SYSTEM)
    await session.execute(
        update(MessageTemplate)
        .where(
            MessageTemplate.tenant_id == shop.party.id,
            MessageTemplate.name == "quita_atraso_d5_v1",
        )
        .values(status="APPROVED")
    )
    approved = await shop.cadence("WhatsApp", step)

    assert draft.status_code == 422
    assert "not APPROVED" in _fields(draft)["steps[0].variants[0].template"]
    assert approved.status_code == 201, approved.text


async def test_an_unknown_template_or_a_repeated_offset_is_refused(shop: Shop) -> None:
    unknown = {**SMS_STEP, "offset_days": 1, "variants": [{"template": "nao_existe"}]}
    twice = {**SMS_STEP, "fallback_channel": "sms"}

    r = await shop.cadence("Ruim", SMS_STEP, unknown, twice)

    assert r.status_code == 422
    assert _fields(r) == {
        "steps[1].variants[0].template": "no sms template is named 'nao_existe'",
        "steps[2].fallback_channel": "must differ from channel",
        "steps[2].offset_days": "repeats the offset of steps[0]",
    }


async def test_step_ranges_and_weights_are_checked(shop: Shop) -> None:
    step = {
        **SMS_STEP,
        "offset_days": 400,
        "holdout_percent": 60,
        "min_amount": "1.234",
        "variants": [{"template": "quita_atraso_d5_v1", "weight": 0}],
    }

    r = await shop.cadence("Ruim", step)

    assert r.status_code == 422
    assert set(_fields(r)) == {
        "steps[0].offset_days",
        "steps[0].holdout_percent",
        "steps[0].min_amount",
        "steps[0].variants",
    }


async def test_two_reguas_cannot_share_a_name(shop: Shop) -> None:
    assert (await shop.cadence("VIP")).status_code == 201

    r = await shop.cadence("VIP")

    assert r.status_code == 409
    assert r.json()["code"] == "duplicate_cadence"


async def test_replacing_the_steps_keeps_the_rows_of_the_offsets_that_stay(
    shop: Shop, session: AsyncSession
) -> None:
    first = {**SMS_STEP, "offset_days": 1, "variants": [{"template": "quita_atraso_d1_v1"}]}
    created = (await shop.cadence("Régua", first, SMS_STEP)).json()
    kept = {s["offset_days"]: s["id"] for s in created["steps"]}[5]
    changed = {**SMS_STEP, "holdout_percent": 10}
    later = {**SMS_STEP, "offset_days": 10, "variants": [{"template": "quita_atraso_d5_v1"}]}

    r = await shop.call(
        "PUT",
        f"/v1/cadences/{created['id']}",
        {"name": "Régua", "steps": [later, changed], "active": False},
    )

    assert r.status_code == 200, r.text
    steps = {s["offset_days"]: s for s in r.json()["steps"]}
    assert sorted(steps) == [5, 10]
    assert steps[5]["id"] == kept
    assert steps[5]["holdout_percent"] == 10
    assert r.json()["active"] is False
    [event] = await _audit(session, "cadence.updated")
    assert event.data["steps"] == {"added": [10], "removed": [1], "changed": [5]}


async def test_the_default_regua_cannot_be_deleted(shop: Shop) -> None:
    [default] = (await shop.call("GET", "/v1/cadences")).json()

    r = await shop.call("DELETE", f"/v1/cadences/{default['id']}")

    assert r.status_code == 409
    assert r.json()["code"] == "default_cadence"


async def test_deleting_a_regua_returns_its_pinned_customers_to_the_default(
    shop: Shop, session: AsyncSession
) -> None:
    customer = await shop.customer("C-1")
    vip = (await shop.cadence("VIP")).json()
    await shop.call("PUT", "/v1/customers/C-1/cadence", {"cadence_id": vip["id"]})

    r = await shop.call("DELETE", f"/v1/cadences/{vip['id']}")

    assert r.status_code == 204
    assert (await shop.call("GET", f"/v1/cadences/{vip['id']}")).status_code == 404
    await use_scope(session, SYSTEM)
    pinned = await session.scalar(select(Customer.cadence_id).where(Customer.id == customer["id"]))
    assert pinned is None


# --- pins ---------------------------------------------------------------------------------------


async def test_a_customer_is_pinned_and_unpinned(shop: Shop, session: AsyncSession) -> None:
    await shop.customer("C-1")
    vip = (await shop.cadence("VIP")).json()

    pinned = await shop.call("PUT", "/v1/customers/C-1/cadence", {"cadence_id": vip["id"]})
    unpinned = await shop.call("PUT", "/v1/customers/C-1/cadence", {"cadence_id": None})

    assert pinned.status_code == 200, pinned.text
    assert (pinned.json()["cadence_id"], pinned.json()["cadence_name"]) == (vip["id"], "VIP")
    assert unpinned.json()["cadence_id"] is None
    assert len(await _audit(session, "customer.cadence_pinned")) == 1


async def test_a_customer_cannot_be_pinned_to_another_retailers_regua(
    shop: Shop, ids: Identities
) -> None:
    await shop.customer("C-1")
    other = await ids.party("Outra Loja")
    theirs = await shop.call("GET", "/v1/cadences", headers=bearer(await ids.token(other)))

    r = await shop.call("PUT", "/v1/customers/C-1/cadence", {"cadence_id": theirs.json()[0]["id"]})

    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "cadence_id"


# --- reminders, holds and attempts --------------------------------------------------------------


async def test_a_reminder_is_queued_inside_the_debtors_window(
    shop: Shop, session: AsyncSession
) -> None:
    await shop.customer("C-1")
    overdue = await shop.installment("P-1", "C-1", today() - timedelta(days=6))

    r = await shop.call("POST", "/v1/customers/C-1/remind")

    assert r.status_code == 202, r.text
    attempt = r.json()
    assert (attempt["kind"], attempt["state"], attempt["reason"]) == ("manual", "queued", None)
    assert attempt["template_name"] == "quita_atraso_d5_v1"
    assert datetime.fromisoformat(attempt["planned_for"]) >= datetime.now(UTC) - timedelta(
        minutes=1
    )
    assert attempt["items"] == [
        {"installment_id": overdue["id"], "installment_external_id": "P-1", "step_id": None}
    ]
    assert len(await _audit(session, "customer.reminded")) == 1


async def test_a_second_reminder_the_same_day_is_held_by_the_daily_cap(shop: Shop) -> None:
    await shop.customer("C-1")
    await shop.installment("P-1", "C-1", today() - timedelta(days=2))

    await shop.call("POST", "/v1/customers/C-1/remind")
    second = await shop.call("POST", "/v1/customers/C-1/remind")

    assert second.status_code == 202
    assert (second.json()["state"], second.json()["reason"]) == ("skipped", "daily_cap")


async def test_a_reminder_with_nothing_due_is_a_conflict(shop: Shop) -> None:
    await shop.customer("C-1")
    await shop.installment("P-1", "C-1", today() + timedelta(days=20))

    r = await shop.call("POST", "/v1/customers/C-1/remind")

    assert r.status_code == 409
    assert r.json()["code"] == "nothing_to_remind"


async def test_viewers_cannot_remind_or_hold(shop: Shop, ids: Identities) -> None:
    await shop.customer("C-1")
    headers = await _as(ids, shop, Role.VIEWER)

    remind = await shop.call("POST", "/v1/customers/C-1/remind", headers=headers)
    hold = await shop.call(
        "POST", "/v1/customers/C-1/holds", {"kind": "pause", "reason": "x"}, headers=headers
    )

    assert (remind.status_code, hold.status_code) == (403, 403)


async def test_a_pause_cancels_the_queued_message_and_is_released_later(
    shop: Shop, ids: Identities, session: AsyncSession
) -> None:
    await shop.customer("C-1")
    await shop.installment("P-1", "C-1", today() - timedelta(days=2))
    queued = (await shop.call("POST", "/v1/customers/C-1/remind")).json()
    operator = await _as(ids, shop, Role.OPERATOR)

    hold = await shop.call(
        "POST",
        "/v1/customers/C-1/holds",
        {"kind": "pause", "reason": "Cliente pediu uma semana"},
        headers=operator,
    )
    attempt = await shop.call("GET", f"/v1/attempts/{queued['id']}")
    listed = await shop.call("GET", "/v1/customers/C-1/holds")
    released = await shop.call(
        "DELETE", f"/v1/customers/C-1/holds/{hold.json()['id']}", headers=operator
    )
    after = await shop.call("POST", "/v1/customers/C-1/remind")

    assert hold.status_code == 201, hold.text
    assert (hold.json()["active"], hold.json()["cancelled_attempts"]) == (True, 1)
    assert (attempt.json()["state"], attempt.json()["reason"]) == ("cancelled", "hold_pause")
    assert attempt.json()["decisions"][-1] == {"rule": "hold_pause", "held": True}
    assert [h["id"] for h in listed.json()] == [hold.json()["id"]]
    assert released.status_code == 200
    assert released.json()["active"] is False and released.json()["released_at"]
    assert after.json()["state"] == "queued"  # the cancelled message used up no daily cap
    assert len(await _audit(session, "hold.created")) == 1
    assert len(await _audit(session, "hold.released")) == 1


async def test_a_dispute_holds_the_next_reminder(shop: Shop) -> None:
    await shop.customer("C-1")
    await shop.installment("P-1", "C-1", today() - timedelta(days=2))
    await shop.call("POST", "/v1/customers/C-1/holds", {"kind": "dispute", "reason": "Contesta"})

    r = await shop.call("POST", "/v1/customers/C-1/remind")

    assert (r.json()["state"], r.json()["reason"]) == ("skipped", "hold_dispute")


async def test_a_hold_on_one_installment_must_name_one_of_the_customers(shop: Shop) -> None:
    await shop.customer("C-1")
    await shop.customer("C-2")
    await shop.installment("P-1", "C-1", today())
    await shop.installment("P-2", "C-2", today())

    own = await shop.call(
        "POST",
        "/v1/customers/C-1/holds",
        {"kind": "pause", "reason": "x", "installment_ref": "P-1"},
    )
    other = await shop.call(
        "POST",
        "/v1/customers/C-1/holds",
        {"kind": "pause", "reason": "x", "installment_ref": "P-2"},
    )

    assert own.status_code == 201
    assert own.json()["installment_id"] is not None
    assert other.status_code == 422
    assert _fields(other) == {"installment_ref": "no installment of this customer"}


async def test_a_hold_is_refused_field_by_field(shop: Shop) -> None:
    await shop.customer("C-1")
    body = {"kind": "promise", "reason": " ", "until": "2020-01-01T00:00:00Z"}

    r = await shop.call("POST", "/v1/customers/C-1/holds", body)

    assert r.status_code == 422
    assert set(_fields(r)) == {"kind", "reason", "until"}


async def test_attempts_are_listed_with_filters_and_a_cursor(
    shop: Shop, session: AsyncSession
) -> None:
    for ext in ("C-1", "C-2", "C-3"):
        await shop.customer(ext)
        await shop.installment(f"P-{ext}", ext, today() - timedelta(days=1))
        await shop.call("POST", f"/v1/customers/{ext}/remind")
    await shop.call("POST", "/v1/customers/C-1/remind")  # skipped: daily_cap

    everything = await shop.call("GET", "/v1/attempts")
    first = await shop.call("GET", "/v1/attempts", state="queued", limit=2)
    second = await shop.call(
        "GET", "/v1/attempts", state="queued", limit=2, cursor=first.json()["next_cursor"]
    )
    capped = await shop.call("GET", "/v1/attempts", reason="daily_cap")
    of_c2 = await shop.call("GET", "/v1/attempts", customer_ref="C-2", kind="manual")
    window = str(today())
    in_range = await shop.call("GET", "/v1/attempts", **{"from": window, "to": window})
    tomorrow = await shop.call("GET", "/v1/attempts", **{"from": str(today() + timedelta(1))})

    assert len(everything.json()["items"]) == 4
    pages = first.json()["items"] + second.json()["items"]
    assert sorted(a["customer_external_id"] for a in pages) == ["C-1", "C-2", "C-3"]
    assert second.json()["next_cursor"] is None
    assert [a["customer_external_id"] for a in capped.json()["items"]] == ["C-1"]
    assert [a["customer_external_id"] for a in of_c2.json()["items"]] == ["C-2"]
    assert len(in_range.json()["items"]) == 4
    assert tomorrow.json()["items"] == []


async def test_a_bad_cursor_is_a_field_error(shop: Shop) -> None:
    r = await shop.call("GET", "/v1/attempts", cursor="nonsense")

    assert r.status_code == 422
    assert _fields(r) == {"cursor": "use next_cursor as given"}


async def test_an_agency_sees_only_the_attempts_its_mandate_covers(
    shop: Shop, ids: Identities, session: AsyncSession
) -> None:
    await shop.customer("C-1", tags=["cobranca-externa"])
    await shop.customer("C-2")
    for ext in ("C-1", "C-2"):
        await shop.installment(f"P-{ext}", ext, today() - timedelta(days=1))
        await shop.call("POST", f"/v1/customers/{ext}/remind")
    agency = await ids.party("Agência", "agency")
    await use_scope(session, SYSTEM)
    await identity.create_mandate(
        session,
        shop.party.tenant,
        identity_schemas.MandateCreate(
            agency_id=agency.id, actions=["read"], tags=["cobranca-externa"]
        ),
        CLI_ACTOR,
    )
    headers = bearer(await ids.token(agency))

    listed = await shop.call("GET", "/v1/attempts", headers=headers)
    remind = await shop.call("POST", "/v1/customers/C-1/remind", headers=headers)

    assert [a["customer_external_id"] for a in listed.json()["items"]] == ["C-1"]
    assert remind.status_code == 403  # a mandate reads; only the retailer sends


async def test_another_retailers_ids_are_not_found(shop: Shop, ids: Identities) -> None:
    customer = await shop.customer("C-1")
    await shop.installment("P-1", "C-1", today())
    attempt = (await shop.call("POST", "/v1/customers/C-1/remind")).json()
    hold = await shop.call("POST", "/v1/customers/C-1/holds", {"kind": "pause", "reason": "x"})
    vip = (await shop.cadence("VIP")).json()
    other = bearer(await ids.token(await ids.party("Outra Loja")))

    for method, path in (
        ("GET", f"/v1/attempts/{attempt['id']}"),
        ("GET", f"/v1/cadences/{vip['id']}"),
        ("DELETE", f"/v1/cadences/{vip['id']}"),
        ("GET", f"/v1/customers/{customer['id']}/holds"),
        ("DELETE", f"/v1/customers/{customer['id']}/holds/{hold.json()['id']}"),
        ("POST", f"/v1/customers/{customer['id']}/remind"),
    ):
        r = await shop.call(method, path, headers=other)
        assert r.status_code == 404, f"{method} {path}"


# --- campaigns ----------------------------------------------------------------------------------


async def test_a_campaign_preview_counts_who_would_be_contacted_and_writes_nothing(
    shop: Shop, session: AsyncSession
) -> None:
    await shop.customer("C-1", tags=["crediario"])
    await shop.customer("C-2", tags=["crediario"], do_not_contact=True)
    await shop.customer("C-3", tags=["outro"])
    for ext in ("C-1", "C-2", "C-3"):
        await shop.installment(f"P-{ext}", ext, today() - timedelta(days=10))
    await shop.installment("P-new", "C-1", today() + timedelta(days=30))

    r = await shop.call(
        "POST",
        "/v1/campaigns/preview",
        {"tags_any": ["crediario"], "min_days_overdue": 5, "min_amount": "100.00"},
    )

    assert r.status_code == 200, r.text
    assert r.json() == {
        "customers": 2,
        "would_contact": 1,
        "held_back": 1,
        "reasons": {"do_not_contact": 1},
    }
    await use_scope(session, SYSTEM)
    assert await session.scalar(select(ContactAttempt.id)) is None
    assert await session.scalar(select(ContactAttemptItem.id)) is None
