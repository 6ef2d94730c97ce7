"""The collection engine: governance settings, réguas, pins, holds, reminders and the contact
attempts (what was sent or held back, and why).  Parse, call the service, shape the answer.

Settings and réguas are the retailer's own (owners and admins change them); operators hold and
remind; anyone who reads the portfolio reads the attempts of the customers it may see (agencies:
those their mandate covers).  Customers are addressed by Quita's id or the retailer's own.
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated, Any, Literal

from litestar import Controller, Request, delete, get, post, put
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody, PathParameter, QueryParameter
from sqlalchemy.ext.asyncio import AsyncSession

from services.api.auth.guards import principal_of, requires
from services.api.controllers.channels import own_tenant
from shared import clock
from shared.domains.audit.service import Actor
from shared.domains.collections import campaigns, holds, reports, schemas, service
from shared.domains.collections.reports import AttemptFilter
from shared.domains.portfolio.scoping import writer_tenant
from shared.domains.portfolio.service import find_customer
from shared.errors import NotFound
from shared.models import Customer, Role
from shared.tenancy import Principal, Scopes

MANAGERS = (Role.OWNER, Role.ADMIN)
OPERATORS = (Role.OWNER, Role.ADMIN, Role.OPERATOR)
SETTINGS_READ = requires(Scopes.SETTINGS_READ)
SETTINGS_WRITE = requires(Scopes.SETTINGS_WRITE, roles=MANAGERS)
READ = requires(Scopes.COLLECTIONS_READ)
OPERATE = requires(Scopes.COLLECTIONS_WRITE, roles=OPERATORS)
Limit = Annotated[int, QueryParameter(ge=1, le=500, description="Items per page (1-500)")]
REF_DOC = "Quita's id, or the retailer's external id"


def _me(request: Request[Any, Any, Any]) -> Principal:
    return principal_of(request)


async def _own_customer(db: AsyncSession, principal: Principal, ref: str) -> Customer:
    """A customer the caller may change: unknown or invisible → 404; seen through a mandate →
    403 (only the retailer writes its collection)."""
    customer = await find_customer(db, principal, ref, for_update=True)
    if customer.tenant_id != writer_tenant(principal):
        raise NotFound("The customer was not found.")
    return customer


class CollectionSettingsController(Controller):
    path = "/v1/settings/collections"
    tags = ["collections"]

    @get(
        "/", summary="The contact window, frequency caps and catch-up rules", guards=[SETTINGS_READ]
    )
    async def get_settings(
        self, request: Request[Any, Any, Any], db: NamedDependency[AsyncSession]
    ) -> schemas.SettingsOut:
        return service.settings_out(await service.settings_of(db, writer_tenant(_me(request))))

    @put(
        "/",
        summary="Replace the contact governance settings",
        description="The window may only narrow the law's (Mon-Fri 08:00-20:00, Sat 08:00-14:00, "
        "never Sundays or holidays); a wider one is refused naming the field. daily_cap 1-3, "
        "weekly_cap 1-7 and at least daily_cap, catch_up_days 0-15, paid_hold_days 0-30, "
        "fallback_after_hours 1-168. Audited.",
        guards=[SETTINGS_WRITE],
    )
    async def put_settings(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[AsyncSession],
        data: JSONBody[schemas.SettingsIn],
    ) -> schemas.SettingsOut:
        principal = _me(request)
        row = await service.save_settings(db, writer_tenant(principal), data, Actor.of(principal))
        return service.settings_out(row)


class CadenceController(Controller):
    path = "/v1/cadences"
    tags = ["collections"]

    @get(
        "/",
        summary="This retailer's réguas, the default first",
        description="The réguas of the installments (kind regua) first, then those of the "
        "agreements (kind agreement); each kind's default first. kind filters.",
        guards=[SETTINGS_READ],
    )
    async def list_cadences(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[AsyncSession],
        kind: Annotated[
            Literal["regua", "agreement"] | None,
            QueryParameter(description="Only the réguas of this kind"),
        ] = None,
    ) -> list[schemas.CadenceOut]:
        rows = await service.list_cadences(db, own_tenant(_me(request)), kind)
        return await service.cadences_out(db, rows)

    @post(
        "/",
        summary="Create a segment régua",
        description="Customers carrying any of tags_any follow it (lowest priority first) unless "
        "pinned to another. kind regua (the default) reminds the retailer's installments; kind "
        "agreement reminds the installments of the customers' active agreements, its offsets "
        "counted from each agreement installment's due date (only regua réguas can be pinned). "
        "Every variant's template must exist for the step's channel and its "
        "fallback; WhatsApp templates must be APPROVED. Audited.",
        guards=[SETTINGS_WRITE],
        status_code=201,
    )
    async def create(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[AsyncSession],
        data: JSONBody[schemas.CadenceIn],
    ) -> schemas.CadenceOut:
        principal = _me(request)
        row = await service.create_cadence(db, writer_tenant(principal), data, Actor.of(principal))
        return (await service.cadences_out(db, [row]))[0]

    @get("/{cadence_id:uuid}", summary="One régua with its steps", guards=[SETTINGS_READ])
    async def get_cadence(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[AsyncSession],
        cadence_id: FromPath[uuid.UUID],
    ) -> schemas.CadenceOut:
        row = await service.get_cadence(db, own_tenant(_me(request)), cadence_id)
        return (await service.cadences_out(db, [row]))[0]

    @put(
        "/{cadence_id:uuid}",
        summary="Replace a régua: its name, segment, priority, state and all its steps",
        description="A step whose offset_days is kept stays the same step (its history and the "
        "once-per-installment guarantee stay with it); steps left out are removed. The kind "
        "cannot change (422). The default agreement régua is edited here too. Audited.",
        guards=[SETTINGS_WRITE],
    )
    async def update(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[AsyncSession],
        cadence_id: FromPath[uuid.UUID],
        data: JSONBody[schemas.CadenceIn],
    ) -> schemas.CadenceOut:
        principal = _me(request)
        row = await service.get_cadence(db, own_tenant(principal), cadence_id, for_update=True)
        writer_tenant(principal)
        row = await service.update_cadence(db, row, data, Actor.of(principal))
        return (await service.cadences_out(db, [row]))[0]

    @delete(
        "/{cadence_id:uuid}",
        summary="Delete a segment régua (the default cannot be deleted: 409)",
        description="Customers pinned to it return to their segment's régua or the default; "
        "its attempts keep their history. Audited.",
        guards=[SETTINGS_WRITE],
        status_code=204,
    )
    async def remove(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[AsyncSession],
        cadence_id: FromPath[uuid.UUID],
    ) -> None:
        principal = _me(request)
        row = await service.get_cadence(db, own_tenant(principal), cadence_id, for_update=True)
        writer_tenant(principal)
        await service.delete_cadence(db, row, Actor.of(principal))


class CustomerCollectionController(Controller):
    path = "/v1/customers"
    tags = ["collections"]

    @put(
        "/{customer_ref:str}/cadence",
        summary="Pin a customer to a régua (null: back to its segment's or the default)",
        guards=[requires(Scopes.COLLECTIONS_WRITE, roles=MANAGERS)],
    )
    async def pin(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[AsyncSession],
        customer_ref: Annotated[str, PathParameter(description=REF_DOC)],
        data: JSONBody[schemas.PinIn],
    ) -> schemas.PinOut:
        principal = _me(request)
        customer = await _own_customer(db, principal, customer_ref)
        return await service.pin(db, customer, data.cadence_id, Actor.of(principal))

    @post(
        "/{customer_ref:str}/holds",
        summary="Pause collection for a customer or one installment",
        description="kind pause, dispute or promise (a promise needs until: the promised day "
        "plus grace; when it ends it is judged kept if a payment landed meanwhile, else broken "
        "and a reminder is asked for at once), until an instant or until released. A hold on the "
        "whole customer also cancels its messages not sent yet (reason hold_pause / "
        "hold_dispute). Audited.",
        guards=[OPERATE],
        status_code=201,
    )
    async def create_hold(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[AsyncSession],
        customer_ref: Annotated[str, PathParameter(description=REF_DOC)],
        data: JSONBody[schemas.HoldIn],
    ) -> schemas.HoldOut:
        principal = _me(request)
        customer = await _own_customer(db, principal, customer_ref)
        return await holds.create_hold(db, principal, customer, data, Actor.of(principal))

    @get(
        "/{customer_ref:str}/holds",
        summary="A customer's holds, active and released, newest first",
        guards=[READ],
    )
    async def list_holds(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[AsyncSession],
        customer_ref: Annotated[str, PathParameter(description=REF_DOC)],
    ) -> list[schemas.HoldOut]:
        customer = await find_customer(db, _me(request), customer_ref)
        at = clock.now()
        return [holds.hold_out(h, at) for h in await holds.holds_of(db, customer)]

    @delete(
        "/{customer_ref:str}/holds/{hold_id:uuid}",
        summary="Release a hold (collection resumes with the next planning)",
        guards=[OPERATE],
        status_code=200,
    )
    async def release_hold(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[AsyncSession],
        customer_ref: Annotated[str, PathParameter(description=REF_DOC)],
        hold_id: FromPath[uuid.UUID],
    ) -> schemas.HoldOut:
        principal = _me(request)
        customer = await _own_customer(db, principal, customer_ref)
        hold = await holds.release_hold(db, customer, hold_id, Actor.of(principal))
        return holds.hold_out(hold, clock.now())

    @post(
        "/{customer_ref:str}/remind",
        summary="Send a reminder now, under the régua's governance",
        description="One message about everything overdue or due within 3 days, with the "
        "template of the régua step reached. The answer is the attempt: queued (planned_for is "
        "the next instant inside the debtor's window) or skipped with the reason (daily_cap, "
        "do_not_contact, hold_pause ...). 409 when nothing is due. Audited.",
        guards=[OPERATE],
        status_code=202,
    )
    async def remind(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[AsyncSession],
        customer_ref: Annotated[str, PathParameter(description=REF_DOC)],
    ) -> schemas.AttemptDetail:
        principal = _me(request)
        customer = await _own_customer(db, principal, customer_ref)
        attempt = await holds.remind(db, customer, Actor.of(principal), clock.now())
        return await reports.attempt_detail(db, attempt, customer.external_id)


class AttemptController(Controller):
    path = "/v1/attempts"
    tags = ["collections"]

    @get(
        "/",
        summary="Contact attempts, filtered, in pages (newest planned first)",
        description="from/to bound the contact day (the debtor's calendar day of the decision).",
        guards=[READ],
    )
    async def list_attempts(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[AsyncSession],
        states: Annotated[
            list[str] | None, QueryParameter(name="state", description="Any of these")
        ] = None,
        reason: FromQuery[str | None] = None,
        kind: Annotated[
            str | None, QueryParameter(description="regua, manual, campaign or agreement")
        ] = None,
        channel: FromQuery[str | None] = None,
        customer_ref: Annotated[str | None, QueryParameter(description=REF_DOC)] = None,
        offset_days: FromQuery[int | None] = None,
        day_from: Annotated[date | None, QueryParameter(name="from")] = None,
        day_to: Annotated[date | None, QueryParameter(name="to")] = None,
        cursor: FromQuery[str | None] = None,
        limit: Limit = 100,
    ) -> schemas.AttemptPage:
        filters = AttemptFilter(
            states=states or [],
            reason=reason,
            kind=kind,
            channel=channel,
            customer=customer_ref,
            offset_days=offset_days,
            day_from=day_from,
            day_to=day_to,
        )
        return await reports.list_attempts(db, _me(request), filters, cursor=cursor, limit=limit)

    @get(
        "/{attempt_id:uuid}",
        summary="One attempt: what it covers, what governance decided, what it asked",
        guards=[READ],
    )
    async def get_attempt(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[AsyncSession],
        attempt_id: FromPath[uuid.UUID],
    ) -> schemas.AttemptDetail:
        attempt, external_id = await reports.find_attempt(db, _me(request), attempt_id)
        return await reports.attempt_detail(db, attempt, external_id)


class CampaignController(Controller):
    path = "/v1/campaigns"
    tags = ["collections"]

    @post(
        "/preview",
        summary="How many customers a campaign would reach now, and why the rest would wait",
        description="Customers with any of tags_any and an open installment in the overdue "
        "range and above min_amount; each is judged by the régua's governance (caps, holds, "
        "opt-outs, channels). Nothing is sent or recorded.",
        guards=[READ],
        status_code=200,
    )
    async def preview(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[AsyncSession],
        data: JSONBody[schemas.CampaignIn],
    ) -> schemas.CampaignPreview:
        return await reports.preview_campaign(db, writer_tenant(_me(request)), data, clock.now())

    @post(
        "/",
        summary="Send one message to every customer of a segment, under the régua's governance",
        description="filter is the preview's body. template_name must exist for channel and "
        "fallback_channel, and be APPROVED on WhatsApp (else a 422 at template_name). Each "
        "customer gets one attempt (kind campaign): queued inside its window, or skipped with "
        "the reason (do_not_contact, opted_out, hold_pause, daily_cap ...); counts says how "
        "many of each. Every call is a new campaign: the caps hold back a repeat. Audited.",
        guards=[OPERATE],
        status_code=201,
    )
    async def create(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[AsyncSession],
        data: JSONBody[schemas.CampaignNew],
    ) -> schemas.CampaignDetail:
        principal = _me(request)
        return await campaigns.create_campaign(
            db, writer_tenant(principal), data, Actor.of(principal), clock.now()
        )

    @get("/", summary="This retailer's campaigns, newest first", guards=[READ])
    async def list_campaigns(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[AsyncSession],
        cursor: FromQuery[str | None] = None,
        limit: Limit = 100,
    ) -> schemas.CampaignPage:
        return await campaigns.list_campaigns(
            db, own_tenant(_me(request)), cursor=cursor, limit=limit
        )

    @get(
        "/{campaign_id:uuid}",
        summary="One campaign: its counts at creation and its messages by state and reason now",
        guards=[READ],
    )
    async def get_campaign(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[AsyncSession],
        campaign_id: FromPath[uuid.UUID],
    ) -> schemas.CampaignDetail:
        row = await campaigns.get_campaign(db, own_tenant(_me(request)), campaign_id)
        return await campaigns.campaign_detail(db, row)


COLLECTION_CONTROLLERS = [
    CollectionSettingsController,
    CadenceController,
    CustomerCollectionController,
    AttemptController,
    CampaignController,
]
