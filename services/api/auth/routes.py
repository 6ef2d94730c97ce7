"""OAuth 2.0 endpoints: token, authorize (sign-in and consent), revoke, introspect, metadata, JWKS.

Authlib's synchronous hooks run inside ``AsyncSession.run_sync``; the handler commits (it is the
edge), then applies the Redis deny-list entries the hooks asked for.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from authlib.oauth2 import OAuth2Error
from litestar import MediaType, Request, Response, get, post
from litestar.di import NamedDependency
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.api.auth import pages
from services.api.auth.state import AuthState, auth_state
from services.common.http import resources
from shared import crypto
from shared.config import Settings
from shared.domains.audit.service import record
from shared.domains.identity.oauth import (
    SUPPORTED_SCOPES,
    GrantUser,
    OAuthContext,
    QuitaOAuth2Request,
    resolve_grant_user,
    run_in_context,
)
from shared.models import Membership, Tenant, TenantStatus, User
from shared.passwords import verify_password_timing_safe
from shared.tenancy import SYSTEM, use_scope

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
_CSP = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'"
_TICKET_CONTEXT = "oauth_authorize_ticket"
_TICKET_SECONDS = 600
# What the authorization request carries through the sign-in and consent forms.
_AUTHORIZE_PARAMS = (
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "code_challenge",
    "code_challenge_method",
)


async def _form(request: Request[Any, Any, Any]) -> dict[str, list[str]]:
    form = await request.form()
    return {k: [str(v) for v in form.getall(k)] for k in form}


def _oauth_request(
    request: Request[Any, Any, Any], settings: Settings, form: dict[str, list[str]]
) -> QuitaOAuth2Request:
    # Authlib refuses plain-http URIs; we are behind TLS in production, so the issuer's scheme
    # (https there, http in dev) is the truth, not what the proxy forwarded.
    uri = settings.oauth_issuer_url + request.url.path
    if request.url.query:
        uri += "?" + request.url.query
    return QuitaOAuth2Request(
        request.method, uri, request.headers, form, dict(request.query_params)
    )


async def _run(db: AsyncSession, request: Request[Any, Any, Any], fn: Callable[[], Any]) -> Any:
    """Run Authlib code against the database, commit, then apply the deny-list entries."""
    auth = auth_state(request.app)
    res = resources(request.app.state)
    await use_scope(db, SYSTEM)
    keys = await auth.keys.get()
    after: list[tuple[str, str, int]] = []

    def call(sync_session: Any) -> Any:
        ctx = OAuthContext(sync_session, keys, res.settings)
        try:
            return run_in_context(ctx, fn)
        finally:
            after.extend(ctx.after_commit)

    result = await db.run_sync(call)
    await db.commit()
    for kind, value, at in after:
        await auth.revoke(res.redis, kind, value, at=at, ttl_s=res.settings.access_token_ttl_s + 60)
    return result


def _oauth_response(result: tuple[int, Any, dict[str, str]]) -> Response[Any]:
    status, body, headers = result
    if isinstance(body, dict):
        content: Any = body
        media = MediaType.JSON
    else:
        content, media = body or "", MediaType.TEXT
    return Response(
        content=content, status_code=status, headers={**headers, **NO_STORE}, media_type=media
    )


def _too_many(retry_after: float) -> Response[Any]:
    return Response(
        content={"error": "slow_down", "error_description": "Too many requests; retry later."},
        status_code=429,
        headers={"Retry-After": str(max(1, int(retry_after + 0.999))), **NO_STORE},
    )


def _client_hint(request: Request[Any, Any, Any], form: dict[str, list[str]]) -> str:
    if form.get("client_id"):
        return form["client_id"][0]
    header = request.headers.get("authorization", "")
    if header.lower().startswith("basic "):
        try:
            return base64.b64decode(header[6:]).decode().split(":", 1)[0]
        except (ValueError, UnicodeDecodeError):
            return "malformed"
    return "anonymous"


async def _throttle(auth: AuthState, settings: Settings, keys: list[str]) -> float:
    """Seconds to wait if any key is over its budget (0 if all pass)."""
    wait = 0.0
    for key in keys:
        decision = await auth.limiter.hit(
            key, rate=settings.token_rate_per_s, burst=settings.token_burst
        )
        if not decision.allowed:
            wait = max(wait, decision.retry_after_s)
    return wait


@post(
    "/oauth/token",
    status_code=200,
    exclude_from_auth=True,
    tags=["oauth"],
    summary="Token endpoint (RFC 6749)",
)
async def token_endpoint(
    request: Request[Any, Any, Any], db: NamedDependency[AsyncSession]
) -> Response[Any]:
    """client_credentials, authorization_code (PKCE S256) and refresh_token grants."""
    auth = auth_state(request.app)
    settings = resources(request.app.state).settings
    form = await _form(request)
    client = _client_hint(request, form)
    ip = request.client.host if request.client else "unknown"
    wait = await _throttle(auth, settings, [f"token:ip:{ip}", f"token:client:{client}"])
    locked = await auth.backoff.locked_for(f"client:{client}")
    if wait or locked:
        return _too_many(max(wait, locked))
    oreq = _oauth_request(request, settings, form)
    result = await _run(db, request, lambda: auth.server.create_token_response(oreq))
    status, body, _ = result
    if status == 401 or (isinstance(body, dict) and body.get("error") == "invalid_client"):
        await auth.backoff.record_failure(f"client:{client}")
    elif status == 200:
        await auth.backoff.reset(f"client:{client}")
    return _oauth_response(result)


@post(
    "/oauth/revoke",
    status_code=200,
    exclude_from_auth=True,
    tags=["oauth"],
    summary="Token revocation (RFC 7009)",
)
async def revoke_endpoint(
    request: Request[Any, Any, Any], db: NamedDependency[AsyncSession]
) -> Response[Any]:
    return _oauth_response(await _endpoint(request, db, "revocation"))


@post(
    "/oauth/introspect",
    status_code=200,
    exclude_from_auth=True,
    tags=["oauth"],
    summary="Token introspection (RFC 7662)",
)
async def introspect_endpoint(
    request: Request[Any, Any, Any], db: NamedDependency[AsyncSession]
) -> Response[Any]:
    status, body, headers = await _endpoint(request, db, "introspection")
    # Authlib knows the signature; the deny-list (the same view the middleware uses) knows
    # about revocation of the token, its session and its client.
    if (
        isinstance(body, dict)
        and body.get("jti")
        and auth_state(request.app).revocations.is_revoked(
            token_id=body["jti"],
            session_id=body.get("sid"),
            client_id=body["client_id"],
            issued_at=int(body["iat"]),
        )
    ):
        body = {"active": False}
    return _oauth_response((status, body, headers))


async def _endpoint(
    request: Request[Any, Any, Any], db: AsyncSession, name: str
) -> tuple[int, Any, dict[str, str]]:
    auth = auth_state(request.app)
    oreq = _oauth_request(request, resources(request.app.state).settings, await _form(request))
    result: tuple[int, Any, dict[str, str]] = await _run(
        db, request, lambda: auth.server.create_endpoint_response(name, oreq)
    )
    return result


@get(
    "/.well-known/oauth-authorization-server",
    exclude_from_auth=True,
    tags=["oauth"],
    summary="Authorization server metadata (RFC 8414)",
    sync_to_thread=False,
)
def metadata(request: Request[Any, Any, Any]) -> dict[str, Any]:
    issuer = resources(request.app.state).settings.oauth_issuer_url
    return {
        "issuer": issuer,
        "authorization_endpoint": f"{issuer}/oauth/authorize",
        "token_endpoint": f"{issuer}/oauth/token",
        "revocation_endpoint": f"{issuer}/oauth/revoke",
        "introspection_endpoint": f"{issuer}/oauth/introspect",
        "jwks_uri": f"{issuer}/.well-known/jwks.json",
        "scopes_supported": SUPPORTED_SCOPES,
        "response_types_supported": ["code"],
        "grant_types_supported": ["client_credentials", "authorization_code", "refresh_token"],
        "token_endpoint_auth_methods_supported": [
            "client_secret_basic",
            "client_secret_post",
            "none",
        ],
        "revocation_endpoint_auth_methods_supported": [
            "client_secret_basic",
            "client_secret_post",
            "none",
        ],
        "introspection_endpoint_auth_methods_supported": [
            "client_secret_basic",
            "client_secret_post",
        ],
        "code_challenge_methods_supported": ["S256"],
    }


@get(
    "/.well-known/jwks.json",
    exclude_from_auth=True,
    tags=["oauth"],
    summary="Public keys that sign access tokens",
)
async def jwks(request: Request[Any, Any, Any]) -> Response[Any]:
    keys = await auth_state(request.app).keys.get()
    return Response(
        content=keys.published.as_dict(private=False),
        headers={"Cache-Control": "public, max-age=60"},
    )


# --- authorization endpoint: sign-in, then consent ---------------------------------------------


def _authorize_params(values: dict[str, Any]) -> dict[str, str]:
    return {k: str(values[k]) for k in _AUTHORIZE_PARAMS if values.get(k)}


def _html(body: str, status: int = 200) -> Response[str]:
    return Response(
        content=body,
        status_code=status,
        media_type=MediaType.HTML,
        headers={
            **NO_STORE,
            "X-Frame-Options": "DENY",
            "Content-Security-Policy": _CSP,
        },
    )


async def _validate(
    db: AsyncSession, request: Request[Any, Any, Any], params: dict[str, str]
) -> tuple[Any, Response[Any] | None]:
    """Authlib's checks of the request (client, redirect URI, PKCE); an error page or redirect."""
    auth = auth_state(request.app)
    settings = resources(request.app.state).settings
    oreq = QuitaOAuth2Request(
        "GET",
        settings.oauth_issuer_url + "/oauth/authorize?" + urlencode(params),
        request.headers,
        {},
        params,
    )

    def check() -> Any:
        try:
            return auth.server.get_consent_grant(oreq), None
        except OAuth2Error as exc:
            return None, exc

    grant, error = await _run(db, request, check)
    if error is None:
        return grant, None
    redirect = getattr(error, "redirect_uri", None)
    if redirect:  # the redirect URI was verified: the client hears about it
        return None, Response(
            content="", status_code=302, headers={"Location": _with_params(redirect, error, params)}
        )
    return None, _html(
        pages.error(f"Pedido de autorização inválido: {error.description or error.error}."), 400
    )


