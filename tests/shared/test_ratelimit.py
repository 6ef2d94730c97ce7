from __future__ import annotations

import asyncio
import itertools

import pytest
import redis.asyncio as aioredis

from shared.config import Settings
from shared.ratelimit import Decision, FailureBackoff, RateLimiter


async def test_a_burst_is_allowed_then_refused(redis: aioredis.Redis) -> None:
    limiter = RateLimiter(redis)

    decisions = [await limiter.hit("login:ip:1", rate=1, burst=3) for _ in range(4)]

    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert [d.remaining for d in decisions] == [2, 1, 0, 0]
    assert decisions[0].retry_after_s == 0
    assert 0 < decisions[3].retry_after_s <= 1.0


async def test_keys_have_separate_buckets(redis: aioredis.Redis) -> None:
    limiter = RateLimiter(redis)

    assert (await limiter.hit("a", rate=1, burst=1)).allowed
    assert not (await limiter.hit("a", rate=1, burst=1)).allowed
    assert (await limiter.hit("b", rate=1, burst=1)).allowed


async def test_the_bucket_refills_over_time(redis: aioredis.Redis) -> None:
    limiter = RateLimiter(redis)
    for _ in range(2):
        assert (await limiter.hit("refill", rate=10, burst=2)).allowed
    refused = await limiter.hit("refill", rate=10, burst=2)
    assert not refused.allowed
    assert 0 < refused.retry_after_s <= 0.1 + 0.01

    await asyncio.sleep(0.25)

    # 0.25 s at 10/s refills the two units (and no more than the burst).
    decisions = [await limiter.hit("refill", rate=10, burst=2) for _ in range(3)]
    assert [d.allowed for d in decisions] == [True, True, False]


async def test_cost_spends_several_units_and_a_refusal_spends_none(
    redis: aioredis.Redis,
) -> None:
    limiter = RateLimiter(redis)

    assert await limiter.hit("cost", rate=0.01, burst=5, cost=3) == Decision(True, 2, 0.0)
    refused = await limiter.hit("cost", rate=0.01, burst=5, cost=3)
    assert not refused.allowed
    assert refused.remaining == 2
    assert 90 < refused.retry_after_s <= 100  # one more unit at 0.01/s
    assert (await limiter.hit("cost", rate=0.01, burst=5, cost=2)).allowed


async def test_idle_keys_expire_once_the_bucket_would_be_full(redis: aioredis.Redis) -> None:
    limiter = RateLimiter(redis, prefix="t:rl")

    await limiter.hit("idle", rate=2, burst=4, cost=3)

    assert 0 < await redis.pttl("t:rl:idle") <= 1500  # 3 units at 2/s


@pytest.mark.parametrize(
    ("rate", "burst", "cost"), [(0, 1, 1), (-1, 1, 1), (float("inf"), 1, 1), (1, 0, 0), (1, 2, 3)]
)
async def test_nonsense_limits_are_refused(
    redis: aioredis.Redis, rate: float, burst: int, cost: int
) -> None:
    with pytest.raises(ValueError):
        await RateLimiter(redis).hit("k", rate=rate, burst=burst, cost=cost)


async def test_processes_share_one_bucket_atomically(
    redis: aioredis.Redis, settings: Settings
) -> None:
    other = aioredis.Redis.from_url(settings.redis_url)
    try:
        limiters = [RateLimiter(redis), RateLimiter(other)]

        decisions = await asyncio.gather(
            *(limiters[i % 2].hit("shared", rate=0.001, burst=20) for i in range(50))
        )

        assert sum(d.allowed for d in decisions) == 20
        assert sorted(d.remaining for d in decisions if d.allowed) == list(range(20))
    finally:
        await other.aclose()


async def test_failures_lock_out_with_growing_delays(redis: aioredis.Redis) -> None:
    backoff = FailureBackoff(redis)

    assert [await backoff.record_failure("user:1") for _ in range(5)] == [0.0] * 5
    assert await backoff.locked_for("user:1") == 0
    assert [await backoff.record_failure("user:1") for _ in range(3)] == [2.0, 4.0, 8.0]
    assert 7 < await backoff.locked_for("user:1") <= 8
    assert await backoff.locked_for("user:2") == 0


