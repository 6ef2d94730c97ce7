"""The OAuth 2.0 authorization server, on Authlib's framework-agnostic classes.

Authlib's hooks are synchronous; the web layer runs them inside ``AsyncSession.run_sync`` and
hands them an :class:`OAuthContext` (the synchronous session, the signing keys, settings, and a
list of Redis actions to perform once the transaction has committed).

Grants: client credentials (confidential clients of one tenant), authorization code with PKCE
(S256 only), refresh tokens that rotate, with reuse detection that revokes the whole family.
Endpoints: revocation (RFC 7009), introspection (RFC 7662).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from authlib.oauth2 import AuthorizationServer, OAuth2Request
from authlib.oauth2.rfc6749 import ClientMixin, InvalidRequestError, grants
from authlib.oauth2.rfc6749.requests import BasicOAuth2Payload
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oauth2.rfc7662 import IntrospectionEndpoint
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from shared.config import Settings
from shared.domains.audit.service import record_sync
from shared.domains.identity import tokens
from shared.domains.identity.keys import Keys
from shared.models import (
    Membership,
    OAuthAuthorizationCode,
    OAuthClient,
    OAuthRefreshToken,
    Role,
    Tenant,
    TenantStatus,
    User,
)
from shared.passwords import digest_secret, new_secret, secrets_match
from shared.tenancy import ROLE_SCOPES, TENANT_SCOPES, Scopes

GRANT_CLIENT_CREDENTIALS = "client_credentials"
GRANT_AUTHORIZATION_CODE = "authorization_code"
GRANT_REFRESH_TOKEN = "refresh_token"  # noqa: S105 (a grant name, not a secret)
SUPPORTED_SCOPES = sorted(TENANT_SCOPES | {Scopes.ADMIN.value})


# --- the context the synchronous hooks run in --------------------------------------------------


@dataclass
class OAuthContext:
    session: Session
    keys: Keys
    settings: Settings
    after_commit: list[tuple[str, str, int]] = field(default_factory=list)  # (kind, value, at)

    def revoke_later(self, kind: str, value: str) -> None:
        self.after_commit.append((kind, value, int(datetime.now(UTC).timestamp())))


_context: ContextVar[OAuthContext] = ContextVar("quita_oauth_context")


def run_in_context(ctx: OAuthContext, fn: Callable[[], Any]) -> Any:
    token = _context.set(ctx)
    try:
        return fn()
    finally:
        _context.reset(token)


def _ctx() -> OAuthContext:
    return _context.get()


def _now() -> datetime:
    return datetime.now(UTC)


# --- clients and users as Authlib sees them ----------------------------------------------------


class Client(ClientMixin):  # type: ignore[misc]
    def __init__(self, row: OAuthClient) -> None:
        self.row = row

    @property
    def tenant_id(self) -> uuid.UUID | None:
        return self.row.tenant_id

    def get_client_id(self) -> str:
        return self.row.client_id

    def get_default_redirect_uri(self) -> str | None:
        return self.row.redirect_uris[0] if self.row.redirect_uris else None

    def get_allowed_scope(self, scope: str | None) -> str:
        allowed = set(self.row.scopes)
        if not scope:
            return " ".join(sorted(allowed))
        return " ".join(s for s in scope.split() if s in allowed)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.row.redirect_uris  # exact match only

    def check_client_secret(self, client_secret: str) -> bool:
        digest = digest_secret(client_secret)
        row = self.row
        if row.secret_digest and secrets_match(digest, row.secret_digest):
            return True
        return bool(
            row.previous_secret_digest
            and row.previous_secret_expires_at
            and row.previous_secret_expires_at > _now()
            and secrets_match(digest, row.previous_secret_digest)
        )

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        if endpoint == "token":
            return method == self.row.token_endpoint_auth_method
        # revocation and introspection: any method the client can really authenticate with
        return method == self.row.token_endpoint_auth_method or (
            method in ("client_secret_basic", "client_secret_post")
            and self.row.secret_digest is not None
        )

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code" and GRANT_AUTHORIZATION_CODE in self.row.grant_types

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in self.row.grant_types


@dataclass(frozen=True, slots=True)
class GrantUser:
    """A person acting for one tenant, with the role they hold there."""

    user_id: uuid.UUID
    tenant_id: uuid.UUID
    role: Role
    is_platform_admin: bool = False
    family_id: uuid.UUID | None = None

    def get_user_id(self) -> str:
        return str(self.user_id)


def resolve_grant_user(
    session: Session, user_id: uuid.UUID, tenant_id: uuid.UUID, family_id: uuid.UUID | None = None
) -> GrantUser | None:
    """The user's current standing in the tenant, or None if they no longer may act there."""
    row = session.execute(
        select(User, Membership.role)
        .join(Membership, Membership.user_id == User.id)
        .join(Tenant, Tenant.id == Membership.tenant_id)
        .where(
            User.id == user_id,
            Membership.tenant_id == tenant_id,
            User.active.is_(True),
            Tenant.status == TenantStatus.ACTIVE,
        )
    ).one_or_none()
    if row is None:
        return None
    user, role = row
    return GrantUser(user.id, tenant_id, Role(role), user.is_platform_admin, family_id)


