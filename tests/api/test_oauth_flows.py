"""OAuth 2.0 as an integrator lives it: Authlib's own client library against the running api."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import httpx2
import pytest
from authlib.common.security import generate_token
from authlib.integrations.base_client import OAuthError
from authlib.integrations.httpx_client import AsyncOAuth2Client

from shared.models import Role
from tests.support.identity import PASSWORD, Identities, bearer

BASE = "http://test"
REDIRECT = "https://erp.example.com/callback"
Oauth = Callable[..., Any]


@pytest.fixture
def oauth(api: httpx.AsyncClient) -> Oauth:
    """``async with oauth(client_id, secret, ...) as c`` → Authlib's client on the same app."""
    app = api._transport.app  # type: ignore[attr-defined]

    @asynccontextmanager
    async def make(client_id: str, secret: str | None = None, **kwargs: Any) -> AsyncIterator[Any]:
        client = AsyncOAuth2Client(
            client_id=client_id,
            client_secret=secret,
            transport=httpx2.ASGITransport(app=app),
            **kwargs,
        )
        try:
            yield client
        finally:
            await client.aclose()

    return make


def _fields(html: str) -> dict[str, str]:
    return dict(re.findall(r"<input type='hidden' name='([^']+)' value='([^']*)'>", html))


async def test_client_credentials_with_a_real_oauth_client(
    api: httpx.AsyncClient, ids: Identities, oauth: Oauth
) -> None:
    party = await ids.party("Loja Alfa")

    async with oauth(party.client.client_id, party.client_secret) as client:
        token = await client.fetch_token(
            f"{BASE}/oauth/token",
            grant_type="client_credentials",
            scope="portfolio:read settings:read",
        )
        me = await client.get(f"{BASE}/v1/me")

    assert token["token_type"] == "Bearer"
    assert token["expires_in"] == 900
    assert "refresh_token" not in token
    assert me.status_code == 200
    assert me.json()["tenant"]["id"] == str(party.id)
    assert me.json()["kind"] == "client"
    assert me.json()["scopes"] == ["portfolio:read", "settings:read"]


async def test_client_credentials_rejects_a_wrong_secret(
    api: httpx.AsyncClient, ids: Identities, oauth: Oauth
) -> None:
    party = await ids.party("Loja Beta")

    async with oauth(party.client.client_id, "not-the-secret") as client:
        with pytest.raises(OAuthError, match="invalid_client"):
            await client.fetch_token(f"{BASE}/oauth/token", grant_type="client_credentials")


async def test_repeated_bad_secrets_lock_the_client_out_for_a_while(
    api: httpx.AsyncClient, ids: Identities
) -> None:
    party = await ids.party("Loja Gama")
    auth = (party.client.client_id, "wrong")

    statuses = [
        (await api.post("/oauth/token", data={"grant_type": "client_credentials"}, auth=auth))
        for _ in range(7)
    ]

    assert [r.status_code for r in statuses[:5]] == [401] * 5
    assert statuses[6].status_code == 429
    assert int(statuses[6].headers["retry-after"]) >= 1
    # The lock holds even for the right secret until it expires.
    right = await api.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(party.client.client_id, party.client_secret),
    )
    assert right.status_code == 429


async def _authorize(
    api: httpx.AsyncClient, url: str, email: str, tenant_id: str | None = None
) -> httpx.Response:
    """Drive the sign-in and consent pages like a person would; return the final redirect."""
    page = await api.get(url)
    assert page.status_code == 200, page.text
    consent = await api.post(
        "/oauth/authorize", data={**_fields(page.text), "email": email, "password": PASSWORD}
    )
    assert consent.status_code == 200, consent.text
    tenants = re.findall(r"name='tenant_id' value='([^']+)'", consent.text)
    return await api.post(
        "/oauth/authorize",
        data={**_fields(consent.text), "tenant_id": tenant_id or tenants[0], "decision": "allow"},
    )


async def _code_client(ids: Identities, party: Any) -> Any:
    client, _ = await ids.client(
        party.tenant,
        grant_types=["authorization_code", "refresh_token"],
        redirect_uris=[REDIRECT],
        public=True,
    )
    await ids.session.flush()
    return client


async def test_authorization_code_with_pkce_signs_a_person_in(
    api: httpx.AsyncClient, ids: Identities, oauth: Oauth
) -> None:
    party = await ids.party("Loja Delta")
    app_client = await _code_client(ids, party)
    verifier = generate_token(48)

    async with oauth(
        app_client.client_id,
        redirect_uri=REDIRECT,
        scope="portfolio:read",
        code_challenge_method="S256",
        token_endpoint_auth_method="none",
    ) as client:
        url, _state = client.create_authorization_url(
            f"{BASE}/oauth/authorize", code_verifier=verifier
        )
        redirect = await _authorize(api, url, party.owner.email)
        assert redirect.status_code == 302
        token = await client.fetch_token(
            f"{BASE}/oauth/token",
            authorization_response=redirect.headers["location"],
            code_verifier=verifier,
        )
        me = (await client.get(f"{BASE}/v1/me")).json()

    assert token["refresh_token"]
    assert me["kind"] == "user"
    assert me["subject"] == str(party.owner.id)
    assert me["role"] == "owner"
    assert me["tenant"]["id"] == str(party.id)
    assert me["scopes"] == ["portfolio:read"]


