"""The attempt state machine: our own steps only forward, provider statuses applied
monotonically whatever their order or repetition."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.domains.collections.attempts import FINAL, IllegalTransition, next_state
from shared.models import AttemptState as S

STATUSES = [S.SENT, S.DELIVERED, S.READ, S.FAILED]


@given(st.lists(st.sampled_from(STATUSES), min_size=1, max_size=12))
def test_statuses_in_any_order_never_move_an_attempt_backwards(reports: list[S]) -> None:
    state = S.SENT
    rank = {S.SENT: 1, S.FAILED: 1.5, S.DELIVERED: 2, S.READ: 3}
    for report in reports:
        after = next_state(state, report, provider=True)
        assert rank[after] >= rank[state]
        state = after
    # the outcome is the furthest status heard (failed loses to any proof of delivery)
    heard = set(reports) | {S.SENT}
    expected = max(heard, key=lambda s: rank[s])
    assert state == expected


def test_failed_after_delivered_is_not_applied_but_delivered_after_failed_is() -> None:
    assert next_state(S.DELIVERED, S.FAILED, provider=True) == S.DELIVERED
    assert next_state(S.FAILED, S.DELIVERED, provider=True) == S.DELIVERED


@pytest.mark.parametrize("status", STATUSES)
def test_an_unknown_attempt_is_resolved_by_whatever_the_provider_says(status: S) -> None:
    assert next_state(S.UNKNOWN, status, provider=True) == status


def test_a_status_for_an_attempt_never_sent_is_refused() -> None:
    for never in (S.PLANNED, S.CANCELLED, S.SKIPPED):
        with pytest.raises(IllegalTransition):
            next_state(never, S.DELIVERED, provider=True)


def test_our_own_steps_follow_the_table_exhaustively() -> None:
    allowed = {
        (S.PLANNED, S.QUEUED), (S.PLANNED, S.CANCELLED), (S.PLANNED, S.SKIPPED),
        (S.QUEUED, S.SENDING), (S.QUEUED, S.CANCELLED), (S.QUEUED, S.SKIPPED),
        (S.QUEUED, S.FAILED),
        (S.SENDING, S.SENT), (S.SENDING, S.FAILED), (S.SENDING, S.UNKNOWN),
        (S.SENDING, S.QUEUED), (S.UNKNOWN, S.QUEUED),
    }  # fmt: skip
    for current, to in itertools.product(S, S):
        if (current, to) in allowed:
            assert next_state(current, to) == to
        else:
            with pytest.raises(IllegalTransition):
                next_state(current, to)
    assert all(not any((f, t) in allowed for t in S) for f in FINAL)
