"""Tenants, people, API clients and mandates through the API, as their users would."""

from __future__ import annotations

import logging

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.models import AuditEvent, OAuthClient
from shared.tenancy import SYSTEM, use_scope
from tests.support.identity import Identities, bearer


async def _actions(session: AsyncSession) -> list[str]:
    await use_scope(session, SYSTEM)
    return list(await session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)))


async def test_a_platform_admin_onboards_a_retailer_end_to_end(
    api: httpx.AsyncClient, ids: Identities, session: AsyncSession
) -> None:
    admin = bearer(await ids.admin_token())

    tenant = await api.post(
        "/v1/admin/tenants",
        headers=admin,
        json={
            "name": "Magazine Exemplo",
            "kind": "retailer",
            "document": "11.222.333/0001-81",
            "legal_name": "Magazine Exemplo Ltda.",
            "city": "Recife",
            "state": "PE",
        },
    )
    user = await api.post(
        "/v1/admin/users",
        headers=admin,
        json={
            "email": "Gerente@Exemplo.com.br",
            "name": "Gerente",
            "password": "uma senha longa",
        },
    )
    member = await api.post(
        f"/v1/admin/tenants/{tenant.json()['id']}/members",
        headers=admin,
        json={"email": "gerente@exemplo.com.br", "role": "owner"},
    )
    client = await api.post(
        f"/v1/admin/tenants/{tenant.json()['id']}/clients",
        headers=admin,
        json={"name": "ERP", "scopes": ["portfolio:read"]},
    )

    assert tenant.status_code == 201, tenant.text
    assert tenant.json()["document"] == "11222333000181"
    assert user.json()["email"] == "gerente@exemplo.com.br"
    assert member.json()["role"] == "owner"
    assert client.json()["client_secret"]
    token = await api.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(client.json()["client"]["client_id"], client.json()["client_secret"]),
    )
    assert token.status_code == 200
    assert await _actions(session) >= [
        "tenant.created",
        "user.created",
        "membership.created",
        "client.created",
    ]


async def test_invalid_tenant_data_gets_field_errors(
    api: httpx.AsyncClient, ids: Identities
) -> None:
    admin = bearer(await ids.admin_token())

    response = await api.post(
        "/v1/admin/tenants", headers=admin, json={"name": "", "kind": "bank", "state": "sp"}
    )

    assert response.status_code == 422
    assert response.json()["code"] == "validation_failed"
    assert response.json()["errors"]


async def test_a_retailer_token_cannot_reach_admin_routes(
    api: httpx.AsyncClient, ids: Identities
) -> None:
    party = await ids.party("Loja Comum")

    response = await api.get("/v1/admin/tenants", headers=bearer(await ids.token(party)))

    assert response.status_code == 403


async def test_a_client_secret_is_shown_once_and_never_again(
    api: httpx.AsyncClient,
    ids: Identities,
    session: AsyncSession,
    caplog: pytest.LogCaptureFixture,
) -> None:
    party = await ids.party("Loja Segredo")
    owner = bearer(await ids.token(party))

    with caplog.at_level(logging.DEBUG):
        created = await api.post(
            "/v1/clients", headers=owner, json={"name": "PDV", "scopes": ["portfolio:write"]}
        )
        secret = created.json()["client_secret"]
        listed = await api.get("/v1/clients", headers=owner)
        one = await api.get(f"/v1/clients/{created.json()['client']['id']}", headers=owner)

    assert secret
    assert secret not in listed.text and secret not in one.text
    assert secret not in caplog.text
    await use_scope(session, SYSTEM)
    stored = await session.scalar(
        select(OAuthClient).where(OAuthClient.client_id == created.json()["client"]["client_id"])
    )
    assert stored is not None and secret not in (stored.secret_digest or "")


