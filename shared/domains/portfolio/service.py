"""Customers and installments: idempotent upserts from the retailer's systems, lookups, lists.

Every write validates the whole input first (all field errors at once), then changes only what
differs — an upsert that repeats what is stored writes nothing, moves no ``updated_at`` and
records no audit event.  Changes of amounts and statuses are audited in the same transaction.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

from sqlalchemy import Select, select, tuple_
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from shared.brazil import InvalidValue
from shared.brazil.boleto import parse_boleto
from shared.brazil.calendar import UFS, timezone_for
from shared.brazil.documents import document_kind, normalize_document
from shared.brazil.phones import normalize_phone, whatsapp_key
from shared.domains.audit.service import Actor, record
from shared.domains.portfolio import schemas, status
from shared.domains.portfolio.scoping import as_uuid, visible_customers, writer_tenant
from shared.errors import BadRequest, FieldError, NotFound, ValidationFailed
from shared.models import (
    Customer,
    CustomerPhone,
    Installment,
    InstallmentStatus,
    MandateAction,
    PhoneStatus,
)
from shared.pagination import decode_cursor, encode_cursor, invalid_cursor
from shared.tenancy import Principal

M = TypeVar("M", Customer, Installment)
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MAX_PRINCIPAL = Decimal("1000000000000")  # numeric(14, 2)
MAX_ATTRIBUTES_BYTES = 8192


def now() -> datetime:
    return datetime.now(UTC)


# --- validation ---------------------------------------------------------------------------------


def money(
    value: Decimal, field: str, errors: list[FieldError], *, positive: bool = True
) -> Decimal:
    """A money amount: finite, at most two decimal places, within NUMERIC(14, 2)."""
    try:
        if not value.is_finite():
            raise InvalidOperation
        quantized = value.quantize(Decimal("0.01"))
    except InvalidOperation:
        errors.append(FieldError(field, 'must be a decimal amount such as "250.00"'))
        return Decimal(0)
    if quantized != value:
        errors.append(FieldError(field, "must have at most two decimal places"))
    elif positive and value <= 0:
        errors.append(FieldError(field, "must be greater than zero"))
    elif value >= MAX_PRINCIPAL:
        errors.append(FieldError(field, "is too large"))
    return quantized


def _codec(fn: Any, raw: str, field: str, errors: list[FieldError]) -> Any:
    try:
        return fn(raw)
    except InvalidValue as exc:
        errors.append(FieldError(field, exc.reason))
        return None


@dataclass(frozen=True, slots=True)
class CustomerFields:
    name: str
    document: str | None
    phones: list[str]
    email: str | None
    state: str | None
    city: str | None
    tags: list[str]
    attributes: dict[str, Any]


def validate_customer(data: schemas.CustomerIn) -> CustomerFields:
    errors: list[FieldError] = []
    name = " ".join(data.name.split())
    if not name:
        errors.append(FieldError("name", "must not be blank"))
    document = None
    if data.document is not None and data.document.strip():
        document = _codec(normalize_document, data.document, "document", errors)
    phones: list[str] = []
    for i, raw in enumerate(data.phones):
        number = _codec(normalize_phone, raw, f"phones[{i}]", errors)
        if number and number not in phones:
            phones.append(number)
    email = data.email.strip().lower() if data.email and data.email.strip() else None
    if email and not EMAIL.match(email):
        errors.append(FieldError("email", "is not an e-mail address"))
    state = data.state.upper() if data.state else None
    if state and state not in UFS:
        errors.append(FieldError("state", "must be a Brazilian state (UF) such as SP"))
    city = " ".join(data.city.split()) if data.city and data.city.strip() else None
    tags = list(dict.fromkeys(t.strip() for t in data.tags if t.strip()))
    if len(json.dumps(data.attributes, default=str)) > MAX_ATTRIBUTES_BYTES:
        errors.append(FieldError("attributes", f"must be at most {MAX_ATTRIBUTES_BYTES} bytes"))
    if errors:
        raise ValidationFailed("The customer is not valid.", errors=errors)
    return CustomerFields(name, document, phones, email, state, city, tags, data.attributes)


# --- customers ----------------------------------------------------------------------------------


async def upsert_customer(
    session: AsyncSession,
    principal: Principal,
    external_id: str,
    data: schemas.CustomerIn,
    actor: Actor,
) -> tuple[Customer, bool]:
    """Create or update the customer the retailer calls ``external_id``; ``(customer, created)``."""
    tenant_id = writer_tenant(principal)
    fields = validate_customer(data)
    values = {
        "name": fields.name,
        "document": fields.document,
        "email": fields.email,
        "state": fields.state,
        "city": fields.city,
        "tags": fields.tags,
        "attributes": fields.attributes,
    }
    flags: dict[str, Any] = {}
    if data.opted_out is not None:
        flags["opted_out"] = sorted(set(data.opted_out))
    if data.do_not_contact is not None:
        flags["do_not_contact"] = data.do_not_contact
        flags["do_not_contact_reason"] = data.do_not_contact_reason if data.do_not_contact else None
    customer, created = await insert_or_lock(
        session, Customer, tenant_id, external_id, {**values, **flags}
    )
    changed = [] if created else _assign(customer, {**values, **flags})
    phones_changed = await sync_phones(session, customer, fields.phones)
    if phones_changed and not created:
        changed.append("phones")
        customer.updated_at = now()
    await session.flush()
    if created or changed:
        await record(
            session,
            "customer.created" if created else "customer.updated",
            tenant_id=tenant_id,
            actor_type=actor.type,
            actor_id=actor.id,
            subject_type="customer",
            subject_id=str(customer.id),
            data={"external_id": external_id} if created else {"fields": sorted(changed)},
        )
    await session.refresh(customer)  # server-side timestamps
    return customer, created


async def insert_or_lock(
    session: AsyncSession,
    model: type[M],
    tenant_id: uuid.UUID,
    external_id: str,
    values: dict[str, Any],
) -> tuple[M, bool]:
    """The row ``(tenant_id, external_id)`` of ``model``, locked: inserted with ``values`` if it
    did not exist (``True``), else as stored.  Safe against concurrent upserts of one key."""
    table: Any = model
    new_id = (
        await session.execute(
            insert(table)
            .values(id=uuid.uuid4(), tenant_id=tenant_id, external_id=external_id, **values)
            .on_conflict_do_nothing(index_elements=["tenant_id", "external_id"])
            .returning(table.id)
        )
    ).scalar_one_or_none()
    row = (
        await session.execute(
            select(table)
            .where(table.tenant_id == tenant_id, table.external_id == external_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    ).scalar_one()
    return row, new_id is not None


def _assign(obj: Any, values: dict[str, Any]) -> list[str]:
    """Set what differs; the names of the fields that changed."""
    changed = [k for k, v in values.items() if getattr(obj, k) != v]
    for key in changed:
        setattr(obj, key, values[key])
    return changed


async def sync_phones(session: AsyncSession, customer: Customer, numbers: list[str]) -> bool:
    """Make ``numbers`` the customer's active phones, in order.  Numbers no longer sent are
    deactivated, never deleted, so what Quita learned about them survives."""
    stored = {
        p.number: p
        for p in await session.scalars(
            select(CustomerPhone).where(CustomerPhone.customer_id == customer.id)
        )
    }
    changed = False
    for position, number in enumerate(numbers):
        phone = stored.pop(number, None)
        if phone is None:
            session.add(
                CustomerPhone(
                    tenant_id=customer.tenant_id,
                    customer_id=customer.id,
                    number=number,
                    position=position,
                    active=True,
                    wa_key=whatsapp_key(number),
                    status=PhoneStatus.VALID,
                )
            )
            changed = True
        elif phone.position != position or not phone.active:
            phone.position, phone.active = position, True
            changed = True
    for phone in stored.values():
        if phone.active:
            phone.active = False
            changed = True
    return changed


async def update_phone(
    session: AsyncSession,
    customer: Customer,
    raw_number: str,
    data: schemas.PhoneUpdate,
    actor: Actor,
) -> CustomerPhone:
    errors: list[FieldError] = []
    number = _codec(normalize_phone, raw_number, "number", errors)
    if errors:
        raise ValidationFailed("The phone number is not valid.", errors=errors)
    phone = (
        await session.execute(
            select(CustomerPhone)
            .where(CustomerPhone.customer_id == customer.id, CustomerPhone.number == number)
            .with_for_update()
        )
    ).scalar_one_or_none()
    if phone is None:
        raise NotFound("This customer has no such phone number.")
    before = {"status": phone.status, "no_call_list_since": phone.no_call_list_since}
    if data.status is not None and data.status != phone.status:
        phone.status = PhoneStatus(data.status)
        phone.status_changed_at = now()
    if data.clear_no_call_list:
        phone.no_call_list_since = None
    elif data.no_call_list_since is not None:
        phone.no_call_list_since = data.no_call_list_since
    after = {"status": phone.status, "no_call_list_since": phone.no_call_list_since}
    if after != before:
        await session.flush()
        await record(
            session,
            "customer.phone_updated",
            tenant_id=customer.tenant_id,
            actor_type=actor.type,
            actor_id=actor.id,
            subject_type="customer",
            subject_id=str(customer.id),
            data={
                "phone_last4": phone.number[-4:],
                "before": _jsonable(before),
                "after": _jsonable(after),
            },
        )
    return phone


def _jsonable(values: dict[str, Any]) -> dict[str, Any]:
    return {k: (str(v) if v is not None else None) for k, v in values.items()}


async def find_customer(
    session: AsyncSession,
    principal: Principal,
    ref: str,
    *,
    action: MandateAction = MandateAction.READ,
    for_update: bool = False,
) -> Customer:
    """The customer ``ref`` names (its id, else the retailer's external id), if visible."""
    stmt = select(Customer).where(visible_customers(principal, action))
    ident = as_uuid(ref)
    candidates = [stmt.where(Customer.id == ident)] if ident else []
    candidates.append(stmt.where(Customer.external_id == ref).order_by(Customer.tenant_id))
    for candidate in candidates:
        if for_update:
            candidate = candidate.with_for_update()
        found = (await session.execute(candidate.limit(2))).scalars().all()
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            raise BadRequest(
                "Several retailers you work for use this external id; use the customer's id."
            )
    raise NotFound("The customer was not found.")


async def phones_of(
    session: AsyncSession, customer_ids: list[uuid.UUID]
) -> dict[uuid.UUID, list[CustomerPhone]]:
    out: dict[uuid.UUID, list[CustomerPhone]] = {i: [] for i in customer_ids}
    if customer_ids:
        rows = await session.scalars(
            select(CustomerPhone)
            .where(CustomerPhone.customer_id.in_(customer_ids))
            .order_by(
                CustomerPhone.customer_id, CustomerPhone.active.desc(), CustomerPhone.position
            )
        )
        for p in rows:
            out[p.customer_id].append(p)
    return out


def customer_out(c: Customer, phones: list[CustomerPhone]) -> schemas.CustomerOut:
    return schemas.CustomerOut(
        id=c.id,
        external_id=c.external_id,
        name=c.name,
        document=c.document,
        document_kind=document_kind(c.document) if c.document else None,
        phones=[p.number for p in phones if p.active],
        phone_details=[
            schemas.PhoneOut(
                number=p.number,
                status=p.status,
                active=p.active,
                whatsapp_id=p.whatsapp_id,
                no_call_list_since=p.no_call_list_since,
            )
            for p in phones
        ],
        email=c.email,
        state=c.state,
        city=c.city,
        time_zone=timezone_for(c.state, c.city),
        tags=list(c.tags),
        opted_out=list(c.opted_out),
        do_not_contact=c.do_not_contact,
        do_not_contact_reason=c.do_not_contact_reason,
        attributes=c.attributes,
        created_at=c.created_at,
        updated_at=c.updated_at,
    )


async def customers_out(session: AsyncSession, rows: list[Customer]) -> list[schemas.CustomerOut]:
    phones = await phones_of(session, [c.id for c in rows])
    return [customer_out(c, phones[c.id]) for c in rows]


async def list_customers(
    session: AsyncSession,
    principal: Principal,
    *,
    tags: list[str],
    state: str | None,
    cursor: str | None,
    limit: int,
) -> schemas.CustomerPage:
    stmt = select(Customer).where(visible_customers(principal))
    if tags:
        stmt = stmt.where(Customer.tags.overlap(tags))
    if state:
        stmt = stmt.where(Customer.state == state.upper())
    if cursor:
        ext, ident = decode_cursor(cursor, 2)
        stmt = stmt.where(tuple_(Customer.external_id, Customer.id) > (ext, _uuid(ident)))
    rows = list(
        await session.scalars(stmt.order_by(Customer.external_id, Customer.id).limit(limit + 1))
    )
    more = len(rows) > limit
    rows = rows[:limit]
    return schemas.CustomerPage(
        items=await customers_out(session, rows),
        next_cursor=encode_cursor(rows[-1].external_id, rows[-1].id) if more else None,
    )


def _uuid(value: str) -> uuid.UUID:
    ident = as_uuid(value)
    if ident is None:
        raise invalid_cursor()
    return ident


# --- installments -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class InstallmentFields:
    principal: Decimal
    due_date: date
    contract: str | None
    number: int | None
    count: int | None
    boleto_line: str | None
    payment_url: str | None
    description: str | None


def validate_installment(data: schemas.InstallmentIn) -> InstallmentFields:
    errors: list[FieldError] = []
    principal = money(data.principal, "principal", errors)
    if data.number is not None and data.count is not None and data.number > data.count:
        errors.append(FieldError("number", "must not be greater than count"))
    boleto = None
    if data.boleto_line and data.boleto_line.strip():
        parsed = _codec(parse_boleto, data.boleto_line, "boleto_line", errors)
        boleto = parsed.line if parsed else None
    if not date(2000, 1, 1) <= data.due_date <= date(2100, 12, 31):
        errors.append(FieldError("due_date", "must be between 2000-01-01 and 2100-12-31"))
    if errors:
        raise ValidationFailed("The installment is not valid.", errors=errors)
    return InstallmentFields(
        principal=principal,
        due_date=data.due_date,
        contract=(data.contract or "").strip() or None,
        number=data.number,
        count=data.count,
        boleto_line=boleto,
        payment_url=data.payment_url,
        description=data.description,
    )


async def upsert_installment(
    session: AsyncSession,
    principal: Principal,
    external_id: str,
    data: schemas.InstallmentIn,
    actor: Actor,
) -> tuple[Installment, bool]:
    tenant_id = writer_tenant(principal)
    fields = validate_installment(data)
    customer_id = await session.scalar(
        select(Customer.id).where(
            Customer.tenant_id == tenant_id, Customer.external_id == data.customer_external_id
        )
    )
    if customer_id is None:
        raise ValidationFailed(
            "The installment names an unknown customer.",
            errors=[
                FieldError(
                    "customer_external_id",
                    "no customer with this id; create it with PUT /v1/customers/{external_id}",
                    code="not_found",
                )
            ],
        )
    values: dict[str, Any] = {
        "customer_id": customer_id,
        "principal": fields.principal,
        "due_date": fields.due_date,
        "contract": fields.contract,
        "number": fields.number,
        "count": fields.count,
        "boleto_line": fields.boleto_line,
        "payment_url": fields.payment_url,
        "description": fields.description,
    }
    inst, created = await insert_or_lock(session, Installment, tenant_id, external_id, values)
    audit = _auditor(session, tenant_id, actor, inst)
    if created:
        await audit(
            "installment.created",
            {"principal": str(inst.principal), "due_date": inst.due_date.isoformat()},
        )
    else:
        before = {"principal": str(inst.principal), "due_date": inst.due_date.isoformat()}
        changed = _assign(inst, values)
        if changed:
            await session.flush()
        if {"principal", "due_date"} & set(changed):
            after = {"principal": str(inst.principal), "due_date": inst.due_date.isoformat()}
            await audit("installment.amount_changed", {"before": before, "after": after})
        if set(changed) - {"principal", "due_date"}:
            await audit(
                "installment.updated",
                {"fields": sorted(set(changed) - {"principal", "due_date"})},
            )
    if data.status is not None:
        await set_status(session, inst, InstallmentStatus(data.status), data.status_reason, actor)
    await session.flush()
    await session.refresh(inst)  # server-side timestamps
    return inst, created


def _auditor(session: AsyncSession, tenant_id: uuid.UUID, actor: Actor, inst: Installment) -> Any:
    async def audit(action: str, data: dict[str, Any]) -> None:
        await record(
            session,
            action,
            tenant_id=tenant_id,
            actor_type=actor.type,
            actor_id=actor.id,
            subject_type="installment",
            subject_id=str(inst.id),
            data={"external_id": inst.external_id, **data},
        )

    return audit


async def set_status(
    session: AsyncSession,
    inst: Installment,
    wanted: InstallmentStatus,
    reason: str | None,
    actor: Actor,
) -> bool:
    """Apply a status the retailer asked for (see :mod:`status`); ``True`` if it changed."""
    new = status.requested(
        InstallmentStatus(inst.status),
        wanted,
        amount_paid=inst.amount_paid,
        settled_by_payments=inst.amount_paid > 0,
    )
    if new is None:
        return False
    await change_status(session, inst, new, reason, actor)
    return True


async def change_status(
    session: AsyncSession,
    inst: Installment,
    new: InstallmentStatus,
    reason: str | None,
    actor: Actor,
    *,
    at: datetime | None = None,
) -> None:
    old = inst.status
    inst.status = new
    inst.status_reason = reason
    inst.status_changed_at = at or now()
    if new is InstallmentStatus.PAID and inst.settled_at is None:
        inst.settled_at = at or now()
    elif new is not InstallmentStatus.PAID:
        inst.settled_at = None
    await session.flush()
    await _auditor(session, inst.tenant_id, actor, inst)(
        "installment.status_changed", {"from": old, "to": new, "reason": reason}
    )


def visible_installments(principal: Principal) -> Select[Installment, str]:
    return (
        select(Installment, Customer.external_id)
        .join(Customer, Customer.id == Installment.customer_id)
        .where(visible_customers(principal))
    )


async def find_installment(
    session: AsyncSession, principal: Principal, ref: str, *, for_update: bool = False
) -> tuple[Installment, str]:
    stmt = visible_installments(principal)
    ident = as_uuid(ref)
    candidates = [stmt.where(Installment.id == ident)] if ident else []
    candidates.append(stmt.where(Installment.external_id == ref))
    for candidate in candidates:
        if for_update:
            candidate = candidate.with_for_update(of=Installment)
        found = (await session.execute(candidate.limit(2))).all()
        if len(found) == 1:
            return found[0][0], found[0][1]
        if len(found) > 1:
            raise BadRequest(
                "Several retailers you work for use this external id; use the installment's id."
            )
    raise NotFound("The installment was not found.")


def installment_out(i: Installment, customer_external_id: str) -> schemas.InstallmentOut:
    boleto = None
    if i.boleto_line:
        try:
            b = parse_boleto(i.boleto_line)
            boleto = schemas.BoletoOut(
                line=b.line, barcode=b.barcode, bank=b.bank, amount=b.amount, due_date=b.due_date
            )
        except InvalidValue:  # stored lines were validated; keep the answer total anyway
            boleto = None
    label = None
    if i.number is not None:
        label = f"{i.number} de {i.count}" if i.count else str(i.number)
    return schemas.InstallmentOut(
        id=i.id,
        external_id=i.external_id,
        customer_id=i.customer_id,
        customer_external_id=customer_external_id,
        contract=i.contract,
        number=i.number,
        count=i.count,
        label=label,
        principal=i.principal,
        due_date=i.due_date,
        status=i.status,
        status_reason=i.status_reason,
        collectable=InstallmentStatus(i.status) in status.COLLECTABLE,
        amount_paid=i.amount_paid,
        settled_at=i.settled_at,
        boleto=boleto,
        payment_url=i.payment_url,
        description=i.description,
        created_at=i.created_at,
        updated_at=i.updated_at,
    )


@dataclass(frozen=True, slots=True)
class InstallmentFilter:
    statuses: list[str]
    due_from: date | None = None
    due_to: date | None = None
    overdue_min: int | None = None
    overdue_max: int | None = None
    tags: list[str] | None = None
    customer: str | None = None
    contract: str | None = None


async def list_installments(
    session: AsyncSession,
    principal: Principal,
    f: InstallmentFilter,
    *,
    today: date,
    cursor: str | None,
    limit: int,
) -> schemas.InstallmentPage:
    stmt = visible_installments(principal)
    if f.statuses:
        stmt = stmt.where(Installment.status.in_(f.statuses))
    if f.due_from:
        stmt = stmt.where(Installment.due_date >= f.due_from)
    if f.due_to:
        stmt = stmt.where(Installment.due_date <= f.due_to)
    # days overdue = today - due_date, so a range of days is a range of due dates
    if f.overdue_min is not None:
        stmt = stmt.where(
            Installment.due_date <= date.fromordinal(today.toordinal() - f.overdue_min)
        )
    if f.overdue_max is not None:
        stmt = stmt.where(
            Installment.due_date >= date.fromordinal(today.toordinal() - f.overdue_max)
        )
    if f.tags:
        stmt = stmt.where(Customer.tags.overlap(f.tags))
    if f.customer:
        ident = as_uuid(f.customer)
        stmt = stmt.where(Customer.id == ident if ident else Customer.external_id == f.customer)
    if f.contract:
        stmt = stmt.where(Installment.contract == f.contract)
    if cursor:
        due, ident_s = decode_cursor(cursor, 2)
        try:
            due_d = date.fromisoformat(due)
        except ValueError as exc:
            raise invalid_cursor() from exc
        stmt = stmt.where(tuple_(Installment.due_date, Installment.id) > (due_d, _uuid(ident_s)))
    rows = (
        await session.execute(stmt.order_by(Installment.due_date, Installment.id).limit(limit + 1))
    ).all()
    more = len(rows) > limit
    rows = rows[:limit]
    return schemas.InstallmentPage(
        items=[installment_out(i, ext) for i, ext in rows],
        next_cursor=encode_cursor(rows[-1][0].due_date, rows[-1][0].id) if more else None,
    )
