"""The installment status machine.

``open`` and ``partially_paid`` are the only statuses Quita collects.  Payments move an
installment to ``partially_paid`` or ``paid``; agreements (negotiation) to ``renegotiated``; the
retailer's systems may mark it ``paid`` (settled outside Quita), ``disputed``, ``written_off`` or
``cancelled``, or put it back to collection with ``open``.  ``cancelled`` is final.  An
installment whose payments recorded in Quita cover it stays ``paid`` whatever a lagging ERP
sends: money received is never undone by a status field.
"""

from __future__ import annotations

from decimal import Decimal

from shared.errors import Conflict
from shared.models import InstallmentStatus as S

COLLECTABLE = frozenset({S.OPEN, S.PARTIALLY_PAID})
SETTABLE = frozenset({S.OPEN, S.PAID, S.DISPUTED, S.WRITTEN_OFF, S.CANCELLED})


class StatusConflict(Conflict):
    code = "status_conflict"


def base_status(amount_paid: Decimal) -> S:
    """What an installment in collection is, given what was paid on it."""
    return S.PARTIALLY_PAID if amount_paid > 0 else S.OPEN


def requested(
    current: S, wanted: S, *, amount_paid: Decimal, settled_by_payments: bool
) -> S | None:
    """The status after the retailer asks for ``wanted``; ``None`` when nothing changes.

    Raises :class:`StatusConflict` for a change that would lose a fact (reopening a cancelled
    installment, cancelling one that received money).
    """
    if wanted not in SETTABLE:
        raise StatusConflict(f"The status {wanted} cannot be set directly.")
    if current is S.CANCELLED:
        if wanted is S.CANCELLED:
            return None
        raise StatusConflict("The installment was cancelled; a cancelled installment is final.")
    if wanted is S.OPEN:
        if current in COLLECTABLE or current is S.RENEGOTIATED:
            return None  # already collected, or an agreement owns it
        if current is S.PAID and settled_by_payments:
            return None  # money received in Quita stands
        return base_status(amount_paid)
    if wanted is S.CANCELLED and amount_paid > 0:
        raise StatusConflict("The installment received payments and cannot be cancelled.")
    if wanted is S.DISPUTED and current is S.PAID:
        raise StatusConflict("A paid installment cannot be disputed.")
    if wanted is S.WRITTEN_OFF and current is S.PAID:
        raise StatusConflict("A paid installment cannot be written off.")
    return None if wanted is current else wanted


def after_payment(current: S, remaining: Decimal) -> S:
    """The status once a payment leaves ``remaining`` to pay."""
    if current is S.CANCELLED:
        raise StatusConflict("A cancelled installment cannot receive payments.")
    if remaining <= 0:
        return S.PAID
    if current in COLLECTABLE:
        return S.PARTIALLY_PAID
    return current  # disputed, written off or renegotiated: a partial payment changes nothing
