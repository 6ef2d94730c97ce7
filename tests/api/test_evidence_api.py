"""Data subjects' access requests and the dossier through the API, as a retailer's people use
them: recorded with the 15-day deadline, listed closest deadline first, fulfilled once with the
dossier whose digest stays with the request; only the retailer's own people see either."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.domains.identity import schemas as identity_schemas
from shared.domains.identity import service as identity
from shared.domains.identity.service import CLI_ACTOR
from shared.models import AuditEvent, Role
from shared.tenancy import SYSTEM, use_scope
from tests.support.identity import Identities, Party, bearer


class Shop:
    def __init__(self, api: httpx.AsyncClient, party: Party, headers: dict[str, str]) -> None:
        self.api, self.party, self.headers = api, party, headers

    async def call(
        self, method: str, path: str, body: Any = None, *, headers: Any = None, **params: Any
    ) -> httpx.Response:
        return await self.api.request(
            method, path, json=body, params=params or None, headers=headers or self.headers
        )

    async def customer(self, ref: str) -> dict[str, Any]:
        body = {"name": f"Cliente {ref}", "phones": ["+5511987650001"], "state": "SP"}
        r = await self.call("PUT", f"/v1/customers/{ref}", body)
        assert r.status_code in (200, 201), r.text
        due = (datetime.now(UTC) - timedelta(days=3)).date().isoformat()
        body = {"customer_external_id": ref, "principal": "250.00", "due_date": due}
        r = await self.call("PUT", f"/v1/installments/P-{ref}", body)
        assert r.status_code in (200, 201), r.text
        return dict(r.json())


@pytest.fixture
async def shop(api: httpx.AsyncClient, ids: Identities) -> Shop:
    party = await ids.party("Loja Evidência")
    return Shop(api, party, bearer(await ids.token(party, role=Role.OWNER)))


def _canonical_sha(document: dict[str, Any]) -> str:
    body = {k: v for k, v in document.items() if k != "export_sha256"}
    raw = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(raw.encode()).hexdigest()


async def test_an_access_request_is_due_in_15_days_and_answered_once_with_the_dossier(
    shop: Shop, session: AsyncSession
) -> None:
    await shop.customer("C-1")
    asked = datetime.now(UTC) - timedelta(days=2)

    created = await shop.call(
        "POST",
        "/v1/customers/C-1/data-requests",
        {"received_via": "whatsapp", "received_at": asked.isoformat()},
    )
    listed = await shop.call("GET", "/v1/data-requests", status="open")
    fulfilled = await shop.call("POST", f"/v1/data-requests/{created.json()['id']}/fulfill")
    again = await shop.call("POST", f"/v1/data-requests/{created.json()['id']}/fulfill")

    assert created.status_code == 201, created.text
    request = created.json()
    assert datetime.fromisoformat(request["due_at"]) - datetime.fromisoformat(
        request["received_at"]
    ) == timedelta(days=15)
    assert (request["status"], request["overdue"]) == ("open", False)
    assert [r["id"] for r in listed.json()["items"]] == [request["id"]]
    assert fulfilled.status_code == 200, fulfilled.text
    answer = fulfilled.json()
    assert answer["request"]["status"] == "fulfilled"
    assert answer["request"]["export_sha256"] == answer["dossier"]["export_sha256"]
    assert answer["dossier"]["export_sha256"] == _canonical_sha(answer["dossier"])
    assert answer["dossier"]["customer"]["external_id"] == "C-1"
    assert [i["external_id"] for i in answer["dossier"]["installments"]] == ["P-C-1"]
    assert answer["dossier"]["installments"][0]["balance_today"]["days_overdue"] == 3
    assert (again.status_code, again.json()["code"]) == (409, "already_fulfilled")
    await use_scope(session, SYSTEM)
    actions = list(
        await session.scalars(
            select(AuditEvent.action).where(AuditEvent.tenant_id == shop.party.id)
        )
    )
    assert {"data_request.received", "data_request.fulfilled", "customer.dossier_exported"} <= set(
        actions
    )


async def test_an_old_request_not_answered_shows_overdue(shop: Shop) -> None:
    await shop.customer("C-1")
    long_ago = (datetime.now(UTC) - timedelta(days=20)).isoformat()
    await shop.call("POST", "/v1/customers/C-1/data-requests", {"received_at": long_ago})

    [item] = (await shop.call("GET", "/v1/data-requests")).json()["items"]

    assert (item["status"], item["overdue"]) == ("open", True)


async def test_a_bad_request_is_refused_field_by_field(shop: Shop) -> None:
    await shop.customer("C-1")

    r = await shop.call("POST", "/v1/customers/C-1/data-requests", {"received_via": "pombo"})

    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert [e["field"] for e in r.json()["errors"]] == ["received_via"]


async def test_the_dossier_is_the_retailers_own(
    shop: Shop, ids: Identities, session: AsyncSession
) -> None:
    await shop.customer("C-1")
    other = bearer(await ids.token(await ids.party("Outra Loja")))
    agency = await ids.party("Agência", "agency")
    await use_scope(session, SYSTEM)
    await identity.create_mandate(
        session,
        shop.party.tenant,
        identity_schemas.MandateCreate(agency_id=agency.id, actions=["read", "message"], tags=[]),
        CLI_ACTOR,
    )
    await session.flush()
    them = bearer(await ids.token(agency))
    viewer = bearer(await ids.token(shop.party, role=Role.VIEWER))

    answers = [
        (await shop.call("GET", "/v1/customers/C-1/dossier", headers=h)).status_code
        for h in (other, them, viewer)
    ]
    created = await shop.call("POST", "/v1/customers/C-1/data-requests", {}, headers=viewer)

    assert answers == [404, 403, 200]  # an agency sees the customer, not its dossier
    assert created.status_code == 403
