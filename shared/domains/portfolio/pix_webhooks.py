"""Pix payments posted by PSPs: read the Banco Central's webhook body, journal each Pix, and
apply it to the installment its txid names.

The body is the BCB Pix API's (``POST {url}/pix``)::

    {"pix": [{"endToEndId": "E12345678202612070930abcdeFGHIJ1", "txid": "...",
              "valor": "123.45", "horario": "2026-12-07T09:30:00.000Z", "infoPagador": "...",
              "devolucoes": [...]}]}

Each item becomes one journaled event keyed ``pix:<endToEndId>`` (a redelivery inserts
nothing); the ``inbound`` job records it through :func:`payments.record_payment` with the
endToEndId as the payment's ``external_id``, so a replay answers the payment already recorded
and never counts it twice.  Partial and over-payments are ``record_payment``'s rules.  A txid
naming an agreement's installment pays that instead (``negotiation.agreement_pay``).  A Pix
whose txid names no installment of the retailer is kept, *ignored* with the reason, and listed
by :func:`received` (``GET /v1/pix/received?unmatched=true``) for the retailer to apply by hand.
A txid naming a message about several installments (a reminder, a second copy in the chat) is
split over them, oldest first.
A devolução (refund) inside an item is journaled as its own event and ignored: nothing is
reversed automatically.  The payer's free text and name are not copied out of the raw receipt;
a payer document is kept masked.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import msgspec
import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.brazil import InvalidValue
from shared.brazil.documents import mask_document
from shared.domains.audit.service import Actor
from shared.domains.inbound.journal import EventIn, Outcome, handles
from shared.domains.money.balance import balance_of, local_date
from shared.domains.money.pixcodes import id_for_txid
from shared.domains.negotiation import agreement_pay
from shared.domains.portfolio import payments, schemas
from shared.errors import AppError, FieldError
from shared.models import (
    AgreementInstallment,
    ContactAttempt,
    ContactAttemptItem,
    ConversationMessage,
    Customer,
    Installment,
    InstallmentStatus,
    Payment,
    WebhookEvent,
    WebhookEventState,
)
from shared.models.pix_connection import PixConnection
from shared.pagination import decode_cursor, encode_cursor, invalid_cursor
from shared.tenancy import Principal

log = structlog.get_logger("quita.pix")

PROVIDER = "pix"
RECEIVED = "pix.received"
REFUND = "pix.refund"
MAX_ITEMS = 1000

_E2E = re.compile(r"[A-Za-z0-9]{32}")
_TXID = re.compile(r"[A-Za-z0-9]{1,35}")
_VALOR = re.compile(r"[0-9]{1,10}\.[0-9]{2}")
_REFUND_ID = re.compile(r"[A-Za-z0-9]{1,35}")


class MalformedPix(ValueError):
    """A body that is not the BCB's Pix webhook; ``errors`` name each bad field."""

    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__("; ".join(f"{e.field}: {e.message}" for e in errors))
        self.errors = errors


@dataclass(frozen=True, slots=True)
class PixItem:
    end_to_end_id: str
    txid: str | None
    amount: Decimal
    paid_at: datetime
    raw: dict[str, Any]


# --- reading the body -------------------------------------------------------------------------


def _instant(value: Any) -> datetime | None:
    if not isinstance(value, str) or "T" not in value.upper():
        return None
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        return None
    return at if at.tzinfo is not None else None


