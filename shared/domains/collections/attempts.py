"""The contact attempt's state machine: one function decides every transition.

Our own steps move an attempt forward (``planned → queued → sending → sent``); the provider's
status webhooks arrive late, twice or out of order and may only move it forward too (contract
§5.7: ``sent < delivered < read``; a ``failed`` after ``delivered`` is noted, not applied; a
``failed`` before ``delivered`` is overwritten by a later ``delivered``).  ``unknown`` — the
provider call's outcome was lost — is resolved by whatever the provider says next, or, when the
provider's silence shows it never received the message (the sweeper's evidence: later messages
of the same number were delivered, this one got no status at all), queued again.
"""

from __future__ import annotations

from shared.models import AttemptState

S = AttemptState

__all__ = ["FINAL", "IllegalTransition", "next_state"]

# Nothing moves an attempt out of these.
FINAL = frozenset({S.READ, S.CANCELLED, S.SKIPPED})

# What we do ourselves: from → the states it may go to.
_OURS: dict[AttemptState, frozenset[AttemptState]] = {
    S.PLANNED: frozenset({S.QUEUED, S.CANCELLED, S.SKIPPED}),
    S.QUEUED: frozenset({S.SENDING, S.CANCELLED, S.SKIPPED, S.FAILED}),
    # back to QUEUED only when the error proves nothing left (a retry); UNKNOWN when it may have
    S.SENDING: frozenset({S.SENT, S.FAILED, S.UNKNOWN, S.QUEUED}),
    # back to QUEUED only on the evidence that the provider never received it (see above)
    S.UNKNOWN: frozenset({S.QUEUED}),
}

# The provider's statuses, by how far they prove the message got.
_RANK = {S.SENDING: 0, S.UNKNOWN: 0, S.SENT: 1, S.FAILED: 1.5, S.DELIVERED: 2, S.READ: 3}
PROVIDER = frozenset({S.SENT, S.DELIVERED, S.READ, S.FAILED})


class IllegalTransition(ValueError):
    pass


def next_state(current: AttemptState, to: AttemptState, *, provider: bool = False) -> AttemptState:
    """The state after ``to`` is reported (by the provider when ``provider``) — ``current``
    itself when the report is stale — or ``IllegalTransition`` for a step we must never take."""
    if provider:
        if to not in PROVIDER:
            raise IllegalTransition(f"the provider does not report {to}")
        if current in (S.CANCELLED, S.SKIPPED, S.PLANNED):
            raise IllegalTransition(f"a status for an attempt that was never sent ({current})")
        if current == S.QUEUED:  # the call's answer is still on its way; the status is news
            return to
        if to == S.FAILED and current in (S.DELIVERED, S.READ):
            return current  # multi-device: delivered somewhere already
        return to if _RANK[to] > _RANK[current] else current
    if current in FINAL or to not in _OURS.get(current, frozenset()):
        raise IllegalTransition(f"{current} → {to}")
    return to
