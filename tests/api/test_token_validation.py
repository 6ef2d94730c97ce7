"""The resource server refuses every token that is not exactly right, with a 401."""

from __future__ import annotations

import base64
import json

import httpx
import pytest

from tests.support.identity import Identities, bearer


def _tamper(token: str) -> str:
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["scope"] = "admin"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{header}.{forged}.{signature}"


async def _me(api: httpx.AsyncClient, token: str) -> httpx.Response:
    return await api.get("/v1/me", headers=bearer(token))


async def test_a_valid_token_is_accepted(api: httpx.AsyncClient, ids: Identities) -> None:
    party = await ids.party("Loja Válida")

    response = await _me(api, await ids.token(party))

    assert response.status_code == 200


async def test_no_token_is_a_401_with_a_bearer_challenge(api: httpx.AsyncClient) -> None:
    response = await api.get("/v1/me")

    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(
    "variant",
    ["tampered", "expired", "wrong_audience", "wrong_issuer", "garbage", "unsigned"],
)
async def test_a_bad_token_is_refused(
    api: httpx.AsyncClient, ids: Identities, variant: str
) -> None:
    party = await ids.party(f"Loja {variant}")
    token = {
        "tampered": lambda: _tamper_async(ids, party),
        "expired": lambda: ids.token(party, ttl_s=-120),
        "wrong_audience": lambda: ids.token(party, audience="someone-else"),
        "wrong_issuer": lambda: ids.token(party, issuer="https://evil.example.com"),
        "garbage": lambda: _const("not.a.jwt"),
        "unsigned": lambda: _const(_unsigned()),
    }[variant]

    response = await _me(api, await token())

    assert response.status_code == 401
    assert response.json()["code"] == "unauthorized"


async def _tamper_async(ids: Identities, party: object) -> str:
    return _tamper(await ids.token(party))  # type: ignore[arg-type]


async def _const(value: str) -> str:
    return value


def _unsigned() -> str:
    def enc(obj: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    return f"{enc({'alg': 'none', 'typ': 'at+jwt'})}.{enc({'sub': 'x', 'scope': 'admin'})}."


async def test_a_revoked_clients_tokens_stop_working(
    api: httpx.AsyncClient, ids: Identities
) -> None:
    party = await ids.party("Loja Revogada")
    client_token = await ids.token(party, role=None)
    owner_token = await ids.token(party)
    assert (await _me(api, client_token)).status_code == 200

    revoked = await api.delete(f"/v1/clients/{party.client.id}", headers=bearer(owner_token))

    assert revoked.status_code == 204
    assert (await _me(api, client_token)).status_code == 401
    fresh = await api.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(party.client.client_id, party.client_secret),
    )
    assert fresh.status_code == 401


async def test_a_token_without_the_scope_gets_403(api: httpx.AsyncClient, ids: Identities) -> None:
    party = await ids.party("Loja Escopo")
    token = await ids.token(party, scopes={"portfolio:read"})

    response = await api.get("/v1/clients", headers=bearer(token))

    assert response.status_code == 403
    assert "settings:read" in response.json()["detail"]