# --- tokens ------------------------------------------------------------------------------------


def _granted_scope(client: Client, user: GrantUser | None, requested: str | None) -> str:
    allowed = set(client.get_allowed_scope(requested).split())
    if user is not None:
        permitted = set(ROLE_SCOPES[user.role])
        if user.is_platform_admin:
            permitted.add(Scopes.ADMIN.value)
        allowed &= permitted
    return " ".join(sorted(allowed))


def generate_token(
    grant_type: str,
    client: Client,
    user: GrantUser | None = None,
    scope: str | None = None,
    expires_in: int | None = None,
    include_refresh_token: bool = True,
) -> dict[str, Any]:
    ctx = _ctx()
    settings = ctx.settings
    granted = _granted_scope(client, user, scope)
    family_id = None
    if user is not None and include_refresh_token:
        family_id = user.family_id or uuid.uuid4()
    raw, _ = tokens.issue(
        ctx.keys,
        issuer=settings.oauth_issuer_url,
        audience=settings.oauth_audience,
        ttl_s=settings.access_token_ttl_s,
        subject=user.get_user_id() if user else client.get_client_id(),
        client_id=client.get_client_id(),
        tenant_id=user.tenant_id if user else client.tenant_id,
        scope=granted,
        role=user.role.value if user else None,
        session_id=str(family_id) if family_id else None,
        tenant_kind=_tenant_kind(ctx, user.tenant_id if user else client.tenant_id),
    )
    token: dict[str, Any] = {
        "token_type": "Bearer",
        "access_token": raw,
        "expires_in": settings.access_token_ttl_s,
        "scope": granted,
    }
    if family_id is not None and user is not None:
        token["refresh_token"] = new_secret()
        _save_refresh_token(ctx, token["refresh_token"], family_id, client, user, granted)
    return token


def _tenant_kind(ctx: OAuthContext, tenant_id: uuid.UUID | None) -> str | None:
    if tenant_id is None:
        return None
    kind = ctx.session.scalar(select(Tenant.kind).where(Tenant.id == tenant_id))
    return str(kind) if kind else None


def _save_refresh_token(
    ctx: OAuthContext, raw: str, family_id: uuid.UUID, client: Client, user: GrantUser, scope: str
) -> None:
    now = _now()
    ctx.session.add(
        OAuthRefreshToken(
            token_digest=digest_secret(raw),
            family_id=family_id,
            client_id=client.get_client_id(),
            user_id=user.user_id,
            tenant_id=user.tenant_id,
            scope=scope,
            issued_at=now,
            expires_at=now + timedelta(seconds=ctx.settings.refresh_token_ttl_s),
        )
    )


