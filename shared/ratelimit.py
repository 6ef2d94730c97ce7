"""Rate limits and failure lockouts shared by every process, kept in Redis.

``RateLimiter`` is GCRA (the token bucket, stored as one timestamp): ``burst`` requests at once,
then ``rate`` per second.  Each check is one Lua script, so it is atomic and costs one round trip;
the script reads Redis's clock, so processes with skewed clocks still agree.  State expires once
the bucket is full again, so idle keys vanish.

``FailureBackoff`` counts failures (e.g. wrong passwords) per key and locks the key out for
exponentially growing periods once a threshold is passed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import redis.asyncio as aioredis

# KEYS[1]: the bucket.  ARGV: emission interval (µs per unit), burst, cost.
# Returns {allowed (0/1), remaining, retry_after seconds as a string (Lua numbers returned to
# Redis are truncated to integers)}.  The TAT (theoretical arrival time) is stored with %.17g:
# the default number-to-string conversion keeps 14 digits, too few for microseconds since 1970.
_GCRA = """
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tau = interval * burst
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
local new_tat = tat + cost * interval
local allow_at = new_tat - tau
if allow_at > now then
  local remaining = math.max(0, math.floor((tau - (tat - now)) / interval + 1e-9))
  return {0, remaining, string.format('%.6f', (allow_at - now) / 1000000)}
end
redis.call('SET', KEYS[1], string.format('%.17g', new_tat),
           'PX', math.max(1, math.ceil((new_tat - now) / 1000)))
return {1, math.floor((now - allow_at) / interval + 1e-9), '0'}
"""

# KEYS[1]: the shared bucket; KEYS[2..]: optional per-unit buckets (one per unit).  ARGV: the
# longest wait for the first slot (µs), the shared bucket's interval and burst, the per-unit
# buckets' interval and burst, the number of units.  Units take consecutive slots of the shared
# bucket; a unit whose own bucket does not conform at its slot is refused (and its slot stays
# free).  Every booked bucket is charged as of the slot: TAT = max(TAT, slot) + interval.
# Returns {booked (0/1), seconds to the first slot (or, when not booked, to when it would be
# free), then each unit's seconds from now to its slot, '-' when refused}, as strings.
_RESERVE = """
local max_wait = tonumber(ARGV[1])
local interval, burst = tonumber(ARGV[2]), tonumber(ARGV[3])
local each_interval, each_burst = tonumber(ARGV[4]), tonumber(ARGV[5])
local count = tonumber(ARGV[6])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local function fmt(us) return string.format('%.6f', us / 1000000) end
local function charge(key, tat)
  redis.call('SET', key, string.format('%.17g', tat),
             'PX', math.max(1, math.ceil((tat - now) / 1000)))
end
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
local slot = math.max(now, tat + interval - interval * burst)
if slot - now > max_wait then return {0, fmt(slot - now)} end
local out = {1, fmt(slot - now)}
for i = 1, count do
  local own = KEYS[i + 1]
  local ok = true
  if own then
    local own_tat = tonumber(redis.call('GET', own)) or now
    if own_tat < now then own_tat = now end
    if own_tat + each_interval - each_interval * each_burst > slot then
      ok = false
    else
      charge(own, math.max(own_tat, slot) + each_interval)
    end
  end
  if ok then
    out[#out + 1] = fmt(slot - now)
    tat = math.max(tat, slot) + interval
    slot = math.max(now, tat + interval - interval * burst)
  else
    out[#out + 1] = '-'
  end
end
charge(KEYS[1], tat)
return out
"""

# KEYS[1]: failure count, KEYS[2]: lock.  ARGV: threshold, max lockout (s), quiet period (s).
# Returns the lockout now in force, in seconds, as a string.
_FAILURE = """
local threshold = tonumber(ARGV[1])
local cap = tonumber(ARGV[2])
local n = redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], ARGV[3])
if n <= threshold then return '0' end
local lockout = math.min(2 ^ (n - threshold), cap)
redis.call('SET', KEYS[2], '1', 'PX', math.ceil(lockout * 1000))
return string.format('%.3f', lockout)
"""


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of one check: ``remaining`` units left now; ``retry_after_s`` until this
    request would be allowed (0 when allowed)."""

    allowed: bool
    remaining: int
    retry_after_s: float


