"""Réguas and governance settings: the defaults every retailer starts with, and how a customer
finds its régua (pinned, else the first segment whose tags it carries, else the default).

The default régua follows the collection guides: a friendly reminder three days before, one on
the day, then the day after, five days after (with the itemized fees) and a last friendly one at
fifteen days — WhatsApp first, SMS when WhatsApp cannot deliver.  It fits the default weekly cap
of three messages: with a day-before reminder as well, the D+1 message — the one that matters
most — would always be held back by the cap.  The day-before template exists for réguas that
want it (with a weekly cap raised to match).

The agreement régua is gentler: a reminder two days before each agreement installment falls due,
one on the day and one three days after — the debtor already chose to pay, the messages help
them keep the agreement (a break comes only after ``lifecycle.BREAK_AFTER_DAYS``).
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import time
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from shared.domains.channels.defaults import DEFAULTS
from shared.domains.collections.window import DEFAULT as LAWFUL
from shared.domains.collections.window import ContactWindow
from shared.models import Cadence, CadenceKind, CadenceStep, CollectionSettings

DEFAULT_NAME = "Régua padrão"
AGREEMENT_NAME = "Régua de acordos"
_BY_KEY = {d.key: d.name for d in DEFAULTS}
# (offset from the due date, template key) — WhatsApp, falling back to SMS
DEFAULT_STEPS: tuple[tuple[int, str], ...] = (
    (-3, "lembrete_d3"),
    (0, "vence_hoje"),
    (1, "atraso_d1"),
    (5, "atraso_d5"),
    (15, "lembrete_final_d15"),
)
AGREEMENT_STEPS: tuple[tuple[int, str], ...] = (
    (-2, "acordo_lembrete"),
    (0, "acordo_vence_hoje"),
    (3, "acordo_atraso"),
)
_DEFAULTS = (
    (CadenceKind.REGUA, DEFAULT_NAME, DEFAULT_STEPS),
    (CadenceKind.AGREEMENT, AGREEMENT_NAME, AGREEMENT_STEPS),
)


async def ensure_defaults(session: AsyncSession, tenant_id: uuid.UUID) -> None:
    """Governance settings and the default régua of each kind for a tenant that has none
    (idempotent)."""
    await session.execute(
        insert(CollectionSettings)
        .values(tenant_id=tenant_id)
        .on_conflict_do_nothing(index_elements=["tenant_id"])
    )
    have = set(
        await session.scalars(
            select(Cadence.kind).where(Cadence.tenant_id == tenant_id, Cadence.is_default)
        )
    )
    for kind, name, steps in _DEFAULTS:
        if kind in have:
            continue
        cadence = Cadence(
            id=uuid.uuid4(), tenant_id=tenant_id, name=name, kind=kind, is_default=True
        )
        session.add(cadence)
        for offset, key in steps:
            session.add(
                CadenceStep(
                    tenant_id=tenant_id,
                    cadence_id=cadence.id,
                    offset_days=offset,
                    channel="whatsapp",
                    fallback_channel="sms",
                    variants=[{"template": _BY_KEY[key], "weight": 1}],
                )
            )
    await session.flush()


def window_of(settings: CollectionSettings | None) -> ContactWindow:
    """The tenant's window (the lawful default where it says nothing)."""
    data: dict[str, Any] = settings.window if settings is not None else {}
    window = ContactWindow(
        weekdays=_hours(data, "weekdays", LAWFUL.weekdays),
        saturday=_hours(data, "saturday", LAWFUL.saturday),
        avoid_carnival=bool(data.get("avoid_carnival", LAWFUL.avoid_carnival)),
    )
    window.check_within(LAWFUL)
    return window


def _hours(
    data: dict[str, Any], name: str, default: tuple[time, time] | None
) -> tuple[time, time] | None:
    if name not in data:
        return default
    value = data[name]
    if value is None:
        return None
    start, end = value
    return time.fromisoformat(start), time.fromisoformat(end)


@dataclass(frozen=True, slots=True)
class Pick:
    """What a customer gets at one step: a template, or nothing (the hold-out group)."""

    template: str | None
    holdout: bool


def _bucket(*parts: object) -> int:
    """A stable number in 0..9999 for the parts (same customer, same step → same bucket)."""
    digest = hashlib.sha256(":".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") % 10_000


def pick(
    customer_id: uuid.UUID, step_id: uuid.UUID, variants: Sequence[dict[str, Any]], holdout: int
) -> Pick:
    """The variant a customer gets at a step, deterministically: the same customer always lands
    in the same bucket, so a re-run or a second planner picks the same; ``holdout`` percent of
    customers (decided per régua step) receive nothing."""
    if holdout and _bucket("holdout", customer_id, step_id) < holdout * 100:
        return Pick(None, True)
    weights = [max(int(v.get("weight", 1)), 0) for v in variants]
    total = sum(weights)
    if total == 0:
        return Pick(str(variants[0]["template"]), False)
    point = _bucket("variant", customer_id, step_id) * total // 10_000
    for variant, weight in zip(variants, weights, strict=True):
        if point < weight:
            return Pick(str(variant["template"]), False)
        point -= weight
    return Pick(str(variants[-1]["template"]), False)


def customer_cadence_sql(kind: CadenceKind) -> str:
    """SQL for the régua of ``kind`` serving customer ``c`` of tenant ``:tenant``: its pin (a
    customer is pinned to a régua of kind ``regua`` only), else the first active segment régua
    of that kind whose tags it carries (lowest priority first), else the kind's default."""
    pin = "c.cadence_id," if kind == CadenceKind.REGUA else ""
    return f"""COALESCE({pin}
        (SELECT k.id FROM cadences k
          WHERE k.tenant_id = :tenant AND k.kind = '{kind}' AND k.active AND NOT k.is_default
            AND k.tags_any && c.tags
          ORDER BY k.priority, k.name LIMIT 1),
        (SELECT k.id FROM cadences k
          WHERE k.tenant_id = :tenant AND k.kind = '{kind}' AND k.is_default AND k.active))"""
