"""The debtor's dossier: everything Quita knows and did about one customer, in one document.

What a retailer shows Procon or a court, and what a data subject receives on an access request
(LGPD art. 18 II, art. 19): who the customer is and how to reach them; each installment with
its payments and today's balance; every contact attempt with its template, the exact text the
debtor read (checked against the hash recorded at send time), the amounts and Pix code asked,
the governance decisions and every status the provider reported; every message either way;
operators' notes; holds; data requests; and the audit trail about them — ordered in one
timeline.

The export's ``export_sha256`` is the SHA-256 of its canonical JSON (sorted keys, without the
digest itself), so a copy handed over can be checked later; ``verification`` carries the digests
of the sealed audit batches its audit events belong to (``quita audit verify`` proves those).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import String, and_, cast, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.domains.audit.verify import covering_seals
from shared.domains.money import rules
from shared.domains.money.balance import balance_of, local_date
from shared.domains.portfolio.status import COLLECTABLE
from shared.models import (
    Agreement,
    AgreementInstallment,
    AuditEvent,
    CollectionHold,
    ContactAttempt,
    ContactAttemptItem,
    Conversation,
    ConversationMessage,
    ConversationNote,
    Customer,
    CustomerPhone,
    DataRequest,
    Installment,
    Payment,
    Tenant,
    WebhookEvent,
)

FORMAT = "quita.dossier/1"
# every status a provider may report for one message, as the journal keys them
_WHATSAPP_STATUSES = ("sent", "delivered", "read", "played", "failed")
_SMS_STATUSES = (
    "accepted",
    "queued",
    "sending",
    "sent",
    "delivered",
    "undelivered",
    "failed",
    "read",
    "canceled",
)


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal | uuid.UUID):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def canonical(document: dict[str, Any]) -> bytes:
    """The bytes the export digest is computed over: sorted keys, no spaces, UTF-8."""
    body = {k: v for k, v in document.items() if k != "export_sha256"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def digest(document: dict[str, Any]) -> str:
    return hashlib.sha256(canonical(document)).hexdigest()


async def _customer_part(session: AsyncSession, customer: Customer) -> dict[str, Any]:
    phones = await session.scalars(
        select(CustomerPhone)
        .where(CustomerPhone.customer_id == customer.id)
        .order_by(CustomerPhone.position, CustomerPhone.created_at)
    )
    return {
        "id": customer.id,
        "external_id": customer.external_id,
        "name": customer.name,
        "document": customer.document,
        "email": customer.email,
        "state": customer.state,
        "city": customer.city,
        "tags": list(customer.tags or []),
        "opted_out": list(customer.opted_out or []),
        "do_not_contact": customer.do_not_contact,
        "do_not_contact_reason": customer.do_not_contact_reason,
        "created_at": customer.created_at,
        "phones": [
            {
                "number": p.number,
                "position": p.position,
                "active": p.active,
                "status": p.status,
                "status_changed_at": p.status_changed_at,
                "whatsapp_id": p.whatsapp_id,
            }
            for p in phones
        ],
    }


async def _installments(
    session: AsyncSession, customer: Customer, now: datetime
) -> list[dict[str, Any]]:
    rows = list(
        await session.scalars(
            select(Installment)
            .where(Installment.customer_id == customer.id)
            .order_by(Installment.due_date, Installment.id)
        )
    )
    payments: dict[uuid.UUID, list[Payment]] = {}
    if rows:
        for payment in await session.scalars(
            select(Payment)
            .where(Payment.installment_id.in_([i.id for i in rows]))
            .order_by(Payment.paid_at, Payment.id)
        ):
            payments.setdefault(payment.installment_id, []).append(payment)
    versions = await rules.versions(session, customer.tenant_id) if rows else []
    today = local_date(now, customer)
    out = []
    for i in rows:
        balance = None
        if i.status in COLLECTABLE and versions:
            b = await balance_of(session, i, customer, today, versions=versions)
            balance = {
                "as_of": today,
                "principal": b.principal,
                "correction": b.correction,
                "fine": b.fine,
                "interest": b.interest,
                "discount": b.discount,
                "paid": b.paid,
                "total": b.total,
                "days_overdue": b.days_overdue,
                "fee_rule_version": b.fee_rule_version,
            }
        out.append(
            {
                "id": i.id,
                "external_id": i.external_id,
                "number": i.number,
                "count": i.count,
                "due_date": i.due_date,
                "principal": i.principal,
                "amount_paid": i.amount_paid,
                "status": i.status,
                "created_at": i.created_at,
                "balance_today": balance,
                "payments": [
                    {
                        "id": p.id,
                        "external_id": p.external_id,
                        "amount": p.amount,
                        "applied": p.applied,
                        "overpaid": p.overpaid,
                        "balance_before": p.balance_before,
                        "paid_at": p.paid_at,
                        "method": p.method,
                        "source": p.source,
                        "txid": p.txid,
                    }
                    for p in payments.get(i.id, [])
                ],
            }
        )
    return out


def _status_keys(attempt: ContactAttempt) -> list[str]:
    """The journal keys under which the provider's statuses of ``attempt`` were received."""
    wamid = attempt.provider_message_id
    if not wamid:
        return []
    if attempt.channel == "whatsapp":
        keys = [f"status:{wamid}:{s}" for s in _WHATSAPP_STATUSES]
        if attempt.error_code is not None:
            keys.append(f"status:{wamid}:failed:{attempt.error_code}")
        return keys
    if attempt.channel == "sms":
        return [f"sms:{wamid}:{s}" for s in _SMS_STATUSES]
    return []


