"""The planner: which debtors get which message today, decided once per installment and step.

One run per tenant, under a transaction-level advisory lock on the tenant (a second planner
finds it taken and does nothing; a re-run finds nothing left):

1. SQL finds the (installment, step) pairs whose contact day — due date + step offset — has
   come and that no attempt covers yet (``contact_attempt_items`` is unique per installment and
   step, so nothing is planned twice, however often this runs).
2. Per installment only the most advanced step still inside the catch-up horizon is sent; older
   ones are recorded as ``skipped`` (``superseded`` or ``missed``) instead of going out late in
   a burst.
3. Per customer, everything due that day becomes **one** message, with the most advanced step's
   template (the variant picked deterministically per customer; a hold-out share gets nothing).
4. Governance decides, recording the reason whenever it holds a message back: do-not-contact,
   holds ("já paguei", promises, pauses), opted-out channels, wrong or unreachable phones and
   Procon-SP's "Não Me Ligue" list (falling back to the step's other channel when it can),
   frequency caps across every channel, and the contact window in the debtor's own time (a
   message planned outside it waits for the next allowed instant).  Payment status and
   prescription are checked again right before sending, with today's balance.

The installments of active agreements follow the agreement régua (``cadences.kind =
'agreement'``) the same way — steps counted from each agreement installment's due date, once
per agreement installment and step, the same governance — as messages of their own (``kind =
'agreement'``), never merged with the retailer's installments.  They are decided first: the
debtor chose to pay the agreement, so under a cap its reminder is the one that goes.  Steps whose
day is not after the agreement's acceptance are not planned (the acceptance was that day's
contact, with its Pix).
"""

from __future__ import annotations

import json
import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

import structlog
from sqlalchemy import Date, DateTime, Integer, String, bindparam, select, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import UUID as PG_UUID
from sqlalchemy.ext.asyncio import AsyncSession

from shared.domains.collections import agreement_reminders, cadences
from shared.domains.collections.agreement_reminders import AGREEMENT_KIND
from shared.domains.collections.window import ContactWindow, Place, place_of
from shared.models import (
    AttemptState,
    Cadence,
    CadenceKind,
    CadenceStep,
    CollectionSettings,
    ContactAttempt,
    MessageTemplate,
    Tenant,
)
from shared.queue import enqueue_many

log = structlog.get_logger("quita.collections.planner")

NO_CALL_LIST_GRACE_DAYS = 30  # Procon-SP: the block holds from the 30th day after enrolment
LOOK_BACK_DAYS = 31  # steps missed for longer than this are no longer even recorded
_CHUNK = 1000
SEND_BATCH_SIZE = 25  # attempts per send job: what they share is read once, their calls overlap
# Meta's 80 msg/s is counted over any second by Meta's clock; our sends leave at their booked
# slots plus whatever a busy event loop, a new connection and the network add, which can bunch
# them.  A 25 % margin absorbs up to ~250 ms of such delay without a single 130429 (20 % let
# through one or a few in 20,000 on a saturated machine).
THROUGHPUT_MARGIN = 0.75
DEFAULT_THROUGHPUT = 80  # msg/s of a WhatsApp number unless its channel says otherwise
DEFAULT_SMS_THROUGHPUT = 10  # msg/s of an SMS account unless its channel says otherwise


def pace_of(config: Mapping[str, Any], default: int = DEFAULT_THROUGHPUT) -> float:
    """The messages per second sent from a WhatsApp number (or an SMS account, with its
    ``default``): its limit, less the margin."""
    return float(config.get("throughput_per_s") or default) * THROUGHPUT_MARGIN


@dataclass(frozen=True, slots=True)
class Candidate:
    installment_id: uuid.UUID  # an agreement installment's, for the agreement régua
    customer_id: uuid.UUID
    due_date: date
    open_amount: Any
    step: CadenceStep


@dataclass(slots=True)
class Debtor:
    id: uuid.UUID
    state: str | None
    city: str | None
    tags: list[str]
    opted_out: list[str]
    do_not_contact: bool
    email: str | None
    phone: str | None
    blocked_phone: str | None  # the best phone exists but may not be contacted (reason)
    held: str | None = None  # an active customer-level hold's kind
    held_items: set[uuid.UUID] = field(default_factory=set)
    today_count: int = 0
    week_count: int = 0


@dataclass(slots=True)
class PlanResult:
    planned: int = 0
    skipped: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    locked: bool = True

    def skip(self, reason: str, count: int = 1) -> None:
        self.skipped[reason] += count


