"""What a reminder says, computed at send time: the balances as of the debtor's today (interest
accrues while a message waits for its window), itemized, summed over every installment the
message covers, with the Pix code for the total and the creditor's identification.  A reminder
of an agreement installment asks for what is still due on it, with its own Pix.

Every value is formatted for a debtor in Brazil (``R$ 1.234,56``, ``dd/mm/aaaa``); the raw
figures go into the attempt's ``amounts`` as the evidence of what was asked.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from shared.brazil.documents import format_document
from shared.brazil.numbers import format_brl, format_date_br
from shared.domains.money import rules
from shared.domains.money.balance import balance_of
from shared.domains.money.fees import Balance
from shared.domains.money.pixcodes import copia_e_cola, txid_for
from shared.models import (
    AgreementInstallment,
    Customer,
    FeeRuleVersion,
    Installment,
    PixSettings,
    Tenant,
)

ZERO = Decimal("0")
NO_FEE = Decimal("0.00")  # what an agreement's reminder adds to its fixed amounts
_PARTS = ("principal", "correction", "fine", "interest", "discount", "total")


@dataclass(frozen=True, slots=True)
class Content:
    values: dict[str, str]  # the template variables, formatted
    amounts: dict[str, Any]  # the evidence: per installment and totals, as strings
    total: Decimal
    discount: Decimal
    pix: str | None


def label(inst: Installment) -> str:
    if inst.number is None:
        return inst.external_id
    return f"{inst.number} de {inst.count}" if inst.count else str(inst.number)


async def compose(
    session: AsyncSession,
    tenant: Tenant,
    customer: Customer,
    installments: list[Installment],
    today: date,
    *,
    txid_of: uuid.UUID,
    versions: Sequence[FeeRuleVersion],
    pix_settings: PixSettings | None,
    link: str,
) -> Content:
    """The values of a message about ``installments`` (oldest first) on the debtor's ``today``;
    ``txid_of`` names the Pix charge (the installment, or the attempt when several).  The
    tenant's fee-rule ``versions`` and ``pix_settings`` come from the caller (a send batch
    reads them once); ``link`` is the message's payment page (``paypage.links``), unless the
    retailer gave the installment a payment URL of its own."""
    installments = sorted(installments, key=lambda i: (i.due_date, i.external_id))
    balances: list[tuple[Installment, Balance]] = [
        (inst, await balance_of(session, inst, customer, today, versions=versions))
        for inst in installments
    ]
    sums = {part: sum((getattr(b, part) for _, b in balances), ZERO) for part in _PARTS}
    lead, lead_balance = balances[-1]
    discount_until = None
    if sums["discount"] > 0:
        version = rules.in_force(versions, lead.due_date)
        discount_until = lead.due_date - timedelta(days=version.discount_days_before_due)
    pix = _pix(pix_settings, sums["total"], txid_for(txid_of))
    values = _parties(tenant, customer) | {
        "parcela": label(lead),
        "contrato": lead.contract or "",
        "vencimento": format_date_br(lead.due_date),
        "dias_atraso": str(max(lead_balance.days_overdue, 0)),
        "valor_original": format_brl(sums["principal"]),
        "multa": format_brl(sums["fine"]),
        "juros": format_brl(sums["interest"]),
        "correcao": format_brl(sums["correction"]),
        "desconto": format_brl(sums["discount"]),
        "data_desconto": format_date_br(discount_until) if discount_until else "",
        "valor_total": format_brl(sums["total"]),
        "itens": "; ".join(f"parcela {label(i)} ({format_brl(b.total)})" for i, b in balances),
        "pix_copia_e_cola": pix or "",
        "link_pagamento": lead.payment_url or link,
    }
    amounts = {
        "as_of": today.isoformat(),
        "installments": [
            {"id": str(i.id), "label": label(i), "due_date": i.due_date.isoformat()}
            | {part: str(getattr(b, part)) for part in _PARTS}
            for i, b in balances
        ],
        "totals": {part: str(value) for part, value in sums.items()},
        "pix_txid": txid_for(txid_of) if pix else None,
    }
    return Content(values, amounts, sums["total"], sums["discount"], pix)


@dataclass(frozen=True, slots=True)
class AgreementItem:
    """An agreement installment a reminder asks for, and how many installments its agreement
    has after the down payment (for "parcela 2 de 3")."""

    installment: AgreementInstallment
    count: int

    @property
    def label(self) -> str:
        number = self.installment.number
        return "de entrada" if number == 0 else f"{number} de {self.count}"

    @property
    def due(self) -> Decimal:
        return self.installment.amount - self.installment.amount_paid


def compose_agreement(
    tenant: Tenant,
    customer: Customer,
    items: Sequence[AgreementItem],
    today: date,
    *,
    pix_settings: PixSettings | None,
    link: str,
) -> Content:
    """The values of a reminder about agreement installments on the debtor's ``today``: what is
    still due on the first to fall due — the agreement's terms are fixed, so no fees, no
    discount — and its Pix, whose txid names that agreement installment (as the agreement's own
    Pix does).  Any others the message covers are listed in ``itens``."""
    items = sorted(items, key=lambda i: (i.installment.due_date, i.installment.number))
    lead = items[0]
    inst, due = lead.installment, lead.due
    txid = txid_for(inst.id)
    pix = _pix(pix_settings, due, txid)
    none = format_brl(NO_FEE)
    values = _parties(tenant, customer) | {
        "parcela": lead.label,
        "contrato": "",
        "vencimento": format_date_br(inst.due_date),
        "dias_atraso": str(max((today - inst.due_date).days, 0)),
        "valor_original": format_brl(inst.amount),
        "multa": none,
        "juros": none,
        "correcao": none,
        "desconto": none,
        "data_desconto": "",
        "valor_total": format_brl(due),
        "itens": "; ".join(f"parcela {i.label} do acordo ({format_brl(i.due)})" for i in items),
        "pix_copia_e_cola": pix or "",
        "link_pagamento": link,
    }
    amounts = {
        "as_of": today.isoformat(),
        "agreement_installments": [
            {
                "id": str(i.installment.id),
                "agreement_id": str(i.installment.agreement_id),
                "label": i.label,
                "due_date": i.installment.due_date.isoformat(),
                "amount": str(i.installment.amount),
                "amount_paid": str(i.installment.amount_paid),
                "due": str(i.due),
            }
            for i in items
        ],
        "totals": {part: str(NO_FEE) for part in _PARTS}
        | {"principal": str(due), "total": str(due)},
        "pix_txid": txid if pix else None,
    }
    return Content(values, amounts, due, NO_FEE, pix)


def _parties(tenant: Tenant, customer: Customer) -> dict[str, str]:
    """Who writes and to whom: the debtor's names and the creditor's identification."""
    first_name = customer.name.split()[0].title() if customer.name.strip() else ""
    return {
        "primeiro_nome": first_name,
        "nome": customer.name,
        "empresa": tenant.name,
        "razao_social": tenant.legal_name or tenant.name,
        "cnpj_empresa": format_document(tenant.document) if tenant.document else "",
        "endereco_empresa": _address(tenant),
    }


def _pix(settings: PixSettings | None, total: Decimal, txid: str) -> str | None:
    if settings is None or total <= 0:
        return None
    return copia_e_cola(settings, total, txid)


def _address(tenant: Tenant) -> str:
    place = "/".join(p for p in (tenant.city, tenant.state) if p)
    return ", ".join(p for p in (tenant.address, place) if p)