def revoke_family(ctx: OAuthContext, family_id: uuid.UUID) -> None:
    ctx.session.execute(
        update(OAuthRefreshToken)
        .where(OAuthRefreshToken.family_id == family_id, OAuthRefreshToken.revoked_at.is_(None))
        .values(revoked_at=_now())
    )
    ctx.revoke_later("sid", str(family_id))


# --- grants ------------------------------------------------------------------------------------


class ClientCredentialsGrant(grants.ClientCredentialsGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]


class S256Only(CodeChallenge):  # type: ignore[misc]
    """PKCE for every client, confidential ones too, and only with S256 (RFC 9700 §2.1.1)."""

    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]
    DEFAULT_CODE_CHALLENGE_METHOD = "S256"

    def validate_code_challenge(self, grant: Any, redirect_uri: str) -> None:
        data = grant.request.payload.data
        if not data.get("code_challenge"):
            raise InvalidRequestError("PKCE is required: send 'code_challenge'.")
        if data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("Only code_challenge_method=S256 is supported.")
        super().validate_code_challenge(grant, redirect_uri)


class AuthorizationCodeGrant(grants.AuthorizationCodeGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]

    def save_authorization_code(self, code: str, request: OAuth2Request) -> None:
        ctx = _ctx()
        user: GrantUser = request.user
        payload = request.payload.data
        now = _now()
        ctx.session.add(
            OAuthAuthorizationCode(
                code_digest=digest_secret(code),
                client_id=request.client.get_client_id(),
                user_id=user.user_id,
                tenant_id=user.tenant_id,
                redirect_uri=payload.get("redirect_uri", ""),
                scope=request.scope or "",
                code_challenge=payload.get("code_challenge", ""),
                code_challenge_method=payload.get("code_challenge_method", "S256"),
                created_at=now,
                expires_at=now + timedelta(seconds=ctx.settings.auth_code_ttl_s),
            )
        )

    def query_authorization_code(self, code: str, client: Client) -> _CodeView | None:
        ctx = _ctx()
        row = ctx.session.scalar(
            select(OAuthAuthorizationCode)
            .where(OAuthAuthorizationCode.code_digest == digest_secret(code))
            .with_for_update()
        )
        if row is None or row.client_id != client.get_client_id():
            return None
        if row.used_at is not None:
            # A code presented twice: someone replayed it; kill what the first use created.
            self._revoke_tokens_of_code(ctx, row)
            return None
        if row.expires_at <= _now():
            return None
        return _CodeView(row)

    def _revoke_tokens_of_code(self, ctx: OAuthContext, row: OAuthAuthorizationCode) -> None:
        families = ctx.session.scalars(
            select(OAuthRefreshToken.family_id).where(
                OAuthRefreshToken.client_id == row.client_id,
                OAuthRefreshToken.user_id == row.user_id,
                OAuthRefreshToken.issued_at >= row.created_at,
                OAuthRefreshToken.issued_at <= row.used_at,
            )
        ).all()
        for family_id in set(families):
            revoke_family(ctx, family_id)

    def delete_authorization_code(self, authorization_code: _CodeView) -> None:
        authorization_code.row.used_at = _now()

    def authenticate_user(self, authorization_code: _CodeView) -> GrantUser | None:
        row = authorization_code.row
        return resolve_grant_user(_ctx().session, row.user_id, row.tenant_id)


class _CodeView:
    """What Authlib needs to see of a stored authorization code."""

    def __init__(self, row: OAuthAuthorizationCode) -> None:
        self.row = row
        self.code_challenge = row.code_challenge
        self.code_challenge_method = row.code_challenge_method

    def get_redirect_uri(self) -> str:
        return self.row.redirect_uri

    def get_scope(self) -> str:
        return self.row.scope

    def get_nonce(self) -> None:
        return None

    def get_auth_time(self) -> None:
        return None

    def get_acr(self) -> None:
        return None

    def get_amr(self) -> None:
        return None