async def plan_tenant(session: AsyncSession, tenant_id: uuid.UUID, now: datetime) -> PlanResult:
    """Plan what is due for ``tenant_id`` at ``now`` (aware); the caller commits."""
    got = await session.scalar(
        text("SELECT pg_try_advisory_xact_lock(hashtextextended(:key, 0))"),
        {"key": f"collections.plan:{tenant_id}"},
    )
    if not got:
        return PlanResult(locked=False)
    tenant = await session.get(Tenant, tenant_id)
    settings = await session.get(CollectionSettings, tenant_id)
    if tenant is None or settings is None:
        return PlanResult()
    today = now.astimezone(ZoneInfo(tenant.time_zone)).date()
    result = PlanResult()
    regua, owed = await _candidates(session, tenant_id, today, tenant.time_zone)
    if not regua and not owed:
        return result
    customers = {c.customer_id for c in regua} | {c.customer_id for c in owed}
    debtors = await _debtors(session, tenant_id, customers, today, now)
    kinds = await _channel_kinds(session, tenant_id)
    paused = await _paused_kinds(session, tenant_id) - kinds
    if paused:
        # the retailer paused the channel: its messages wait (nothing is claimed) rather than
        # go out on another channel or be recorded as skipped
        regua, owed = _unpaused(regua, paused, result), _unpaused(owed, paused, result)
        if not regua and not owed:
            return result
    window = cadences.window_of(settings)
    rows = _decide(owed, debtors, kinds, settings, window, today, now, result)
    for row in rows:
        row.agreement, row.attempt["kind"] = True, AGREEMENT_KIND
    _count_queued(rows, debtors)
    rows += _decide(regua, debtors, kinds, settings, window, today, now, result)
    reach = await _whatsapp_reach(session, tenant_id, now)
    if reach is not None:
        _limit_reach(rows, debtors, kinds, reach, window, now, result)
    await _write(session, tenant_id, rows)
    log.info(
        "collections.planned",
        tenant_id=str(tenant_id),
        planned=result.planned,
        skipped=dict(result.skipped),
    )
    return result


def _unpaused(candidates: list[Candidate], paused: set[str], result: PlanResult) -> list[Candidate]:
    waiting = sum(c.step.channel in paused for c in candidates)
    if waiting:
        result.skip("channel_paused", waiting)
    return [c for c in candidates if c.step.channel not in paused]


def _count_queued(rows: list[Row], debtors: dict[uuid.UUID, Debtor]) -> None:
    """The messages just decided count toward their debtors' caps for what is decided next."""
    for row in rows:
        if row.attempt.get("state") == AttemptState.QUEUED:
            debtor = debtors[row.attempt["customer_id"]]
            debtor.today_count += 1
            debtor.week_count += 1


# --- reading ----------------------------------------------------------------------------------

# A customer's régua: its pin, else the first segment régua whose tags it carries, else the
# default (``c`` is the customer, ``:tenant`` its tenant).
_CADENCE_OF = cadences.customer_cadence_sql(CadenceKind.REGUA)

_CANDIDATES = text(
    """
    SELECT i.id AS installment_id, i.customer_id, i.due_date,
           i.principal - i.amount_paid AS open_amount, s.id AS step_id
    FROM installments i
    JOIN customers c ON c.id = i.customer_id
    JOIN cadence_steps s ON s.cadence_id = """
    + _CADENCE_OF
    + """
    WHERE i.tenant_id = :tenant
      AND i.status IN ('open', 'partially_paid')
      AND i.due_date BETWEEN :first_due AND :last_due
      AND i.due_date + CAST(s.offset_days AS integer) <= :today
      AND i.due_date + CAST(s.offset_days AS integer) > :oldest
      AND NOT EXISTS (SELECT 1 FROM contact_attempt_items x
                      WHERE x.installment_id = i.id AND x.step_id = s.id)
    """
)


