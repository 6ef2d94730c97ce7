"""A tenant's outbound webhook endpoints: where its systems hear about settled installments,
message statuses, replies and opt-outs.  Owners and admins manage them; the signing secret is
shown once (creation, rotation)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Annotated, Any

from litestar import Controller, Request, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, HeaderParameter, JSONBody, QueryParameter
from sqlalchemy.ext.asyncio import AsyncSession

from services.api.auth.guards import principal_of, requires
from services.api.controllers.channels import MANAGERS, own_tenant
from shared.domains.audit.service import Actor
from shared.domains.events import endpoints, schemas
from shared.tenancy import Scopes

Limit = Annotated[int, QueryParameter(ge=1, le=200, description="Items per page (1-200)")]
READ = [requires(Scopes.SETTINGS_READ, roles=MANAGERS)]
WRITE = [requires(Scopes.SETTINGS_WRITE, roles=MANAGERS)]

SIGNING = (
    "Requests are signed per the Standard Webhooks spec (`webhook-id`, `webhook-timestamp`, "
    "`webhook-signature`): verify them with any `standardwebhooks` library and this secret."
)


class WebhookEndpointController(Controller):
    path = "/v1/webhook-endpoints"
    tags = ["webhooks"]

    @post(
        "/",
        summary="Add an endpoint to receive events",
        description="`event_types` filters what it receives (empty: every type). The answer "
        "holds the signing secret, shown this once (a retry with the same `Idempotency-Key` "
        "answers the same endpoint and secret). " + SIGNING,
        guards=WRITE,
        opt={"idempotency": "own"},  # its own rule: see the description
        status_code=201,
    )
    async def create(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[AsyncSession],
        data: JSONBody[schemas.EndpointIn],
        idempotency_key: Annotated[
            str | None, HeaderParameter(name="Idempotency-Key", required=False, max_length=120)
        ] = None,
    ) -> schemas.EndpointWithSecret:
        principal = principal_of(request)
        endpoint, secret = await endpoints.create(
            db, own_tenant(principal), data, Actor.of(principal), idempotency_key=idempotency_key
        )
        return endpoints.with_secret(endpoint, secret)

    @get("/", summary="This tenant's webhook endpoints", guards=READ)
    async def list_endpoints(
        self, request: Request[Any, Any, Any], db: NamedDependency[AsyncSession]
    ) -> list[schemas.EndpointOut]:
        rows = await endpoints.list_for(db, own_tenant(principal_of(request)))
        return [endpoints.endpoint_out(e) for e in rows]

    @get("/{endpoint_id:uuid}", summary="One webhook endpoint", guards=READ)
    async def get_endpoint(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[AsyncSession],
        endpoint_id: FromPath[uuid.UUID],
    ) -> schemas.EndpointOut:
        endpoint = await endpoints.get(db, own_tenant(principal_of(request)), endpoint_id)
        return endpoints.endpoint_out(endpoint)

    @patch(
        "/{endpoint_id:uuid}",
        summary="Change an endpoint's URL, event types or description, or turn it off or on",
        description="`enabled: true` turns back on an endpoint Quita disabled (410 Gone, a long "
        "failure streak): what waited is sent, in order.",
        guards=WRITE,
    )
    async def update(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[AsyncSession],
        endpoint_id: FromPath[uuid.UUID],
        data: JSONBody[schemas.EndpointUpdate],
    ) -> schemas.EndpointOut:
        principal = principal_of(request)
        endpoint = await endpoints.get(db, own_tenant(principal), endpoint_id)
        changed = await endpoints.update_endpoint(db, endpoint, data, Actor.of(principal))
        return endpoints.endpoint_out(changed)

    @post(
        "/{endpoint_id:uuid}/rotate-secret",
        summary="Replace the signing secret; the old one keeps signing for a while",
        description="During `overlap_hours` (default 24) every request carries two signatures, "
        "so receivers may switch to the new secret at their pace. The new secret is shown once.",
        guards=WRITE,
        status_code=200,
    )
    async def rotate_secret(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[AsyncSession],
        endpoint_id: FromPath[uuid.UUID],
        data: JSONBody[schemas.RotateIn | None] = None,
    ) -> schemas.EndpointWithSecret:
        principal = principal_of(request)
        endpoint = await endpoints.get(db, own_tenant(principal), endpoint_id)
        overlap = timedelta(hours=(data or schemas.RotateIn()).overlap_hours)
        rotated, secret = await endpoints.rotate_secret(db, endpoint, overlap, Actor.of(principal))
        return endpoints.with_secret(rotated, secret)

    @delete("/{endpoint_id:uuid}", summary="Remove an endpoint and its delivery log", guards=WRITE)
    async def remove(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[AsyncSession],
        endpoint_id: FromPath[uuid.UUID],
    ) -> None:
        principal = principal_of(request)
        endpoint = await endpoints.get(db, own_tenant(principal), endpoint_id)
        await endpoints.delete(db, endpoint, Actor.of(principal))

    @get(
        "/{endpoint_id:uuid}/deliveries",
        summary="The delivery log: each event sent (or waiting) to this endpoint, newest first",
        description="`state`: any of `pending`, `failed` (retrying), `delivered`, `dead` "
        "(given up; replay it).",
        guards=READ,
    )
    async def list_deliveries(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[AsyncSession],
        endpoint_id: FromPath[uuid.UUID],
        states: Annotated[
            list[str] | None, QueryParameter(name="state", description="Any of these")
        ] = None,
        cursor: Annotated[str | None, QueryParameter()] = None,
        limit: Limit = 50,
    ) -> schemas.DeliveryPage:
        endpoint = await endpoints.get(db, own_tenant(principal_of(request)), endpoint_id)
        return await endpoints.deliveries(
            db, endpoint, states=states or [], cursor=cursor, limit=limit
        )

    @post(
        "/{endpoint_id:uuid}/deliveries/{delivery_id:uuid}/replay",
        summary="Send a delivery's event again (same webhook-id)",
        guards=WRITE,
        status_code=202,
    )
    async def replay_one(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[AsyncSession],
        endpoint_id: FromPath[uuid.UUID],
        delivery_id: FromPath[uuid.UUID],
    ) -> schemas.ReplayOut:
        principal = principal_of(request)
        endpoint = await endpoints.get(db, own_tenant(principal), endpoint_id)
        return await endpoints.replay_delivery(db, endpoint, delivery_id, Actor.of(principal))

    @post(
        "/{endpoint_id:uuid}/replay",
        summary="Send again every event since an instant that this endpoint did not receive",
        description="Events given up on (`dead`) or missed while the endpoint was disabled, of "
        "the types it takes now, oldest first (at most 10,000 a call). `all=true`: the ones it "
        "received too.",
        guards=WRITE,
        status_code=202,
    )
    async def replay_since(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[AsyncSession],
        endpoint_id: FromPath[uuid.UUID],
        since: Annotated[datetime, QueryParameter(description="ISO 8601 with offset")],
        everything: Annotated[bool, QueryParameter(name="all")] = False,
    ) -> schemas.ReplayOut:
        principal = principal_of(request)
        endpoint = await endpoints.get(db, own_tenant(principal), endpoint_id)
        return await endpoints.replay_since(
            db, endpoint, since, Actor.of(principal), everything=everything
        )


WEBHOOK_ENDPOINT_CONTROLLERS = [WebhookEndpointController]
