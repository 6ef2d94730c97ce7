"""Tenant isolation, proven on every route the API publishes.

The harness reads the OpenAPI schema, so a route added by any later issue is tried here
automatically.  For each operation whose path names an object, tenant B's token (and an agency
with no mandate) must get 404 on tenant A's object (403 on platform routes); for each list, the
answer must not contain anything of A's.  A path parameter or request body this file does not
know how to fill fails the suite: register it in ``PATH_PARAMS`` / ``BODIES``.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from shared.domains import events
from shared.domains.audit.service import Actor
from shared.domains.channels import schemas as channel_schemas
from shared.domains.channels import service as channels
from shared.domains.channels import templates as message_templates
from shared.domains.events import endpoints
from shared.domains.events import schemas as event_schemas
from shared.domains.identity import schemas, service
from shared.domains.identity.service import CLI_ACTOR
from shared.domains.negotiation import agreements
from shared.domains.negotiation import service as negotiation
from shared.domains.portfolio import payments, pix_connections
from shared.domains.portfolio import schemas as pschemas
from shared.domains.portfolio import service as portfolio
from shared.domains.portfolio.imports import service as imports
from shared.models import (
    Cadence,
    Campaign,
    CollectionHold,
    ContactAttempt,
    Conversation,
    ConversationMessage,
    DataRequest,
    Membership,
    WebhookDelivery,
)
from shared.tenancy import SYSTEM, Scope, tenant_scope, use_scope
from tests.support.identity import Identities, Party, bearer, principal_for_party

PUBLIC = ("/health", "/ready", "/schema", "/oauth", "/.well-known")


@dataclass
class World:
    a: Party
    b: Party
    agency: Party  # an agency with no mandate from A
    objects: dict[str, str]  # path parameter name -> one of A's ids

    def a_ids(self) -> set[str]:
        return {
            str(self.a.id),
            str(self.a.owner.id),
            self.a.client.client_id,
            *self.objects.values(),
        }


# How to name one of A's objects for each path parameter a route may have.
PATH_PARAMS: dict[str, Callable[[World], str]] = {
    "membership_id": lambda w: w.objects["membership_id"],
    "client_uuid": lambda w: w.objects["client_uuid"],
    "mandate_id": lambda w: w.objects["mandate_id"],
    "tenant_id": lambda w: str(w.a.id),
    "customer_ref": lambda w: w.objects["customer_id"],
    "installment_ref": lambda w: w.objects["installment_id"],
    "number": lambda w: "+5511987654321",
    "payment_id": lambda w: w.objects["payment_id"],
    "import_id": lambda w: w.objects["import_id"],
    "channel_id": lambda w: w.objects["channel_id"],
    "template_id": lambda w: w.objects["template_id"],
    "cadence_id": lambda w: w.objects["cadence_id"],
    "hold_id": lambda w: w.objects["hold_id"],
    "attempt_id": lambda w: w.objects["attempt_id"],
    "campaign_id": lambda w: w.objects["campaign_id"],
    "conversation_id": lambda w: w.objects["conversation_id"],
    "request_id": lambda w: w.objects["data_request_id"],
    "connection_id": lambda w: w.objects["pix_connection_id"],
    "endpoint_id": lambda w: w.objects["endpoint_id"],
    "delivery_id": lambda w: w.objects["delivery_id"],
    "user_id": lambda w: str(w.a.owner.id),
    "offer_id": lambda w: w.objects["offer_id"],
    "agreement_id": lambda w: w.objects["agreement_id"],
    "installment_number": lambda w: "0",
}

# Upserts keyed by the caller's own external id: another tenant using the same key writes its
# own object.  They are probed with a fresh key and must reveal nothing of A's.
UPSERTS = {
    ("PUT", "/v1/customers/{customer_ref}"),
    ("PUT", "/v1/installments/{installment_ref}"),
}

# A valid body per request schema, so validation passes and the ownership check is what answers.
BODIES: dict[str, Callable[[World], dict[str, Any]]] = {
    "MemberUpdate": lambda w: {"role": "viewer"},
    "MemberCreate": lambda w: {"role": "viewer", "email": w.b.owner.email},
    "ClientCreate": lambda w: {"name": "Intruso", "scopes": ["portfolio:read"]},
    "TenantUpdate": lambda w: {"name": "Renomeada"},
    "TenantCreate": lambda w: {"name": "Nova", "kind": "retailer"},
    "UserCreate": lambda w: {"email": "x@example.com", "name": "X", "password": "x" * 12},
    "MandateCreate": lambda w: {"agency_id": str(w.agency.id), "actions": ["read"]},
    "CustomerIn": lambda w: {"name": "Intrusa", "phones": ["+5511987654321"]},
    "InstallmentIn": lambda w: {
        "customer_external_id": "C-A",
        "principal": "10.00",
        "due_date": "2025-03-10",
    },
    "PhoneUpdate": lambda w: {"status": "wrong_person"},
    "PaymentIn": lambda w: {
        "external_id": "PG-X",
        "installment_id": w.objects["installment_id"],
        "amount": "10.00",
        "paid_at": "2025-03-10T12:00:00Z",
        "method": "pix",
    },
    "PixSettingsIn": lambda w: {"key": "11222333000181", "merchant_name": "X", "city": "Recife"},
    "FeeRuleIn": lambda w: {"effective_from": "2099-01-01"},
    "WhatsAppIn": lambda w: {
        "kind": "whatsapp",
        "name": "Intruso",
        "phone_number_id": "999",
        "waba_id": "998",
        "display_number": "+55 11 4000-0000",
        "access_token": "t",
        "app_secret": "s",
        "verify_token": "v",
    },
    "ChannelUpdate": lambda w: {"name": "Renomeado"},
    "TemplateIn": lambda w: {"channel_kind": "sms", "name": "intruso", "body": "Oi"},
    "TemplateUpdate": lambda w: {"body": "Oi, {{primeiro_nome}}."},
    "PreviewIn": lambda w: {"values": {}},
    "ChannelTestIn": lambda w: {"to": "+5511987654321"},
    "SettingsIn": lambda w: {"daily_cap": 1},
    "CadenceIn": lambda w: {
        "name": "Intrusa",
        "steps": [{"offset_days": 1, "channel": "sms", "variants": [{"template": "x"}]}],
    },
    "PinIn": lambda w: {"cadence_id": w.objects["cadence_id"]},
    "HoldIn": lambda w: {"kind": "pause", "reason": "Intruso"},
    "CampaignIn": lambda w: {"tags_any": ["x"]},
    "CampaignNew": lambda w: {
        "name": "Intrusa",
        "template_name": "quita_atraso_d5_v1",
        "channel": "sms",
        "filter": {"tags_any": ["x"]},
    },
    "ReplyIn": lambda w: {"text": "Intruso"},
    "NoteIn": lambda w: {"text": "Intruso"},
    "DataRequestIn": lambda w: {"received_via": "email"},
    "PixConnectionIn": lambda w: {"name": "Intruso", "psp": "X"},
    "EndpointIn": lambda w: {"url": "https://example.com/hooks"},
    "EndpointUpdate": lambda w: {"description": "Intruso"},
    "RotateIn": lambda w: {"overlap_hours": 1},
    "AssignIn": lambda w: {"assignee": None},
    "OperatorIn": lambda w: {"capacity": 5},
    "PolicyIn": lambda w: {
        "max_discount_fees_percent": "50",
        "max_discount_principal_percent": "0",
        "min_down_payment_percent": "10",
        "max_installments": 6,
        "min_installment_amount": "20.00",
        "monthly_interest_percent": "0",
        "offer_validity_hours": 72,
        "max_broken_agreements": 2,
    },
    "LimitsIn": lambda w: {"max_installments": 3},
    "OfferIn": lambda w: {"installment_ids": [w.objects["installment_id"]]},
    "CustomOfferIn": lambda w: {"installments": 0},
    "AcceptIn": lambda w: {"option_id": "pay_today"},
    "CancelIn": lambda w: {"reason": "Intruso"},
}


@pytest.fixture
async def world(ids: Identities, session: AsyncSession) -> World:
    a = await ids.party("Varejo A", "retailer")
    b = await ids.party("Varejo B", "retailer")
    agency = await ids.party("Agência C", "agency")
    other_agency = await ids.party("Agência D", "agency")
    await use_scope(session, SYSTEM)
    mandate = await service.create_mandate(
        session,
        a.tenant,
        schemas.MandateCreate(agency_id=other_agency.id, actions=["read", "message"]),
        CLI_ACTOR,
    )
    membership = await session.scalar(select(Membership.id).where(Membership.tenant_id == a.id))
    await session.flush()
    portfolio = await _portfolio_of(a, ids)
    offer = await negotiation.make_offer(
        session,
        await principal_for_party(a, ids),
        "C-A",
        installment_ids=None,
        terms=None,
        actor=CLI_ACTOR,
    )
    agreement, _ = await agreements.accept(
        session, await principal_for_party(a, ids), offer.id, "new_date", CLI_ACTOR
    )
    return World(
        a,
        b,
        agency,
        {
            "membership_id": str(membership),
            "client_uuid": str(a.client.id),
            "mandate_id": str(mandate.id),
            "offer_id": str(offer.id),
            "agreement_id": str(agreement.id),
            **portfolio,
        },
    )


async def _chunks(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def _portfolio_of(a: Party, ids: Identities) -> dict[str, str]:
    """A customer of A's with an installment and a payment, written as A's ERP would."""
    principal = await principal_for_party(a, ids)
    actor = Actor.of(principal)
    customer, _ = await portfolio.upsert_customer(
        ids.session,
        principal,
        "C-A",
        pschemas.CustomerIn(name="Cliente A", phones=["+5511987654321"]),
        actor,
    )
    inst, _ = await portfolio.upsert_installment(
        ids.session,
        principal,
        "P-A",
        pschemas.InstallmentIn(
            customer_external_id="C-A", principal=Decimal("100.00"), due_date=date(2025, 3, 10)
        ),
        actor,
    )
    payment, _, _ = await payments.record_payment(
        ids.session,
        principal,
        pschemas.PaymentIn(
            external_id="PG-A",
            installment_id=inst.id,
            amount=Decimal("10.00"),
            paid_at=datetime(2025, 3, 1, tzinfo=UTC),
            method="pix",
        ),
        actor,
    )
    received = await imports.receive(
        ids.session,
        tenant_id=a.id,
        actor=actor,
        chunks=_chunks(b"nome;cpf\nCliente Dois;52998224725\n"),
        enqueue_merge=False,
    )
    channel = await channels.create(
        ids.session,
        a.id,
        channel_schemas.SmsIn(
            name="SMS A", account_sid="AC1", auth_token="x", from_number="+551140001234"
        ),
        actor,
    )
    template = await message_templates.list_for(ids.session, a.id, "whatsapp", "atraso_d5")
    collection = await _collection_of(ids.session, a, customer.id)
    pix_connection, _ = await pix_connections.create(
        ids.session,
        a.id,
        pix_connections.PixConnectionIn(name="PSP A", psp="X"),
        actor,
        ids.settings,
    )
    # an endpoint of A's systems, with one delivery waiting
    endpoint, _ = await endpoints.create(
        ids.session,
        a.id,
        event_schemas.EndpointIn(url="https://example.com/a-hooks"),
        actor,
    )
    await events.emit(ids.session, a.id, "installment.settled", {"installment_id": "x"})
    delivery = await ids.session.scalar(
        select(WebhookDelivery.id).where(WebhookDelivery.endpoint_id == endpoint.id)
    )
    return {
        "endpoint_id": str(endpoint.id),
        "delivery_id": str(delivery),
        "pix_connection_id": str(pix_connection.id),
        **collection,
        "template_id": str(template[0].id),
        "channel_id": str(channel.id),
        "import_id": str(received.import_id),
        "customer_id": str(customer.id),
        "installment_id": str(inst.id),
        "payment_id": str(payment.id),
    }


async def _collection_of(session: AsyncSession, a: Party, customer_id: uuid.UUID) -> dict[str, str]:
    """A's default régua, a hold on A's customer, a campaign and its message to it."""
    cadence = await session.scalar(
        select(Cadence.id).where(
            Cadence.tenant_id == a.id, Cadence.is_default, Cadence.kind == "regua"
        )
    )
    hold = CollectionHold(tenant_id=a.id, customer_id=customer_id, kind="pause", reason="A")
    campaign = Campaign(
        id=uuid.uuid4(),
        tenant_id=a.id,
        name="Campanha A",
        filter={"tags_any": []},
        template_name="quita_atraso_d5_v1",
        channel="sms",
        counts={"matched": 1, "queued": 1, "held": {}},
    )
    session.add(campaign)
    await session.flush()
    attempt = ContactAttempt(
        tenant_id=a.id,
        customer_id=customer_id,
        kind="campaign",
        campaign_id=campaign.id,
        channel="sms",
        state="queued",
        contact_day=date(2025, 3, 10),
        planned_for=datetime(2025, 3, 10, 12, tzinfo=UTC),
    )
    # a debtor's message waiting in A's inbox, its window open
    conversation = Conversation(
        tenant_id=a.id,
        customer_id=customer_id,
        wa_id="5511987654321",
        last_inbound_at=datetime.now(UTC),
        window_expires_at=datetime.now(UTC) + timedelta(hours=24),
    )
    # a data subject's access request, open
    request = DataRequest(
        tenant_id=a.id,
        customer_id=customer_id,
        received_at=datetime.now(UTC),
        due_at=datetime.now(UTC) + timedelta(days=15),
    )
    session.add_all([hold, attempt, conversation, request])
    await session.flush()
    session.add(
        ConversationMessage(
            tenant_id=a.id,
            conversation_id=conversation.id,
            direction="in",
            provider_message_id="wamid.isolation",
            kind="text",
            text="Oi",
            occurred_at=datetime.now(UTC),
        )
    )
    await session.flush()
    return {
        "conversation_id": str(conversation.id),
        "data_request_id": str(request.id),
        "cadence_id": str(cadence),
        "hold_id": str(hold.id),
        "attempt_id": str(attempt.id),
        "campaign_id": str(campaign.id),
    }


def _operations(schema: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    ops = []
    for path, item in schema["paths"].items():
        if path.startswith(PUBLIC):
            continue
        for method, op in item.items():
            if method in {"get", "post", "put", "patch", "delete"}:
                ops.append((method.upper(), path, op))
    return ops


def _body(op: dict[str, Any], world: World) -> dict[str, Any] | None:
    content = op.get("requestBody", {}).get("content", {})
    if not content:
        return None
    schema = next(iter(content.values()))["schema"]
    # a union of bodies (e.g. one per channel kind) is filled with its first member
    ref = schema.get("$ref") or next((s.get("$ref", "") for s in schema.get("oneOf", [])), "")
    name = ref.rsplit("/", 1)[-1]
    assert name in BODIES, f"register an example body for request schema {name!r}"
    return BODIES[name](world)


def _query(op: dict[str, Any]) -> dict[str, str]:
    """A valid value for each required query parameter (the 404 must come from the path's
    id): an instant for date-time parameters, a probe string for the rest."""
    return {
        p["name"]: "2026-01-01T00:00:00+00:00"
        if p.get("schema", {}).get("format") == "date-time"
        else "isolation-probe"
        for p in op.get("parameters", [])
        if p.get("in") == "query" and p.get("required")
    }


def _fill(path: str, world: World) -> str:
    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        assert name in PATH_PARAMS, f"register path parameter {name!r} in PATH_PARAMS"
        return PATH_PARAMS[name](world)

    return re.sub(r"\{(\w+)\}", one, path)


async def _as(api: httpx.AsyncClient, ids: Identities, who: Party) -> dict[str, str]:
    return bearer(await ids.token(who))


@pytest.mark.parametrize("intruder", ["other_retailer", "agency_without_mandate"])
async def test_no_route_reveals_another_tenants_objects(
    api: httpx.AsyncClient, ids: Identities, world: World, intruder: str
) -> None:
    schema = (await api.get("/schema/openapi.json")).json()
    who = world.b if intruder == "other_retailer" else world.agency
    headers = await _as(api, ids, who)
    operations = _operations(schema)
    assert len(operations) >= 15  # the harness really sees the API

    checked = 0
    for method, template, op in operations:
        url = _fill(template, world)
        if (method, template) in UPSERTS:
            url = re.sub(r"\{(\w+)\}", "isolation-probe", template)
        response = await api.request(
            method, url, headers=headers, json=_body(op, world), params=_query(op)
        )
        # An id the caller sent may be echoed back ("... was not found"); anything else is a leak.
        leaked = {i for i in world.a_ids() if i in response.text and i not in url}
        where = f"{method} {template} -> {response.status_code}"
        if template.startswith("/v1/admin"):
            assert response.status_code == 403, where
        elif (method, template) in UPSERTS:
            assert response.status_code in (200, 201, 403, 422), where
            assert not leaked, f"{where} leaked {leaked}"
        elif "{" in template:
            assert response.status_code == 404, where
            assert not leaked, f"{where} leaked {leaked}"
        else:
            assert response.status_code < 500, where
            assert not leaked, f"{where} leaked {leaked}"
        checked += 1
    assert checked == len(operations)


async def test_the_same_routes_do_answer_the_owner(
    api: httpx.AsyncClient, ids: Identities, world: World
) -> None:
    """The 404s above are isolation, not broken routes: A itself gets its objects."""
    headers = await _as(api, ids, world.a)

    for url in (
        f"/v1/clients/{world.objects['client_uuid']}",
        f"/v1/mandates/{world.objects['mandate_id']}",
        f"/v1/campaigns/{world.objects['campaign_id']}",
        f"/v1/conversations/{world.objects['conversation_id']}",
    ):
        assert (await api.get(url, headers=headers)).status_code == 200, url
    members = (await api.get("/v1/members", headers=headers)).json()
    assert [m["id"] for m in members] == [world.objects["membership_id"]]


async def test_rls_hides_other_tenants_rows_from_raw_sql(
    session: AsyncSession, world: World
) -> None:
    """The second wall: a raw query as the app role, scoped to A, sees none of B's rows."""
    await use_scope(session, tenant_scope(world.a.id))

    tenants = set((await session.execute(text("SELECT id FROM tenants"))).scalars())
    members = set((await session.execute(text("SELECT tenant_id FROM memberships"))).scalars())
    clients = set((await session.execute(text("SELECT tenant_id FROM oauth_clients"))).scalars())

    assert tenants == {world.a.id}
    assert members == {world.a.id}
    assert clients == {world.a.id}


async def test_rls_shows_nothing_without_a_scope(session: AsyncSession, world: World) -> None:
    await use_scope(session, Scope())

    count = (
        await session.execute(
            text(
                "SELECT (SELECT count(*) FROM tenants) + (SELECT count(*) FROM memberships)"
                " + (SELECT count(*) FROM oauth_clients) + (SELECT count(*) FROM mandates)"
            )
        )
    ).scalar_one()

    assert count == 0


async def test_rls_refuses_writing_into_another_tenant(session: AsyncSession, world: World) -> None:
    from sqlalchemy.exc import DBAPIError

    await use_scope(session, tenant_scope(world.b.id))

    with pytest.raises(DBAPIError, match="row-level security"):
        async with session.begin_nested():
            await session.execute(
                text(
                    "INSERT INTO memberships (id, user_id, tenant_id, role, created_at,"
                    " updated_at) VALUES (:id, :u, :t, 'owner', now(), now())"
                ),
                {"id": uuid.uuid4(), "u": world.b.owner.id, "t": world.a.id},
            )