async def _candidates(
    session: AsyncSession, tenant_id: uuid.UUID, today: date, time_zone: str
) -> tuple[list[Candidate], list[Candidate]]:
    """What is due today: ``(installments, agreement installments)`` with their steps."""
    steps: dict[str, dict[uuid.UUID, CadenceStep]] = defaultdict(dict)
    for step, kind in await session.execute(
        select(CadenceStep, Cadence.kind)
        .join(Cadence, Cadence.id == CadenceStep.cadence_id)
        .where(CadenceStep.tenant_id == tenant_id)
    ):
        steps[kind][step.id] = step
    oldest = today - timedelta(days=LOOK_BACK_DAYS)
    regua: list[Candidate] = []
    if of_regua := steps.get(CadenceKind.REGUA):
        offsets = [s.offset_days for s in of_regua.values()]
        rows = await session.execute(
            _CANDIDATES,
            {
                "tenant": tenant_id,
                "today": today,
                "oldest": oldest,
                # only due dates some step can reach between ``oldest`` and today (index range)
                "first_due": oldest - timedelta(days=max(offsets)),
                "last_due": today - timedelta(days=min(offsets)),
            },
        )
        regua = [
            Candidate(
                r.installment_id, r.customer_id, r.due_date, r.open_amount, of_regua[r.step_id]
            )
            for r in rows
        ]
    owed: list[Candidate] = []
    if of_agreements := steps.get(CadenceKind.AGREEMENT):
        owed = [
            Candidate(
                r.installment_id, r.customer_id, r.due_date, r.open_amount, of_agreements[r.step_id]
            )
            for r in await agreement_reminders.due_steps(
                session, tenant_id, today, oldest, time_zone
            )
        ]
    return regua, owed


_DEBTORS = text(
    """
    SELECT c.id, c.state, c.city, c.tags, c.opted_out, c.do_not_contact, c.email,
           p.number AS phone, p.status AS phone_status, p.no_call_list_since,
           (SELECT h.kind FROM collection_holds h
             WHERE h.customer_id = c.id AND h.installment_id IS NULL
               AND h.released_at IS NULL AND (h.until IS NULL OR h.until > :now)
             LIMIT 1) AS held,
           (SELECT array_agg(h.installment_id) FROM collection_holds h
             WHERE h.customer_id = c.id AND h.installment_id IS NOT NULL
               AND h.released_at IS NULL AND (h.until IS NULL OR h.until > :now)) AS held_items,
           (SELECT count(*) FILTER (WHERE a.contact_day = :today) FROM contact_attempts a
             WHERE a.tenant_id = :tenant AND a.customer_id = c.id
               AND a.contact_day > CAST(:today AS date) - 7
               AND a.state NOT IN ('skipped', 'cancelled', 'failed')) AS today_count,
           (SELECT count(*) FROM contact_attempts a
             WHERE a.tenant_id = :tenant AND a.customer_id = c.id
               AND a.contact_day > CAST(:today AS date) - 7
               AND a.state NOT IN ('skipped', 'cancelled', 'failed')) AS week_count
    FROM customers c
    LEFT JOIN LATERAL (
        SELECT number, status, no_call_list_since FROM customer_phones
        WHERE customer_id = c.id AND active ORDER BY (status = 'valid') DESC, position LIMIT 1
    ) p ON true
    WHERE c.tenant_id = :tenant AND c.id = ANY(:ids)
    """
)


def phone_block_reason(status: str, no_call_list_since: date | None, today: date) -> str | None:
    """Why a phone may not receive a collection message today (``None``: it may): marked wrong
    or unreachable, or on a do-not-call list (Procon-SP) since its 30th day."""
    if status != "valid":
        return f"phone_{status}"
    if no_call_list_since is not None and no_call_list_since <= today - timedelta(
        days=NO_CALL_LIST_GRACE_DAYS
    ):
        return "no_call_list"
    return None


async def _debtors(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    ids: set[uuid.UUID],
    today: date,
    now: datetime,
) -> dict[uuid.UUID, Debtor]:
    found: dict[uuid.UUID, Debtor] = {}
    params = {"tenant": tenant_id, "ids": list(ids), "today": today, "now": now}
    for r in await session.execute(_DEBTORS, params):
        blocked = None
        if r.phone is not None:
            blocked = phone_block_reason(r.phone_status, r.no_call_list_since, today)
        found[r.id] = Debtor(
            id=r.id,
            state=r.state,
            city=r.city,
            tags=list(r.tags or []),
            opted_out=list(r.opted_out or []),
            do_not_contact=r.do_not_contact,
            email=r.email,
            phone=r.phone if blocked is None else None,
            blocked_phone=blocked,
            held=r.held,
            held_items=set(r.held_items or []),
            today_count=r.today_count,
            week_count=r.week_count,
        )
    return found


async def _channel_kinds(session: AsyncSession, tenant_id: uuid.UUID) -> set[str]:
    rows = await session.scalars(
        text("SELECT DISTINCT kind FROM channels WHERE tenant_id = :t AND status = 'active'"),
        {"t": tenant_id},
    )
    return set(rows)


