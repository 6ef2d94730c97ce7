"""Access tokens: RFC 9068 JWTs signed with the active key, validated against the published ones.

Claims: ``iss``, ``aud``, ``sub`` (user id, or the client id for client credentials), ``client_id``,
``scope``, ``iat``, ``exp``, ``jti``, ``tid`` (the one tenant this token acts for) and ``tkind``
(retailer or agency), ``role`` (for people) and ``sid`` (the refresh-token family, so revoking a
session kills its access tokens).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

from joserfc import jws, jwt
from joserfc.errors import JoseError

from shared.domains.identity.keys import ALGORITHM, Keys

TOKEN_TYPE = "at+jwt"  # noqa: S105 (RFC 9068 media type, not a secret)


@dataclass(frozen=True, slots=True)
class AccessToken:
    subject: str
    client_id: str
    tenant_id: uuid.UUID | None
    scopes: frozenset[str]
    role: str | None
    session_id: str | None
    tenant_kind: str | None
    token_id: str
    expires_at: int
    issued_at: int


class InvalidToken(Exception):
    """The token is malformed, forged, expired, or not meant for us.  The message is safe to
    show (it never echoes the token)."""


def issue(
    keys: Keys,
    *,
    issuer: str,
    audience: str,
    ttl_s: int,
    subject: str,
    client_id: str,
    tenant_id: uuid.UUID | None,
    scope: str,
    role: str | None = None,
    session_id: str | None = None,
    tenant_kind: str | None = None,
) -> tuple[str, AccessToken]:
    now = int(time.time())
    token_id = uuid.uuid4().hex
    claims: dict[str, Any] = {
        "iss": issuer,
        "aud": audience,
        "sub": subject,
        "client_id": client_id,
        "scope": scope,
        "iat": now,
        "exp": now + ttl_s,
        "jti": token_id,
    }
    if tenant_id is not None:
        claims["tid"] = str(tenant_id)
        claims["tkind"] = tenant_kind
    if role is not None:
        claims["role"] = role
    if session_id is not None:
        claims["sid"] = session_id
    header = {"alg": ALGORITHM, "kid": keys.kid, "typ": TOKEN_TYPE}
    raw = jwt.encode(header, claims, keys.signing)
    return raw, _from_claims(claims)


def kid_of(raw: str) -> str | None:
    """The ``kid`` in a token's header, without verifying anything."""
    try:
        header = jws.extract_compact(raw.encode()).protected
    except (JoseError, ValueError):
        return None
    kid = header.get("kid")
    return str(kid) if kid else None


def verify(raw: str, keys: Keys, *, issuer: str, audience: str, leeway_s: int = 30) -> AccessToken:
    """Check signature, type, issuer, audience and expiry; return the token's meaning."""
    try:
        token = jwt.decode(raw, keys.published, algorithms=[ALGORITHM])
    except (JoseError, ValueError) as exc:
        raise InvalidToken("the access token is malformed or its signature is invalid") from exc
    if token.header.get("typ") != TOKEN_TYPE:
        raise InvalidToken("not an access token")
    registry = jwt.JWTClaimsRegistry(
        leeway=leeway_s,
        iss={"essential": True, "value": issuer},
        aud={"essential": True, "value": audience},
        exp={"essential": True},
        sub={"essential": True},
        jti={"essential": True},
        client_id={"essential": True},
    )
    try:
        registry.validate(token.claims)
    except JoseError as exc:
        raise InvalidToken(f"the access token is not valid here: {exc.error}") from exc
    return _from_claims(token.claims)


def _from_claims(claims: dict[str, Any]) -> AccessToken:
    tid = claims.get("tid")
    return AccessToken(
        subject=str(claims["sub"]),
        client_id=str(claims["client_id"]),
        tenant_id=uuid.UUID(tid) if tid else None,
        scopes=frozenset(str(claims.get("scope", "")).split()),
        role=claims.get("role"),
        session_id=claims.get("sid"),
        tenant_kind=claims.get("tkind"),
        token_id=str(claims["jti"]),
        expires_at=int(claims["exp"]),
        issued_at=int(claims["iat"]),
    )
