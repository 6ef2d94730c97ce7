"""What a lost database or Redis looks like from inside a process: a connection refused (the
server restarting), reset, or cut mid-query (a failover, ``pg_terminate_backend``), which
SQLAlchemy wraps as ``DBAPIError`` with ``connection_invalidated``.  Nobody's mistake, and
over in seconds: services answer 503 with Retry-After, workers log one line and leave the job
to the relay's sweeper."""

from __future__ import annotations

import asyncpg
import redis.exceptions as redis_errors
from sqlalchemy.exc import DBAPIError

_CONNECTION_LOST = (
    ConnectionError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    redis_errors.ConnectionError,
    redis_errors.TimeoutError,
)


def is_outage(exc: BaseException) -> bool:
    """Whether ``exc`` says a database or Redis connection was lost or refused."""
    if isinstance(exc, DBAPIError):
        return bool(exc.connection_invalidated) or isinstance(exc.orig, _CONNECTION_LOST)
    return isinstance(exc, _CONNECTION_LOST)


def cause_of(exc: BaseException) -> str:
    """The driver's error class, without the statement SQLAlchemy adds to its message."""
    return type(exc.orig if isinstance(exc, DBAPIError) else exc).__name__
