"""Variants and hold-out groups are decided per customer, deterministically, in the shares the
retailer asked for; a tenant's window can narrow the law's, never widen it."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.domains.collections.cadences import pick, window_of
from shared.domains.collections.window import WindowTooWide
from shared.models import CollectionSettings

VARIANTS = [{"template": "a", "weight": 3}, {"template": "b", "weight": 1}]


@given(customer=st.uuids(), step=st.uuids(), holdout=st.integers(0, 50))
def test_the_same_customer_always_gets_the_same_pick(
    customer: uuid.UUID, step: uuid.UUID, holdout: int
) -> None:
    assert pick(customer, step, VARIANTS, holdout) == pick(customer, step, VARIANTS, holdout)


def test_variants_and_holdout_follow_the_shares() -> None:
    step = uuid.uuid4()
    picks = [pick(uuid.uuid4(), step, VARIANTS, 10) for _ in range(20_000)]
    held = sum(p.holdout for p in picks)
    counts = Counter(p.template for p in picks if not p.holdout)
    assert 0.08 < held / len(picks) < 0.12
    assert 2.7 < counts["a"] / counts["b"] < 3.3
    assert all(p.template is None for p in picks if p.holdout)


def test_a_tenant_window_is_read_and_may_only_narrow_the_law() -> None:
    narrow = window_of(
        CollectionSettings(window={"weekdays": ["09:00", "18:00"], "saturday": None})
    )
    assert narrow.weekdays == (time(9), time(18)) and narrow.saturday is None
    assert window_of(None).saturday == (time(8), time(14))
    with pytest.raises(WindowTooWide):
        window_of(CollectionSettings(window={"weekdays": ["07:00", "22:00"]}))
