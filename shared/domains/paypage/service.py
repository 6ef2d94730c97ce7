"""What the payment page shows, read when it is opened: the balances of the message's
installments as of the debtor's today (fees keep accruing after a message leaves, so the page
asks for today's amount, not the message's) with the Pix of the total — the same txid the
message's Pix carried, so either pays the same installments — or an offer's options and,
once one is chosen, the agreement's terms and the Pix of what is due first.

Before showing any of it, the page asks for the first three characters of the debtor's CPF or
CNPJ (LGPD: a payment link must not expose the debtor's data without a check); a debtor with no
document on file gets the page straight away, showing no more than the message did.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.brazil.documents import format_document
from shared.domains.audit.service import Actor
from shared.domains.collections import agreement_reminders
from shared.domains.collections.content import AgreementItem, Content, compose, compose_agreement
from shared.domains.collections.window import place_of
from shared.domains.money import rules
from shared.domains.money.pixcodes import NothingToPay, PixNotConfigured
from shared.domains.negotiation import agreement_pay
from shared.domains.paypage import links
from shared.errors import NotFound
from shared.models import (
    Agreement,
    AgreementInstallment,
    AgreementStatus,
    ContactAttempt,
    ContactAttemptItem,
    Customer,
    Installment,
    Offer,
    PixSettings,
    Tenant,
)
from shared.tenancy import SYSTEM, tenant_scope, use_scope

OPEN = ("open", "partially_paid")
CHECK_LENGTH = 3


@dataclass(frozen=True, slots=True)
class Found:
    """What a link names, and whose it is."""

    link: links.Link
    tenant: Tenant
    customer: Customer
    attempt: ContactAttempt | None = None
    offer: Offer | None = None

    @property
    def check(self) -> str | None:
        """What the debtor types to open the page: the first characters of the document."""
        document = (self.customer.document or "").strip().upper()
        return document[:CHECK_LENGTH] if len(document) >= CHECK_LENGTH else None

    def passes(self, typed: str) -> bool:
        expected = self.check
        given = "".join(ch for ch in typed.upper() if ch.isalnum())
        return expected is None or given == expected

    def today(self, now: datetime) -> date:
        """The debtor's date, placed as the message that carried the link was (without an
        address, by the phone's area code): the page's amounts are the message's day's."""
        recipient = self.attempt.recipient if self.attempt is not None else None
        zone = ZoneInfo(place_of(self.customer.state, self.customer.city, recipient).zones[0])
        return now.astimezone(zone).date()


def debtor(customer: Customer) -> Actor:
    """Who the audit trail names for what the debtor does on the page."""
    return Actor("debtor", str(customer.id))


async def find(session: AsyncSession, link: links.Link) -> Found | None:
    """The message or offer ``link`` names, its retailer and debtor; the session is left in
    that retailer's scope.  ``None`` when it no longer exists."""
    await use_scope(session, SYSTEM)
    row: ContactAttempt | Offer | None
    if link.kind == links.ATTEMPT:
        row = await session.get(ContactAttempt, link.ident)
    else:
        row = await session.get(Offer, link.ident)
    if row is None:
        return None
    await use_scope(session, tenant_scope(row.tenant_id))
    tenant = await session.get_one(Tenant, row.tenant_id)
    customer = await session.get_one(Customer, row.customer_id)
    if isinstance(row, ContactAttempt):
        return Found(link, tenant, customer, attempt=row)
    return Found(link, tenant, customer, offer=row)


# --- a message's bill --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Line:
    label: str
    due_date: date
    principal: Decimal
    charges: Decimal  # fine, interest and correction
    discount: Decimal
    total: Decimal


@dataclass(frozen=True, slots=True)
class Bill:
    """What the page asks for: the lines, the total today and its Pix (``None`` when the
    retailer has no Pix key); nothing owed any more says why (``settled``)."""

    creditor: str
    creditor_document: str
    first_name: str
    as_of: date
    lines: list[Line] = field(default_factory=list)
    total: Decimal = Decimal("0.00")
    pix: str | None = None
    of_agreement: bool = False
    settled: str | None = None  # paid | renegotiated | agreement_void | agreement_broken ...


