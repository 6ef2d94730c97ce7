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


class RateLimiter:
    """Atomic, cross-process GCRA limits keyed by an arbitrary string."""

    def __init__(self, redis: aioredis.Redis, *, prefix: str = "quita:rl") -> None:
        self._prefix = prefix
        self._script = redis.register_script(_GCRA)

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


__all__ = ["Decision", "FailureBackoff", "RateLimiter"]
