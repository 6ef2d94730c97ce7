"""The agreement régua's two reads: which agreement installments have a step due (for the
planner) and what an agreement reminder still asks for right before it goes (for the sender).

An agreement's installments follow the tenant's agreement régua (``cadences.kind =
'agreement'``): the first agreement segment whose tags the customer carries, else the default
one (never a pin).  Their reminders are attempts of ``kind = 'agreement'`` whose items name
agreement installments (``contact_attempt_items.agreement_installment_id``).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from datetime import date
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from shared.domains.collections import cadences
from shared.domains.collections.content import AgreementItem
from shared.models import (
    Agreement,
    AgreementInstallment,
    AgreementInstallmentStatus,
    AgreementStatus,
    CadenceKind,
    ContactAttemptItem,
)

AGREEMENT_KIND = "agreement"  # the attempts' kind

# A customer's agreement régua: the first agreement segment whose tags it carries, else the
# default agreement régua (agreement réguas are not pinned).
_CADENCE_OF = cadences.customer_cadence_sql(CadenceKind.AGREEMENT)

# The open installments of active agreements whose agreement-régua step has come (the same
# horizon), after the day the agreement was accepted, that no attempt covers yet.  Few rows:
# it starts from the tenant's active agreements (a partial index).
_DUE_STEPS = text(
    """
    SELECT ai.id AS installment_id, a.customer_id, ai.due_date,
           ai.amount - ai.amount_paid AS open_amount, s.id AS step_id
    FROM agreements a
    JOIN agreement_installments ai ON ai.agreement_id = a.id
    JOIN customers c ON c.id = a.customer_id
    JOIN cadence_steps s ON s.cadence_id = """
    + _CADENCE_OF
    + """
    WHERE a.tenant_id = :tenant AND a.status = 'active'
      AND ai.status IN ('open', 'partially_paid')
      AND ai.due_date + CAST(s.offset_days AS integer) <= :today
      AND ai.due_date + CAST(s.offset_days AS integer) > :oldest
      AND ai.due_date + CAST(s.offset_days AS integer)
          > CAST(timezone(:time_zone, a.created_at) AS date)
      AND NOT EXISTS (SELECT 1 FROM contact_attempt_items x
                      WHERE x.agreement_installment_id = ai.id AND x.step_id = s.id)
    """
)


async def due_steps(
    session: AsyncSession, tenant_id: uuid.UUID, today: date, oldest: date, time_zone: str
) -> Sequence[Any]:
    """``(installment_id, customer_id, due_date, open_amount, step_id)`` of every agreement
    installment step that has come by ``today`` (after ``oldest``) and no attempt covers;
    ``installment_id`` names the agreement installment."""
    rows = await session.execute(
        _DUE_STEPS,
        {"tenant": tenant_id, "today": today, "oldest": oldest, "time_zone": time_zone},
    )
    return list(rows)


async def still_owed(
    session: AsyncSession, attempt_ids: list[uuid.UUID]
) -> tuple[dict[uuid.UUID, list[AgreementItem]], dict[uuid.UUID, str]]:
    """What the agreement reminders ask for, in one query: by attempt, the agreement
    installments still open in active agreements; and for attempts left with none, the reason
    (the agreement ended, or what was due is paid)."""
    owed: dict[uuid.UUID, list[AgreementItem]] = defaultdict(list)
    gone: dict[uuid.UUID, str] = {}
    if not attempt_ids:
        return owed, gone
    others = aliased(AgreementInstallment)
    count = (
        select(func.count())
        .where(others.agreement_id == Agreement.id, others.number > 0)
        .scalar_subquery()
    )
    rows = await session.execute(
        select(ContactAttemptItem.attempt_id, AgreementInstallment, Agreement.status, count)
        .join(
            AgreementInstallment,
            ContactAttemptItem.agreement_installment_id == AgreementInstallment.id,
        )
        .join(Agreement, Agreement.id == AgreementInstallment.agreement_id)
        .where(ContactAttemptItem.attempt_id.in_(attempt_ids))
    )
    for attempt_id, inst, status, of in rows:
        if status != AgreementStatus.ACTIVE:
            gone.setdefault(attempt_id, f"agreement_{status}")
        elif inst.status == AgreementInstallmentStatus.PAID or inst.amount <= inst.amount_paid:
            gone.setdefault(attempt_id, "paid")
        else:
            owed[attempt_id].append(AgreementItem(inst, of))
    return owed, {a: why for a, why in gone.items() if a not in owed}