def _item(index: int, raw: Any, errors: list[FieldError]) -> PixItem | None:
    where = f"pix[{index}]"
    if not isinstance(raw, dict):
        errors.append(FieldError(where, "must be an object"))
        return None
    before = len(errors)
    e2e, txid, valor = raw.get("endToEndId"), raw.get("txid"), raw.get("valor")
    if not isinstance(e2e, str) or not _E2E.fullmatch(e2e):
        errors.append(FieldError(f"{where}.endToEndId", "must be 32 letters or digits"))
    if txid is not None and (not isinstance(txid, str) or not _TXID.fullmatch(txid)):
        errors.append(FieldError(f"{where}.txid", "must be 1 to 35 letters or digits"))
    if not isinstance(valor, str) or not _VALOR.fullmatch(valor) or Decimal(valor) <= 0:
        errors.append(
            FieldError(f"{where}.valor", 'must be a positive amount as a string, e.g. "123.45"')
        )
    paid_at = _instant(raw.get("horario"))
    if paid_at is None:
        errors.append(FieldError(f"{where}.horario", "must be an RFC 3339 instant with its offset"))
    refunds = raw.get("devolucoes")
    if refunds is not None and (
        not isinstance(refunds, list) or not all(isinstance(r, dict) for r in refunds)
    ):
        errors.append(FieldError(f"{where}.devolucoes", "must be a list of objects"))
    if len(errors) > before:
        return None
    assert isinstance(e2e, str) and isinstance(valor, str) and paid_at is not None
    return PixItem(e2e, txid, Decimal(valor), paid_at, raw)


def parse(body: bytes) -> list[PixItem]:
    """The Pix items of a webhook body, or :class:`MalformedPix` naming every bad field."""
    try:
        payload = json.loads(body)
    except ValueError:
        raise MalformedPix([FieldError("body", "is not JSON")]) from None
    items = payload.get("pix") if isinstance(payload, dict) else None
    if not isinstance(items, list) or not items:
        raise MalformedPix([FieldError("pix", "must be a non-empty list of Pix")])
    if len(items) > MAX_ITEMS:
        raise MalformedPix([FieldError("pix", f"must have at most {MAX_ITEMS} items")])
    errors: list[FieldError] = []
    parsed = [_item(i, raw, errors) for i, raw in enumerate(items)]
    if errors:
        raise MalformedPix(errors)
    return [item for item in parsed if item is not None]


def _payer_document(raw: dict[str, Any]) -> str | None:
    payer = raw.get("pagador")
    if not isinstance(payer, dict):
        return None
    document = payer.get("cpf") or payer.get("cnpj")
    if not isinstance(document, str):
        return None
    try:
        return mask_document(document)
    except InvalidValue:
        return None


def _refund_events(item: PixItem, connection: PixConnection) -> list[EventIn]:
    events = []
    for n, refund in enumerate(item.raw.get("devolucoes") or []):
        ident = refund.get("rtrId") or refund.get("id")
        ref = ident if isinstance(ident, str) and _REFUND_ID.fullmatch(ident) else str(n)
        status = str(refund.get("status") or "")[:40]
        events.append(
            EventIn(
                key=f"pix:devolucao:{item.end_to_end_id}:{ref}:{status}",
                kind=REFUND,
                payload={
                    "endToEndId": item.end_to_end_id,
                    "txid": item.txid,
                    "id": refund.get("id"),
                    "rtrId": refund.get("rtrId"),
                    "valor": refund.get("valor"),
                    "status": status,
                    "connection_id": str(connection.id),
                },
                occurred_at=item.paid_at,
                tenant_id=connection.tenant_id,
            )
        )
    return events


def events_for(connection: PixConnection, items: list[PixItem]) -> list[EventIn]:
    """One ``pix.received`` event per Pix (keyed by its endToEndId) and one ``pix.refund`` per
    devolução state, all in the connection's tenant."""
    events: list[EventIn] = []
    for item in items:
        events.append(
            EventIn(
                key=f"pix:{item.end_to_end_id}",
                kind=RECEIVED,
                payload={
                    "endToEndId": item.end_to_end_id,
                    "txid": item.txid,
                    "valor": str(item.amount),
                    "horario": item.paid_at.isoformat(),
                    "payer_document": _payer_document(item.raw),
                    "connection_id": str(connection.id),
                },
                occurred_at=item.paid_at,
                tenant_id=connection.tenant_id,
            )
        )
        events.extend(_refund_events(item, connection))
    return events


