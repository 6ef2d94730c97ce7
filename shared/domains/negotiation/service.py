"""Negotiation policies, agency limits and offers in the database.  Services flush, never
commit; every change is audited in the caller's transaction."""

from __future__ import annotations

import uuid
from dataclasses import asdict
from datetime import date, datetime, timedelta
from typing import Any

import msgspec
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from shared import clock
from shared.domains.audit.service import Actor, record
from shared.domains.money import rules
from shared.domains.money.balance import balance_of, local_date
from shared.domains.negotiation import offers, schemas
from shared.domains.negotiation.limits import (
    DEFAULT,
    LIMIT_FIELDS,
    Limits,
    check_mandate_limits,
    check_policy,
    effective,
)
from shared.domains.portfolio.service import find_customer
from shared.errors import Conflict, FieldError, NotFound, ValidationFailed
from shared.models import (
    Agreement,
    AgreementStatus,
    Customer,
    Installment,
    InstallmentStatus,
    Mandate,
    MandateAction,
    MandateNegotiationLimits,
    NegotiationPolicy,
    Offer,
    TenantKind,
)
from shared.tenancy import Grant, Principal

NEGOTIABLE = (InstallmentStatus.OPEN, InstallmentStatus.PARTIALLY_PAID)


def _by(actor: Actor) -> str:
    return f"{actor.type}:{actor.id}" if actor.id else actor.type


# --- policy ----------------------------------------------------------------------------------


def _default_row(tenant_id: uuid.UUID) -> NegotiationPolicy:
    values = {name: getattr(DEFAULT, name) for name in LIMIT_FIELDS}
    return NegotiationPolicy(tenant_id=tenant_id, version=1, created_by="system", **values)


async def current_policy(
    session: AsyncSession, tenant_id: uuid.UUID, *, create: bool = False, lock: bool = False
) -> NegotiationPolicy:
    """The retailer's policy in force: its latest version, else the default as version 1
    (stored when ``create``: only the retailer itself may write it).  ``lock``: hold the
    latest version so two saves cannot both make the next one."""
    stmt = (
        select(NegotiationPolicy)
        .where(NegotiationPolicy.tenant_id == tenant_id)
        .order_by(NegotiationPolicy.version.desc())
        .limit(1)
    )
    row = await session.scalar(stmt.with_for_update() if lock else stmt)
    if row is not None:
        return row
    row = _default_row(tenant_id)
    if create:
        session.add(row)
        await session.flush()
    return row


def limits_of(row: NegotiationPolicy) -> Limits:
    return Limits(**{name: getattr(row, name) for name in LIMIT_FIELDS})


async def save_policy(
    session: AsyncSession, tenant_id: uuid.UUID, data: schemas.PolicyIn, actor: Actor
) -> NegotiationPolicy:
    """A new version of the policy; offers already made keep the version they used."""
    values = msgspec.structs.asdict(data)
    errors = check_policy(values)
    if errors:
        raise ValidationFailed("The negotiation policy is not valid.", errors=errors)
    previous = await current_policy(session, tenant_id, create=True, lock=True)
    row = NegotiationPolicy(
        tenant_id=tenant_id, version=previous.version + 1, created_by=_by(actor), **values
    )
    session.add(row)
    await session.flush()
    await record(
        session,
        "negotiation_policy.created",
        tenant_id=tenant_id,
        actor_type=actor.type,
        actor_id=actor.id,
        subject_type="negotiation_policy",
        subject_id=str(row.version),
        data=msgspec.to_builtins(values),
    )
    return row


def policy_out(row: NegotiationPolicy) -> schemas.PolicyOut:
    return schemas.PolicyOut(
        version=row.version,
        **{name: getattr(row, name) for name in LIMIT_FIELDS},
        created_by=row.created_by,
        created_at=row.created_at,
    )


# --- agency limits ---------------------------------------------------------------------------


async def mandate_of(
    session: AsyncSession, principal: Principal, mandate_id: uuid.UUID, *, write: bool
) -> Mandate:
    """A mandate the retailer gave (``write``) or that the agency holds, else 404."""
    party = Mandate.tenant_id == principal.tenant_id
    if not write:
        party = party | (Mandate.agency_id == principal.tenant_id)
    found = await session.scalar(select(Mandate).where(Mandate.id == mandate_id, party))
    if found is None or principal.tenant_id is None:
        raise NotFound(f"Mandate {mandate_id} was not found.")
    return found