async def _provider_statuses(
    session: AsyncSession, attempts: Sequence[ContactAttempt]
) -> dict[str, list[dict[str, Any]]]:
    """Every status the providers reported, by the key the journal holds them under."""
    keys = [k for a in attempts for k in _status_keys(a)]
    if not keys:
        return {}
    found: dict[str, list[dict[str, Any]]] = {}
    for event in await session.scalars(
        select(WebhookEvent)
        .where(WebhookEvent.event_key.in_(keys))
        .order_by(WebhookEvent.occurred_at, WebhookEvent.id)
    ):
        message_id = event.event_key.split(":")[1]
        payload = event.payload
        status = payload.get("status") or payload.get("MessageStatus") or payload.get("SmsStatus")
        errors = payload.get("errors")
        error = errors[0] if isinstance(errors, list) and errors else None
        found.setdefault(message_id, []).append(
            {
                "status": status,
                "at": event.occurred_at,
                "received_at": event.received_at,
                "error": _error_text(error, payload.get("ErrorCode")),
                "pricing": payload.get("pricing"),
            }
        )
    return found


def _error_text(error: Any, sms_code: Any) -> str | None:
    """A provider's error as one line: ``131026 — Message undeliverable``."""
    if isinstance(error, dict) and error.get("code") is not None:
        title = error.get("title")
        return f"{error['code']} — {title}" if title else str(error["code"])
    return str(sms_code) if sms_code not in (None, "") else None


def _text_verified(attempt: ContactAttempt) -> bool | None:
    if attempt.rendered_text is None or attempt.rendered_sha256 is None:
        return None
    return hashlib.sha256(attempt.rendered_text.encode()).hexdigest() == attempt.rendered_sha256