async def test_a_rotated_secret_keeps_the_old_one_working_during_the_overlap(
    api: httpx.AsyncClient, ids: Identities
) -> None:
    party = await ids.party("Loja Rotação")
    owner = bearer(await ids.token(party))

    rotated = await api.post(f"/v1/clients/{party.client.id}/secret", headers=owner)
    new_secret = rotated.json()["client_secret"]

    for secret in (party.client_secret, new_secret):
        response = await api.post(
            "/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=(party.client.client_id, secret),
        )
        assert response.status_code == 200
    assert new_secret != party.client_secret


async def test_an_agency_sees_a_retailer_only_through_a_live_mandate(
    api: httpx.AsyncClient, ids: Identities
) -> None:
    retailer = await ids.party("Varejo Mandante")
    agency = await ids.party("Agência Cobradora", "agency")
    owner = bearer(await ids.token(retailer))

    before = (await api.get("/v1/me", headers=bearer(await ids.token(agency)))).json()
    given = await api.post(
        "/v1/mandates",
        headers=owner,
        json={
            "agency_id": str(agency.id),
            "actions": ["message", "negotiate"],
            "tags": ["atraso-30"],
            "limits": {"max_discount_pct": "10"},
        },
    )
    during = (await api.get("/v1/me", headers=bearer(await ids.token(agency)))).json()
    agency_view = await api.get(
        f"/v1/mandates/{given.json()['id']}", headers=bearer(await ids.token(agency))
    )
    await api.post(f"/v1/mandates/{given.json()['id']}/revoke", headers=owner)
    after = (await api.get("/v1/me", headers=bearer(await ids.token(agency)))).json()

    assert given.status_code == 201, given.text
    assert given.json()["actions"] == ["message", "negotiate", "read"]
    assert before["mandates"] == []
    assert [m["retailer_id"] for m in during["mandates"]] == [str(retailer.id)]
    assert agency_view.status_code == 200
    assert after["mandates"] == []  # revocation takes effect at once


async def test_an_agency_cannot_revoke_the_mandate_it_holds(
    api: httpx.AsyncClient, ids: Identities
) -> None:
    retailer = await ids.party("Varejo Firme")
    agency = await ids.party("Agência Ousada", "agency")
    given = await api.post(
        "/v1/mandates",
        headers=bearer(await ids.token(retailer)),
        json={"agency_id": str(agency.id), "actions": ["read"]},
    )

    response = await api.post(
        f"/v1/mandates/{given.json()['id']}/revoke", headers=bearer(await ids.token(agency))
    )

    assert response.status_code == 404


async def test_only_an_owner_can_make_another_owner(
    api: httpx.AsyncClient, ids: Identities
) -> None:
    from shared.models import Role

    party = await ids.party("Loja Hierarquia")
    newcomer = await ids.user()
    admin_token = await ids.token(party, role=Role.ADMIN)

    response = await api.post(
        "/v1/members", headers=bearer(admin_token), json={"email": newcomer.email, "role": "owner"}
    )

    assert response.status_code == 403


async def test_the_audit_trail_lists_the_tenants_own_events(
    api: httpx.AsyncClient, ids: Identities
) -> None:
    party = await ids.party("Loja Auditada")
    other = await ids.party("Loja Alheia")
    owner = bearer(await ids.token(party))
    await api.patch("/v1/tenant", headers=owner, json={"city": "Curitiba", "state": "PR"})
    await api.post(
        "/v1/clients",
        headers=bearer(await ids.token(other)),
        json={"name": "Alheio", "scopes": ["portfolio:read"]},
    )

    events = (await api.get("/v1/audit-events", headers=owner)).json()

    actions = [e["action"] for e in events]
    assert actions[0] == "tenant.updated"
    assert events[0]["data"]["after"] == {"city": "Curitiba", "state": "PR"}
    assert "client.created" in actions  # its own client, from the factory
    assert all(e["subject_id"] != "Alheio" for e in events)
    assert len([a for a in actions if a == "client.created"]) == 1
