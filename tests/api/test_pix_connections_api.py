"""Pix PSP connections through the API: owners and admins connect a PSP and see its webhook
URL once; Quita keeps only the token's hash; rotation and disabling are audited; another
retailer's connection is not found."""

from __future__ import annotations

import hashlib
from typing import Any

import httpx
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from shared.models import AuditEvent, Role
from shared.models.pix_connection import PixConnection
from shared.tenancy import SYSTEM, use_scope
from tests.support.identity import Identities, bearer

SUBJECT = "CN=psp.example.com.br,O=Banco Teste S.A.,C=BR"


async def _owner(ids: Identities, name: str = "Loja Conexão") -> tuple[Any, dict[str, str]]:
    party = await ids.party(name)
    return party, bearer(await ids.token(party))


def _token(url: str) -> str:
    return url.rsplit("/", 1)[1]


async def test_a_psp_connection_shows_its_webhook_url_once_and_keeps_only_a_hash(
    api: httpx.AsyncClient, ids: Identities, session: AsyncSession
) -> None:
    _, headers = await _owner(ids)

    created = await api.post(
        "/v1/pix/connections",
        json={"name": "Banco da loja", "psp": "Banco Teste", "client_cert_subject": SUBJECT},
        headers=headers,
    )
    listed = await api.get("/v1/pix/connections", headers=headers)

    assert created.status_code == 201, created.text
    body = created.json()
    assert body["status"] == "active" and body["client_cert_subject"] == SUBJECT
    assert "/pix/" in body["webhook_url"]
    token = _token(body["webhook_url"])
    assert len(token) >= 43  # 32 random bytes, base64url
    assert [c["id"] for c in listed.json()] == [body["id"]]
    assert listed.json()[0]["webhook_url"] is None and token not in listed.text
    await use_scope(session, SYSTEM)
    row = await session.get_one(PixConnection, body["id"])
    assert row.token_hash == hashlib.sha256(token.encode()).hexdigest()
    audit = (await session.execute(text("SELECT data::text FROM audit_events"))).scalars().all()
    assert not any(token in a for a in audit)


async def test_rotating_gives_a_new_url_and_disabling_is_audited(
    api: httpx.AsyncClient, ids: Identities, session: AsyncSession
) -> None:
    party, headers = await _owner(ids)
    created = (
        await api.post("/v1/pix/connections", json={"name": "PSP", "psp": "X"}, headers=headers)
    ).json()

    rotated = await api.post(f"/v1/pix/connections/{created['id']}/rotate", headers=headers)
    disabled = await api.post(f"/v1/pix/connections/{created['id']}/disable", headers=headers)

    assert rotated.status_code == 200, rotated.text
    assert _token(rotated.json()["webhook_url"]) != _token(created["webhook_url"])
    assert rotated.json()["rotated_at"] is not None
    assert disabled.status_code == 200 and disabled.json()["status"] == "disabled"
    await use_scope(session, SYSTEM)
    actions = list(
        await session.scalars(
            select(AuditEvent.action)
            .where(
                AuditEvent.tenant_id == party.tenant.id, AuditEvent.subject_type == "pix_connection"
            )
            .order_by(AuditEvent.id)
        )
    )
    assert actions == [
        "pix_connection.created",
        "pix_connection.rotated",
        "pix_connection.disabled",
    ]


async def test_another_retailers_connection_is_not_found(
    api: httpx.AsyncClient, ids: Identities
) -> None:
    _, mine = await _owner(ids, "Loja Minha")
    _, theirs = await _owner(ids, "Loja Deles")
    created = (
        await api.post("/v1/pix/connections", json={"name": "PSP", "psp": "X"}, headers=theirs)
    ).json()

    rotate = await api.post(f"/v1/pix/connections/{created['id']}/rotate", headers=mine)
    disable = await api.post(f"/v1/pix/connections/{created['id']}/disable", headers=mine)
    listed = await api.get("/v1/pix/connections", headers=mine)

    assert (rotate.status_code, disable.status_code) == (404, 404)
    assert rotate.headers["content-type"].startswith("application/problem+json")
    assert listed.json() == []


async def test_only_owners_and_admins_manage_connections(
    api: httpx.AsyncClient, ids: Identities
) -> None:
    party = await ids.party("Loja Papéis")
    operator = bearer(await ids.token(party, role=Role.OPERATOR))
    admin = bearer(await ids.token(party, role=Role.ADMIN))

    refused = await api.post(
        "/v1/pix/connections", json={"name": "PSP", "psp": "X"}, headers=operator
    )
    allowed = await api.post("/v1/pix/connections", json={"name": "PSP", "psp": "X"}, headers=admin)

    assert refused.status_code == 403
    assert allowed.status_code == 201


async def test_a_bad_connection_is_refused_field_by_field(
    api: httpx.AsyncClient, ids: Identities
) -> None:
    _, headers = await _owner(ids)

    r = await api.post("/v1/pix/connections", json={"name": "", "psp": "X"}, headers=headers)

    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert [e["field"] for e in r.json()["errors"]] == ["name"]


async def test_an_agency_connects_no_psp(api: httpx.AsyncClient, ids: Identities) -> None:
    agency = await ids.party("Agência de Cobrança", "agency")
    headers = bearer(await ids.token(agency))

    created = await api.post(
        "/v1/pix/connections", json={"name": "PSP", "psp": "X"}, headers=headers
    )
    listed = await api.get("/v1/pix/connections", headers=headers)

    assert created.status_code == 403  # payments reach the retailer that owns the debt
    assert listed.status_code == 200 and listed.json() == []