async def _paused_kinds(session: AsyncSession, tenant_id: uuid.UUID) -> set[str]:
    rows = await session.scalars(
        text("SELECT DISTINCT kind FROM channels WHERE tenant_id = :t AND status = 'paused'"),
        {"t": tenant_id},
    )
    return set(rows)


# --- deciding ---------------------------------------------------------------------------------


@dataclass(slots=True)
class Row:
    """An attempt to write, with the installments (and their steps) it covers — agreement
    installments when ``agreement``."""

    attempt: dict[str, Any]
    items: list[tuple[uuid.UUID, uuid.UUID | None]]
    agreement: bool = False


def _decide(
    candidates: list[Candidate],
    debtors: dict[uuid.UUID, Debtor],
    kinds: set[str],
    settings: CollectionSettings,
    window: ContactWindow,
    today: date,
    now: datetime,
    result: PlanResult,
) -> list[Row]:
    by_installment: dict[uuid.UUID, list[Candidate]] = defaultdict(list)
    for c in candidates:
        by_installment[c.installment_id].append(c)
    horizon = today - timedelta(days=settings.catch_up_days)
    due: dict[uuid.UUID, list[Candidate]] = defaultdict(list)
    passed: dict[tuple[uuid.UUID, str], list[Candidate]] = defaultdict(list)
    for group in by_installment.values():
        group.sort(key=lambda c: c.step.offset_days)
        latest = group[-1]
        debtor = debtors.get(latest.customer_id)
        if latest.due_date + timedelta(days=latest.step.offset_days) >= horizon:
            if debtor is not None and _step_applies(latest, debtor, today):
                due[latest.customer_id].append(latest)
            else:
                passed[(latest.customer_id, "step_conditions")].append(latest)
            older = group[:-1]
            reason = "superseded"
        else:
            older, reason = group, "missed"
        for c in older:
            passed[(c.customer_id, reason)].append(c)
    rows = [
        _skipped(customer, reason, items, today, now)
        for (customer, reason), items in passed.items()
    ]
    for (_, why), items in passed.items():
        result.skip(why, len(items))
    for customer_id, items in due.items():
        rows.extend(
            _one_message(debtors[customer_id], items, kinds, settings, window, today, now, result)
        )
    return rows


def _step_applies(c: Candidate, debtor: Debtor, today: date) -> bool:
    step = c.step
    if step.min_amount is not None and c.open_amount < step.min_amount:
        return False
    if step.tags_any and not set(step.tags_any) & set(debtor.tags):
        return False
    overdue = (today - c.due_date).days
    return step.max_days_overdue is None or overdue <= step.max_days_overdue


def _base(customer_id: uuid.UUID, today: date, now: datetime) -> dict[str, Any]:
    return {
        "id": uuid.uuid4(),
        "customer_id": customer_id,
        "kind": "regua",
        "contact_day": today,
        "planned_for": now,
        "decisions": [],
    }


def _skipped(
    customer_id: uuid.UUID, reason: str, items: list[Candidate], today: date, now: datetime
) -> Row:
    last = max(items, key=lambda c: c.step.offset_days).step
    attempt = _base(customer_id, today, now) | {
        "state": AttemptState.SKIPPED,
        "reason": reason,
        "cadence_id": last.cadence_id,
        "step_id": last.id,
        "offset_days": last.offset_days,
        "channel": last.channel,
        "decisions": [{"rule": reason, "held": True}],
    }
    return Row(attempt, [(c.installment_id, c.step.id) for c in items])