async def test_a_person_in_two_tenants_picks_one_at_sign_in(
    api: httpx.AsyncClient, ids: Identities, oauth: Oauth
) -> None:
    first = await ids.party("Loja Épsilon")
    second = await ids.tenant("Loja Zeta")
    await ids.member(second, first.owner, Role.VIEWER)
    app_client = await _code_client(ids, first)
    verifier = generate_token(48)

    async with oauth(
        app_client.client_id,
        redirect_uri=REDIRECT,
        scope="portfolio:read settings:write",
        code_challenge_method="S256",
        token_endpoint_auth_method="none",
    ) as client:
        url, _ = client.create_authorization_url(f"{BASE}/oauth/authorize", code_verifier=verifier)
        redirect = await _authorize(api, url, first.owner.email, tenant_id=str(second.id))
        await client.fetch_token(
            f"{BASE}/oauth/token",
            authorization_response=redirect.headers["location"],
            code_verifier=verifier,
        )
        me = (await client.get(f"{BASE}/v1/me")).json()

    assert me["tenant"]["id"] == str(second.id)
    assert me["role"] == "viewer"
    assert me["scopes"] == ["portfolio:read"]  # a viewer cannot get settings:write


async def test_the_code_is_refused_without_the_right_verifier(
    api: httpx.AsyncClient, ids: Identities, oauth: Oauth
) -> None:
    party = await ids.party("Loja Eta")
    app_client = await _code_client(ids, party)
    verifier = generate_token(48)

    async with oauth(
        app_client.client_id,
        redirect_uri=REDIRECT,
        code_challenge_method="S256",
        token_endpoint_auth_method="none",
    ) as client:
        url, _ = client.create_authorization_url(f"{BASE}/oauth/authorize", code_verifier=verifier)
        redirect = await _authorize(api, url, party.owner.email)
        with pytest.raises(OAuthError, match="invalid_grant"):
            await client.fetch_token(
                f"{BASE}/oauth/token",
                authorization_response=redirect.headers["location"],
                code_verifier=generate_token(48),
            )


async def test_pkce_is_required_and_plain_is_refused(
    api: httpx.AsyncClient, ids: Identities
) -> None:
    party = await ids.party("Loja Teta")
    app_client = await _code_client(ids, party)
    base = {
        "response_type": "code",
        "client_id": app_client.client_id,
        "redirect_uri": REDIRECT,
        "state": "xyz",
    }

    missing = await api.get("/oauth/authorize", params=base)
    plain = await api.get(
        "/oauth/authorize",
        params={**base, "code_challenge": "a" * 43, "code_challenge_method": "plain"},
    )

    for response in (missing, plain):
        assert response.status_code == 302
        query = parse_qs(urlparse(response.headers["location"]).query)
        assert query["error"] == ["invalid_request"]
        assert query["state"] == ["xyz"]


async def test_an_unregistered_redirect_uri_gets_an_error_page_not_a_redirect(
    api: httpx.AsyncClient, ids: Identities
) -> None:
    party = await ids.party("Loja Iota")
    app_client = await _code_client(ids, party)

    response = await api.get(
        "/oauth/authorize",
        params={
            "response_type": "code",
            "client_id": app_client.client_id,
            "redirect_uri": "https://evil.example.com/cb",
            "code_challenge": "a" * 43,
            "code_challenge_method": "S256",
        },
    )

    assert response.status_code == 400
    assert "location" not in response.headers


async def test_a_wrong_password_is_refused_without_saying_which_part_was_wrong(
    api: httpx.AsyncClient, ids: Identities, oauth: Oauth
) -> None:
    party = await ids.party("Loja Capa")
    app_client = await _code_client(ids, party)
    async with oauth(
        app_client.client_id, redirect_uri=REDIRECT, code_challenge_method="S256"
    ) as client:
        url, _ = client.create_authorization_url(
            f"{BASE}/oauth/authorize", code_verifier=generate_token(48)
        )
    page = await api.get(url)

    wrong = await api.post(
        "/oauth/authorize",
        data={**_fields(page.text), "email": party.owner.email, "password": "nope-nope-nope"},
    )
    unknown = await api.post(
        "/oauth/authorize",
        data={**_fields(page.text), "email": "ninguem@example.com", "password": "nope-nope-nope"},
    )

    assert wrong.status_code == unknown.status_code == 401
    assert "E-mail ou senha incorretos." in wrong.text
    assert "E-mail ou senha incorretos." in unknown.text


