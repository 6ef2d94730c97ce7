"""Agreements through the API, as an operator records what a debtor agreed by phone: the
accepted option becomes the agreement exactly, the originals stop being collected, an expired,
stale or already accepted offer is refused, a cancel puts everything back, an agency acts only
under a mandate that lets it negotiate, and the down payment's Pix pays it."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from shared.domains.audit.service import Actor
from shared.domains.inbound import journal
from shared.domains.negotiation import lifecycle
from shared.domains.portfolio import pix_webhooks
from shared.models import (
    Agreement,
    AgreementStatus,
    AuditEvent,
    ContactAttempt,
    ContactAttemptItem,
    Installment,
    Offer,
    Role,
    TenantEvent,
    WebhookEvent,
)
from shared.models.pix_connection import PixConnection
from shared.tenancy import SYSTEM, tenant_scope, use_scope
from tests.support.identity import Identities, Party, bearer
from tests.support.pix import body, connection, pix_item


class Caller:
    def __init__(self, api: httpx.AsyncClient, token: str) -> None:
        self.api, self.headers = api, bearer(token)

    async def call(
        self, method: str, path: str, data: Any = None, **headers: str
    ) -> httpx.Response:
        return await self.api.request(method, path, json=data, headers={**self.headers, **headers})


@pytest.fixture
async def shop(api: httpx.AsyncClient, ids: Identities) -> tuple[Party, Caller]:
    """A retailer with a Pix key whose customer owes two overdue installments."""
    party = await ids.party("Loja do Acordo")
    owner = Caller(api, await ids.token(party))
    pix = {"key": "11222333000181", "merchant_name": "Loja do Acordo", "city": "Recife"}
    assert (await owner.call("PUT", "/v1/settings/pix", pix)).status_code == 200
    r = await owner.call(
        "PUT",
        "/v1/customers/C-1",
        {"name": "Cliente Teste", "phones": ["+5511987650001"], "state": "SP", "tags": ["ext"]},
    )
    assert r.status_code == 201, r.text
    for ext, due in (("P-1", "2026-01-10"), ("P-2", "2026-02-10")):
        data = {"customer_external_id": "C-1", "principal": "400.00", "due_date": due}
        assert (await owner.call("PUT", f"/v1/installments/{ext}", data)).status_code == 201
    return party, owner


async def _menu(caller: Caller) -> dict[str, Any]:
    r = await caller.call("POST", "/v1/customers/C-1/offers")
    assert r.status_code == 201, r.text
    return dict(r.json())


def _option(offer: dict[str, Any], kind: str) -> dict[str, Any]:
    return next(o for o in offer["options"] if o["kind"] == kind)


async def _statuses(owner: Caller) -> dict[str, str]:
    return {
        ext: (await owner.call("GET", f"/v1/installments/{ext}")).json()["status"]
        for ext in ("P-1", "P-2")
    }


async def _agency(
    api: httpx.AsyncClient, ids: Identities, owner: Caller, actions: list[str]
) -> tuple[str, Caller]:
    agency = await ids.party("Agência Cobradora", "agency")
    r = await owner.call(
        "POST", "/v1/mandates", {"agency_id": str(agency.id), "actions": actions, "tags": ["ext"]}
    )
    assert r.status_code == 201, r.text
    return r.json()["id"], Caller(api, await ids.token(agency, role=Role.OPERATOR))


# --- accepting ---------------------------------------------------------------------------------


async def test_accepting_copies_the_option_and_renegotiates_the_originals(
    shop: tuple[Party, Caller], session: AsyncSession
) -> None:
    party, owner = shop
    offer = await _menu(owner)
    plan = _option(offer, "installments")

    r = await owner.call("POST", f"/v1/offers/{offer['id']}/accept", {"option_id": plan["id"]})

    assert r.status_code == 201, r.text
    agreement = r.json()
    assert agreement["status"] == "active" and agreement["option_id"] == plan["id"]
    assert Decimal(agreement["negotiated_total"]) == Decimal(plan["negotiated_total"])
    down, *rest = agreement["installments"]
    assert down["number"] == 0
    assert Decimal(down["amount"]) == Decimal(plan["down_payment"]["amount"])
    assert down["due_date"] == plan["down_payment"]["due_date"]
    assert [(i["number"], i["due_date"], Decimal(i["amount"])) for i in rest] == [
        (i["number"], i["due_date"], Decimal(i["amount"])) for i in plan["installments"]
    ]
    total = sum((Decimal(i["amount"]) for i in agreement["installments"]), Decimal(0))
    assert total == Decimal(plan["negotiated_total"]) + Decimal(plan["interest"])
    assert {o["status_before"] for o in agreement["originals"]} == {"open"}
    assert await _statuses(owner) == {"P-1": "renegotiated", "P-2": "renegotiated"}
    await use_scope(session, SYSTEM)
    audited = await session.scalar(
        select(AuditEvent).where(
            AuditEvent.action == "agreement.created", AuditEvent.subject_id == agreement["id"]
        )
    )
    assert audited is not None and audited.tenant_id == party.id
    event = await session.scalar(select(TenantEvent).where(TenantEvent.tenant_id == party.id))
    assert event is not None and event.type == "agreement.created"
    assert event.data["agreement_id"] == agreement["id"]


async def test_no_more_offers_once_the_customer_broke_as_many_agreements_as_the_policy_allows(
    shop: tuple[Party, Caller], session: AsyncSession
) -> None:
    party, owner = shop
    policy = (await owner.call("GET", "/v1/settings/negotiation")).json()
    policy.update(max_broken_agreements=1)
    saved = await owner.call(
        "PUT",
        "/v1/settings/negotiation",
        {k: v for k, v in policy.items() if k not in ("version", "created_by", "created_at")},
    )
    assert saved.status_code == 200, saved.text
    offer = await _menu(owner)
    accepted = await owner.call(
        "POST",
        f"/v1/offers/{offer['id']}/accept",
        {"option_id": _option(offer, "installments")["id"]},
    )
    assert accepted.status_code == 201, accepted.text
    await use_scope(session, tenant_scope(party.id))
    agreement = await session.get_one(Agreement, uuid.UUID(accepted.json()["id"]))
    await lifecycle.end(
        session,
        agreement,
        AgreementStatus.BROKEN,
        "test: installment overdue",
        Actor("system", "t"),
    )
    await session.flush()

    again = await owner.call("POST", "/v1/customers/C-1/offers")

    assert await _statuses(owner) == {"P-1": "open", "P-2": "open"}  # back in collection
    assert (again.status_code, again.json()["code"]) == (409, "offers_stopped")


async def test_accepting_cancels_the_messages_queued_about_the_originals(
    shop: tuple[Party, Caller], session: AsyncSession
) -> None:
    party, owner = shop
    offer = await _menu(owner)
    await use_scope(session, tenant_scope(party.id))
    attempt = ContactAttempt(
        tenant_id=party.id,
        customer_id=uuid.UUID(offer["customer_id"]),
        kind="manual",
        channel="whatsapp",
        state="queued",
        contact_day=datetime.now(UTC).date(),
        planned_for=datetime.now(UTC),
    )
    session.add(attempt)
    await session.flush()
    session.add(
        ContactAttemptItem(
            tenant_id=party.id,
            attempt_id=attempt.id,
            installment_id=uuid.UUID(offer["installment_ids"][0]),
        )
    )
    await session.flush()

    r = await owner.call("POST", f"/v1/offers/{offer['id']}/accept", {"option_id": "pay_today"})

    assert r.status_code == 201, r.text
    await session.refresh(attempt)
    assert attempt.state == "cancelled" and attempt.reason == "renegotiated"


async def test_an_expired_offer_is_refused(
    shop: tuple[Party, Caller], session: AsyncSession
) -> None:
    _, owner = shop
    offer = await _menu(owner)
    await use_scope(session, SYSTEM)
    await session.execute(
        update(Offer)
        .where(Offer.id == uuid.UUID(offer["id"]))
        .values(expires_at=datetime.now(UTC) - timedelta(minutes=1))
    )

    r = await owner.call("POST", f"/v1/offers/{offer['id']}/accept", {"option_id": "pay_today"})

    assert r.status_code == 409, r.text
    assert r.json()["code"] == "offer_expired"
    assert await _statuses(owner) == {"P-1": "open", "P-2": "open"}


async def test_an_offer_whose_installments_were_paid_since_is_stale(
    shop: tuple[Party, Caller],
) -> None:
    _, owner = shop
    offer = await _menu(owner)
    payment = {
        "external_id": "PG-1",
        "installment_external_id": "P-1",
        "amount": "50.00",
        "paid_at": datetime.now(UTC).isoformat(),
        "method": "pix",
    }
    assert (await owner.call("POST", "/v1/payments", payment)).status_code == 201

    r = await owner.call("POST", f"/v1/offers/{offer['id']}/accept", {"option_id": "pay_today"})

    assert r.status_code == 409, r.text
    assert r.json()["code"] == "offer_stale"
    assert "P-1" in r.json()["detail"]


async def test_an_offer_whose_installments_another_agreement_took_is_stale(
    shop: tuple[Party, Caller],
) -> None:
    _, owner = shop
    first, second = await _menu(owner), await _menu(owner)
    ok = await owner.call("POST", f"/v1/offers/{first['id']}/accept", {"option_id": "pay_today"})

    r = await owner.call("POST", f"/v1/offers/{second['id']}/accept", {"option_id": "pay_today"})

    assert ok.status_code == 201
    assert r.status_code == 409 and r.json()["code"] == "offer_stale"


async def test_an_offer_is_accepted_once_and_a_retry_with_its_key_answers_the_same(
    shop: tuple[Party, Caller],
) -> None:
    _, owner = shop
    offer = await _menu(owner)
    path = f"/v1/offers/{offer['id']}/accept"

    first = await owner.call("POST", path, {"option_id": "new_date"}, **{"Idempotency-Key": "k1"})
    retry = await owner.call("POST", path, {"option_id": "new_date"}, **{"Idempotency-Key": "k1"})
    again = await owner.call("POST", path, {"option_id": "pay_today"})

    assert first.status_code == 201, first.text
    assert retry.status_code == 200 and retry.json()["id"] == first.json()["id"]
    assert again.status_code == 409 and again.json()["code"] == "offer_already_accepted"


async def test_an_unknown_option_gets_a_field_error(shop: tuple[Party, Caller]) -> None:
    _, owner = shop
    offer = await _menu(owner)

    r = await owner.call("POST", f"/v1/offers/{offer['id']}/accept", {"option_id": "nope"})

    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["field"] == "option_id"


# --- reading and cancelling --------------------------------------------------------------------


async def test_agreements_are_listed_by_status_and_customer(shop: tuple[Party, Caller]) -> None:
    _, owner = shop
    offer = await _menu(owner)
    made = await owner.call("POST", f"/v1/offers/{offer['id']}/accept", {"option_id": "new_date"})

    active = await owner.call("GET", "/v1/agreements")
    by_customer = await owner.api.get(
        "/v1/agreements",
        params={"customer_id": offer["customer_id"], "status": "active"},
        headers=owner.headers,
    )
    broken = await owner.api.get(
        "/v1/agreements", params={"status": "broken"}, headers=owner.headers
    )

    assert [a["id"] for a in active.json()["items"]] == [made.json()["id"]]
    assert [a["id"] for a in by_customer.json()["items"]] == [made.json()["id"]]
    assert broken.json()["items"] == []


async def test_cancelling_puts_the_originals_back_as_they_were(
    shop: tuple[Party, Caller],
) -> None:
    _, owner = shop
    payment = {
        "external_id": "PG-0",
        "installment_external_id": "P-2",
        "amount": "25.00",
        "paid_at": datetime.now(UTC).isoformat(),
        "method": "cash",
    }
    assert (await owner.call("POST", "/v1/payments", payment)).status_code == 201
    offer = await _menu(owner)
    made = await owner.call("POST", f"/v1/offers/{offer['id']}/accept", {"option_id": "new_date"})
    path = f"/v1/agreements/{made.json()['id']}/cancel"

    r = await owner.call("POST", path, {"reason": "cliente desistiu por telefone"})
    twice = await owner.call("POST", path, {"reason": "de novo"})

    assert r.status_code == 200, r.text
    assert r.json()["status"] == "cancelled" and r.json()["cancelled_at"] is not None
    assert await _statuses(owner) == {"P-1": "open", "P-2": "partially_paid"}
    p2 = (await owner.call("GET", "/v1/installments/P-2")).json()
    assert Decimal(p2["amount_paid"]) == Decimal("25.00")
    assert twice.status_code == 409 and twice.json()["code"] == "agreement_not_active"


# --- agencies ----------------------------------------------------------------------------------


async def test_an_agency_accepts_its_own_offer_under_a_mandate_to_negotiate(
    api: httpx.AsyncClient, ids: Identities, shop: tuple[Party, Caller], session: AsyncSession
) -> None:
    party, owner = shop
    mandate_id, agency = await _agency(api, ids, owner, ["read", "negotiate"])
    offer = await _menu(agency)

    r = await agency.call("POST", f"/v1/offers/{offer['id']}/accept", {"option_id": "pay_today"})
    seen_by_retailer = await owner.call("GET", f"/v1/agreements/{r.json()['id']}")
    listed = await agency.call("GET", "/v1/agreements")
    pix = await agency.call("GET", f"/v1/agreements/{r.json()['id']}/installments/0/pix")

    assert r.status_code == 201, r.text
    assert r.json()["mandate_id"] == mandate_id
    assert seen_by_retailer.status_code == 200
    assert [a["id"] for a in listed.json()["items"]] == [r.json()["id"]]
    assert pix.status_code == 200, pix.text  # the agency hands the debtor the code
    assert await _statuses(owner) == {"P-1": "renegotiated", "P-2": "renegotiated"}
    await use_scope(session, SYSTEM)
    trails = set(
        await session.scalars(
            select(AuditEvent.tenant_id).where(AuditEvent.action == "agreement.created")
        )
    )
    assert party.id in trails and len(trails) == 2  # the retailer's and the agency's


async def test_an_agency_without_negotiate_cannot_accept_or_cancel(
    api: httpx.AsyncClient, ids: Identities, shop: tuple[Party, Caller]
) -> None:
    _, owner = shop
    _, reader = await _agency(api, ids, owner, ["read", "message"])
    offer, other = await _menu(owner), await _menu(owner)
    made = await owner.call("POST", f"/v1/offers/{offer['id']}/accept", {"option_id": "new_date"})

    accept = await reader.call(
        "POST", f"/v1/offers/{other['id']}/accept", {"option_id": "pay_today"}
    )
    cancel = await reader.call(
        "POST", f"/v1/agreements/{made.json()['id']}/cancel", {"reason": "x"}
    )
    read = await reader.call("GET", f"/v1/agreements/{made.json()['id']}")

    assert accept.status_code == 404, accept.text
    assert cancel.status_code == 404, cancel.text
    assert read.status_code == 404  # the retailer's own agreement, not made under its mandate
    assert await _statuses(owner) == {"P-1": "renegotiated", "P-2": "renegotiated"}


# --- paying ------------------------------------------------------------------------------------


async def _pay_by_pix(session: AsyncSession, conn: PixConnection, item: dict[str, Any]) -> None:
    """What the Pix receiver journals and what the ``inbound`` job then does."""
    await use_scope(session, SYSTEM)
    await journal.journal(
        session,
        journal.post(
            provider="pix",
            body=body(item),
            content_type="application/json",
            events=pix_webhooks.events_for(conn, pix_webhooks.parse(body(item))),
            tenant_id=conn.tenant_id,
        ),
    )
    pending = list(
        await session.scalars(select(WebhookEvent.id).where(WebhookEvent.state == "pending"))
    )
    await use_scope(session, tenant_scope(conn.tenant_id))
    for event_id in pending:
        await journal.process_event(session, event_id)


async def test_the_down_payments_pix_pays_it_and_the_last_payment_completes_the_agreement(
    shop: tuple[Party, Caller], session: AsyncSession, settings: Any
) -> None:
    party, owner = shop
    offer = await _menu(owner)
    made = await owner.call("POST", f"/v1/offers/{offer['id']}/accept", {"option_id": "pay_today"})
    agreement_id = made.json()["id"]
    pix = await owner.call("GET", f"/v1/agreements/{agreement_id}/installments/0/pix")
    assert pix.status_code == 200, pix.text
    assert Decimal(pix.json()["amount"]) == Decimal(made.json()["negotiated_total"])
    assert pix.json()["payload"].startswith("000201")
    conn, _ = await connection(session, settings, _Shop(party))

    item = pix_item(pix.json()["txid"], pix.json()["amount"])
    await _pay_by_pix(session, conn, item)
    await _pay_by_pix(session, conn, item)  # the PSP's redelivery changes nothing

    after = (await owner.call("GET", f"/v1/agreements/{agreement_id}")).json()
    assert after["installments"][0]["status"] == "paid"
    assert Decimal(after["amount_paid"]) == Decimal(made.json()["negotiated_total"])
    assert after["status"] == "completed"
    again = await owner.call("GET", f"/v1/agreements/{agreement_id}/installments/0/pix")
    assert again.status_code == 409
    await use_scope(session, SYSTEM)
    originals = list(
        await session.scalars(
            select(Installment.status).where(
                Installment.id.in_([uuid.UUID(i) for i in offer["installment_ids"]])
            )
        )
    )
    assert originals == ["renegotiated", "renegotiated"]


class _Shop:
    """What ``tests.support.pix.connection`` needs of a retailer."""

    def __init__(self, party: Party) -> None:
        self.id = party.id


async def test_an_agency_whose_mandate_was_revoked_cannot_accept_its_offer(
    api: httpx.AsyncClient, ids: Identities, shop: tuple[Party, Caller]
) -> None:
    _, owner = shop
    mandate_id, agency = await _agency(api, ids, owner, ["read", "negotiate"])
    offer = await _menu(agency)
    revoked = await owner.call("POST", f"/v1/mandates/{mandate_id}/revoke")
    assert revoked.status_code == 201, revoked.text

    r = await agency.call("POST", f"/v1/offers/{offer['id']}/accept", {"option_id": "pay_today"})

    assert r.status_code == 404, r.text
    assert await _statuses(owner) == {"P-1": "open", "P-2": "open"}


async def test_a_pix_for_a_cancelled_agreement_is_kept_for_the_retailer_not_applied(
    shop: tuple[Party, Caller], session: AsyncSession, settings: Any
) -> None:
    party, owner = shop
    offer = await _menu(owner)
    made = await owner.call("POST", f"/v1/offers/{offer['id']}/accept", {"option_id": "pay_today"})
    agreement_id = made.json()["id"]
    code = (await owner.call("GET", f"/v1/agreements/{agreement_id}/installments/0/pix")).json()
    await owner.call("POST", f"/v1/agreements/{agreement_id}/cancel", {"reason": "desistiu"})
    conn, _ = await connection(session, settings, _Shop(party))

    await _pay_by_pix(session, conn, pix_item(code["txid"], code["amount"]))

    after = (await owner.call("GET", f"/v1/agreements/{agreement_id}")).json()
    assert after["installments"][0]["status"] == "open"
    received = (await owner.call("GET", "/v1/pix/received?unmatched=true")).json()["items"]
    assert len(received) == 1 and "cancelled" in received[0]["reason"]
