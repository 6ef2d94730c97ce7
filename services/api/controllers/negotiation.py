"""Negotiation: the retailer's policy (versioned), its agencies' limits per mandate, and offers
for a customer's overdue installments (Quita's menu or an operator's own terms, refused naming
the limit they exceed).  Parse, call the service, shape the answer."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from litestar import Controller, Request, get, post, put
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, PathParameter
from sqlalchemy.ext.asyncio import AsyncSession

from services.api.auth.guards import principal_of, requires
from shared import clock
from shared.domains.audit.service import Actor
from shared.domains.collections import reports
from shared.domains.negotiation import offer_send, schemas, service
from shared.domains.negotiation.offers import Terms
from shared.domains.paypage import links
from shared.domains.portfolio.scoping import writer_tenant
from shared.models import Customer, Role
from shared.tenancy import Principal, Scopes

MANAGERS = (Role.OWNER, Role.ADMIN)
OPERATORS = (Role.OWNER, Role.ADMIN, Role.OPERATOR)
SETTINGS_READ = requires(Scopes.SETTINGS_READ)
SETTINGS_WRITE = requires(Scopes.SETTINGS_WRITE, roles=MANAGERS)
NEGOTIATE = requires(Scopes.NEGOTIATION_WRITE, roles=OPERATORS)
REF_DOC = "Quita's id, or the retailer's external id"
LIMITS_DOC = (
    'Percentages are percent ("10" is 10 %). Discounts on fees (correction, fine, interest) '
    "and on principal are capped by max_discount_*_percent; the down payment is at least "
    "min_down_payment_percent of the negotiated total; at most max_installments monthly "
    "installments of at least min_installment_amount (plans of two or more), financed at "
    "monthly_interest_percent with the Price table; offers are valid for offer_validity_hours."
)


def _me(request: Request[Any, Any, Any]) -> Principal:
    return principal_of(request)


class NegotiationSettingsController(Controller):
    path = "/v1/settings/negotiation"
    tags = ["negotiation"]

    @get(
        "/", summary="The negotiation policy in force (its latest version)", guards=[SETTINGS_READ]
    )
    async def get_policy(
        self, request: Request[Any, Any, Any], db: NamedDependency[AsyncSession]
    ) -> schemas.PolicyOut:
        tenant = writer_tenant(_me(request))
        return service.policy_out(await service.current_policy(db, tenant))

    @put(
        "/",
        summary="Save the negotiation policy as a new version",
        description=f"{LIMITS_DOC} Offers already made keep the version they used. Audited.",
        guards=[SETTINGS_WRITE],
    )
    async def put_policy(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[AsyncSession],
        data: JSONBody[schemas.PolicyIn],
    ) -> schemas.PolicyOut:
        principal = _me(request)
        row = await service.save_policy(db, writer_tenant(principal), data, Actor.of(principal))
        return service.policy_out(row)


class MandateLimitsController(Controller):
    path = "/v1/mandates"
    tags = ["negotiation"]

    @get(
        "/{mandate_id:uuid}/negotiation-limits",
        summary="An agency's negotiation limits under a mandate, and the limits in force",
        guards=[SETTINGS_READ],
    )
    async def get_limits(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[AsyncSession],
        mandate_id: FromPath[uuid.UUID],
    ) -> schemas.LimitsOut:
        mandate = await service.mandate_of(db, _me(request), mandate_id, write=False)
        return await service.limits_out(db, mandate, await service.mandate_limits(db, mandate.id))

    @put(
        "/{mandate_id:uuid}/negotiation-limits",
        summary="Set the agency's negotiation limits under a mandate (only tighter than yours)",
        description=f"{LIMITS_DOC} A null field leaves the policy in force; a value looser than "
        "the policy is refused naming the field. Audited.",
        guards=[SETTINGS_WRITE],
    )
    async def put_limits(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[AsyncSession],
        mandate_id: FromPath[uuid.UUID],
        data: JSONBody[schemas.LimitsIn],
    ) -> schemas.LimitsOut:
        principal = _me(request)
        mandate = await service.mandate_of(db, principal, mandate_id, write=True)
        row = await service.save_mandate_limits(db, mandate, data, Actor.of(principal))
        return await service.limits_out(db, mandate, row)


class OfferController(Controller):
    path = "/v1"
    tags = ["negotiation"]

    @post(
        "/customers/{customer_ref:str}/offers",
        summary="Compute and store the menu of offers for a customer's overdue installments",
        description="Pay today with the largest allowed discount; a down payment plus N monthly "
        "installments; one new date. Each option is itemized and explains the limits that "
        "shaped it. An agency negotiates under its mandate's limits (a mandate with the "
        "negotiate action covering the customer). 409 offers_stopped once the customer broke "
        "as many agreements as the policy's max_broken_agreements. Audited.",
        guards=[NEGOTIATE],
        status_code=201,
    )
    async def make_menu(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[AsyncSession],
        customer_ref: Annotated[str, PathParameter(description=REF_DOC)],
        data: JSONBody[schemas.OfferIn | None] = None,
    ) -> schemas.OfferOut:
        principal = _me(request)
        row = await service.make_offer(
            db,
            principal,
            customer_ref,
            installment_ids=data.installment_ids if data else None,
            terms=None,
            actor=Actor.of(principal),
        )
        return service.offer_out(row)

    @post(
        "/customers/{customer_ref:str}/offers/custom",
        summary="Store an operator's own offer, if it is inside the limits in force",
        description="Amounts in R$. Outside the limits: 422 with one error per field naming the "
        "limit, e.g. discount_principal 'at most 10% (R$ 12,34) under your mandate'. Audited.",
        guards=[NEGOTIATE],
        status_code=201,
    )
    async def make_custom(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[AsyncSession],
        customer_ref: Annotated[str, PathParameter(description=REF_DOC)],
        data: JSONBody[schemas.CustomOfferIn],
    ) -> schemas.OfferOut:
        principal = _me(request)
        terms = Terms(
            discount_fees=data.discount_fees,
            discount_principal=data.discount_principal,
            down_payment=data.down_payment,
            installments=data.installments,
            first_due_date=data.first_due_date,
        )
        row = await service.make_offer(
            db,
            principal,
            customer_ref,
            installment_ids=data.installment_ids,
            terms=terms,
            actor=Actor.of(principal),
        )
        return service.offer_out(row)

    @get(
        "/offers/{offer_id:uuid}",
        summary="One offer with its options",
        guards=[requires(Scopes.COLLECTIONS_READ)],
    )
    async def get_offer(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[AsyncSession],
        offer_id: FromPath[uuid.UUID],
    ) -> schemas.OfferOut:
        return service.offer_out(await service.get_offer(db, _me(request), offer_id))

    @post(
        "/offers/{offer_id:uuid}/send",
        summary="Send an offer to the debtor: the list in the chat, else the offer template",
        description="Inside the debtor's 24-hour WhatsApp window: a list, one row per option; "
        "a tap makes the agreement and the chat confirms it with the Pix. Outside it: the "
        "retailer's template `quita_oferta_v1`, under the régua's governance (contact hours, "
        "caps, opt-outs), whose link opens the payment page with the options. Once per offer: "
        "sending again answers what was sent. 409 offer_already_accepted, offer_expired, "
        "offer_stale (its installments are no longer owed). An agency sends only offers made "
        "under its mandates (404 otherwise). Audited.",
        guards=[NEGOTIATE],
        status_code=202,
    )
    async def send_offer(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[AsyncSession],
        offer_id: FromPath[uuid.UUID],
    ) -> schemas.OfferSentOut:
        sent = await offer_send.send(db, _me(request), offer_id, clock.now())
        attempt = None
        if sent.attempt is not None:
            customer = await db.get_one(Customer, sent.offer.customer_id)
            attempt = await reports.attempt_detail(db, sent.attempt, customer.external_id)
        return schemas.OfferSentOut(
            offer_id=sent.offer.id,
            via=sent.via,
            link=links.for_offer(sent.offer.id, sent.offer.expires_at),
            message_id=sent.message.id if sent.message else None,
            attempt=attempt,
        )


NEGOTIATION_CONTROLLERS = [NegotiationSettingsController, MandateLimitsController, OfferController]
