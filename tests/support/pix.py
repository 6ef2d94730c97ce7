"""What the Pix webhook tests share: a retailer with a Pix key, a customer and installments
(written through the portfolio services), a PSP connection, BCB-shaped webhook bodies, and the
webhooks app with the Pix receiver mounted."""

from __future__ import annotations

import json
import secrets
import string
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from litestar import Litestar
from sqlalchemy.ext.asyncio import AsyncSession

from services.webhooks.app import create_app as webhooks_app
from services.webhooks.receivers.pix import pix_router
from shared.domains.audit.service import Actor
from shared.domains.money import pixcodes
from shared.domains.portfolio import pix_connections, service
from shared.domains.portfolio import schemas as portfolio_schemas
from shared.models import Installment
from shared.models.pix_connection import PixConnection
from shared.tenancy import SYSTEM, tenant_scope, use_scope
from tests.support.identity import Identities, Party, principal_for_party

ACTOR = Actor("cli", None)
PIX_KEY = "11222333000181"  # a valid CNPJ of the documentation examples
_ALNUM = string.ascii_letters + string.digits


@dataclass
class Retailer:
    party: Party
    customer_id: uuid.UUID

    @property
    def id(self) -> uuid.UUID:
        return self.party.tenant.id


def hooks_app(settings: Any, **kwargs: Any) -> Litestar:
    """The webhooks service, with the Pix receiver mounted if ``create_app`` does not yet."""
    app = webhooks_app(settings, **kwargs)
    if any(route.path.startswith("/pix/") for route in app.routes):
        return app
    return webhooks_app(settings, extra_routes=[pix_router], **kwargs)


async def retailer(session: AsyncSession, ids: Identities, name: str) -> Retailer:
    party = await ids.party(name)
    principal = await principal_for_party(party, ids)
    await use_scope(session, tenant_scope(party.tenant.id))
    customer, _ = await service.upsert_customer(
        session,
        principal,
        "CLI-PIX",
        portfolio_schemas.CustomerIn(name="Cliente de Teste", state="SP"),
        ACTOR,
    )
    await pixcodes.save_settings(
        session,
        party.tenant.id,
        portfolio_schemas.PixSettingsIn(key=PIX_KEY, merchant_name="Loja Teste", city="Recife"),
        ACTOR,
    )
    await use_scope(session, SYSTEM)
    return Retailer(party, customer.id)


async def installment(
    session: AsyncSession, ids: Identities, shop: Retailer, ext: str, principal: str
) -> Installment:
    """An installment due in ten days: its balance today is exactly ``principal``."""
    who = await principal_for_party(shop.party, ids)
    await use_scope(session, tenant_scope(shop.id))
    inst, _ = await service.upsert_installment(
        session,
        who,
        ext,
        portfolio_schemas.InstallmentIn(
            customer_external_id="CLI-PIX",
            principal=Decimal(principal),
            due_date=date.today() + timedelta(days=10),
        ),
        ACTOR,
    )
    await use_scope(session, SYSTEM)
    return inst


async def connection(
    session: AsyncSession, settings: Any, shop: Retailer, *, subject: str | None = None
) -> tuple[PixConnection, str]:
    """A PSP connection of ``shop`` and its URL token."""
    await use_scope(session, tenant_scope(shop.id))
    row, url = await pix_connections.create(
        session,
        shop.id,
        pix_connections.PixConnectionIn(name="PSP", psp="Banco Teste", client_cert_subject=subject),
        ACTOR,
        settings,
    )
    await use_scope(session, SYSTEM)
    return row, url.rsplit("/", 1)[1]


def e2e_id() -> str:
    tail = "".join(secrets.choice(_ALNUM) for _ in range(11))
    return f"E12345678{datetime.now(UTC):%Y%m%d%H%M}{tail}"


def pix_item(txid: str | None, valor: str, **extra: Any) -> dict[str, Any]:
    item: dict[str, Any] = {
        "endToEndId": e2e_id(),
        "valor": valor,
        "horario": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "infoPagador": "pagamento de teste",
        **extra,
    }
    if txid is not None:
        item["txid"] = txid
    return item


def body(*items: dict[str, Any]) -> bytes:
    return json.dumps({"pix": list(items)}).encode()