class _RefreshView:
    def __init__(self, row: OAuthRefreshToken) -> None:
        self.row = row

    def check_client(self, client: Client) -> bool:
        return self.row.client_id == client.get_client_id()

    def get_scope(self) -> str:
        return self.row.scope

    def get_expires_in(self) -> int:
        return int((self.row.expires_at - self.row.issued_at).total_seconds())

    def is_expired(self) -> bool:
        return self.row.expires_at <= _now()

    def is_revoked(self) -> bool:
        return self.row.revoked_at is not None or self.row.used_at is not None


class RefreshTokenGrant(grants.RefreshTokenGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]
    INCLUDE_NEW_REFRESH_TOKEN = True

    def authenticate_refresh_token(self, refresh_token: str) -> _RefreshView | None:
        ctx = _ctx()
        row = ctx.session.scalar(
            select(OAuthRefreshToken)
            .where(OAuthRefreshToken.token_digest == digest_secret(refresh_token))
            .with_for_update()
        )
        if row is None or row.revoked_at is not None or row.expires_at <= _now():
            return None
        if row.used_at is not None:
            # Reuse of a rotated token: it leaked. Revoke the whole family (RFC 9700 §4.14.2).
            revoke_family(ctx, row.family_id)
            record_sync(
                ctx.session,
                "oauth.refresh_token_reused",
                tenant_id=row.tenant_id,
                actor_type="client",
                actor_id=row.client_id,
                subject_type="user",
                subject_id=str(row.user_id),
                data={"family_id": str(row.family_id)},
            )
            return None
        return _RefreshView(row)

    def authenticate_user(self, refresh_token: _RefreshView) -> GrantUser | None:
        row = refresh_token.row
        return resolve_grant_user(_ctx().session, row.user_id, row.tenant_id, row.family_id)

    def revoke_old_credential(self, refresh_token: _RefreshView) -> None:
        refresh_token.row.used_at = _now()


# --- revocation and introspection --------------------------------------------------------------


@dataclass
class _AccessView:
    """A verified access token, for revocation and introspection."""

    token: tokens.AccessToken
    revoked: bool = False

    def check_client(self, client: Client) -> bool:
        return self.token.client_id == client.get_client_id()

    def is_expired(self) -> bool:
        return self.token.expires_at <= int(_now().timestamp())

    def is_revoked(self) -> bool:
        return self.revoked

    def get_scope(self) -> str:
        return " ".join(sorted(self.token.scopes))


def _query_any_token(token_string: str, hint: str | None) -> _AccessView | _RefreshView | None:
    ctx = _ctx()
    if hint != "access_token":
        row = ctx.session.scalar(
            select(OAuthRefreshToken).where(
                OAuthRefreshToken.token_digest == digest_secret(token_string)
            )
        )
        if row is not None:
            return _RefreshView(row)
    try:
        access = tokens.verify(
            token_string,
            ctx.keys,
            issuer=ctx.settings.oauth_issuer_url,
            audience=ctx.settings.oauth_audience,
            leeway_s=0,
        )
    except tokens.InvalidToken:
        return None
    return _AccessView(access)


class Revocation(RevocationEndpoint):  # type: ignore[misc]
    CLIENT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]

    def query_token(self, token_string: str, token_type_hint: str | None) -> Any:
        return _query_any_token(token_string, token_type_hint)

    def revoke_token(self, token: Any, request: OAuth2Request) -> None:
        ctx = _ctx()
        if isinstance(token, _RefreshView):
            revoke_family(ctx, token.row.family_id)
        else:
            ctx.revoke_later("jti", token.token.token_id)
            if token.token.session_id:
                revoke_family(ctx, uuid.UUID(token.token.session_id))


