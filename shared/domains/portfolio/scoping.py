"""Which customers and installments a principal may see or change.

A retailer sees and writes its own portfolio.  An agency reads the portfolios of the retailers
that gave it a mandate — all their customers, or those carrying one of the mandate's tags — and
writes none.  Postgres row-level security holds the tenant boundary underneath; the tag
restriction lives here.
"""

from __future__ import annotations

import uuid

from sqlalchemy import ColumnElement, and_, false, or_, true

from shared.errors import Forbidden
from shared.models import Customer, MandateAction, TenantKind
from shared.tenancy import Principal


def visible_customers(
    principal: Principal, action: MandateAction = MandateAction.READ
) -> ColumnElement[bool]:
    """A condition on ``Customer`` selecting what ``principal`` may act on."""
    terms: list[ColumnElement[bool]] = []
    if principal.tenant_id is not None:
        terms.append(Customer.tenant_id == principal.tenant_id)
    for grant in principal.grants:
        if action not in grant.actions:
            continue
        tag_ok: ColumnElement[bool] = (
            true() if grant.tags is None else Customer.tags.overlap(list(grant.tags))
        )
        terms.append(and_(Customer.tenant_id == grant.retailer_id, tag_ok))
    return or_(*terms) if terms else false()


def writer_tenant(principal: Principal) -> uuid.UUID:
    """The tenant whose portfolio ``principal`` writes: its own, if it is a retailer."""
    if principal.tenant_id is None or principal.tenant_kind is TenantKind.AGENCY:
        raise Forbidden("Only a retailer's own users and clients change its portfolio.")
    return principal.tenant_id


def as_uuid(ref: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(ref)
    except ValueError:
        return None
