"""The api's authentication state: signing keys, the OAuth server, rate limiters."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta

from litestar import Litestar
from redis.asyncio import Redis

from services.common.http import resources
from shared.domains.identity import revocation
from shared.domains.identity.keys import KeyCache
from shared.domains.identity.oauth import QuitaAuthorizationServer
from shared.domains.identity.revocation import RevocationView
from shared.domains.identity.tokens import AccessToken
from shared.ratelimit import FailureBackoff, RateLimiter
from shared.tenancy import Principal

# Verified tokens kept per process: a token is checked (signature, claims) once, not per request.
_VERIFIED_MAX = 20_000


@dataclass
class AuthState:
    keys: KeyCache
    server: QuitaAuthorizationServer
    limiter: RateLimiter
    backoff: FailureBackoff
    revocations: RevocationView
    verified: dict[str, tuple[AccessToken, Principal | None]] = field(default_factory=dict)

    async def revoke(self, redis: Redis, kind: str, value: str, *, at: int, ttl_s: int) -> None:
        """Deny-list ``kind:value`` everywhere: here at once, in other processes via pub/sub."""
        await revocation.revoke(redis, kind, value, at=at, ttl_s=ttl_s)
        self.revocations.note(kind, value, at, ttl_s)

    def remember(self, raw: str, token: AccessToken, principal: Principal | None) -> None:
        if len(self.verified) >= _VERIFIED_MAX:
            # Drop the oldest quarter (dicts keep insertion order).
            for key in list(self.verified)[: _VERIFIED_MAX // 4]:
                del self.verified[key]
        self.verified[raw] = (token, principal)


def auth_state(app: Litestar) -> AuthState:
    state: AuthState = app.state.auth
    return state


@asynccontextmanager
async def auth_lifespan(app: Litestar) -> AsyncIterator[None]:
    """Runs after the common lifespan: the sessionmaker and Redis are on ``app.state``."""
    res = resources(app.state)
    revocations = RevocationView(res.redis)
    app.state.auth = AuthState(
        keys=KeyCache(res.sessionmaker, timedelta(seconds=res.settings.access_token_ttl_s)),
        server=QuitaAuthorizationServer(),
        limiter=RateLimiter(res.redis),
        backoff=FailureBackoff(res.redis),
        revocations=revocations,
    )
    await revocations.start()
    try:
        yield
    finally:
        await revocations.stop()