async def _attempts(session: AsyncSession, customer: Customer) -> list[dict[str, Any]]:
    attempts = list(
        await session.scalars(
            select(ContactAttempt)
            .where(
                ContactAttempt.tenant_id == customer.tenant_id,
                ContactAttempt.customer_id == customer.id,
            )
            .order_by(ContactAttempt.planned_for, ContactAttempt.id)
        )
    )
    items: dict[uuid.UUID, list[str]] = {}
    if attempts:
        rows = await session.execute(
            select(ContactAttemptItem.attempt_id, Installment.external_id)
            .join(Installment, Installment.id == ContactAttemptItem.installment_id)
            .where(ContactAttemptItem.attempt_id.in_([a.id for a in attempts]))
            .order_by(Installment.due_date)
        )
        for attempt_id, external_id in rows.tuples():
            items.setdefault(attempt_id, []).append(external_id)
        # an agreement's reminders are about its own installments: "agreement <id> #<n>"
        # (number 0 is the down payment)
        of_agreements = await session.execute(
            select(
                ContactAttemptItem.attempt_id,
                AgreementInstallment.agreement_id,
                AgreementInstallment.number,
            )
            .join(
                AgreementInstallment,
                AgreementInstallment.id == ContactAttemptItem.agreement_installment_id,
            )
            .where(ContactAttemptItem.attempt_id.in_([a.id for a in attempts]))
            .order_by(AgreementInstallment.due_date, AgreementInstallment.number)
        )
        for attempt_id, agreement_id, number in of_agreements.tuples():
            items.setdefault(attempt_id, []).append(f"agreement {agreement_id} #{number}")
    statuses = await _provider_statuses(session, attempts)
    return [
        {
            "id": a.id,
            "kind": a.kind,
            "channel": a.channel,
            "recipient": a.recipient,
            "installments": items.get(a.id, []),
            "cadence_id": a.cadence_id,
            "step_id": a.step_id,
            "offset_days": a.offset_days,
            "campaign_id": a.campaign_id,
            "template_id": a.template_id,
            "template_name": a.template_name,
            "state": a.state,
            "reason": a.reason,
            "decisions": list(a.decisions or []),
            "planned_for": a.planned_for,
            "sending_at": a.sending_at,
            "sent_at": a.sent_at,
            "delivered_at": a.delivered_at,
            "read_at": a.read_at,
            "failed_at": a.failed_at,
            "fallback_of": a.fallback_of,
            "amounts": a.amounts,
            "rendered_text": a.rendered_text,
            "rendered_sha256": a.rendered_sha256,
            "text_matches_hash": _text_verified(a),
            "provider_message_id": a.provider_message_id,
            "error_class": a.error_class,
            "error_code": a.error_code,
            "pricing": a.pricing,
            "provider_statuses": statuses.get(a.provider_message_id or "", []),
        }
        for a in attempts
    ]