# --- applying a Pix ---------------------------------------------------------------------------


def _psp_principal(tenant_id: uuid.UUID, connection_id: str) -> Principal:
    """The PSP acting for its retailer: writes that retailer's payments and nothing else."""
    return Principal.retailer_process(tenant_id, f"pix:{connection_id}", "pix-webhook")


async def _installment_of(
    session: AsyncSession, tenant_id: uuid.UUID, txid: str | None
) -> Installment | str:
    """The retailer's installment the txid names, else why there is none."""
    if not txid:
        return "the Pix has no txid (a transfer to the key, not one of Quita's codes)"
    ident = id_for_txid(txid)
    if ident is None:
        return f"txid {txid} is not one of Quita's codes"
    inst = await session.scalar(
        select(Installment).where(Installment.id == ident, Installment.tenant_id == tenant_id)
    )
    return inst if inst is not None else f"txid {txid} names no installment of this retailer"


@handles(RECEIVED)
async def on_pix(session: AsyncSession, event: WebhookEvent) -> Outcome:
    """Record the Pix as a payment of the installment its txid names (once, by endToEndId)."""
    payload, tenant_id = event.payload, event.tenant_id
    if tenant_id is None:
        return Outcome.ignored("no retailer: the Pix came through no connection")
    found = await _installment_of(session, tenant_id, payload.get("txid"))
    connection_id = str(payload.get("connection_id"))
    if isinstance(found, str) and payload.get("txid"):
        of_agreement = await agreement_pay.named_by_txid(session, tenant_id, payload["txid"])
        if of_agreement is not None:
            return await _pay_agreement(session, event, of_agreement, connection_id)
        of_message = await _installments_of_message(session, tenant_id, payload["txid"])
        if of_message:
            return await _pay_message(session, event, of_message, connection_id)
    if isinstance(found, str):
        log.info("pix.unmatched", event_id=event.id, reason=found)
        return Outcome.ignored(found)
    data = schemas.PaymentIn(
        external_id=str(payload["endToEndId"]),
        amount=Decimal(str(payload["valor"])),
        paid_at=datetime.fromisoformat(str(payload["horario"])),
        method="pix",
        installment_id=found.id,
        txid=payload.get("txid"),
    )
    try:
        payment, inst, created = await payments.record_payment(
            session,
            _psp_principal(tenant_id, connection_id),
            data,
            Actor("provider", f"pix:{connection_id}"),
            source="pix_webhook",
        )
    except AppError as exc:  # a cancelled installment, a clashing external id, a future instant
        log.info("pix.not_applied", event_id=event.id, code=exc.code)
        fields = "; ".join(f"{e.field} {e.message}" for e in exc.errors)
        return Outcome.ignored(f"not applied: {exc.detail}" + (f" ({fields})" if fields else ""))
    if not created:
        return Outcome.done(f"payment {payment.id} (already recorded)")
    log.info(
        "pix.applied",
        event_id=event.id,
        payment_id=str(payment.id),
        installment_id=str(inst.id),
        status=str(inst.status),
    )
    return Outcome.done(f"payment {payment.id}: installment {inst.status}")


async def _installments_of_message(
    session: AsyncSession, tenant_id: uuid.UUID, txid: str
) -> list[Installment]:
    """The retailer's installments a message about several of them asked for, oldest first,
    when ``txid`` names that message: a reminder (its Pix carries the attempt's id) or a second
    copy in the chat (it carries the id of the debtor's message it answered, and the reply
    keeps the amounts it quoted)."""
    ident = id_for_txid(txid)
    if ident is None:
        return []
    ids = list(
        await session.scalars(
            select(ContactAttemptItem.installment_id)
            .join(ContactAttempt, ContactAttempt.id == ContactAttemptItem.attempt_id)
            .where(ContactAttempt.id == ident, ContactAttempt.tenant_id == tenant_id)
        )
    )
    if not ids:
        asked = await session.get(ConversationMessage, ident)
        if asked is not None and asked.tenant_id == tenant_id:
            for details in await session.scalars(
                select(ConversationMessage.details).where(
                    ConversationMessage.conversation_id == asked.conversation_id,
                    ConversationMessage.details["amounts"]["pix_txid"].astext == txid,
                )
            ):
                ids = [uuid.UUID(i["id"]) for i in details["amounts"].get("installments", [])]
    if not ids:
        return []
    return list(
        await session.scalars(
            select(Installment)
            .where(Installment.id.in_(ids), Installment.tenant_id == tenant_id)
            .order_by(Installment.due_date, Installment.external_id)
        )
    )


