"""The api's authentication state: signing keys, the OAuth server, rate limiters."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta

from litestar import Litestar

from services.common.http import resources
from shared.domains.identity.keys import KeyCache
from shared.domains.identity.oauth import QuitaAuthorizationServer
from shared.ratelimit import FailureBackoff, RateLimiter


@dataclass
class AuthState:
    keys: KeyCache
    server: QuitaAuthorizationServer
    limiter: RateLimiter
    backoff: FailureBackoff


def auth_state(app: Litestar) -> AuthState:
    state: AuthState = app.state.auth
    return state


@asynccontextmanager
async def auth_lifespan(app: Litestar) -> AsyncIterator[None]:
    """Runs after the common lifespan: the sessionmaker and Redis are on ``app.state``."""
    res = resources(app.state)
    app.state.auth = AuthState(
        keys=KeyCache(res.sessionmaker, timedelta(seconds=res.settings.access_token_ttl_s)),
        server=QuitaAuthorizationServer(),
        limiter=RateLimiter(res.redis),
        backoff=FailureBackoff(res.redis),
    )
    yield