def _one_message(
    debtor: Debtor,
    items: list[Candidate],
    kinds: set[str],
    settings: CollectionSettings,
    window: ContactWindow,
    today: date,
    now: datetime,
    result: PlanResult,
) -> list[Row]:
    """One message for everything the customer has due today, or the reason it is held; items
    held or prescribed on their own are recorded apart, skipped."""
    lead = max(items, key=lambda c: (c.step.offset_days, c.due_date))
    step = lead.step
    attempt = _base(debtor.id, today, now) | {
        "cadence_id": step.cadence_id,
        "step_id": step.id,
        "offset_days": step.offset_days,
        "channel": step.channel,
        "fallback_channel": step.fallback_channel,
    }
    decisions: list[dict[str, Any]] = []
    covered: list[tuple[uuid.UUID, uuid.UUID | None]] = [
        (c.installment_id, c.step.id) for c in items
    ]

    def hold(reason: str) -> list[Row]:
        decisions.append({"rule": reason, "held": True})
        attempt.update(state=AttemptState.SKIPPED, reason=reason, decisions=decisions)
        result.skip(reason, len(covered))
        return [*apart, Row(attempt, covered)]

    apart: list[Row] = []
    if debtor.do_not_contact:
        return hold("do_not_contact")
    if debtor.held:
        return hold(f"hold_{debtor.held}")
    held = [c for c in items if c.installment_id in debtor.held_items]
    if len(held) == len(items):
        return hold("hold_installment")
    if held:  # the message goes without them; they are recorded apart, with the reason
        apart.append(_skipped(debtor.id, "hold_installment", held, today, now))
        result.skip("hold_installment", len(held))
        keys = {(c.installment_id, c.step.id) for c in held}
        covered = [k for k in covered if k not in keys]
    picked = cadences.pick(debtor.id, step.id, step.variants, step.holdout_percent)
    if picked.holdout:
        return hold("holdout")
    attempt["template_name"] = picked.template
    route = _route(debtor, step.channel, step.fallback_channel, kinds, decisions)
    if route is None:
        return hold(decisions[-1]["rule"] if decisions else "no_channel")
    attempt["channel"], attempt["recipient"] = route
    if attempt["channel"] == step.fallback_channel:
        attempt["fallback_channel"] = None
    if debtor.today_count >= settings.daily_cap:
        return hold("daily_cap")
    if debtor.week_count >= settings.weekly_cap:
        return hold("weekly_cap")
    place: Place = place_of(debtor.state, debtor.city, debtor.phone)
    when = window.next_allowed(now, place)
    decisions.append({"rule": "contact_window", "held": when > now, "until": when.isoformat()})
    attempt.update(state=AttemptState.QUEUED, planned_for=when, decisions=decisions, reason=None)
    result.planned += 1
    return [*apart, Row(attempt, covered)]


def _route(
    debtor: Debtor,
    channel: str,
    fallback: str | None,
    kinds: set[str],
    decisions: list[dict[str, Any]],
) -> tuple[str, str] | None:
    """The first of the step's channels the debtor can be reached on, with the address."""
    for kind in (channel, fallback):
        if kind is None:
            continue
        if kind not in kinds:
            decisions.append({"rule": "no_channel", "channel": kind, "held": True})
            continue
        if kind in debtor.opted_out:
            decisions.append({"rule": "opted_out", "channel": kind, "held": True})
            continue
        address = debtor.email if kind == "email" else debtor.phone
        if address is None:
            rule = "no_email" if kind == "email" else (debtor.blocked_phone or "no_phone")
            decisions.append({"rule": rule, "channel": kind, "held": True})
            continue
        return kind, address
    return None


# --- the WhatsApp messaging limit ---------------------------------------------------------------

_TIERS = {"250": 250, "1k": 1_000, "2k": 2_000, "10k": 10_000, "100k": 100_000}


def reach_limit(tier: str | None) -> int | None:
    """Unique recipients per moving 24 h a WhatsApp tier allows (contract §4.3); ``None`` for
    unlimited or unknown.  Accepts "TIER_2K", "2k", "2000", "TIER_UNLIMITED"..."""
    if not tier:
        return None
    value = tier.strip().lower().removeprefix("tier_").replace(",", "").replace("_", "")
    if value in _TIERS:
        return _TIERS[value]
    return int(value) if value.isdigit() else None


async def _whatsapp_reach(
    session: AsyncSession, tenant_id: uuid.UUID, now: datetime
) -> tuple[int, int] | None:
    """The tenant's WhatsApp reach limit and how much of it the last 24 h used: distinct
    customers with a business-initiated WhatsApp message planned or sent since then."""
    tiers = list(
        await session.scalars(
            text(
                """SELECT config ->> 'messaging_tier' FROM channels
                   WHERE tenant_id = :t AND kind = 'whatsapp' AND status = 'active'"""
            ),
            {"t": tenant_id},
        )
    )
    limits = [reach_limit(t) for t in tiers]
    if not limits or any(limit is None for limit in limits):
        return None
    used = await session.scalar(
        text(
            """SELECT count(DISTINCT customer_id) FROM contact_attempts
               WHERE tenant_id = :t AND channel = 'whatsapp' AND planned_for > :since
                 AND state IN ('queued', 'sending', 'sent', 'delivered', 'read', 'unknown')"""
        ),
        {"t": tenant_id, "since": now - timedelta(hours=24)},
    )
    return max(limit or 0 for limit in limits), int(used or 0)


