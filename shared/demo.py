"""Demo data for ``make run``: idempotent, so every start can call it.

A demo retailer with an owner who can sign in (credentials printed by ``make run``; for local
demos only) and an API client; each run mints a fresh access token for that client.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.config import Settings
from shared.domains.identity import keys, schemas, service, tokens
from shared.domains.identity.service import SYSTEM_ACTOR
from shared.models import OAuthClient, Role, Tenant
from shared.tenancy import TENANT_SCOPES

DEMO_SLUG = "loja-demo"
DEMO_EMAIL = "dona@lojademo.com.br"
DEMO_PASSWORD = "demo-quita-2026"  # noqa: S105 (a local demo account, printed by `make run`)


@dataclass(frozen=True, slots=True)
class DemoSummary:
    tenant_id: str
    tenant_name: str
    client_id: str
    access_token: str
    email: str = DEMO_EMAIL
    password: str = DEMO_PASSWORD


async def seed(session: AsyncSession, settings: Settings) -> DemoSummary:
    """Create what is missing of the demo retailer (the caller scopes SYSTEM and commits)."""
    tenant = (await session.scalars(select(Tenant).where(Tenant.slug == DEMO_SLUG))).first()
    if tenant is None:
        tenant = await service.create_tenant(
            session,
            schemas.TenantCreate(
                name="Loja Demo Móveis e Eletro",
                kind="retailer",
                slug=DEMO_SLUG,
                legal_name="Loja Demo Comércio de Móveis Ltda.",
                document="11222333000181",
                city="São Paulo",
                state="SP",
                address="Rua das Flores, 100 — Centro",
            ),
            SYSTEM_ACTOR,
        )
    user = await service.find_user(session, DEMO_EMAIL)
    if user is None:
        user = await service.create_user(
            session,
            schemas.UserCreate(email=DEMO_EMAIL, name="Dona da Loja Demo", password=DEMO_PASSWORD),
            SYSTEM_ACTOR,
        )
        await service.add_member(session, tenant.id, user, Role.OWNER, SYSTEM_ACTOR)
    client = (
        await session.scalars(
            select(OAuthClient)
            .where(OAuthClient.tenant_id == tenant.id)
            .order_by(OAuthClient.created_at)
        )
    ).first()
    if client is None:
        client, _ = await service.create_client(
            session,
            tenant.id,
            schemas.ClientCreate(name="ERP da Loja Demo", scopes=sorted(TENANT_SCOPES)),
            SYSTEM_ACTOR,
        )
    signing = await keys.load_keys(session, timedelta(seconds=settings.access_token_ttl_s))
    token, _ = tokens.issue(
        signing,
        issuer=settings.oauth_issuer_url,
        audience=settings.oauth_audience,
        ttl_s=settings.access_token_ttl_s,
        subject=client.client_id,
        client_id=client.client_id,
        tenant_id=tenant.id,
        scope=" ".join(sorted(client.scopes)),
        tenant_kind=tenant.kind,
    )
    return DemoSummary(str(tenant.id), tenant.name, client.client_id, token)
