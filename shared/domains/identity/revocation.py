"""A deny-list for live access tokens.

Access tokens are self-contained and live at most 15 minutes; revoking one (or its session, or
its client) writes a Redis key that outlives it.  Refresh tokens and clients are revoked in
Postgres, which stays the source of truth: a lost Redis only shortens the deny-list to what
expires anyway within the access-token lifetime.
"""

from __future__ import annotations

import redis.asyncio as aioredis

_PREFIX = "quita:revoked"


def _keys(token_id: str, session_id: str | None, client_id: str) -> list[str]:
    keys = [f"{_PREFIX}:jti:{token_id}", f"{_PREFIX}:client:{client_id}"]
    if session_id:
        keys.append(f"{_PREFIX}:sid:{session_id}")
    return keys


async def is_revoked(
    redis: aioredis.Redis, *, token_id: str, session_id: str | None, client_id: str, issued_at: int
) -> bool:
    """True when the token, its session, or its client was revoked after it was issued."""
    values = await redis.mget(_keys(token_id, session_id, client_id))
    return any(v is not None and int(v) >= issued_at for v in values)


async def revoke(redis: aioredis.Redis, kind: str, value: str, *, at: int, ttl_s: int) -> None:
    """Revoke the access tokens of ``kind`` (``jti``, ``sid``, ``client``) issued up to ``at``."""
    await redis.set(f"{_PREFIX}:{kind}:{value}", at, ex=max(ttl_s, 1))
