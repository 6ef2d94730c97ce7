"""Small factories for tenants, people, API clients and tokens, written straight to the
database in the test's transaction (platform scope), plus access tokens minted with the real
signing key — what the API would hand out, without an HTTP round trip."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from shared.config import Settings
from shared.domains.identity import keys as signing
from shared.domains.identity import schemas, service, tokens
from shared.domains.identity.service import CLI_ACTOR
from shared.models import OAuthClient, Role, Tenant, TenantKind, User
from shared.tenancy import ROLE_SCOPES, SYSTEM, TENANT_SCOPES, Principal, use_scope
from shared.tenancy.principal import PrincipalKind

PASSWORD = "correct horse battery staple"


@dataclass
class Party:
    """A tenant with an owner and an API client, ready to call the API."""

    tenant: Tenant
    owner: User
    client: OAuthClient
    client_secret: str
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> uuid.UUID:
        return self.tenant.id


class Identities:
    def __init__(self, session: AsyncSession, settings: Settings) -> None:
        self.session = session
        self.settings = settings
        self._n = 0

    async def _system(self) -> None:
        await use_scope(self.session, SYSTEM)

    def _next(self) -> int:
        self._n += 1
        return self._n

    async def tenant(self, name: str, kind: str = "retailer", **extra: Any) -> Tenant:
        await self._system()
        data = schemas.TenantCreate(name=name, kind=kind, **extra)  # type: ignore[arg-type]
        return await service.create_tenant(self.session, data, CLI_ACTOR)

    async def user(self, email: str | None = None, *, admin: bool = False) -> User:
        await self._system()
        email = email or f"pessoa{self._next()}-{uuid.uuid4().hex[:6]}@example.com"
        data = schemas.UserCreate(
            email=email, name="Pessoa de Teste", password=PASSWORD, is_platform_admin=admin
        )
        return await service.create_user(self.session, data, CLI_ACTOR)

    async def member(self, tenant: Tenant, user: User, role: Role = Role.OWNER) -> None:
        await self._system()
        await service.add_member(self.session, tenant.id, user, role, CLI_ACTOR)

    async def client(
        self,
        tenant: Tenant | None,
        *,
        scopes: list[str] | None = None,
        grant_types: list[str] | None = None,
        redirect_uris: list[str] | None = None,
        public: bool = False,
    ) -> tuple[OAuthClient, str | None]:
        await self._system()
        data = schemas.ClientCreate(
            name=f"Sistema {self._next()}",
            scopes=scopes if scopes is not None else sorted(TENANT_SCOPES),
            grant_types=grant_types or ["client_credentials"],  # type: ignore[arg-type]
            redirect_uris=redirect_uris or [],
            public=public,
        )
        return await service.create_client(
            self.session, tenant.id if tenant else None, data, CLI_ACTOR
        )

    async def party(self, name: str, kind: str = "retailer") -> Party:
        tenant = await self.tenant(name, kind)
        owner = await self.user()
        await self.member(tenant, owner)
        client, secret = await self.client(tenant)
        assert secret is not None
        await self.session.flush()
        return Party(tenant, owner, client, secret)

    async def token(
        self,
        party: Party,
        *,
        role: Role | None = Role.OWNER,
        scopes: set[str] | None = None,
        ttl_s: int | None = None,
        audience: str | None = None,
        issuer: str | None = None,
    ) -> str:
        """An access token for the party: a person with ``role``, or its client (role=None)."""
        await self._system()
        keys = await signing.load_keys(self.session, _ttl(self.settings))
        if role is None:
            granted = scopes if scopes is not None else set(party.client.scopes)
            subject = party.client.client_id
        else:
            granted = scopes if scopes is not None else set(ROLE_SCOPES[role])
            subject = str(party.owner.id)
        raw, _ = tokens.issue(
            keys,
            issuer=issuer or self.settings.oauth_issuer_url,
            audience=audience or self.settings.oauth_audience,
            ttl_s=ttl_s if ttl_s is not None else self.settings.access_token_ttl_s,
            subject=subject,
            client_id=party.client.client_id,
            tenant_id=party.tenant.id,
            scope=" ".join(sorted(granted)),
            role=role.value if role else None,
            tenant_kind=party.tenant.kind,
        )
        return raw

    async def admin_token(self) -> str:
        await self._system()
        keys = await signing.load_keys(self.session, _ttl(self.settings))
        user = await self.user(admin=True)
        raw, _ = tokens.issue(
            keys,
            issuer=self.settings.oauth_issuer_url,
            audience=self.settings.oauth_audience,
            ttl_s=600,
            subject=str(user.id),
            client_id="platform-cli",
            tenant_id=None,
            scope="admin",
            role=None,
        )
        return raw


def _ttl(settings: Settings) -> Any:
    from datetime import timedelta

    return timedelta(seconds=settings.access_token_ttl_s)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def principal_for_party(party: Party, ids: Identities) -> Principal:
    """The principal of the party's own API client, for calling services directly in setup
    code (the session runs in the system scope, as the other factories here)."""
    await ids._system()
    return Principal(
        kind=PrincipalKind.CLIENT,
        subject=party.client.client_id,
        client_id=party.client.client_id,
        tenant_id=party.tenant.id,
        tenant_kind=TenantKind(party.tenant.kind),
        scopes=frozenset(party.client.scopes),
    )