@dataclass(frozen=True, slots=True)
class Reservation:
    """Slots booked in a shared bucket (``booked``): each unit's seconds from now to its slot
    (``None``: refused by the unit's own bucket).  ``wait_s`` is the wait for the first slot —
    or, when nothing was booked, how long until the bucket has room."""

    booked: bool
    wait_s: float
    slots: tuple[float | None, ...] = ()


class RateLimiter:
    """Atomic, cross-process GCRA limits keyed by an arbitrary string."""

    def __init__(self, redis: aioredis.Redis, *, prefix: str = "quita:rl") -> None:
        self._prefix = prefix
        self._script = redis.register_script(_GCRA)
        self._reserve = redis.register_script(_RESERVE)

    async def hit(self, key: str, *, rate: float, burst: int, cost: int = 1) -> Decision:
        """Spend ``cost`` units from ``key``'s bucket (``burst`` units, refilled at ``rate`` per
        second) if it holds them; a refused hit spends nothing."""
        if not (rate > 0 and math.isfinite(rate)):
            raise ValueError("rate must be a positive number")
        if burst < 1 or not 0 <= cost <= burst:
            raise ValueError("need burst >= 1 and 0 <= cost <= burst")
        allowed, remaining, retry = await self._script(
            keys=[f"{self._prefix}:{key}"], args=[1_000_000 / rate, burst, cost]
        )
        return Decision(bool(allowed), int(remaining), float(retry))

    async def reserve(
        self,
        key: str,
        *,
        rate: float,
        burst: int = 1,
        count: int = 1,
        max_wait_s: float,
        each: Sequence[str] = (),
        each_rate: float = 1.0,
        each_burst: int = 1,
    ) -> Reservation:
        """Book ``count`` consecutive slots of ``key``'s bucket if the first is at most
        ``max_wait_s`` away; callers then wait for their slots.  Unlike :meth:`hit`, callers
        queue in order instead of polling, so one bucket paces many workers evenly.  ``each``
        names a bucket per unit (``count = len(each)``) that must also allow the unit at its
        slot, e.g. a recipient's own limit; a unit it refuses gets no slot.  Nothing is booked
        when the first slot is too far away."""
        count = len(each) or count
        for r, b in ((rate, burst), (each_rate, each_burst)):
            if not (r > 0 and math.isfinite(r)) or b < 1:
                raise ValueError("need a positive rate and burst >= 1")
        answer = await self._reserve(
            keys=[f"{self._prefix}:{k}" for k in (key, *each)],
            args=[
                max_wait_s * 1_000_000,
                1_000_000 / rate,
                burst,
                1_000_000 / each_rate,
                each_burst,
                count,
            ],
        )
        booked, wait, *slots = (v.decode() if isinstance(v, bytes) else v for v in answer)
        return Reservation(
            bool(int(booked)),
            float(wait),
            tuple(None if s == "-" else float(s) for s in slots),
        )


class FailureBackoff:
    """Lockouts after repeated failures: none for the first ``threshold`` failures, then
    ``2 ** (n - threshold)`` seconds after failure ``n``, capped at ``max_lockout_s``.  A key's
    count is forgotten after ``quiet_s`` seconds without failures."""

    def __init__(
        self,
        redis: aioredis.Redis,
        *,
        prefix: str = "quita:fail",
        threshold: int = 5,
        max_lockout_s: float = 900.0,
        quiet_s: int = 86_400,
    ) -> None:
        self._redis = redis
        self._prefix = prefix
        self._args = (threshold, max_lockout_s, quiet_s)
        self._script = redis.register_script(_FAILURE)

    def _keys(self, key: str) -> tuple[str, str]:
        return f"{self._prefix}:{key}:n", f"{self._prefix}:{key}:lock"

    async def record_failure(self, key: str) -> float:
        """Count one failure; return the lockout (seconds) now in force for ``key``."""
        lockout = await self._script(keys=list(self._keys(key)), args=list(self._args))
        return float(lockout)

    async def locked_for(self, key: str) -> float:
        """Seconds until ``key`` may try again (0 when not locked out)."""
        ttl_ms = await self._redis.pttl(self._keys(key)[1])
        return max(0, int(ttl_ms)) / 1000

    async def reset(self, key: str) -> None:
        """Forget ``key``'s failures and lift any lockout (e.g. after a success)."""
        await self._redis.delete(*self._keys(key))


__all__ = ["Decision", "FailureBackoff", "RateLimiter", "Reservation"]