def _limit_reach(
    rows: list[Row],
    debtors: dict[uuid.UUID, Debtor],
    kinds: set[str],
    reach: tuple[int, int],
    window: ContactWindow,
    now: datetime,
    result: PlanResult,
) -> None:
    """Keep new WhatsApp messages within the tier: beyond it, the step's fallback channel, or
    the next day (messages beyond the limit would simply not be delivered)."""
    limit, used = reach
    room = max(limit - used, 0)
    for row in rows:
        attempt = row.attempt
        if attempt.get("state") != AttemptState.QUEUED or attempt["channel"] != "whatsapp":
            continue
        if room > 0:
            room -= 1
            continue
        debtor = debtors[attempt["customer_id"]]
        decisions = attempt["decisions"]
        decisions.append({"rule": "messaging_limit", "limit": limit, "held": True})
        fallback = attempt.get("fallback_channel")
        route = None
        if fallback and fallback != "whatsapp":
            route = _route(debtor, fallback, None, kinds, decisions)
        if route is not None:
            attempt["channel"], attempt["recipient"] = route
            attempt["fallback_channel"] = None
        else:
            place = place_of(debtor.state, debtor.city, debtor.phone)
            attempt["planned_for"] = window.next_allowed(now + timedelta(hours=24), place)
        result.skip("messaging_limit")


# --- writing ----------------------------------------------------------------------------------


_ATTEMPT_COLUMNS: tuple[tuple[str, Any], ...] = (
    ("id", PG_UUID()),
    ("customer_id", PG_UUID()),
    ("kind", String()),
    ("cadence_id", PG_UUID()),
    ("step_id", PG_UUID()),
    ("offset_days", Integer()),
    ("template_name", String()),
    ("channel", String()),
    ("fallback_channel", String()),
    ("recipient", String()),
    ("state", String()),
    ("reason", String()),
    ("contact_day", Date()),
    ("planned_for", DateTime(timezone=True)),
    ("decisions", String()),
    ("campaign_id", PG_UUID()),
)
_INSERT_ATTEMPTS = text(
    f"""INSERT INTO contact_attempts (tenant_id, {", ".join(c for c, _ in _ATTEMPT_COLUMNS)})
        SELECT :tenant, {
        ", ".join(
            "CAST(v.decisions AS jsonb)" if c == "decisions" else f"v.{c}"
            for c, _ in _ATTEMPT_COLUMNS
        )
    }
        FROM unnest({", ".join(f":{c}" for c, _ in _ATTEMPT_COLUMNS)})
             AS v ({", ".join(c for c, _ in _ATTEMPT_COLUMNS)})"""
).bindparams(*(bindparam(c, type_=ARRAY(t)) for c, t in _ATTEMPT_COLUMNS))
_INSERT_ITEMS = text(
    """INSERT INTO contact_attempt_items
           (tenant_id, attempt_id, installment_id, agreement_installment_id, step_id)
       SELECT :tenant, a, i, g, s
       FROM unnest(:attempts, :installments, :agreement_installments, :steps) AS v (a, i, g, s)"""
).bindparams(
    bindparam("attempts", type_=ARRAY(PG_UUID())),
    bindparam("installments", type_=ARRAY(PG_UUID())),
    bindparam("agreement_installments", type_=ARRAY(PG_UUID())),
    bindparam("steps", type_=ARRAY(PG_UUID())),
)