def _with_params(redirect: str, error: OAuth2Error, params: dict[str, str]) -> str:
    query = {"error": error.error}
    if error.description:
        query["error_description"] = error.description
    if params.get("state"):
        query["state"] = params["state"]
    return redirect + ("&" if "?" in redirect else "?") + urlencode(query)


@get(
    "/oauth/authorize",
    exclude_from_auth=True,
    tags=["oauth"],
    include_in_schema=True,
    summary="Authorization endpoint: sign-in page",
)
async def authorize_page(
    request: Request[Any, Any, Any], db: NamedDependency[AsyncSession]
) -> Response[Any]:
    params = _authorize_params(dict(request.query_params))
    grant, failure = await _validate(db, request, params)
    if failure is not None:
        return failure
    return _html(pages.sign_in(grant.client.row.name, params))


@post(
    "/oauth/authorize",
    exclude_from_auth=True,
    tags=["oauth"],
    status_code=200,
    summary="Authorization endpoint: sign-in and consent",
)
async def authorize_submit(
    request: Request[Any, Any, Any], db: NamedDependency[AsyncSession]
) -> Response[Any]:
    form = await _form(request)
    values = {k: v[0] for k, v in form.items() if v}
    params = _authorize_params(values)
    grant, failure = await _validate(db, request, params)
    if failure is not None:
        return failure
    if "ticket" in values:
        return await _decide(db, request, grant, params, values)
    return await _sign_in(db, request, grant, params, values)