async def _conversation(
    session: AsyncSession, customer: Customer
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    conversations = [
        c.id
        for c in await session.scalars(
            select(Conversation).where(
                Conversation.tenant_id == customer.tenant_id,
                Conversation.customer_id == customer.id,
            )
        )
    ]
    if not conversations:
        return [], []
    messages = await session.scalars(
        select(ConversationMessage)
        .where(ConversationMessage.conversation_id.in_(conversations))
        .order_by(ConversationMessage.occurred_at, ConversationMessage.created_at)
    )
    notes = await session.scalars(
        select(ConversationNote)
        .where(ConversationNote.conversation_id.in_(conversations))
        .order_by(ConversationNote.created_at)
    )
    return (
        [
            {
                "id": m.id,
                "direction": m.direction,
                "kind": m.kind,
                "text": m.text,
                "payload": m.payload,
                "media_id": m.media_id,
                "media_mime": m.media_mime,
                "intent": m.intent,
                "status": m.status,
                "error_code": m.error_code,
                "in_reply_to_attempt": m.attempt_id,
                "sent_by": m.sent_by,
                "provider_message_id": m.provider_message_id,
                "occurred_at": m.occurred_at,
            }
            for m in messages
        ],
        [
            {"id": n.id, "author_id": n.author_id, "text": n.text, "created_at": n.created_at}
            for n in notes
        ],
    )


async def _holds(session: AsyncSession, customer: Customer) -> list[dict[str, Any]]:
    rows = await session.scalars(
        select(CollectionHold)
        .where(
            CollectionHold.tenant_id == customer.tenant_id,
            CollectionHold.customer_id == customer.id,
        )
        .order_by(CollectionHold.created_at)
    )
    return [
        {
            "id": h.id,
            "kind": h.kind,
            "installment_id": h.installment_id,
            "reason": h.reason,
            "until": h.until,
            "released_at": h.released_at,
            "created_by": h.created_by,
            "created_at": h.created_at,
        }
        for h in rows
    ]


async def _agreements(session: AsyncSession, customer: Customer) -> list[dict[str, Any]]:
    """Every agreement made with the customer, its terms and how it stands or ended."""
    agreements = list(
        await session.scalars(
            select(Agreement)
            .where(Agreement.tenant_id == customer.tenant_id, Agreement.customer_id == customer.id)
            .order_by(Agreement.created_at)
        )
    )
    plans: dict[uuid.UUID, list[dict[str, Any]]] = {}
    if agreements:
        for row in await session.scalars(
            select(AgreementInstallment)
            .where(AgreementInstallment.agreement_id.in_([a.id for a in agreements]))
            .order_by(AgreementInstallment.number)
        ):
            plans.setdefault(row.agreement_id, []).append(
                {
                    "number": row.number,
                    "due_date": row.due_date,
                    "amount": row.amount,
                    "amount_paid": row.amount_paid,
                    "status": row.status,
                }
            )
    return [
        {
            "id": a.id,
            "offer_id": a.offer_id,
            "option_id": a.option_id,
            "mandate_id": a.mandate_id,
            "policy_version": a.policy_version,
            "status": a.status,
            "original_total": a.original_total,
            "negotiated_total": a.negotiated_total,
            "interest": a.interest,
            "down_payment_amount": a.down_payment_amount,
            "created_by": a.created_by,
            "created_at": a.created_at,
            "ended_at": a.voided_at or a.broken_at or a.completed_at or a.cancelled_at,
            "end_reason": a.end_reason,
            "installments": plans.get(a.id, []),
        }
        for a in agreements
    ]


async def _requests(session: AsyncSession, customer: Customer) -> list[dict[str, Any]]:
    rows = await session.scalars(
        select(DataRequest)
        .where(DataRequest.tenant_id == customer.tenant_id, DataRequest.customer_id == customer.id)
        .order_by(DataRequest.received_at)
    )
    return [
        {
            "id": r.id,
            "kind": r.kind,
            "status": r.status,
            "received_via": r.received_via,
            "received_at": r.received_at,
            "due_at": r.due_at,
            "fulfilled_at": r.fulfilled_at,
            "export_sha256": r.export_sha256,
        }
        for r in rows
    ]


async def _audit(session: AsyncSession, customer: Customer) -> list[AuditEvent]:
    """The audit trail about the customer: events whose subject it is, and events about
    something of theirs that name it (``data.customer_id``)."""
    me = str(customer.id)
    return list(
        await session.scalars(
            select(AuditEvent)
            .where(
                AuditEvent.tenant_id == customer.tenant_id,
                or_(
                    and_(AuditEvent.subject_type == "customer", AuditEvent.subject_id == me),
                    cast(AuditEvent.data["customer_id"].astext, String) == me,
                ),
            )
            .order_by(AuditEvent.created_at, AuditEvent.id)
        )
    )


def _audit_out(events: Iterable[AuditEvent]) -> list[dict[str, Any]]:
    return [
        {
            "id": e.id,
            "at": e.created_at,
            "actor_type": e.actor_type,
            "actor_id": e.actor_id,
            "action": e.action,
            "subject_type": e.subject_type,
            "subject_id": e.subject_id,
            "data": e.data,
            "request_id": e.request_id,
        }
        for e in events
    ]


def _timeline(document: dict[str, Any]) -> list[dict[str, Any]]:
    """Every dated thing of the dossier in time order, pointing at its section."""
    entries: list[tuple[str, str, str, str]] = []  # (at, kind, ref, summary)

    def add(at: Any, kind: str, ref: Any, summary: str) -> None:
        if at is not None:
            entries.append((str(at), kind, str(ref), summary))

    for i in document["installments"]:
        add(i["created_at"], "installment", i["id"], f"installment {i['external_id']} recorded")
        for p in i["payments"]:
            add(p["paid_at"], "payment", p["id"], f"payment {p['amount']} on {i['external_id']}")
    for a in document["contact_attempts"]:
        when = a["sent_at"] or a["failed_at"] or a["planned_for"]
        add(when, "contact_attempt", a["id"], f"{a['channel']} {a['state']}")
    for m in document["messages"]:
        add(m["occurred_at"], "message", m["id"], f"message {m['direction']} ({m['kind']})")
    for n in document["notes"]:
        add(n["created_at"], "note", n["id"], "operator note")
    for h in document["holds"]:
        add(h["created_at"], "hold", h["id"], f"hold {h['kind']}")
    for g in document["agreements"]:
        add(g["created_at"], "agreement", g["id"], f"agreement made ({g['option_id']})")
        add(g["ended_at"], "agreement", g["id"], f"agreement {g['status']}")
    for r in document["data_requests"]:
        add(r["received_at"], "data_request", r["id"], f"data request ({r['kind']})")
    for e in document["audit_events"]:
        add(e["at"], "audit_event", e["id"], e["action"])
    entries.sort(key=lambda e: (e[0], e[1], e[2]))
    return [{"at": at, "type": kind, "ref": ref, "summary": s} for at, kind, ref, s in entries]


async def sealed_batches(
    session: AsyncSession, tenant_id: uuid.UUID, event_ids: Sequence[int]
) -> dict[str, Any]:
    """The sealed audit batches holding ``event_ids``: their sequence numbers and hashes in the
    retailer's chain, one digest naming them all, and the events not sealed yet (sealing runs
    every minute)."""
    coverage = await covering_seals(session, tenant_id, event_ids)
    return {
        "chain": "tenant",
        "digest": coverage.digest,
        "seals": [{"seq": seq, "seal_hash": seal_hash} for _, seq, seal_hash in coverage.seals],
        "unsealed_event_ids": coverage.unsealed,
    }


async def build(
    session: AsyncSession,
    customer: Customer,
    now: datetime,
    *,
    seals: Any = None,
) -> dict[str, Any]:
    """The dossier of ``customer`` as of ``now`` (JSON values only), with its digest.
    ``seals(session, tenant_id, event_ids)`` returns the sealed batches covering the audit
    events (injected so this module does not depend on how sealing works)."""
    tenant = await session.get(Tenant, customer.tenant_id)
    messages, notes = await _conversation(session, customer)
    events = await _audit(session, customer)
    document: dict[str, Any] = {
        "format": FORMAT,
        "generated_at": now,
        "retailer": {
            "id": customer.tenant_id,
            "name": tenant.name if tenant else None,
            "legal_name": tenant.legal_name if tenant else None,
            "document": tenant.document if tenant else None,
            "time_zone": tenant.time_zone if tenant else "America/Sao_Paulo",
        },
        "customer": await _customer_part(session, customer),
        "installments": await _installments(session, customer, now),
        "contact_attempts": await _attempts(session, customer),
        "messages": messages,
        "notes": notes,
        "holds": await _holds(session, customer),
        "agreements": await _agreements(session, customer),
        "data_requests": await _requests(session, customer),
        "audit_events": _audit_out(events),
    }
    document["verification"] = (
        await seals(session, customer.tenant_id, [e.id for e in events]) if seals else None
    )
    document = _jsonable(document)
    document["timeline"] = _timeline(document)
    document["export_sha256"] = digest(document)
    return document