async def _pay_message(
    session: AsyncSession, event: WebhookEvent, owed: list[Installment], connection_id: str
) -> Outcome:
    """The Pix of a message about several installments: split over them oldest first, each
    getting what it owed on the day of the Pix, the last one the rest (an overpayment stays
    on it).  Each part is a payment of its own: the first keeps the endToEndId as external id,
    the others add ``/2``, ``/3`` …; a redelivery finds the first and records nothing."""
    payload = event.payload
    e2e = str(payload["endToEndId"])
    principal = _psp_principal(owed[0].tenant_id, connection_id)
    recorded = await session.scalar(
        select(Payment).where(Payment.tenant_id == owed[0].tenant_id, Payment.external_id == e2e)
    )
    if recorded is not None:
        return Outcome.done(f"payment {recorded.id} (already recorded)")
    paid_at = datetime.fromisoformat(str(payload["horario"]))
    customer = await session.get_one(Customer, owed[0].customer_id)
    paid_on = local_date(paid_at, customer)
    left = Decimal(str(payload["valor"]))
    parts: list[tuple[Installment, Decimal]] = []
    for index, inst in enumerate(owed):
        if index == len(owed) - 1:
            share = left
        elif inst.status in (InstallmentStatus.OPEN, InstallmentStatus.PARTIALLY_PAID):
            share = min(left, (await balance_of(session, inst, customer, paid_on)).total)
        else:
            share = Decimal(0)
        if share > 0:
            parts.append((inst, share))
            left -= share
    notes: list[str] = []
    try:
        async with session.begin_nested():  # the whole Pix or none of it
            for number, (inst, share) in enumerate(parts, start=1):
                data = schemas.PaymentIn(
                    external_id=e2e if number == 1 else f"{e2e}/{number}",
                    amount=share,
                    paid_at=paid_at,
                    method="pix",
                    installment_id=inst.id,
                    txid=payload.get("txid"),
                )
                payment, applied_to, _ = await payments.record_payment(
                    session,
                    principal,
                    data,
                    Actor("provider", f"pix:{connection_id}"),
                    source="pix_webhook",
                )
                notes.append(f"{payment.id}: installment {applied_to.status}")
    except AppError as exc:  # a cancelled installment, a clashing external id …
        log.info("pix.not_applied", event_id=event.id, code=exc.code)
        return Outcome.ignored(f"not applied: {exc.detail}")
    log.info("pix.applied_to_message", event_id=event.id, parts=len(parts))
    return Outcome.done("payments " + "; ".join(notes))


async def _pay_agreement(
    session: AsyncSession, event: WebhookEvent, inst: AgreementInstallment, connection_id: str
) -> Outcome:
    """The txid names an agreement's installment (the down payment's Pix, typically)."""
    payload = event.payload
    try:
        payment, created = await agreement_pay.record_payment(
            session,
            inst,
            external_id=str(payload["endToEndId"]),
            amount=Decimal(str(payload["valor"])),
            paid_at=datetime.fromisoformat(str(payload["horario"])),
            method="pix",
            source="pix_webhook",
            txid=payload.get("txid"),
            actor=Actor("provider", f"pix:{connection_id}"),
        )
    except AppError as exc:  # the agreement ended (void, broken): the retailer applies it
        log.info("pix.not_applied", event_id=event.id, code=exc.code)
        return Outcome.ignored(f"not applied: {exc.detail}")
    log.info("pix.applied_to_agreement", event_id=event.id, payment_id=str(payment.id))
    done = "already recorded" if not created else f"agreement installment {inst.status}"
    return Outcome.done(f"agreement payment {payment.id}: {done}")


