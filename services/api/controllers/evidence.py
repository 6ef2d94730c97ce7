"""Evidence: a debtor's dossier (JSON, or a printable document) and data subjects' requests.

The dossier is the retailer's record of everything about one customer; the retailer's own
people read it (an agency that sees the customer gets 403, as for anything it may not
change).  Asking for it is audited: it holds the customer's personal data.  An access request
(LGPD art. 18) is recorded with its 15-day deadline and fulfilled with the dossier, whose
digest stays with the request.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

import msgspec
from litestar import Controller, MediaType, Request, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, PathParameter, QueryParameter
from litestar.response import Response
from sqlalchemy.ext.asyncio import AsyncSession

from services.api.auth.guards import principal_of, requires
from services.api.controllers.channels import own_tenant
from shared import clock
from shared.domains.audit.service import Actor, record
from shared.domains.evidence import dossier, dossier_html, requests
from shared.domains.portfolio.scoping import writer_tenant
from shared.domains.portfolio.service import find_customer
from shared.errors import NotFound
from shared.models import Customer, Role
from shared.tenancy import Principal, Scopes

READ = requires(Scopes.PORTFOLIO_READ)
WORK = requires(Scopes.PORTFOLIO_WRITE, roles=(Role.OWNER, Role.ADMIN, Role.OPERATOR))
REF_DOC = "Quita's id, or the retailer's external id"
Limit = Annotated[int, QueryParameter(ge=1, le=200, description="Items per page (1-200)")]


class Fulfilled(msgspec.Struct):
    request: requests.DataRequestOut
    dossier: dict[str, Any]


async def _own_customer(db: AsyncSession, principal: Principal, ref: str) -> Customer:
    customer = await find_customer(db, principal, ref)
    if customer.tenant_id != writer_tenant(principal):
        raise NotFound("The customer was not found.")
    return customer


async def _dossier(
    db: AsyncSession, principal: Principal, customer: Customer, form: str
) -> dict[str, Any]:
    document = await dossier.build(db, customer, clock.now(), seals=dossier.sealed_batches)
    await record(
        db,
        "customer.dossier_exported",
        tenant_id=customer.tenant_id,
        actor_type=Actor.of(principal).type,
        actor_id=Actor.of(principal).id,
        subject_type="customer",
        subject_id=str(customer.id),
        data={"format": form, "export_sha256": document["export_sha256"]},
    )
    return document


class DossierController(Controller):
    path = "/v1/customers"
    tags = ["evidence"]

    @get(
        "/{customer_ref:str}/dossier",
        summary="The debtor's dossier: everything about one customer, in time order (JSON)",
        description="Customer and phones; installments with payments and today's balance; "
        "every contact attempt with its template, the exact text sent (text_matches_hash: it "
        "still matches the SHA-256 recorded at send time), amounts, governance decisions and "
        "every provider status; messages either way; notes; holds; data requests; the audit "
        "trail about them; a merged timeline. export_sha256: SHA-256 of the canonical JSON "
        "(sorted keys, compact) without that field. verification: the sealed audit batches "
        "the audit events belong to. The retailer's own people only. Audited.",
        guards=[READ],
    )
    async def get_dossier(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[AsyncSession],
        customer_ref: Annotated[str, PathParameter(description=REF_DOC)],
    ) -> dict[str, Any]:
        principal = principal_of(request)
        customer = await _own_customer(db, principal, customer_ref)
        return await _dossier(db, principal, customer, "json")

    @get(
        "/{customer_ref:str}/dossier.html",
        summary="The debtor's dossier as a printable document (pt-BR; print to PDF)",
        media_type=MediaType.HTML,
        guards=[READ],
    )
    async def get_dossier_html(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[AsyncSession],
        customer_ref: Annotated[str, PathParameter(description=REF_DOC)],
    ) -> Response[str]:
        principal = principal_of(request)
        customer = await _own_customer(db, principal, customer_ref)
        document = await _dossier(db, principal, customer, "html")
        return Response(
            dossier_html.render(document),
            media_type=MediaType.HTML,
            headers={"X-Export-SHA256": document["export_sha256"]},
        )

    @post(
        "/{customer_ref:str}/data-requests",
        summary="Record a data subject's access request (LGPD art. 18), due in 15 days",
        description="received_via: how it came in; received_at: when (default now; never in "
        "the future). Audited.",
        guards=[WORK],
        status_code=201,
    )
    async def create_request(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[AsyncSession],
        customer_ref: Annotated[str, PathParameter(description=REF_DOC)],
        data: JSONBody[requests.DataRequestIn],
    ) -> requests.DataRequestOut:
        principal, now = principal_of(request), clock.now()
        customer = await _own_customer(db, principal, customer_ref)
        user = uuid.UUID(principal.subject) if principal.kind.value == "user" else None
        row = await requests.create(db, customer, data, Actor.of(principal), now, user_id=user)
        return requests.out(row, now)


class DataRequestController(Controller):
    path = "/v1/data-requests"
    tags = ["evidence"]

    @get(
        "/",
        summary="Data subjects' requests, the closest deadline first",
        description="overdue: still open after its deadline.",
        guards=[READ],
    )
    async def list_requests(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[AsyncSession],
        wanted_status: Annotated[
            Literal["open", "fulfilled"] | None, QueryParameter(name="status")
        ] = None,
        customer_id: Annotated[uuid.UUID | None, QueryParameter()] = None,
        cursor: Annotated[str | None, QueryParameter()] = None,
        limit: Limit = 50,
    ) -> requests.DataRequestPage:
        tenant = own_tenant(principal_of(request))
        return await requests.page(
            db,
            tenant,
            clock.now(),
            status=wanted_status,
            customer_id=customer_id,
            cursor=cursor,
            limit=limit,
        )

    @post(
        "/{request_id:uuid}/fulfill",
        summary="Answer an access request: the dossier, whose digest is kept with the request",
        description="The answer holds the request (fulfilled, export_sha256) and the dossier "
        "handed over. 409 already_fulfilled the second time. Audited.",
        guards=[WORK],
        status_code=200,
    )
    async def fulfil(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[AsyncSession],
        request_id: FromPath[uuid.UUID],
    ) -> Fulfilled:
        principal, now = principal_of(request), clock.now()
        row = await requests.find(db, own_tenant(principal), request_id)
        customer = await db.get(Customer, row.customer_id)
        if customer is None:
            raise NotFound("The customer of this request no longer exists.")
        document = await _dossier(db, principal, customer, "access_request")
        await requests.fulfil(db, row, document["export_sha256"], Actor.of(principal), now)
        return Fulfilled(request=requests.out(row, now), dossier=document)


EVIDENCE_CONTROLLERS = [DossierController, DataRequestController]