async def _write(session: AsyncSession, tenant_id: uuid.UUID, rows: Iterable[Row]) -> None:
    """Every attempt, item and send job of a plan in three array inserts (one statement each,
    however many rows: a big tenant's plan is tens of thousands of them)."""
    attempts = [row.attempt for row in rows]
    if not attempts:
        return
    columns: dict[str, list[Any]] = {c: [] for c, _ in _ATTEMPT_COLUMNS}
    for a in attempts:
        for c, _ in _ATTEMPT_COLUMNS:
            value = a.get(c)
            if c == "decisions":
                value = json.dumps(value or [])
            elif isinstance(value, StrEnum):
                value = value.value
            columns[c].append(value)
    await session.execute(_INSERT_ATTEMPTS, {"tenant": tenant_id, **columns})
    items = [
        (row.attempt["id"], *((None, one) if row.agreement else (one, None)), step)
        for row in rows
        for one, step in row.items
    ]
    if items:
        a_ids, i_ids, g_ids, s_ids = (list(col) for col in zip(*items, strict=True))
        await session.execute(
            _INSERT_ITEMS,
            {
                "tenant": tenant_id,
                "attempts": a_ids,
                "installments": i_ids,
                "agreement_installments": g_ids,
                "steps": s_ids,
            },
        )
    # the queued attempts' send jobs, in the same transaction: those due at the same instant on
    # the same channel share jobs of up to SEND_BATCH_SIZE (a send job reads what its attempts
    # share once), due one after another at the pace of the retailer's number or SMS account —
    # a job finds room for its messages instead of finding the sender booked by its siblings
    # and going back to the queue, and the workers' threads take many retailers' jobs at once
    due: dict[tuple[datetime, str], list[str]] = defaultdict(list)
    for a in attempts:
        if a["state"] == AttemptState.QUEUED:
            due[(a["planned_for"], a["channel"])].append(str(a["id"]))
    if not due:
        return
    paces = await _paces(session, tenant_id)
    each = {kind: timedelta(seconds=SEND_BATCH_SIZE / pace) for kind, pace in paces.items()}
    # the pace is a real duration: from the real instant when the attempts are due already (the
    # clock may be fixed in tests and benches; the outbox releases jobs by the database's time)
    real = datetime.now(UTC)
    await enqueue_many(
        session,
        "collections.send",
        [
            (
                tenant_id,
                when if n == 0 else max(when, real) + n * each.get(channel, timedelta(0)),
                {"attempt_ids": ids[start : start + SEND_BATCH_SIZE]},
            )
            for (when, channel), ids in due.items()
            for n, start in enumerate(range(0, len(ids), SEND_BATCH_SIZE))
        ],
    )


async def _paces(session: AsyncSession, tenant_id: uuid.UUID) -> dict[str, float]:
    """The pace of the retailer's WhatsApp number and of its SMS account (the defaults' when it
    has none); e-mail is not paced."""
    rows = await session.execute(
        text(
            """SELECT DISTINCT ON (kind) kind, config FROM channels
               WHERE tenant_id = :t AND kind IN ('whatsapp', 'sms') AND status = 'active'
               ORDER BY kind, created_at"""
        ),
        {"t": tenant_id},
    )
    configs: dict[str, Any] = {kind: config for kind, config in rows.all()}
    return {
        "whatsapp": pace_of(configs.get("whatsapp") or {}),
        "sms": pace_of(configs.get("sms") or {}, DEFAULT_SMS_THROUGHPUT),
    }


# --- "send now" -------------------------------------------------------------------------------

REMIND_AHEAD_DAYS = 3  # a reminder "now" covers what is overdue and what falls due this soon


class NothingToRemind(Exception):
    pass


async def remind(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    customer_id: uuid.UUID,
    now: datetime,
    *,
    template_key: str | None = None,
    installment_ids: Sequence[uuid.UUID] | None = None,
    offer_id: uuid.UUID | None = None,
) -> ContactAttempt:
    """A message now (``kind = manual``) about every open installment of the customer that is
    overdue or due within three days (of ``installment_ids``, when given), with the same
    governance and amounts as the régua's: the template of the régua step the oldest of them
    has reached — or the retailer's template of ``template_key`` when it has one (a broken
    promise's, an offer's) — the same channels, caps, window.  An ``offer_id`` makes its link
    open that offer's options.  It does not use up any régua step.  The caller commits."""
    tenant = await session.get(Tenant, tenant_id)
    settings = await session.get(CollectionSettings, tenant_id)
    if tenant is None or settings is None:
        raise NothingToRemind("This tenant collects nothing.")
    today = now.astimezone(ZoneInfo(tenant.time_zone)).date()
    rows = list(
        await session.execute(
            text(
                """SELECT i.id, i.due_date, i.principal - i.amount_paid AS open_amount
                   FROM installments i
                   WHERE i.tenant_id = :t AND i.customer_id = :c
                     AND i.status IN ('open', 'partially_paid') AND i.due_date <= :until
                     AND (CAST(:only AS uuid[]) IS NULL OR i.id = ANY(CAST(:only AS uuid[])))
                   ORDER BY i.due_date"""
            ),
            {
                "t": tenant_id,
                "c": customer_id,
                "until": today + timedelta(days=REMIND_AHEAD_DAYS),
                "only": list(installment_ids) if installment_ids is not None else None,
            },
        )
    )
    if not rows:
        raise NothingToRemind("The customer has nothing overdue or due in the next days.")
    step = await _step_for(session, tenant_id, customer_id, (today - rows[0].due_date).days)
    candidates = [Candidate(r.id, customer_id, r.due_date, r.open_amount, step) for r in rows]
    debtors = await _debtors(session, tenant_id, {customer_id}, today, now)
    kinds = await _channel_kinds(session, tenant_id)
    result = PlanResult()
    decided = _one_message(
        debtors[customer_id],
        candidates,
        kinds,
        settings,
        cadences.window_of(settings),
        today,
        now,
        result,
    )
    special = None
    if template_key is not None:
        special = await session.scalar(
            select(MessageTemplate.name)
            .where(MessageTemplate.tenant_id == tenant_id, MessageTemplate.key == template_key)
            .limit(1)
        )
    for row in decided:
        row.attempt["kind"] = "manual"
        if special is not None and row.attempt.get("template_name"):
            row.attempt["template_name"] = special
        # a manual message covers the installments without using up the régua's step
        row.items = [(installment, None) for installment, _ in row.items]
    await _write(session, tenant_id, decided)
    message = decided[-1].attempt
    found = await session.get(ContactAttempt, message["id"])
    assert found is not None
    found.offer_id = offer_id
    return found