@handles(REFUND)
async def on_refund(session: AsyncSession, event: WebhookEvent) -> Outcome:
    """A devolução is kept in the journal only: reversing a payment is the retailer's call."""
    status = event.payload.get("status") or "unknown"
    return Outcome.ignored(f"devolução ({status}) kept in the journal; no payment was reversed")


# --- what the retailer sees -------------------------------------------------------------------


class PixReceivedOut(msgspec.Struct):
    """A Pix a PSP reported: ``applied`` to an installment, ``unmatched`` (with the reason; apply
    it by hand with ``POST /v1/payments``, external_id = end_to_end_id) or ``pending``.
    ``installment_id`` is the installment it paid — the oldest, when a message's Pix was split
    over several (the others' payments are ``<end_to_end_id>/2`` …); none for an agreement's."""

    id: int
    end_to_end_id: str
    txid: str | None
    amount: Decimal
    paid_at: datetime
    state: str
    reason: str | None
    installment_id: uuid.UUID | None
    connection_id: uuid.UUID | None
    received_at: datetime


class PixReceivedPage(msgspec.Struct):
    items: list[PixReceivedOut]
    next_cursor: str | None


_STATES = {
    WebhookEventState.PENDING: "pending",
    WebhookEventState.PROCESSED: "applied",
    WebhookEventState.IGNORED: "unmatched",
}


def _uuid(value: Any) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


def _out(event: WebhookEvent, installment_id: uuid.UUID | None) -> PixReceivedOut:
    payload = event.payload
    state = _STATES.get(WebhookEventState(event.state), str(event.state))
    txid = payload.get("txid")
    return PixReceivedOut(
        id=event.id,
        end_to_end_id=str(payload.get("endToEndId")),
        txid=txid,
        amount=Decimal(str(payload.get("valor"))),
        paid_at=datetime.fromisoformat(str(payload.get("horario"))),
        state=state,
        reason=event.result if state == "unmatched" else None,
        installment_id=installment_id if state == "applied" else None,
        connection_id=_uuid(payload.get("connection_id")),
        received_at=event.received_at,
    )


async def received(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    *,
    unmatched_only: bool = False,
    cursor: str | None = None,
    limit: int = 100,
) -> PixReceivedPage:
    """The retailer's reported Pix, newest first."""
    query = select(WebhookEvent).where(
        WebhookEvent.tenant_id == tenant_id,
        WebhookEvent.provider == PROVIDER,
        WebhookEvent.kind == RECEIVED,
    )
    if unmatched_only:
        query = query.where(WebhookEvent.state == WebhookEventState.IGNORED)
    if cursor is not None:
        (last,) = decode_cursor(cursor, 1)
        if not last.isdigit():
            raise invalid_cursor()
        query = query.where(WebhookEvent.id < int(last))
    rows = list(await session.scalars(query.order_by(WebhookEvent.id.desc()).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    # the installment each applied Pix paid: its payment keeps the endToEndId as external id
    # (the oldest installment's, when a message's Pix was split; none for an agreement's)
    e2es = [str(r.payload.get("endToEndId")) for r in rows if r.state == "processed"]
    found = await session.execute(
        select(Payment.external_id, Payment.installment_id).where(
            Payment.tenant_id == tenant_id, Payment.external_id.in_(e2es)
        )
    )
    paid = {external_id: installment_id for external_id, installment_id in found.all()}
    return PixReceivedPage(
        items=[_out(row, paid.get(str(row.payload.get("endToEndId")))) for row in rows],
        next_cursor=encode_cursor(rows[-1].id) if more and rows else None,
    )