def _fingerprint(params: dict[str, str]) -> str:
    return json.dumps(params, sort_keys=True)


async def _sign_in(
    db: AsyncSession,
    request: Request[Any, Any, Any],
    grant: Any,
    params: dict[str, str],
    values: dict[str, str],
) -> Response[Any]:
    auth = auth_state(request.app)
    settings = resources(request.app.state).settings
    client_name = grant.client.row.name
    email = values.get("email", "").strip().lower()
    ip = request.client.host if request.client else "unknown"
    decision = await auth.limiter.hit(
        f"signin:ip:{ip}", rate=settings.signin_rate_per_s, burst=settings.signin_burst
    )
    locked = await auth.backoff.locked_for(f"user:{email}")
    if not decision.allowed or locked:
        wait = int(max(decision.retry_after_s, locked)) + 1
        return _html(
            pages.sign_in(client_name, params, f"Muitas tentativas. Tente de novo em {wait} s."),
            429,
        )
    user = (await db.scalars(select(User).where(User.email == email))).one_or_none()
    ok = verify_password_timing_safe(
        user.password_hash if user else None, values.get("password", "")
    )
    if not ok or user is None or not user.active:
        await auth.backoff.record_failure(f"user:{email}")
        return _html(pages.sign_in(client_name, params, "E-mail ou senha incorretos."), 401)
    await auth.backoff.reset(f"user:{email}")
    tenants = (
        await db.execute(
            select(Tenant.id, Tenant.name)
            .join(Membership, Membership.tenant_id == Tenant.id)
            .where(Membership.user_id == user.id, Tenant.status == TenantStatus.ACTIVE)
            .order_by(Tenant.name)
        )
    ).all()
    if not tenants:
        return _html(pages.error("Sua conta não tem acesso a nenhuma empresa ativa."), 403)
    await record(
        db,
        "user.signed_in",
        tenant_id=None,
        actor_type="user",
        actor_id=str(user.id),
        subject_type="client",
        subject_id=params.get("client_id"),
    )
    ticket = crypto.encrypt(
        json.dumps(
            {
                "user_id": str(user.id),
                "exp": time.time() + _TICKET_SECONDS,
                "params": _fingerprint(params),
            }
        ),
        context=_TICKET_CONTEXT,
    )
    requested = grant.client.get_allowed_scope(params.get("scope"))
    return _html(
        pages.consent(
            client_name,
            user.name,
            requested.split(),
            [(str(t.id), t.name) for t in tenants],
            {**params, "ticket": ticket},
        )
    )


