"""The collection engine through the API, as a retailer's managers, operators and systems use
it: governance settings, réguas, pins, holds, reminders, the attempts they leave behind, and
campaigns (their preview, sending one, and how it went)."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from shared.brazil.numbers import format_brl
from shared.brazil.pix import decode
from shared.domains.audit.service import Actor
from shared.domains.channels import schemas as channel_schemas
from shared.domains.channels import service as channels
from shared.domains.collections import holds, sending
from shared.domains.identity import schemas as identity_schemas
from shared.domains.identity import service as identity
from shared.domains.identity.service import CLI_ACTOR
from shared.domains.money.balance import balance_of
from shared.models import (
    AuditEvent,
    CollectionHold,
    ContactAttempt,
    ContactAttemptItem,
    Customer,
    Installment,
    MessageTemplate,
    OutboxJob,
    PixSettings,
    Role,
    TenantEvent,
)
from shared.tenancy import SYSTEM, use_scope
from tests.shared.domains.collections import test_sending as sending_world
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


async def test_every_retailer_starts_with_the_default_regua_and_agreement_regua(
    shop: Shop,
) -> None:
    r = await shop.call("GET", "/v1/cadences")

    assert r.status_code == 200
    default, agreements = r.json()
    assert (default["kind"], default["is_default"]) == ("regua", True)
    assert [s["offset_days"] for s in default["steps"]] == [-3, 0, 1, 5, 15]
    assert (agreements["kind"], agreements["is_default"]) == ("agreement", True)
    assert [(s["offset_days"], s["variants"][0]["template"]) for s in agreements["steps"]] == [
        (-2, "quita_acordo_lembrete_v1"),
        (0, "quita_acordo_vence_hoje_v1"),
        (3, "quita_acordo_atraso_v1"),
    ]
    only = await shop.call("GET", "/v1/cadences", kind="agreement")
    assert only.json() == [agreements]


async def test_an_agreement_regua_is_created_with_its_kind_which_cannot_change(
    shop: Shop,
) -> None:
    step = {**SMS_STEP, "offset_days": -1, "variants": [{"template": "quita_acordo_lembrete_v1"}]}

    created = await shop.cadence("Acordos VIP", step, kind="agreement", tags_any=["vip"])
    changed = await shop.call(
        "PUT",
        f"/v1/cadences/{created.json()['id']}",
        {"name": "Acordos VIP", "steps": [step], "kind": "regua"},
    )
    unknown = await shop.cadence("Outra", step, kind="acordo")

    assert created.status_code == 201, created.text
    assert (created.json()["kind"], created.json()["is_default"]) == ("agreement", False)
    assert changed.status_code == 422
    assert "kind" in _fields(changed)
    assert unknown.status_code == 422


async def test_a_customer_cannot_be_pinned_to_an_agreement_regua(shop: Shop) -> None:
    await shop.customer("C-1")
    (agreements,) = (await shop.call("GET", "/v1/cadences", kind="agreement")).json()

    r = await shop.call("PUT", "/v1/customers/C-1/cadence", {"cadence_id": agreements["id"]})

    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "cadence_id"


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
    for default in (await shop.call("GET", "/v1/cadences")).json():  # of each kind
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


async def test_an_operator_records_a_promise_which_holds_the_regua_until_that_day(
    shop: Shop,
) -> None:
    await shop.customer("C-1")
    await shop.installment("P-1", "C-1", today() - timedelta(days=2))
    until = (datetime.now(UTC) + timedelta(days=3)).isoformat()

    promise = await shop.call(
        "POST",
        "/v1/customers/C-1/holds",
        {"kind": "promise", "reason": "Prometeu por telefone", "until": until},
    )
    undated = await shop.call(
        "POST", "/v1/customers/C-1/holds", {"kind": "promise", "reason": "Sem data"}
    )
    held = await shop.call("POST", "/v1/customers/C-1/remind")

    assert promise.status_code == 201, promise.text
    assert (undated.status_code, _fields(undated)) == (
        422,
        {"until": undated.json()["errors"][0]["message"]},
    )
    assert (held.json()["state"], held.json()["reason"]) == ("skipped", "hold_promise")


@pytest.mark.parametrize("paid", [True, False])
async def test_a_promise_past_its_day_is_judged_kept_or_broken(
    shop: Shop, session: AsyncSession, paid: bool
) -> None:
    await shop.customer("C-1")
    await shop.installment("P-1", "C-1", today() - timedelta(days=10))
    await use_scope(session, SYSTEM)
    customer = await session.scalar(select(Customer).where(Customer.external_id == "C-1"))
    assert customer is not None
    promised = CollectionHold(
        tenant_id=customer.tenant_id,
        customer_id=customer.id,
        kind="promise",
        reason="pago dia 10",
        created_at=datetime.now(UTC) - timedelta(days=3),
        until=datetime.now(UTC) - timedelta(minutes=1),
    )
    session.add(promised)
    await session.flush()
    if paid:
        payment = {
            "external_id": "PG-1",
            "installment_external_id": "P-1",
            "amount": "100.00",
            "paid_at": (datetime.now(UTC) - timedelta(hours=1)).isoformat(),
            "method": "pix",
        }
        assert (await shop.call("POST", "/v1/payments", payment)).status_code == 201

    await use_scope(session, SYSTEM)
    counts = await holds.judge_promises(session)
    again = await holds.judge_promises(session)

    outcome = "kept" if paid else "broken"
    assert counts == {"kept": int(paid), "broken": int(not paid)}
    assert again == {"kept": 0, "broken": 0}  # judged once
    [event] = await _audit(session, f"promise.{outcome}")
    told = await session.scalar(select(TenantEvent).where(TenantEvent.type == f"promise.{outcome}"))
    assert told is not None and told.data["customer_external_id"] == "C-1"
    reminders = (await shop.call("GET", "/v1/attempts")).json()["items"]
    if paid:
        assert reminders == []
    else:  # the régua resumes at once with the broken-promise reminder, under its governance
        assert [(a["kind"], a["id"]) for a in reminders] == [("manual", event.data["attempt_id"])]
        assert reminders[0]["template_name"] == "quita_promessa_quebrada_v1"


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
    body = {"kind": "paid_claim", "reason": " ", "until": "2020-01-01T00:00:00Z"}

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


async def _approve(session: AsyncSession, shop: Shop, template: str) -> None:
    await use_scope(session, SYSTEM)
    await session.execute(
        update(MessageTemplate)
        .where(MessageTemplate.tenant_id == shop.party.id, MessageTemplate.name == template)
        .values(status="APPROVED")
    )


def _campaign(**fields: Any) -> dict[str, Any]:
    return {
        "name": "Crediário em atraso",
        "template_name": "quita_atraso_d5_v1",
        "channel": "whatsapp",
        "fallback_channel": "sms",
        "filter": {"tags_any": ["crediario"], "min_days_overdue": 5},
        **fields,
    }


async def _segment(shop: Shop) -> None:
    """Four customers 10 days late: two reachable crediário ones, one do-not-contact, one who
    opted out of every channel the campaign uses; and one outside the segment."""
    await shop.customer("C-1", tags=["crediario"])
    await shop.customer("C-2", tags=["crediario"])
    await shop.customer("C-3", tags=["crediario"], do_not_contact=True)
    await shop.customer("C-4", tags=["crediario"], opted_out=["whatsapp", "sms"])
    await shop.customer("C-5", tags=["outro"])
    for ext in ("C-1", "C-2", "C-3", "C-4", "C-5"):
        await shop.installment(f"P-{ext}", ext, today() - timedelta(days=10))


async def test_a_campaign_messages_every_reachable_customer_of_the_segment(
    shop: Shop, session: AsyncSession
) -> None:
    await _approve(session, shop, "quita_atraso_d5_v1")
    await shop.customer("C-1", tags=["crediario"])
    await shop.customer("C-2", tags=["crediario"])
    await shop.customer("C-3", tags=["outro"])
    for ext in ("C-1", "C-2", "C-3"):
        await shop.installment(f"P-{ext}", ext, today() - timedelta(days=10))

    r = await shop.call("POST", "/v1/campaigns", _campaign())

    assert r.status_code == 201, r.text
    campaign = r.json()
    assert campaign["counts"] == {"matched": 2, "queued": 2, "held": {}}
    assert (campaign["states"], campaign["reasons"]) == ({"queued": 2}, {})
    assert campaign["filter"] == {
        "tags_any": ["crediario"],
        "min_days_overdue": 5,
        "max_days_overdue": None,
        "min_amount": None,
    }
    listed = (await shop.call("GET", "/v1/attempts", kind="campaign")).json()["items"]
    assert sorted(a["customer_external_id"] for a in listed) == ["C-1", "C-2"]
    assert {(a["state"], a["channel"], a["template_name"]) for a in listed} == {
        ("queued", "whatsapp", "quita_atraso_d5_v1")
    }
    detail = (await shop.call("GET", f"/v1/attempts/{listed[0]['id']}")).json()
    assert detail["step_id"] is None  # no régua step used up
    assert [i["step_id"] for i in detail["items"]] == [None]
    await use_scope(session, SYSTEM)
    attempts = list(await session.scalars(select(ContactAttempt)))
    assert {str(a.campaign_id) for a in attempts} == {campaign["id"]}
    jobs = list(
        await session.scalars(select(OutboxJob).where(OutboxJob.actor == "collections.send"))
    )
    # the campaign's messages share send jobs (one batch here)
    assert sorted(i for j in jobs for i in j.args["attempt_ids"]) == sorted(
        str(a.id) for a in attempts
    )
    assert {j.not_before for j in jobs} == {a.planned_for for a in attempts}
    [event] = await _audit(session, "campaign.created")
    assert event.data["counts"] == campaign["counts"]


async def test_a_campaign_holds_back_do_not_contact_and_opted_out_customers(
    shop: Shop, session: AsyncSession
) -> None:
    await _approve(session, shop, "quita_atraso_d5_v1")
    await _segment(shop)

    r = await shop.call("POST", "/v1/campaigns", _campaign())

    assert r.status_code == 201, r.text
    assert r.json()["counts"] == {
        "matched": 4,
        "queued": 2,
        "held": {"do_not_contact": 1, "opted_out": 1},
    }
    got = (await shop.call("GET", f"/v1/campaigns/{r.json()['id']}")).json()
    assert got["states"] == {"queued": 2, "skipped": 2}
    assert got["reasons"] == {"do_not_contact": 1, "opted_out": 1}
    held = (await shop.call("GET", "/v1/attempts", kind="campaign", state="skipped")).json()
    listed_queued = (await shop.call("GET", "/v1/attempts", kind="campaign", state="queued")).json()
    assert {(a["customer_external_id"], a["reason"]) for a in held["items"]} == {
        ("C-3", "do_not_contact"),
        ("C-4", "opted_out"),
    }
    await use_scope(session, SYSTEM)
    jobs = await session.scalars(select(OutboxJob).where(OutboxJob.actor == "collections.send"))
    queued = [a["id"] for a in listed_queued["items"]]
    # one send job for the two queued messages, nothing for the held ones
    assert sorted(i for j in jobs for i in j.args["attempt_ids"]) == sorted(queued)


async def test_a_campaign_counts_what_its_preview_counted(
    shop: Shop, session: AsyncSession
) -> None:
    await _approve(session, shop, "quita_atraso_d5_v1")
    await _segment(shop)
    await shop.call("POST", "/v1/customers/C-2/holds", {"kind": "pause", "reason": "Pediu prazo"})
    body = _campaign(filter={"tags_any": ["crediario"], "max_days_overdue": 30})

    preview = (await shop.call("POST", "/v1/campaigns/preview", body["filter"])).json()
    created = (await shop.call("POST", "/v1/campaigns", body)).json()

    assert created["counts"] == {
        "matched": preview["customers"],
        "queued": preview["would_contact"],
        "held": preview["reasons"],
    }
    assert created["counts"]["held"] == {"do_not_contact": 1, "hold_pause": 1, "opted_out": 1}


async def test_a_repeated_campaign_is_a_new_one_held_back_by_the_daily_cap(
    shop: Shop, session: AsyncSession
) -> None:
    await _approve(session, shop, "quita_atraso_d5_v1")
    await _segment(shop)

    first = await shop.call("POST", "/v1/campaigns", _campaign())
    second = await shop.call("POST", "/v1/campaigns", _campaign())
    listed = await shop.call("GET", "/v1/campaigns")
    page = await shop.call("GET", "/v1/campaigns", limit=1)
    rest = await shop.call("GET", "/v1/campaigns", limit=1, cursor=page.json()["next_cursor"])

    assert second.status_code == 201, second.text
    assert second.json()["id"] != first.json()["id"]
    assert second.json()["counts"] == {
        "matched": 4,
        "queued": 0,
        "held": {"daily_cap": 2, "do_not_contact": 1, "opted_out": 1},
    }
    assert [c["id"] for c in listed.json()["items"]] == [second.json()["id"], first.json()["id"]]
    assert [c["id"] for c in page.json()["items"] + rest.json()["items"]] == [
        second.json()["id"],
        first.json()["id"],
    ]
    assert rest.json()["next_cursor"] is None
    assert len(await _audit(session, "campaign.created")) == 2


async def test_a_whatsapp_campaign_needs_an_approved_template(shop: Shop) -> None:
    await _segment(shop)

    r = await shop.call("POST", "/v1/campaigns", _campaign())

    assert r.status_code == 422
    assert "not APPROVED" in _fields(r)["template_name"]
    assert (await shop.call("GET", "/v1/campaigns")).json()["items"] == []


async def test_a_campaign_is_refused_field_by_field(shop: Shop) -> None:
    body = _campaign(
        name=" ",
        channel="sms",
        fallback_channel="sms",
        template_name="nao_existe",
        filter={"min_days_overdue": 10, "max_days_overdue": 5, "min_amount": "1.234"},
    )

    r = await shop.call("POST", "/v1/campaigns", body)

    assert r.status_code == 422
    assert _fields(r) == {
        "name": "must not be blank",
        "fallback_channel": "must differ from channel",
        "template_name": "no sms template is named 'nao_existe'",
        "filter.max_days_overdue": "must not be lower than min_days_overdue",
        "filter.min_amount": "must have at most two decimal places",
    }


async def test_operators_send_campaigns_and_viewers_only_read_them(
    shop: Shop, ids: Identities
) -> None:
    await _segment(shop)
    operator = await _as(ids, shop, Role.OPERATOR)
    viewer = await _as(ids, shop, Role.VIEWER)
    body = _campaign(channel="sms", fallback_channel=None)

    sent = await shop.call("POST", "/v1/campaigns", body, headers=operator)
    refused = await shop.call("POST", "/v1/campaigns", body, headers=viewer)
    read = await shop.call("GET", f"/v1/campaigns/{sent.json()['id']}", headers=viewer)

    assert (sent.status_code, refused.status_code, read.status_code) == (201, 403, 200)
    assert read.json()["created_by"].startswith("user:")


async def test_another_retailers_campaign_is_not_found(shop: Shop, ids: Identities) -> None:
    await _segment(shop)
    mine = (
        await shop.call("POST", "/v1/campaigns", _campaign(channel="sms", fallback_channel=None))
    ).json()
    other = bearer(await ids.token(await ids.party("Outra Loja")))

    got = await shop.call("GET", f"/v1/campaigns/{mine['id']}", headers=other)
    listed = await shop.call("GET", "/v1/campaigns", headers=other)

    assert got.status_code == 404
    assert listed.json()["items"] == []


sandbox = sending_world.sandbox  # the sandbox the sending tests use, with its WhatsApp number


@pytest.fixture
async def sandboxed(
    api: httpx.AsyncClient, ids: Identities, session: AsyncSession, sandbox: httpx.AsyncClient
) -> Shop:
    """A retailer whose WhatsApp number and Pix key are real to the sandbox (the sending tests'
    number), its templates approved."""
    party = await ids.party("Loja Campanha")
    await use_scope(session, SYSTEM)
    await channels.create(
        session,
        party.tenant.id,
        channel_schemas.WhatsAppIn(
            name="WhatsApp",
            phone_number_id=sending_world.PHONE_ID,
            waba_id=sending_world.WABA_ID,
            display_number="+55 11 0000-0055",
            access_token=sending_world.TOKEN,
            app_secret="sec-55",
            verify_token="v",
        ),
        ACTOR,
    )
    session.add(
        PixSettings(
            tenant_id=party.tenant.id,
            key="11222333000181",
            key_type="cnpj",
            merchant_name="Loja Campanha",
            city="Sao Paulo",
        )
    )
    await session.execute(
        update(MessageTemplate)
        .where(MessageTemplate.tenant_id == party.tenant.id)
        .values(status="APPROVED")
    )
    await session.flush()
    return Shop(api, party, await ids.token(party, role=None))


async def test_a_campaign_message_leaves_with_the_debtors_amounts_and_pix_code(
    sandboxed: Shop, sandbox: httpx.AsyncClient, session: AsyncSession
) -> None:
    customer = await sandboxed.customer("C-1", tags=["crediario"], phones=[sending_world.MARIA])
    await sandboxed.installment("P-1", "C-1", today() - timedelta(days=10))
    body = _campaign(fallback_channel=None)
    await sandboxed.call("POST", "/v1/campaigns", body)
    await use_scope(session, SYSTEM)
    attempt = await session.scalar(select(ContactAttempt).where(ContactAttempt.kind == "campaign"))
    assert attempt is not None and attempt.state == "queued"

    state = await sending.send_attempt(session, attempt.id, now=attempt.planned_for)

    assert state == "sent"
    number = f"/_sandbox/whatsapp/numbers/{sending_world.PHONE_ID}"
    (message,) = (await sandbox.get(number, params={"wait": "true"})).json()["sent"]
    assert message["payload"]["template"]["name"] == "quita_atraso_d5_v1"
    inst = await session.scalar(select(Installment).where(Installment.external_id == "P-1"))
    maria = await session.get(Customer, uuid.UUID(customer["id"]))
    assert inst is not None and maria is not None
    expected = await balance_of(session, inst, maria, attempt.contact_day)
    parameters = [p["text"] for p in message["payload"]["template"]["components"][0]["parameters"]]
    assert format_brl(expected.total) in parameters
    pix = next(p for p in parameters if p.startswith("000201"))
    assert decode(pix).amount == expected.total


async def test_a_campaigns_detail_follows_its_messages_to_their_fallbacks(
    shop: Shop, session: AsyncSession
) -> None:
    await _approve(session, shop, "quita_atraso_d5_v1")
    await _segment(shop)
    created = (await shop.call("POST", "/v1/campaigns", _campaign())).json()
    await use_scope(session, SYSTEM)
    first = await session.scalar(
        select(ContactAttempt).where(
            ContactAttempt.kind == "campaign", ContactAttempt.state == "queued"
        )
    )
    assert first is not None
    first.state, first.reason = "failed", "not_on_whatsapp"  # as the sender records it
    await sending.queue_fallback(session, first)

    got = (await shop.call("GET", f"/v1/campaigns/{created['id']}")).json()

    assert got["counts"]["queued"] == 2  # what creation decided stays as it was
    assert got["states"] == {"failed": 1, "queued": 2, "skipped": 2}
    assert got["reasons"] == {"do_not_contact": 1, "not_on_whatsapp": 1, "opted_out": 1}
