"""A deny-list for live access tokens.

Access tokens are self-contained and live at most 15 minutes; revoking one (or its session, or
its client) writes a Redis key that outlives it and publishes the fact.  Every api process keeps
an in-memory view of the deny-list — loaded at start, updated from the pub/sub channel within
milliseconds, and fully re-read every 30 s in case a message was missed — so checking a request
costs no round trip.  Refresh tokens and clients are revoked in Postgres, which stays the source
of truth: a lost Redis only shortens the deny-list to what expires anyway within 15 minutes.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

import redis.asyncio as aioredis
import structlog

log = structlog.get_logger("quita.revocation")

_PREFIX = "quita:revoked"
CHANNEL = "quita:revocations"
_RESYNC_SECONDS = 30.0


async def revoke(redis: aioredis.Redis, kind: str, value: str, *, at: int, ttl_s: int) -> None:
    """Revoke the access tokens of ``kind`` (``jti``, ``sid``, ``client``) issued up to ``at``."""
    pipe = redis.pipeline(transaction=False)
    pipe.set(f"{_PREFIX}:{kind}:{value}", at, ex=max(ttl_s, 1))
    pipe.publish(CHANNEL, f"{kind}|{value}|{at}|{ttl_s}")
    await pipe.execute()


class RevocationView:
    """This process's copy of the deny-list."""

    def __init__(self, redis: aioredis.Redis) -> None:
        self.redis = redis
        self._entries: dict[str, tuple[int, float]] = {}  # "kind:value" -> (at, expires)
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    def note(self, kind: str, value: str, at: int, ttl_s: int) -> None:
        self._entries[f"{kind}:{value}"] = (at, time.time() + ttl_s)

    def is_revoked(
        self, *, token_id: str, session_id: str | None, client_id: str, issued_at: int
    ) -> bool:
        for key in (
            f"jti:{token_id}",
            f"client:{client_id}",
            f"sid:{session_id}" if session_id else None,
        ):
            entry = self._entries.get(key) if key else None
            if entry is not None and entry[0] >= issued_at:
                return True
        return False

    async def start(self) -> None:
        """Load the deny-list and follow it; if Redis is down, keep trying in the background
        (the service still starts, and /ready says what is missing)."""
        try:
            await self.resync()
        except (aioredis.RedisError, OSError) as exc:
            log.warning("revocation.initial_load_failed", error=str(exc))
        self._task = asyncio.create_task(self._follow())

    async def stop(self) -> None:
        # redis-py's get_message may swallow a cancellation, so the loop also checks a flag.
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            await asyncio.wait({self._task}, timeout=3)

    async def resync(self) -> None:
        """Re-read every deny-list key from Redis (what pub/sub might have missed)."""
        entries: dict[str, tuple[int, float]] = {}
        now = time.time()
        async for key in self.redis.scan_iter(match=f"{_PREFIX}:*", count=1000):
            pipe = self.redis.pipeline(transaction=False)
            pipe.get(key)
            pipe.ttl(key)
            value, ttl = await pipe.execute()
            if value is not None:
                name = key.decode() if isinstance(key, bytes) else key
                entries[name.removeprefix(f"{_PREFIX}:")] = (int(value), now + max(int(ttl), 1))
        # Keep what arrived by pub/sub meanwhile, drop what has expired.
        for name, entry in self._entries.items():
            if entry[1] > now:
                entries.setdefault(name, entry)
        self._entries = entries

    async def _follow(self) -> None:
        while not self._stopping:
            pubsub = self.redis.pubsub()
            try:
                await pubsub.subscribe(CHANNEL)
                await self.resync()  # anything published before we listened
                last_sync = time.monotonic()
                while not self._stopping:
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                    if message is not None:
                        self._apply(message["data"])
                    if time.monotonic() - last_sync > _RESYNC_SECONDS:
                        await self.resync()
                        last_sync = time.monotonic()
            except asyncio.CancelledError:
                raise
            except (aioredis.RedisError, OSError) as exc:
                log.warning("revocation.follow_failed", error=str(exc))
                await asyncio.sleep(1.0)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call,unused-ignore]

    def _apply(self, data: bytes | str) -> None:
        text = data.decode() if isinstance(data, bytes) else data
        try:
            kind, value, at, ttl = text.split("|")
            self.note(kind, value, int(at), int(ttl))
        except ValueError:
            log.warning("revocation.bad_message")
