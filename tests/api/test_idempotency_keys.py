"""``Idempotency-Key`` on the API's POSTs, as an ERP that lost an answer would use it: the retry
gets the first answer and nothing is done twice; the same key for something else is refused;
a failure frees the key; keys are the caller's own; a secret in a kept answer is not stored in
clear."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.api.app import create_app
from shared.config import Settings
from shared.db import SessionMaker
from shared.domains.system import idempotency
from shared.models import CollectionHold, DataImport, IdempotencyKey
from shared.tenancy import SYSTEM, use_scope
from tests.conftest import run_lifespan
from tests.support.identity import Identities, Party, bearer

PAUSE = {"kind": "pause", "reason": "Cliente pediu uma semana"}


async def _shop(api: httpx.AsyncClient, ids: Identities, name: str) -> tuple[Party, dict[str, str]]:
    party = await ids.party(name)
    headers = bearer(await ids.token(party))
    r = await api.put("/v1/customers/C-1", json={"name": "Cliente Teste"}, headers=headers)
    assert r.status_code == 201, r.text
    return party, headers


async def _holds(session: AsyncSession, party: Party) -> int:
    await use_scope(session, SYSTEM)
    count = await session.scalar(
        select(func.count())
        .select_from(CollectionHold)
        .where(CollectionHold.tenant_id == party.tenant.id)
    )
    return int(count or 0)


def _keyed(headers: dict[str, str], key: str) -> dict[str, str]:
    return {**headers, "Idempotency-Key": key}


async def test_a_retried_post_gets_the_first_answer_and_does_nothing_twice(
    api: httpx.AsyncClient, ids: Identities, session: AsyncSession
) -> None:
    party, headers = await _shop(api, ids, "Loja Idempotente")
    url = "/v1/customers/C-1/holds"

    first = await api.post(url, json=PAUSE, headers=_keyed(headers, "hold-0001"))
    again = await api.post(url, json=PAUSE, headers=_keyed(headers, "hold-0001"))
    other = await api.post(url, json=PAUSE, headers=_keyed(headers, "hold-0002"))

    assert first.status_code == 201, first.text
    assert (again.status_code, again.json()) == (201, first.json())
    assert again.headers["idempotent-replayed"] == "true"
    assert again.headers["content-type"] == first.headers["content-type"]
    assert "idempotent-replayed" not in first.headers
    assert other.status_code == 201 and other.json()["id"] != first.json()["id"]
    assert await _holds(session, party) == 2  # the retry made none


async def test_the_same_key_for_another_request_is_refused(
    api: httpx.AsyncClient, ids: Identities, session: AsyncSession
) -> None:
    party, headers = await _shop(api, ids, "Loja Distraída")
    url = "/v1/customers/C-1/holds"
    assert (await api.post(url, json=PAUSE, headers=_keyed(headers, "k-1"))).status_code == 201

    other_body = await api.post(
        url, json={**PAUSE, "reason": "Outro motivo"}, headers=_keyed(headers, "k-1")
    )
    other_path = await api.post("/v1/customers/C-1/remind", headers=_keyed(headers, "k-1"))

    assert other_body.status_code == 422, other_body.text
    assert other_body.headers["content-type"] == "application/problem+json"
    assert other_body.json()["code"] == "idempotency_key_reused"
    assert "another request body" in other_body.json()["detail"]
    assert other_path.status_code == 422
    assert "POST /v1/customers/C-1/holds" in other_path.json()["detail"]
    assert await _holds(session, party) == 1


async def test_a_failure_frees_the_key_and_a_corrected_retry_runs(
    api: httpx.AsyncClient, ids: Identities, session: AsyncSession
) -> None:
    party, headers = await _shop(api, ids, "Loja Corrigida")
    url = "/v1/customers/C-1/holds"

    refused = await api.post(url, json={"kind": "pause"}, headers=_keyed(headers, "fix-1"))
    fixed = await api.post(url, json=PAUSE, headers=_keyed(headers, "fix-1"))
    unknown = await api.post("/v1/customers/C-9/holds", json=PAUSE, headers=_keyed(headers, "u"))

    assert refused.status_code == 422, refused.text
    assert fixed.status_code == 201, fixed.text
    assert "idempotent-replayed" not in fixed.headers
    assert unknown.status_code == 404
    assert await _holds(session, party) == 1
    await use_scope(session, SYSTEM)
    kept = await session.scalars(select(IdempotencyKey.key))
    assert sorted(kept) == ["fix-1"]  # the 404's key was freed too


async def test_keys_are_the_callers_own(
    api: httpx.AsyncClient, ids: Identities, session: AsyncSession
) -> None:
    mine, my_headers = await _shop(api, ids, "Loja Uma")
    theirs, their_headers = await _shop(api, ids, "Loja Outra")
    url = "/v1/customers/C-1/holds"

    a = await api.post(url, json=PAUSE, headers=_keyed(my_headers, "pedido-1"))
    b = await api.post(url, json=PAUSE, headers=_keyed(their_headers, "pedido-1"))

    assert (a.status_code, b.status_code) == (201, 201)
    assert "idempotent-replayed" not in b.headers and a.json()["id"] != b.json()["id"]
    assert (await _holds(session, mine), await _holds(session, theirs)) == (1, 1)


async def test_while_the_first_runs_a_second_is_told_to_wait(
    api: httpx.AsyncClient, ids: Identities, session: AsyncSession, sessionmaker: SessionMaker
) -> None:
    party, headers = await _shop(api, ids, "Loja Apressada")
    url = "/v1/customers/C-1/holds"
    assert (await api.post(url, json=PAUSE, headers=_keyed(headers, "warm-1"))).status_code == 201
    await use_scope(session, SYSTEM)
    owner = await session.scalar(select(IdempotencyKey.owner).where(IdempotencyKey.key == "warm-1"))
    assert owner is not None and str(party.tenant.id) in owner
    # a first request with "slow-1" holds the key: claimed, not answered yet
    claim = await idempotency.claim(sessionmaker, owner, "slow-1", f"POST {url}?")
    assert isinstance(claim, idempotency.Claimed)

    second = await api.post(url, json=PAUSE, headers=_keyed(headers, "slow-1"))

    assert second.status_code == 409, second.text
    assert second.json()["code"] == "idempotency_key_in_use"
    assert second.headers["retry-after"] == "1"

    # the first one's process died: once its lease ran out, a retry runs
    await use_scope(session, SYSTEM)
    await session.execute(
        update(IdempotencyKey)
        .where(IdempotencyKey.key == "slow-1")
        .values(locked_until=func.now() - text("interval '1 second'"))
    )
    third = await api.post(url, json=PAUSE, headers=_keyed(headers, "slow-1"))
    assert third.status_code == 201, third.text
    assert await _holds(session, party) == 2  # the warm-up's and the third's


async def test_a_retried_upload_makes_one_import(
    api: httpx.AsyncClient,
    ids: Identities,
    session: AsyncSession,
) -> None:
    party, headers = await _shop(api, ids, "Loja do ERP")
    csv = b"customer_external_id,name,installment_external_id,principal,due_date\n"
    csv += b"C-2,Cliente Dois,P-1,100.00,2026-12-10\n"
    upload = {**headers, "Content-Type": "text/csv", "Idempotency-Key": "upload-2026-12-07"}

    first = await api.post("/v1/imports", content=csv, headers=upload)
    again = await api.post("/v1/imports", content=csv, headers=upload)
    changed = await api.post(
        "/v1/imports", content=csv + b"C-3,Cliente Tres,P-2,1,2026-12-10\n", headers=upload
    )

    assert first.status_code == 202, first.text
    assert (again.status_code, again.json()["id"]) == (202, first.json()["id"])
    assert again.headers["location"] == first.headers["location"]
    assert changed.status_code == 422 and changed.json()["code"] == "idempotency_key_reused"
    await use_scope(session, SYSTEM)
    imports = await session.scalar(
        select(func.count()).select_from(DataImport).where(DataImport.tenant_id == party.tenant.id)
    )
    assert imports == 1


async def test_a_secret_in_a_kept_answer_is_not_stored_in_clear(
    api: httpx.AsyncClient, ids: Identities, session: AsyncSession
) -> None:
    _, headers = await _shop(api, ids, "Loja Segura")
    body = {"name": "Banco da loja", "psp": "Banco Teste"}

    first = await api.post("/v1/pix/connections", json=body, headers=_keyed(headers, "psp-1"))
    again = await api.post("/v1/pix/connections", json=body, headers=_keyed(headers, "psp-1"))

    assert first.status_code == 201, first.text
    token = first.json()["webhook_url"].rsplit("/", 1)[1]
    assert again.json()["webhook_url"] == first.json()["webhook_url"]  # one connection, one URL
    await use_scope(session, SYSTEM)
    stored = list(await session.scalars(select(IdempotencyKey.response)))
    assert len(stored) == 1 and stored[0] is not None
    assert token not in stored[0] and "webhook_url" not in stored[0]


async def test_a_malformed_key_is_a_clear_400(api: httpx.AsyncClient, ids: Identities) -> None:
    _, headers = await _shop(api, ids, "Loja Chave")

    for bad in ("x" * 121, "com espaco"):
        r = await api.post("/v1/customers/C-1/holds", json=PAUSE, headers=_keyed(headers, bad))
        assert r.status_code == 400, r.text
        assert "Idempotency-Key" in r.json()["detail"]


async def test_a_day_later_the_key_is_forgotten_and_runs_again(
    api: httpx.AsyncClient, ids: Identities, session: AsyncSession
) -> None:
    party, headers = await _shop(api, ids, "Loja Paciente")
    url = "/v1/customers/C-1/holds"
    for key in ("old-a", "old-b", "new"):
        assert (await api.post(url, json=PAUSE, headers=_keyed(headers, key))).status_code == 201
    await use_scope(session, SYSTEM)
    await session.execute(
        update(IdempotencyKey)
        .where(IdempotencyKey.key.in_(["old-a", "old-b"]))
        .values(created_at=func.now() - text("interval '25 hours'"))
    )

    again = await api.post(url, json=PAUSE, headers=_keyed(headers, "old-a"))  # before the sweep
    await idempotency.expire(session)
    left = list(await session.scalars(select(IdempotencyKey.key).order_by(IdempotencyKey.key)))

    assert again.status_code == 201 and "idempotent-replayed" not in again.headers
    assert left == ["new", "old-a"]  # old-b swept; old-a is the new request's now
    assert await _holds(session, party) == 4


async def test_the_schema_names_the_header_on_every_authenticated_post(
    api: httpx.AsyncClient,
) -> None:
    paths = (await api.get("/schema/openapi.json")).json()["paths"]

    def keyed(operation: dict[str, Any]) -> list[dict[str, Any]]:
        return [p for p in operation.get("parameters", []) if p["name"] == "Idempotency-Key"]

    posts = {path: item["post"] for path, item in paths.items() if "post" in item}
    api_posts = {p: op for p, op in posts.items() if p.startswith("/v1/")}
    assert len(api_posts) > 30
    for path, operation in api_posts.items():
        (header,) = keyed(operation)  # once, also where the handler declares it itself
        assert header["in"] == "header" and not header.get("required"), path
    assert not keyed(posts["/oauth/token"])
    assert not any(keyed(item["get"]) for item in paths.values() if "get" in item)


async def test_keys_hold_on_the_apps_own_engine_as_in_production(
    committed: SessionMaker, settings: Settings
) -> None:
    """Not the test's transaction: the app's own engine and pool, as deployed."""
    async with committed() as s:
        ids = Identities(s, settings)
        party = await ids.party("Loja de Produção")
        headers = bearer(await ids.token(party))
        await s.commit()
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app)
    async with run_lifespan(app), httpx.AsyncClient(transport=transport, base_url="http://a") as c:
        put = await c.put("/v1/customers/C-1", json={"name": "Cliente"}, headers=headers)
        assert put.status_code == 201, put.text
        url = "/v1/customers/C-1/holds"
        first = await c.post(url, json=PAUSE, headers=_keyed(headers, "prod-1"))
        again = await c.post(url, json=PAUSE, headers=_keyed(headers, "prod-1"))

    assert first.status_code == 201, first.text
    assert again.headers.get("idempotent-replayed") == "true"
    assert again.json() == first.json()
    async with committed() as s:
        await use_scope(s, SYSTEM)
        assert await _holds(s, party) == 1
