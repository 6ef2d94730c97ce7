"""The retailer's portfolio: customers, installments, balances, Pix codes, payments, and the
settings that price them (fee rules, Pix key).  Parse, call the service, shape the answer.

Customers and installments are addressed by ``{customer_ref}`` / ``{installment_ref}``:
Quita's id, or the retailer's own external id (``PUT`` always takes the external id, so an ERP
never needs to store ours).
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from litestar import Controller, Request, Response, get, patch, post, put
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody, PathParameter, QueryParameter
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.api.auth.guards import principal_of, requires
from shared.brazil.qrcode import qr_png, qr_svg
from shared.domains.audit.service import Actor
from shared.domains.money import rules
from shared.domains.money.balance import balance_of, local_date
from shared.domains.money.pixcodes import pix_for, save_settings, settings_of, settings_out
from shared.domains.portfolio import payments, schemas, service
from shared.domains.portfolio.scoping import writer_tenant
from shared.domains.portfolio.service import InstallmentFilter
from shared.errors import NotFound
from shared.models import Customer, Installment, Payment, Role
from shared.tenancy import Principal, Scopes

MANAGERS = (Role.OWNER, Role.ADMIN)
READ = requires(Scopes.PORTFOLIO_READ)
WRITE = requires(Scopes.PORTFOLIO_WRITE)
Limit = Annotated[int, QueryParameter(ge=1, le=500, description="Items per page (1-500)")]
BRAZIL = ZoneInfo("America/Sao_Paulo")
REF_DOC = "Quita's id, or the retailer's external id (PUT: always the external id)"


def _me(request: Request[Any, Any, Any]) -> Principal:
    return principal_of(request)


def _answer(content: Any, created: bool) -> Response[Any]:
    return Response(content, status_code=201 if created else 200)


class CustomerController(Controller):
    path = "/v1/customers"
    tags = ["portfolio"]

    @put(
        "/{customer_ref:str}",
        summary="Create or update a customer by the retailer's id",
        description="Idempotent: repeating the same body changes nothing. 201 when created.",
        guards=[WRITE],
        status_code=200,
    )
    async def upsert(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[AsyncSession],
        customer_ref: Annotated[str, PathParameter(description=REF_DOC)],
        data: JSONBody[schemas.CustomerIn],
    ) -> Response[schemas.CustomerOut]:
        principal = _me(request)
        customer, created = await service.upsert_customer(
            db, principal, customer_ref, data, Actor.of(principal)
        )
        return _answer((await service.customers_out(db, [customer]))[0], created)

    @get("/{customer_ref:str}", summary="A customer, by id or by the retailer's id", guards=[READ])
    async def get_customer(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[AsyncSession],
        customer_ref: Annotated[str, PathParameter(description=REF_DOC)],
    ) -> schemas.CustomerOut:
        customer = await service.find_customer(db, _me(request), customer_ref)
        return (await service.customers_out(db, [customer]))[0]

    @get("/", summary="Customers, filtered, in pages", guards=[READ])
    async def list_customers(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[AsyncSession],
        tag: Annotated[list[str] | None, QueryParameter(description="Any of these tags")] = None,
        uf: Annotated[str | None, QueryParameter(name="state", description="UF")] = None,
        cursor: FromQuery[str | None] = None,
        limit: Limit = 100,
    ) -> schemas.CustomerPage:
        return await service.list_customers(
            db, _me(request), tags=tag or [], state=uf, cursor=cursor, limit=limit
        )

    @patch(
        "/{customer_ref:str}/phones/{number:str}",
        summary="Record what is known about one phone (wrong person, do-not-contact list)",
        guards=[WRITE],
    )
    async def update_phone(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[AsyncSession],
        customer_ref: Annotated[str, PathParameter(description=REF_DOC)],
        number: FromPath[str],
        data: JSONBody[schemas.PhoneUpdate],
    ) -> schemas.CustomerOut:
        principal = _me(request)
        customer = await service.find_customer(db, principal, customer_ref, for_update=True)
        if customer.tenant_id != writer_tenant(principal):
            raise NotFound("The customer was not found.")
        await service.update_phone(db, customer, number, data, Actor.of(principal))
        return (await service.customers_out(db, [customer]))[0]


def _today() -> date:
    return datetime.now(BRAZIL).date()


async def _installment_and_customer(
    db: AsyncSession, principal: Principal, ref: str
) -> tuple[Installment, Customer]:
    inst, _ = await service.find_installment(db, principal, ref)
    return inst, await db.get_one(Customer, inst.customer_id)


class InstallmentController(Controller):
    path = "/v1/installments"
    tags = ["portfolio"]

    @put(
        "/{installment_ref:str}",
        summary="Create or update an installment by the retailer's id",
        description=(
            "Idempotent. The customer must exist (PUT /v1/customers/{external_id}). "
            "Changes of principal or due date are audited. 201 when created."
        ),
        guards=[WRITE],
        status_code=200,
    )
    async def upsert(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[AsyncSession],
        installment_ref: Annotated[str, PathParameter(description=REF_DOC)],
        data: JSONBody[schemas.InstallmentIn],
    ) -> Response[schemas.InstallmentOut]:
        principal = _me(request)
        inst, created = await service.upsert_installment(
            db, principal, installment_ref, data, Actor.of(principal)
        )
        return _answer(service.installment_out(inst, data.customer_external_id), created)

    @get(
        "/{installment_ref:str}",
        summary="An installment, by id or by the retailer's id",
        guards=[READ],
    )
    async def get_installment(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[AsyncSession],
        installment_ref: Annotated[str, PathParameter(description=REF_DOC)],
    ) -> schemas.InstallmentOut:
        inst, ext = await service.find_installment(db, _me(request), installment_ref)
        return service.installment_out(inst, ext)

    @get(
        "/",
        summary="Installments, filtered, in pages ordered by due date",
        description="overdue_min/overdue_max count calendar days since the due date (today in "
        "Brasília time).",
        guards=[READ],
    )
    async def list_installments(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[AsyncSession],
        status: Annotated[list[str] | None, QueryParameter(description="Any of these")] = None,
        due_from: FromQuery[date | None] = None,
        due_to: FromQuery[date | None] = None,
        overdue_min: Annotated[int | None, QueryParameter(ge=0)] = None,
        overdue_max: Annotated[int | None, QueryParameter(ge=0)] = None,
        tag: Annotated[list[str] | None, QueryParameter(description="Customer has any")] = None,
        customer: Annotated[
            str | None, QueryParameter(description="Customer id or ext. id")
        ] = None,
        contract: FromQuery[str | None] = None,
        cursor: FromQuery[str | None] = None,
        limit: Limit = 100,
    ) -> schemas.InstallmentPage:
        filters = InstallmentFilter(
            statuses=status or [],
            due_from=due_from,
            due_to=due_to,
            overdue_min=overdue_min,
            overdue_max=overdue_max,
            tags=tag,
            customer=customer,
            contract=contract,
        )
        return await service.list_installments(
            db, _me(request), filters, today=_today(), cursor=cursor, limit=limit
        )

    @get(
        "/{installment_ref:str}/balance",
        summary="What the installment costs if paid on a date",
        description="Principal, monetary correction, late fee (multa), default interest (juros "
        "de mora), early-payment discount, each rounded half-up; total is their exact sum. "
        "as_of defaults to today where the debtor lives.",
        guards=[READ],
    )
    async def balance(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[AsyncSession],
        installment_ref: Annotated[str, PathParameter(description=REF_DOC)],
        as_of: FromQuery[date | None] = None,
    ) -> schemas.BalanceOut:
        inst, customer = await _installment_and_customer(db, _me(request), installment_ref)
        day = as_of or local_date(datetime.now(UTC), customer)
        b = await balance_of(db, inst, customer, day)
        return schemas.BalanceOut(
            installment_id=inst.id,
            as_of=day,
            principal=b.principal,
            correction=b.correction,
            fine=b.fine,
            interest=b.interest,
            discount=b.discount,
            paid=b.paid,
            total=b.total,
            days_overdue=b.days_overdue,
            due_date=inst.due_date,
            effective_due_date=b.effective_due_date,
            fee_rule_version=b.fee_rule_version,
            status=inst.status,
        )

    async def _pix(
        self, db: AsyncSession, principal: Principal, ref: str, as_of: date | None
    ) -> schemas.PixOut:
        inst, customer = await _installment_and_customer(db, principal, ref)
        day = as_of or local_date(datetime.now(UTC), customer)
        settings = await settings_of(db, inst.tenant_id)
        return pix_for(settings, inst, await balance_of(db, inst, customer, day), day)

    @get(
        "/{installment_ref:str}/pix",
        summary="A Pix BR Code (copia e cola) for the balance on a date",
        description="Static BR Code with the amount of the balance; its txid names the "
        "installment. Reissue it daily: interest accrues.",
        guards=[READ],
    )
    async def pix(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[AsyncSession],
        installment_ref: Annotated[str, PathParameter(description=REF_DOC)],
        as_of: FromQuery[date | None] = None,
    ) -> schemas.PixOut:
        return await self._pix(db, _me(request), installment_ref, as_of)

    @get("/{installment_ref:str}/pix/qr.svg", summary="The Pix QR code as SVG", guards=[READ])
    async def pix_svg(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[AsyncSession],
        installment_ref: Annotated[str, PathParameter(description=REF_DOC)],
        as_of: FromQuery[date | None] = None,
    ) -> Response[str]:
        code = await self._pix(db, _me(request), installment_ref, as_of)
        return Response(qr_svg(code.payload), media_type="image/svg+xml")

    @get("/{installment_ref:str}/pix/qr.png", summary="The Pix QR code as PNG", guards=[READ])
    async def pix_png(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[AsyncSession],
        installment_ref: Annotated[str, PathParameter(description=REF_DOC)],
        as_of: FromQuery[date | None] = None,
    ) -> Response[bytes]:
        code = await self._pix(db, _me(request), installment_ref, as_of)
        return Response(qr_png(code.payload), media_type="image/png")

    @get(
        "/{installment_ref:str}/payments",
        summary="The installment's payments, oldest first",
        guards=[READ],
    )
    async def payments_of(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[AsyncSession],
        installment_ref: Annotated[str, PathParameter(description=REF_DOC)],
    ) -> list[schemas.PaymentOut]:
        inst, _ = await service.find_installment(db, _me(request), installment_ref)
        rows = await db.scalars(
            select(Payment).where(Payment.installment_id == inst.id).order_by(Payment.paid_at)
        )
        return [payments.payment_out(p, inst) for p in rows]


class PaymentController(Controller):
    path = "/v1/payments"
    tags = ["portfolio"]

    @post(
        "/",
        summary="Record a payment received for an installment",
        description="Idempotent by external_id (same body: 200 with the recorded payment; "
        "different body: 409). Partial payments leave the installment partially_paid; what "
        "exceeds the balance is recorded as overpaid; a covered installment becomes paid.",
        guards=[WRITE],
        status_code=201,
    )
    async def create(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[AsyncSession],
        data: JSONBody[schemas.PaymentIn],
    ) -> Response[schemas.PaymentOut]:
        principal = _me(request)
        payment, inst, created = await payments.record_payment(
            db, principal, data, Actor.of(principal)
        )
        return _answer(payments.payment_out(payment, inst), created)

    @get("/{payment_id:uuid}", summary="One payment", guards=[READ])
    async def get_payment(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[AsyncSession],
        payment_id: FromPath[uuid.UUID],
    ) -> schemas.PaymentOut:
        payment = await db.get(Payment, payment_id)
        if payment is None:
            raise NotFound("The payment was not found.")
        inst, _ = await service.find_installment(db, _me(request), str(payment.installment_id))
        return payments.payment_out(payment, inst)


class SettingsController(Controller):
    path = "/v1/settings"
    tags = ["settings"]

    @get(
        "/pix",
        summary="The Pix key and merchant data on BR Codes",
        guards=[requires(Scopes.SETTINGS_READ)],
    )
    async def get_pix(
        self, request: Request[Any, Any, Any], db: NamedDependency[AsyncSession]
    ) -> schemas.PixSettingsOut:
        return settings_out(await settings_of(db, writer_tenant(_me(request))))

    @put(
        "/pix",
        summary="Set the Pix key, merchant name and city",
        description="The key is validated against the DICT formats (CPF, CNPJ, +55 phone, "
        "e-mail, random key). Name and city lose accents (BR Code fields 59, 60).",
        guards=[requires(Scopes.SETTINGS_WRITE, roles=MANAGERS)],
    )
    async def put_pix(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[AsyncSession],
        data: JSONBody[schemas.PixSettingsIn],
    ) -> schemas.PixSettingsOut:
        principal = _me(request)
        row = await save_settings(db, writer_tenant(principal), data, Actor.of(principal))
        return settings_out(row)

    @get(
        "/fee-rules",
        summary="Every version of the late-fee rule, oldest first",
        guards=[requires(Scopes.SETTINGS_READ)],
    )
    async def fee_rules(
        self, request: Request[Any, Any, Any], db: NamedDependency[AsyncSession]
    ) -> list[schemas.FeeRuleOut]:
        return [rules.rule_out(r) for r in await rules.versions(db, writer_tenant(_me(request)))]

    @post(
        "/fee-rules",
        summary="A new version of the late-fee rule, from an effective date",
        description="multa at most 2 % (CDC art. 52 §1); juros de mora % a.m., simple, pro rata "
        "die over 30 days. Applies to installments due on or after effective_from.",
        guards=[requires(Scopes.SETTINGS_WRITE, roles=MANAGERS)],
        status_code=201,
    )
    async def new_fee_rule(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[AsyncSession],
        data: JSONBody[schemas.FeeRuleIn],
    ) -> schemas.FeeRuleOut:
        principal = _me(request)
        row = await rules.create_version(
            db, writer_tenant(principal), data, Actor.of(principal), today=_today()
        )
        return rules.rule_out(row)


PORTFOLIO_CONTROLLERS = [
    CustomerController,
    InstallmentController,
    PaymentController,
    SettingsController,
]