async def test_lockouts_are_capped(redis: aioredis.Redis) -> None:
    backoff = FailureBackoff(redis)

    lockouts = [await backoff.record_failure("user:1") for _ in range(20)]

    assert lockouts[13] == 512
    assert lockouts[14:] == [900.0] * 6
    assert 899 < await backoff.locked_for("user:1") <= 900


async def test_failure_counts_are_forgotten_after_a_quiet_day(redis: aioredis.Redis) -> None:
    backoff = FailureBackoff(redis, prefix="t:fail")

    await backoff.record_failure("user:1")

    assert 86_000 < await redis.ttl("t:fail:user:1:n") <= 86_400


async def test_reset_clears_the_lockout_and_the_count(redis: aioredis.Redis) -> None:
    backoff = FailureBackoff(redis)
    for _ in range(7):
        await backoff.record_failure("user:1")
    assert await backoff.locked_for("user:1") > 0

    await backoff.reset("user:1")

    assert await backoff.locked_for("user:1") == 0
    assert await backoff.record_failure("user:1") == 0


async def test_reservations_queue_callers_at_the_rate_instead_of_refusing(
    redis: aioredis.Redis,
) -> None:
    limiter = RateLimiter(redis)

    slots = [await limiter.reserve("number:1", rate=20, max_wait_s=0.5) for _ in range(5)]

    assert all(s.booked for s in slots)
    waits = [s.wait_s for s in slots]
    assert waits[0] == 0 and slots[0].slots == (0.0,)
    # each caller is booked one interval (50 ms) after the previous one, less the time it took
    for earlier, later in itertools.pairwise(waits):
        assert later - earlier == pytest.approx(0.05, abs=0.01)


async def test_a_batch_takes_consecutive_slots_and_the_next_caller_queues_behind_it(
    redis: aioredis.Redis,
) -> None:
    limiter = RateLimiter(redis)

    batch = await limiter.reserve("number:2", rate=100, count=10, max_wait_s=1)
    after = await limiter.reserve("number:2", rate=100, max_wait_s=1)

    assert batch.booked and len(batch.slots) == 10
    assert [round(s or 0, 2) for s in batch.slots] == [i / 100 for i in range(10)]
    assert after.wait_s == pytest.approx(0.10, abs=0.01)


async def test_a_slot_beyond_the_longest_wait_is_not_booked(redis: aioredis.Redis) -> None:
    limiter = RateLimiter(redis)
    assert (await limiter.reserve("number:3", rate=10, count=3, max_wait_s=0.25)).booked

    refused = await limiter.reserve("number:3", rate=10, count=3, max_wait_s=0.25)
    after = await limiter.reserve("number:3", rate=10, max_wait_s=1.0)

    assert not refused.booked and refused.slots == ()
    assert 0.25 < refused.wait_s <= 0.3
    # the refusal booked nothing: the next caller gets the slot the refused one was offered
    assert after.booked and after.wait_s == pytest.approx(refused.wait_s, abs=0.02)


async def test_a_unit_its_own_bucket_refuses_gets_no_slot_and_holds_nobody_up(
    redis: aioredis.Redis,
) -> None:
    limiter = RateLimiter(redis)
    # a recipient may get 2 at once, then one per second
    pair = {"each_rate": 1.0, "each_burst": 2}

    first = await limiter.reserve(
        "number:4", rate=100, max_wait_s=2, each=["pair:x", "pair:x", "pair:x", "pair:y"], **pair
    )

    assert first.booked
    x1, x2, x3, y = first.slots
    assert x3 is None  # the third to x in a row: refused by x's own bucket
    assert x1 is not None and x2 is not None and y is not None
    # ... and its slot went to the next unit: y follows x2 one interval later
    assert y - x2 == pytest.approx(0.01, abs=0.005)
    # x's own bucket stays spent whatever shared bucket asks next
    elsewhere = await limiter.reserve("number:5", rate=100, max_wait_s=2, each=["pair:x"], **pair)
    assert elsewhere.slots == (None,)
