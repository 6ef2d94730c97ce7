"""The resource server: every API request carries a valid access token, or gets a 401.

Validation is local (signature against the published keys, ``typ``, ``iss``, ``aud``, ``exp``),
then one Redis round trip checks the deny-list (the token, its session, its client).
"""

from __future__ import annotations

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult

from services.api.auth.state import auth_state
from services.common.http import resources
from shared.domains.identity import revocation, tokens
from shared.domains.identity.principals import principal_for

PUBLIC_PREFIXES = ("/health", "/ready", "/schema", "/oauth", "/.well-known")


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
        settings = res.settings
        keys = await auth.keys.get()
        kid = tokens.kid_of(raw)
        if kid is not None and not any(k.kid == kid for k in keys.published.keys):
            keys = await auth.keys.get(refresh=True)  # a key rotated in by another process
        try:
            token = tokens.verify(
                raw, keys, issuer=settings.oauth_issuer_url, audience=settings.oauth_audience
            )
        except tokens.InvalidToken as exc:
            raise _unauthorized(str(exc)) from None
        if await revocation.is_revoked(
            res.redis,
            token_id=token.token_id,
            session_id=token.session_id,
            client_id=token.client_id,
            issued_at=token.issued_at,
        ):
            raise _unauthorized("the access token was revoked")
        principal = await principal_for(token, res.sessionmaker)
        return AuthenticationResult(user=principal, auth=token)