async def test_refresh_rotates_and_a_reused_token_kills_the_family(
    api: httpx.AsyncClient, ids: Identities, oauth: Oauth
) -> None:
    party = await ids.party("Loja Lambda")
    app_client = await _code_client(ids, party)
    verifier = generate_token(48)
    async with oauth(
        app_client.client_id,
        redirect_uri=REDIRECT,
        scope="portfolio:read",
        code_challenge_method="S256",
        token_endpoint_auth_method="none",
    ) as client:
        url, _ = client.create_authorization_url(f"{BASE}/oauth/authorize", code_verifier=verifier)
        redirect = await _authorize(api, url, party.owner.email)
        first = await client.fetch_token(
            f"{BASE}/oauth/token",
            authorization_response=redirect.headers["location"],
            code_verifier=verifier,
        )
        second = await client.refresh_token(
            f"{BASE}/oauth/token", refresh_token=first["refresh_token"]
        )
        assert second["refresh_token"] != first["refresh_token"]
        assert (await api.get("/v1/me", headers=bearer(second["access_token"]))).status_code == 200

        # The first refresh token was already used: an attacker replaying it...
        with pytest.raises(OAuthError, match="invalid_grant"):
            await client.refresh_token(f"{BASE}/oauth/token", refresh_token=first["refresh_token"])
        # ...kills the whole family: the legitimate holder's tokens stop working too.
        with pytest.raises(OAuthError, match="invalid_grant"):
            await client.refresh_token(f"{BASE}/oauth/token", refresh_token=second["refresh_token"])

    after = await api.get("/v1/me", headers=bearer(second["access_token"]))
    assert after.status_code == 401


async def test_a_revoked_access_token_stops_working_and_introspects_inactive(
    api: httpx.AsyncClient, ids: Identities
) -> None:
    party = await ids.party("Loja Mi")
    auth = (party.client.client_id, party.client_secret)
    token = (
        await api.post("/oauth/token", data={"grant_type": "client_credentials"}, auth=auth)
    ).json()["access_token"]
    active = (await api.post("/oauth/introspect", data={"token": token}, auth=auth)).json()
    assert active["active"] is True and active["tid"] == str(party.id)

    revoked = await api.post("/oauth/revoke", data={"token": token}, auth=auth)

    assert revoked.status_code == 200
    assert (await api.get("/v1/me", headers=bearer(token))).status_code == 401
    inactive = (await api.post("/oauth/introspect", data={"token": token}, auth=auth)).json()
    assert inactive == {"active": False}


async def test_a_client_cannot_introspect_another_clients_token(
    api: httpx.AsyncClient, ids: Identities
) -> None:
    a = await ids.party("Loja Ni")
    b = await ids.party("Loja Xi")
    token = (
        await api.post(
            "/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=(a.client.client_id, a.client_secret),
        )
    ).json()["access_token"]

    seen = await api.post(
        "/oauth/introspect", data={"token": token}, auth=(b.client.client_id, b.client_secret)
    )

    assert seen.json() == {"active": False}


async def test_metadata_and_jwks_are_published(api: httpx.AsyncClient) -> None:
    meta = (await api.get("/.well-known/oauth-authorization-server")).json()
    jwks = (await api.get("/.well-known/jwks.json")).json()

    assert meta["token_endpoint"].endswith("/oauth/token")
    assert meta["code_challenge_methods_supported"] == ["S256"]
    assert "client_credentials" in meta["grant_types_supported"]
    assert jwks["keys"] and all("d" not in k for k in jwks["keys"])  # public parts only
    assert {k["alg"] for k in jwks["keys"]} == {"RS256"}


async def test_rotating_the_signing_key_keeps_old_tokens_valid(
    api: httpx.AsyncClient, ids: Identities
) -> None:
    party = await ids.party("Loja Ómicron")
    old = await ids.token(party)
    admin = await ids.admin_token()

    rotated = await api.post("/v1/admin/keys/rotate", headers=bearer(admin))
    new = await ids.token(party)

    assert rotated.status_code == 201
    kids = {k["kid"] for k in (await api.get("/.well-known/jwks.json")).json()["keys"]}
    assert rotated.json()["kid"] in kids and len(kids) >= 2
    assert (await api.get("/v1/me", headers=bearer(old))).status_code == 200
    assert (await api.get("/v1/me", headers=bearer(new))).status_code == 200


async def test_passwords_never_reach_the_logs(
    api: httpx.AsyncClient, ids: Identities, oauth: Oauth, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    party = await ids.party("Loja Sigilo")
    app_client = await _code_client(ids, party)
    async with oauth(
        app_client.client_id, redirect_uri=REDIRECT, code_challenge_method="S256"
    ) as client:
        url, _ = client.create_authorization_url(
            f"{BASE}/oauth/authorize", code_verifier=generate_token(48)
        )

    with caplog.at_level(logging.DEBUG):
        await _authorize(api, url, party.owner.email)
        page = await api.get(url)
        await api.post(
            "/oauth/authorize",
            data={**_fields(page.text), "email": party.owner.email, "password": "senha-errada-123"},
        )

    assert PASSWORD not in caplog.text
    assert "senha-errada-123" not in caplog.text