async def _decide(
    db: AsyncSession,
    request: Request[Any, Any, Any],
    grant: Any,
    params: dict[str, str],
    values: dict[str, str],
) -> Response[Any]:
    auth = auth_state(request.app)
    settings = resources(request.app.state).settings
    try:
        ticket = json.loads(crypto.decrypt(values["ticket"], context=_TICKET_CONTEXT))
    except (ValueError, KeyError):
        return _html(pages.error("Sessão de autorização inválida. Recomece."), 400)
    if ticket["exp"] < time.time() or ticket["params"] != _fingerprint(params):
        return _html(pages.error("Sessão de autorização expirada. Recomece."), 400)
    user_id = uuid.UUID(ticket["user_id"])
    try:
        tenant_id = uuid.UUID(values.get("tenant_id", ""))
    except ValueError:
        return _html(pages.error("Escolha a empresa."), 400)
    oreq = QuitaOAuth2Request(
        "POST",
        settings.oauth_issuer_url + "/oauth/authorize",
        request.headers,
        {k: [v] for k, v in params.items()},
        {},
    )

    def authorize() -> Any:
        from shared.domains.identity.oauth import _ctx

        grant_user: GrantUser | None = None
        if values.get("decision") == "allow":
            grant_user = resolve_grant_user(_ctx().session, user_id, tenant_id)
            if grant_user is None:
                return None
        consent_grant = auth.server.get_consent_grant(oreq)
        return auth.server.create_authorization_response(
            oreq, grant_user=grant_user, grant=consent_grant
        )

    result = await _run(db, request, authorize)
    if result is None:
        return _html(pages.error("Você não tem acesso a essa empresa."), 403)
    await record(
        db,
        "oauth.authorized" if values.get("decision") == "allow" else "oauth.denied",
        tenant_id=tenant_id,
        actor_type="user",
        actor_id=str(user_id),
        subject_type="client",
        subject_id=params.get("client_id"),
        data={"scope": params.get("scope", ""), "at": datetime.now(UTC).isoformat()},
    )
    status, body, headers = result
    return Response(content=body or "", status_code=status, headers={**headers, **NO_STORE})


OAUTH_ROUTES = [
    token_endpoint,
    revoke_endpoint,
    introspect_endpoint,
    metadata,
    jwks,
    authorize_page,
    authorize_submit,
]
