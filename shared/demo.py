"""Demo data for ``make run``: idempotent, so every start can call it.

A demo retailer with an owner who can sign in (credentials printed by ``make run``; for local
demos only) and an API client; each run mints a fresh access token for that client.  The first
run also loads a small portfolio — invented customers (check-digit-valid but fictitious CPFs)
with installments around today's date, the Pix key, one partial and one full payment — so the
balance, Pix and payment endpoints have something to show.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from shared import demo_sandbox
from shared.config import Settings
from shared.domains.audit.service import Actor
from shared.domains.channels import templates as message_templates
from shared.domains.collections import cadences
from shared.domains.identity import keys, schemas, service, tokens
from shared.domains.identity.service import SYSTEM_ACTOR
from shared.domains.money import pixcodes
from shared.domains.portfolio import payments
from shared.domains.portfolio import schemas as portfolio_schemas
from shared.domains.portfolio import service as portfolio
from shared.models import Customer, OAuthClient, Role, Tenant, TenantKind
from shared.tenancy import TENANT_SCOPES, Principal
from shared.tenancy.principal import PrincipalKind

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
    await seed_portfolio(session, tenant, client)
    await message_templates.ensure_defaults(session, tenant.id)
    await cadences.ensure_defaults(session, tenant.id)
    await demo_sandbox.ensure_channels(session, tenant.id, settings)
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


# (external id, name, CPF, phone, UF, city, tags) — invented people.
DEMO_CUSTOMERS = [
    ("CLI-0001", "Ana Exemplo Souza", "52998224725", "+5511987650001", "SP", "São Paulo", []),
    ("CLI-0002", "Bruno Teste Lima", "15350946056", "+5521987650002", "RJ", "Niterói", ["vip"]),
    ("CLI-0003", "Carla Modelo Rocha", "39053344705", "+5568999870003", "AC", "Rio Branco", []),
    ("CLI-0004", "Diego Fictício Alves", "11144477735", "+5581987650004", "PE", "Recife", []),
]
# (external id, customer, principal, days from today to the due date, number, count)
DEMO_INSTALLMENTS = [
    ("PAR-0001-03", "CLI-0001", "250.00", 3, 3, 10),
    ("PAR-0001-02", "CLI-0001", "250.00", -27, 2, 10),
    ("PAR-0002-05", "CLI-0002", "189.90", 0, 5, 12),
    ("PAR-0002-04", "CLI-0002", "189.90", -30, 4, 12),
    ("PAR-0003-01", "CLI-0003", "1234.56", -45, 1, 4),
    ("PAR-0004-07", "CLI-0004", "99.99", -5, 7, 8),
    ("PAR-0004-06", "CLI-0004", "99.99", -35, 6, 8),
]


async def seed_portfolio(session: AsyncSession, tenant: Tenant, client: OAuthClient) -> None:
    """Load the demo portfolio once (a tenant that already has customers is left alone)."""
    if await session.scalar(select(Customer.id).where(Customer.tenant_id == tenant.id).limit(1)):
        return
    principal = Principal(
        kind=PrincipalKind.CLIENT,
        subject=client.client_id,
        client_id=client.client_id,
        tenant_id=tenant.id,
        tenant_kind=TenantKind(tenant.kind),
        scopes=frozenset(client.scopes),
    )
    actor = Actor("system", "demo")
    for ext, name, cpf, phone, uf, city, tags in DEMO_CUSTOMERS:
        await portfolio.upsert_customer(
            session,
            principal,
            ext,
            portfolio_schemas.CustomerIn(
                name=name, document=cpf, phones=[phone], state=uf, city=city, tags=tags
            ),
            actor,
        )
    today = datetime.now(UTC).date()
    for ext, customer, amount, days, number, count in DEMO_INSTALLMENTS:
        await portfolio.upsert_installment(
            session,
            principal,
            ext,
            portfolio_schemas.InstallmentIn(
                customer_external_id=customer,
                principal=Decimal(amount),
                due_date=today + timedelta(days=days),
                contract=ext[:8],
                number=number,
                count=count,
            ),
            actor,
        )
    await pixcodes.save_settings(
        session,
        tenant.id,
        portfolio_schemas.PixSettingsIn(
            key="11222333000181", merchant_name="Loja Demo Moveis", city="Sao Paulo"
        ),
        actor,
    )
    yesterday = datetime.combine(today - timedelta(days=1), datetime.min.time(), UTC)
    for ext, installment, amount in (
        ("PIX-DEMO-1", "PAR-0002-04", "100.00"),
        ("PIX-DEMO-2", "PAR-0004-07", "500.00"),
    ):
        await payments.record_payment(
            session,
            principal,
            portfolio_schemas.PaymentIn(
                external_id=ext,
                installment_external_id=installment,
                amount=Decimal(amount),
                paid_at=yesterday + timedelta(hours=15),
                method="pix",
            ),
            actor,
        )
