"""Engines and session factories.

Each process builds its own engine on its own event loop (asyncpg connections are bound to the
loop that opened them).  Sessions never commit on their own: the edge that opened them — a
request, a job, a webhook receiver — decides (DESIGN.md §3 rule 2).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from contextvars import ContextVar, Token

from sqlalchemy.engine import URL
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from shared.config import Settings

SessionMaker = async_sessionmaker[AsyncSession]


def create_engine(settings: Settings, *, process: str, admin: bool = False) -> AsyncEngine:
    """An asyncpg engine as the application role (or the owner with ``admin=True``)."""
    url: URL = settings.admin_dsn if admin else settings.app_dsn
    return create_async_engine(
        url,
        pool_size=settings.database_pool_size,
        max_overflow=settings.database_max_overflow,
        pool_pre_ping=True,
        connect_args={"server_settings": {"application_name": f"quita.{settings.env}.{process}"}},
    )


def create_sessionmaker(engine: AsyncEngine) -> SessionMaker:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=True)


# The sessionmaker jobs and services use when none is passed explicitly.  The worker sets it at
# boot; tests point it at their rolled-back connection.
_current: ContextVar[SessionMaker | None] = ContextVar("quita_sessionmaker", default=None)
_default: list[SessionMaker] = []


def set_default_sessionmaker(maker: SessionMaker | None) -> None:
    _default[:] = [maker] if maker is not None else []


def use_sessionmaker(maker: SessionMaker) -> Token[SessionMaker | None]:
    """Override the sessionmaker for the current context; undo with ``reset_sessionmaker``."""
    return _current.set(maker)


def reset_sessionmaker(token: Token[SessionMaker | None]) -> None:
    _current.reset(token)


def get_sessionmaker() -> SessionMaker:
    maker = _current.get() or (_default[0] if _default else None)
    if maker is None:
        raise RuntimeError("no sessionmaker configured for this process")
    return maker


@asynccontextmanager
async def unit_of_work() -> AsyncIterator[AsyncSession]:
    """A session that commits when the block ends normally and rolls back otherwise."""
    async with get_sessionmaker()() as session:
        try:
            yield session
        except BaseException:
            await session.rollback()
            raise
        await session.commit()


async def flush_unique(session: AsyncSession, conflict: Exception) -> None:
    """Flush in a savepoint; a unique violation raises ``conflict`` and leaves the session
    usable (the caller's transaction goes on)."""
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError as exc:
        raise conflict from exc