async def bill(session: AsyncSession, found: Found, now: datetime) -> Bill:
    attempt = found.attempt
    assert attempt is not None
    today = found.today(now)
    tenant, customer = found.tenant, found.customer
    pix = await session.scalar(select(PixSettings).where(PixSettings.tenant_id == tenant.id))
    head = Bill(
        creditor=tenant.legal_name or tenant.name,
        creditor_document=format_document(tenant.document) if tenant.document else "",
        first_name=customer.name.split()[0].title() if customer.name.strip() else "",
        as_of=today,
    )
    if attempt.kind == agreement_reminders.AGREEMENT_KIND:
        owed, gone = await agreement_reminders.still_owed(session, [attempt.id])
        items = owed.get(attempt.id, [])
        if not items:
            return replace(head, of_agreement=True, settled=gone.get(attempt.id, "paid"))
        content = compose_agreement(tenant, customer, items, today, pix_settings=pix, link="")
        return replace(
            head,
            lines=_agreement_lines(items),
            total=content.total,
            pix=content.pix,
            of_agreement=True,
        )
    asked = list(
        await session.scalars(
            select(Installment)
            .join(ContactAttemptItem, ContactAttemptItem.installment_id == Installment.id)
            .where(ContactAttemptItem.attempt_id == attempt.id)
        )
    )
    installments = [i for i in asked if i.status in OPEN]
    if not installments:
        renegotiated = any(i.status == "renegotiated" for i in asked)
        return replace(head, settled="renegotiated" if renegotiated else "paid")
    content = await compose(
        session,
        tenant,
        customer,
        installments,
        today,
        # the message's own txid rule (collections.sending): one installment names itself
        txid_of=installments[0].id if len(installments) == 1 else attempt.id,
        versions=await rules.versions(session, tenant.id),
        pix_settings=pix,
        link="",
    )
    return replace(head, lines=_lines(content), total=content.total, pix=content.pix)


def _lines(content: Content) -> list[Line]:
    def amount(row: dict[str, Any], *parts: str) -> Decimal:
        return sum((Decimal(row[p]) for p in parts), Decimal("0.00"))

    return [
        Line(
            label=f"Parcela {row['label']}",
            due_date=date.fromisoformat(row["due_date"]),
            principal=amount(row, "principal"),
            charges=amount(row, "fine", "interest", "correction"),
            discount=amount(row, "discount"),
            total=amount(row, "total"),
        )
        for row in content.amounts["installments"]
    ]


def _agreement_lines(items: list[AgreementItem]) -> list[Line]:
    zero = Decimal("0.00")
    ordered = sorted(items, key=lambda i: (i.installment.due_date, i.installment.number))
    return [
        Line(
            label=f"Parcela {i.label} do acordo",
            due_date=i.installment.due_date,
            principal=i.due,
            charges=zero,
            discount=zero,
            total=i.due,
        )
        for i in ordered
    ]


# --- an offer ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Chosen:
    """The agreement made from an offer, and the Pix of what it asks for next."""

    agreement: Agreement
    option: dict[str, Any]
    next_due: AgreementInstallment | None
    pix: str | None


async def chosen(session: AsyncSession, offer: Offer) -> Chosen | None:
    """The agreement made from ``offer``, if one was."""
    agreement = await session.scalar(select(Agreement).where(Agreement.offer_id == offer.id))
    if agreement is None:
        return None
    option = next(o for o in offer.options if o.get("id") == agreement.option_id)
    next_due = await session.scalar(
        select(AgreementInstallment)
        .where(
            AgreementInstallment.agreement_id == agreement.id,
            AgreementInstallment.status != "paid",
        )
        .order_by(AgreementInstallment.number)
        .limit(1)
    )
    pix = None
    if next_due is not None and agreement.status == AgreementStatus.ACTIVE:
        try:
            pix = (await agreement_pay.pix_for(session, agreement, next_due.number)).payload
        except (PixNotConfigured, NothingToPay, NotFound):
            pix = None
    return Chosen(agreement, option, next_due, pix)