async def mandate_limits(
    session: AsyncSession, mandate_id: uuid.UUID
) -> MandateNegotiationLimits | None:
    return await session.scalar(
        select(MandateNegotiationLimits).where(MandateNegotiationLimits.mandate_id == mandate_id)
    )


def _limit_values(row: MandateNegotiationLimits | None) -> dict[str, Any]:
    return {name: getattr(row, name) if row else None for name in LIMIT_FIELDS}


async def save_mandate_limits(
    session: AsyncSession, mandate: Mandate, data: schemas.LimitsIn, actor: Actor
) -> MandateNegotiationLimits:
    """Replace the agency's limits under ``mandate``; a field looser than the retailer's
    policy is refused, naming it."""
    values = msgspec.structs.asdict(data)
    policy = await current_policy(session, mandate.tenant_id, create=True)
    errors = check_mandate_limits(values, limits_of(policy))
    if errors:
        raise ValidationFailed("The agency's limits are not valid.", errors=errors)
    row = await mandate_limits(session, mandate.id)
    if row is None:
        row = MandateNegotiationLimits(tenant_id=mandate.tenant_id, mandate_id=mandate.id)
        session.add(row)
    for name, value in values.items():
        setattr(row, name, value)
    row.updated_by = _by(actor)
    await session.flush()
    await session.refresh(row)
    await record(
        session,
        "mandate.negotiation_limits_set",
        tenant_id=mandate.tenant_id,
        actor_type=actor.type,
        actor_id=actor.id,
        subject_type="mandate",
        subject_id=str(mandate.id),
        data=msgspec.to_builtins(values),
    )
    return row


async def limits_out(
    session: AsyncSession, mandate: Mandate, row: MandateNegotiationLimits | None
) -> schemas.LimitsOut:
    policy = await current_policy(session, mandate.tenant_id)
    values = _limit_values(row)
    return schemas.LimitsOut(
        mandate_id=mandate.id,
        **values,
        effective=effective(limits_of(policy), values).as_json(),
        policy_version=policy.version,
        updated_at=row.updated_at if row else None,
    )


# --- offers ----------------------------------------------------------------------------------


def covering_grant(principal: Principal, customer: Customer) -> Grant | None:
    """The mandate an agency negotiates ``customer`` under (the first by id that covers it)."""
    covering = [
        g
        for g in principal.grants
        if g.retailer_id == customer.tenant_id
        and MandateAction.NEGOTIATE in g.actions
        and (g.tags is None or set(g.tags) & set(customer.tags or ()))
    ]
    return min(covering, key=lambda g: str(g.mandate_id), default=None)


async def _debts(
    session: AsyncSession,
    customer: Customer,
    chosen: list[uuid.UUID] | None,
    today: date,
) -> list[offers.Debt]:
    rows = list(
        await session.scalars(
            select(Installment)
            .where(Installment.customer_id == customer.id, Installment.status.in_(NEGOTIABLE))
            .order_by(Installment.due_date, Installment.id)
        )
    )
    versions = await rules.versions(session, customer.tenant_id)
    overdue: dict[uuid.UUID, offers.Debt] = {}
    for inst in rows:
        b = await balance_of(session, inst, customer, today, versions=versions)
        if b.days_overdue > 0 and b.total > 0:
            overdue[inst.id] = offers.Debt(
                str(inst.id), b.principal, b.correction, b.fine, b.interest
            )
    if chosen is None:
        if not overdue:
            raise ValidationFailed(
                "Nothing to negotiate.",
                errors=[FieldError("installment_ids", "the customer has no overdue installment")],
            )
        return list(overdue.values())
    unknown = [str(i) for i in dict.fromkeys(chosen) if i not in overdue]
    if unknown:
        raise ValidationFailed(
            "Only the customer's overdue installments can be negotiated.",
            errors=[
                FieldError(
                    "installment_ids",
                    f"not an overdue installment of this customer: {', '.join(unknown)}",
                )
            ],
        )
    wanted = set(chosen)
    return [d for i, d in overdue.items() if i in wanted]


class OffersStopped(Conflict):
    code = "offers_stopped"
    title = "No more offers for this customer"


async def offers_stopped(session: AsyncSession, customer: Customer, max_broken: int) -> bool:
    """Has the customer broken as many agreements as the policy lets one break?"""
    broken = await session.scalar(
        select(func.count())
        .select_from(Agreement)
        .where(
            Agreement.tenant_id == customer.tenant_id,
            Agreement.customer_id == customer.id,
            Agreement.status == AgreementStatus.BROKEN,
        )
    )
    return (broken or 0) >= max_broken