async def _step_for(
    session: AsyncSession, tenant_id: uuid.UUID, customer_id: uuid.UUID, days_overdue: int
) -> CadenceStep:
    """The step of the customer's régua that ``days_overdue`` has reached (the first one when
    none has been reached yet)."""
    row = await session.execute(
        text(f"SELECT {_CADENCE_OF} FROM customers c WHERE c.id = :c"),
        {"tenant": tenant_id, "c": customer_id},
    )
    cadence_id = row.scalar_one_or_none()
    steps = list(
        await session.scalars(
            select(CadenceStep)
            .where(CadenceStep.cadence_id == cadence_id)
            .order_by(CadenceStep.offset_days)
        )
    )
    if not steps:
        raise NothingToRemind("The customer's régua has no steps.")
    reached = [s for s in steps if s.offset_days <= days_overdue]
    return reached[-1] if reached else steps[0]


# --- campaigns --------------------------------------------------------------------------------


async def plan_campaign(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    owed: dict[uuid.UUID, list[tuple[uuid.UUID, date, Any]]],
    template_name: str,
    channel: str,
    fallback_channel: str | None,
    now: datetime,
    campaign_id: uuid.UUID,
) -> list[Row]:
    """One message (``kind = campaign``) per customer of ``owed`` — customer → its selected
    ``(installment_id, due_date, open_amount)`` — with ``template_name`` on ``channel`` (then
    ``fallback_channel``), under the régua's governance: holds, opt-outs, phones, caps, window
    and the WhatsApp tier.  No régua step is used up.  Returns each customer's message, queued
    or skipped with its reason (installments held on their own are written apart too).  The
    caller commits."""
    # the régua's planner and a campaign of the same tenant count each other's messages
    await session.execute(
        text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
        {"key": f"collections.plan:{tenant_id}"},
    )
    tenant = await session.get_one(Tenant, tenant_id)
    settings = await session.get_one(CollectionSettings, tenant_id)
    today = now.astimezone(ZoneInfo(tenant.time_zone)).date()
    step = CadenceStep(  # transient: the campaign's template and channels, in a step's shape
        id=None,
        cadence_id=None,
        offset_days=None,
        channel=channel,
        fallback_channel=fallback_channel,
        variants=[{"template": template_name, "weight": 1}],
        holdout_percent=0,
        min_amount=None,
        tags_any=[],
        max_days_overdue=None,
    )
    debtors = await _debtors(session, tenant_id, set(owed), today, now)
    kinds = await _channel_kinds(session, tenant_id)
    window = cadences.window_of(settings)
    result = PlanResult()
    rows: list[Row] = []
    messages: list[Row] = []
    for customer_id, installments in owed.items():
        if customer_id not in debtors:
            continue
        candidates = [
            Candidate(i, customer_id, due, amount, step) for i, due, amount in installments
        ]
        decided = _one_message(
            debtors[customer_id], candidates, kinds, settings, window, today, now, result
        )
        rows.extend(decided)
        messages.append(decided[-1])
    reach = await _whatsapp_reach(session, tenant_id, now)
    if reach is not None:
        _limit_reach(rows, debtors, kinds, reach, window, now, result)
    for row in rows:
        row.attempt.update(kind="campaign", campaign_id=campaign_id)
    await _write(session, tenant_id, rows)
    log.info(
        "collections.campaign_planned",
        tenant_id=str(tenant_id),
        campaign_id=str(campaign_id),
        planned=result.planned,
        skipped=dict(result.skipped),
    )
    return messages
