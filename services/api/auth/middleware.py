"""The resource server: every API request carries a valid access token, or gets a 401.

Validation is local (signature against the published keys, ``typ``, ``iss``, ``aud``, ``exp``) and
done once per token per process; the deny-list (the token, its session, its client) is checked on
every request against this process's in-memory view of it, kept current by pub/sub.
"""

from __future__ import annotations

import time

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult

from services.api.auth.state import AuthState, auth_state
from services.common.http import resources
from shared.config import Settings
from shared.domains.identity import tokens
from shared.domains.identity.principals import principal_for

_LEEWAY_S = 30
PUBLIC_PREFIXES = ("/health", "/ready", "/schema", "/oauth", "/.well-known", "/pagar/")


def _unauthorized(detail: str, error: str = "invalid_token") -> NotAuthorizedException:
    return NotAuthorizedException(
        detail=detail,
        headers={"WWW-Authenticate": f'Bearer realm="quita", error="{error}"'},
    )


class BearerTokenMiddleware(AbstractAuthenticationMiddleware):
    async def authenticate_request(self, connection: ASGIConnection) -> AuthenticationResult:  # type: ignore[type-arg]
        header = connection.headers.get("authorization", "")
        scheme, _, raw = header.partition(" ")
        if scheme.lower() != "bearer" or not raw.strip():
            raise NotAuthorizedException(
                detail="An access token is required (Authorization: Bearer <token>).",
                headers={"WWW-Authenticate": 'Bearer realm="quita"'},
            )
        raw = raw.strip()
        app = connection.app
        auth = auth_state(app)
        res = resources(app.state)
        cached = auth.verified.get(raw)
        if cached is not None and cached[0].expires_at + _LEEWAY_S > time.time():
            token, principal = cached
        else:
            token = await self._verify(raw, auth, res.settings)
            principal = None
        if auth.revocations.is_revoked(
            token_id=token.token_id,
            session_id=token.session_id,
            client_id=token.client_id,
            issued_at=token.issued_at,
        ):
            raise _unauthorized("the access token was revoked")
        if principal is None:
            principal = await principal_for(token, res.sessionmaker)
            # An agency's mandates are re-read on every request (revocation is immediate).
            auth.remember(raw, token, None if principal.grants or _is_agency(token) else principal)
        return AuthenticationResult(user=principal, auth=token)

    @staticmethod
    async def _verify(raw: str, auth: AuthState, settings: Settings) -> tokens.AccessToken:
        keys = await auth.keys.get()
        kid = tokens.kid_of(raw)
        if kid is not None and not any(k.kid == kid for k in keys.published.keys):
            keys = await auth.keys.get(refresh=True)  # a key rotated in by another process
        try:
            return tokens.verify(
                raw,
                keys,
                issuer=settings.oauth_issuer_url,
                audience=settings.oauth_audience,
                leeway_s=_LEEWAY_S,
            )
        except tokens.InvalidToken as exc:
            raise _unauthorized(str(exc)) from None


def _is_agency(token: tokens.AccessToken) -> bool:
    return token.tenant_kind == "agency"