async def make_offer(
    session: AsyncSession,
    principal: Principal,
    customer_ref: str,
    *,
    installment_ids: list[uuid.UUID] | None,
    terms: offers.Terms | None,
    actor: Actor,
    now: datetime | None = None,
) -> Offer:
    """Compute and store the menu (``terms`` None) or the operator's option for the customer's
    overdue installments, under the retailer's policy and, for an agency, its mandate, as of
    ``now`` (the clock's, unless a sender working at its own instant says)."""
    customer = await find_customer(session, principal, customer_ref, action=MandateAction.NEGOTIATE)
    own = (
        customer.tenant_id == principal.tenant_id and principal.tenant_kind is not TenantKind.AGENCY
    )
    grant = None if own else covering_grant(principal, customer)
    if not own and grant is None:
        raise NotFound("The customer was not found.")
    policy = await current_policy(session, customer.tenant_id, create=own)
    if await offers_stopped(session, customer, policy.max_broken_agreements):
        raise OffersStopped(
            f"the customer broke {policy.max_broken_agreements} agreement(s) or more: the "
            "policy makes no more offers"
        )
    mandate_row = await mandate_limits(session, grant.mandate_id) if grant else None
    in_force = effective(limits_of(policy), _limit_values(mandate_row) if grant else None)
    now = now or clock.now()
    today = local_date(now, customer)
    debts = await _debts(session, customer, installment_ids, today)
    if terms is None:
        options = offers.menu(debts, in_force, today)
    else:
        options = [offers.check_terms(debts, in_force, terms, today)]
    row = Offer(
        id=uuid.uuid4(),
        tenant_id=customer.tenant_id,
        customer_id=customer.id,
        kind="menu" if terms is None else "custom",
        policy_version=policy.version,
        mandate_id=grant.mandate_id if grant else None,
        installment_ids=[uuid.UUID(d.installment_id) for d in debts],
        as_of=today,
        limits=in_force.as_json(),
        basis=[d.as_json() for d in debts],
        options=[o.as_json() for o in options],
        created_by=_by(actor),
        created_at=now,
        expires_at=now + timedelta(hours=in_force.offer_validity_hours),
    )
    session.add(row)
    await session.flush()
    await record(
        session,
        "offer.created",
        # in the actor's own trail (an agency cannot write the retailer's), naming the retailer
        tenant_id=principal.tenant_id,
        actor_type=actor.type,
        actor_id=actor.id,
        subject_type="offer",
        subject_id=str(row.id),
        data={
            "tenant_id": str(customer.tenant_id),
            "customer_id": str(customer.id),
            "kind": row.kind,
            "policy_version": row.policy_version,
            "mandate_id": str(row.mandate_id) if row.mandate_id else None,
            "options": [o.id for o in options],
            **({"terms": _terms_json(terms)} if terms else {}),
        },
    )
    return row


def _terms_json(terms: offers.Terms) -> dict[str, Any]:
    return {k: str(v) if v is not None else None for k, v in asdict(terms).items()}


async def get_offer(session: AsyncSession, principal: Principal, offer_id: uuid.UUID) -> Offer:
    """A retailer sees its offers; an agency those made under its own mandates."""
    stmt = select(Offer).where(Offer.id == offer_id)
    if principal.tenant_kind is TenantKind.AGENCY:
        mine = [g.mandate_id for g in principal.grants]
        stmt = stmt.where(Offer.mandate_id.in_(mine))
    else:
        stmt = stmt.where(Offer.tenant_id == principal.tenant_id)
    row = await session.scalar(stmt)
    if row is None or principal.tenant_id is None:
        raise NotFound(f"Offer {offer_id} was not found.")
    return row


def offer_out(row: Offer, now: datetime | None = None) -> schemas.OfferOut:
    return schemas.OfferOut(
        id=row.id,
        customer_id=row.customer_id,
        kind=row.kind,
        policy_version=row.policy_version,
        mandate_id=row.mandate_id,
        installment_ids=list(row.installment_ids),
        as_of=row.as_of,
        limits=row.limits,
        basis=row.basis,
        options=row.options,
        created_at=row.created_at,
        expires_at=row.expires_at,
        expired=(now or clock.now()) >= row.expires_at,
    )