class Introspection(IntrospectionEndpoint):  # type: ignore[misc]
    CLIENT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]

    def query_token(self, token_string: str, token_type_hint: str | None) -> Any:
        return _query_any_token(token_string, token_type_hint)

    def check_permission(self, token: Any, client: Client, request: OAuth2Request) -> bool:
        # A client may introspect its own tokens; a platform client with `admin`, any token.
        return bool(token.check_client(client) or Scopes.ADMIN.value in client.row.scopes)

    def introspect_token(self, token: Any) -> dict[str, Any]:
        ctx = _ctx()
        if isinstance(token, _RefreshView):
            row = token.row
            return {
                "active": True,
                "token_type": "refresh_token",
                "client_id": row.client_id,
                "scope": row.scope,
                "sub": str(row.user_id),
                "tid": str(row.tenant_id),
                "exp": int(row.expires_at.timestamp()),
                "iat": int(row.issued_at.timestamp()),
                "iss": ctx.settings.oauth_issuer_url,
            }
        access = token.token
        body: dict[str, Any] = {
            "active": True,
            "token_type": "Bearer",
            "client_id": access.client_id,
            "scope": " ".join(sorted(access.scopes)),
            "sub": access.subject,
            "exp": access.expires_at,
            "iat": access.issued_at,
            "jti": access.token_id,
            "iss": ctx.settings.oauth_issuer_url,
            "aud": ctx.settings.oauth_audience,
        }
        if access.tenant_id:
            body["tid"] = str(access.tenant_id)
        if access.session_id:
            body["sid"] = access.session_id
        return body


# --- the server --------------------------------------------------------------------------------


class QuitaAuthorizationServer(AuthorizationServer):  # type: ignore[misc]
    """Authlib's server with Quita's storage.  Framework-neutral: ``handle_response`` returns a
    plain ``(status, body, headers)`` triple for the web layer to render."""

    def __init__(self) -> None:
        super().__init__(scopes_supported=SUPPORTED_SCOPES)
        self.register_token_generator("default", generate_token)
        self.register_grant(ClientCredentialsGrant)
        self.register_grant(AuthorizationCodeGrant, [S256Only(required=True)])
        self.register_grant(RefreshTokenGrant)
        self.register_endpoint(Revocation)
        self.register_endpoint(Introspection)

    def query_client(self, client_id: str) -> Client | None:
        session = _ctx().session
        row = session.scalar(
            select(OAuthClient)
            .outerjoin(Tenant, Tenant.id == OAuthClient.tenant_id)
            .where(OAuthClient.client_id == client_id, OAuthClient.revoked_at.is_(None))
            .where((Tenant.id.is_(None)) | (Tenant.status == TenantStatus.ACTIVE))
        )
        return Client(row) if row is not None else None

    def save_token(self, token: dict[str, Any], request: OAuth2Request) -> None:
        pass  # refresh tokens are stored when generated; access tokens are self-contained

    def create_oauth2_request(self, request: OAuth2Request) -> OAuth2Request:
        return request

    def create_json_request(self, request: Any) -> Any:
        return request

    def handle_response(
        self, status: int, body: Any, headers: list[tuple[str, str]]
    ) -> tuple[int, Any, dict[str, str]]:
        return status, body, dict(headers)

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        pass


class QuitaOAuth2Request(OAuth2Request):  # type: ignore[misc]
    """An Authlib request built from what the web layer parsed (form values may repeat)."""

    def __init__(
        self,
        method: str,
        uri: str,
        headers: Any,
        form: dict[str, list[str]],
        query: dict[str, str],
    ) -> None:
        super().__init__(method, uri, headers=headers)
        self._form = {k: v[0] for k, v in form.items() if v}
        self._args = dict(query)
        self.payload = BasicOAuth2Payload({**self._args, **self._form})

    @property
    def args(self) -> dict[str, str]:
        return self._args

    @property
    def form(self) -> dict[str, str]:
        return self._form
