"""Journaling verified POSTs a group at a time (group commit).

A receiver hands its POST to the app's :class:`JournalWriter` and answers once the writer says
it is committed — so a 200 still means "kept", as before.  The writer journals every POST that
arrived while the previous group was being written in one transaction and one statement
(``journal.journal_many``): under load, tens of POSTs share the round trips, the commit and its
WAL flush that each paid alone; a lone POST is written at once, as before.  A group the
database refuses is written again one POST at a time, so one bad POST fails alone (its provider
retries it) and the others are kept.
"""

from __future__ import annotations

import asyncio
from typing import Any

import structlog
from litestar import Request
from sqlalchemy.ext.asyncio import AsyncSession

from services.common.http import resources
from shared.db import SessionMaker
from shared.domains.inbound.journal import Journaled, Post, journal_many
from shared.tenancy import SYSTEM, use_scope

log = structlog.get_logger("quita.webhooks.writer")

MAX_GROUP = 32  # POSTs per statement: bigger groups save little more and make everyone wait


class JournalWriter:
    def __init__(self, sessionmaker: SessionMaker) -> None:
        self._sessionmaker = sessionmaker
        self._waiting: list[tuple[Post, asyncio.Future[Journaled]]] = []
        self._running: asyncio.Task[None] | None = None

    async def keep(self, post: Post) -> Journaled:
        """Journal ``post``: returns once its group is committed."""
        done: asyncio.Future[Journaled] = asyncio.get_running_loop().create_future()
        self._waiting.append((post, done))
        if self._running is None or self._running.done():
            self._running = asyncio.create_task(self._drain())
        return await asyncio.shield(done)  # a client gone mid-write does not cancel the group

    async def _drain(self) -> None:
        while self._waiting:
            group, self._waiting = self._waiting[:MAX_GROUP], self._waiting[MAX_GROUP:]
            try:
                answers = await self._write([post for post, _ in group])
            except Exception as exc:
                if len(group) == 1:
                    _settle(group[0][1], exc)
                    continue
                log.warning("webhooks.group_refused", posts=len(group), error=type(exc).__name__)
                for post, done in group:  # each alone: only the bad one fails
                    try:
                        (answer,) = await self._write([post])
                    except Exception as alone:
                        _settle(done, alone)
                    else:
                        _settle(done, answer)
                continue
            for (_, done), answer in zip(group, answers, strict=True):
                _settle(done, answer)

    async def _write(self, posts: list[Post]) -> list[Journaled]:
        async with self._sessionmaker() as session:
            await use_scope(session, SYSTEM)
            answers = await journal_many(session, posts)
            await session.commit()
            return answers


def _settle(done: asyncio.Future[Journaled], outcome: Any) -> None:
    if done.done():
        return
    if isinstance(outcome, BaseException):
        done.set_exception(outcome)
    else:
        done.set_result(outcome)


async def keep(request: Request[Any, Any, Any], db: AsyncSession, post: Post) -> Journaled:
    """Journal ``post`` through this app's writer, after ending the request's own transaction
    (its reads: the routing), so no request holds a connection while its group waits for one."""
    if db.in_transaction():
        await db.commit()
    return await writer(request).keep(post)


def writer(request: Request[Any, Any, Any]) -> JournalWriter:
    """This app's writer (one per process: the app's event loop)."""
    state = request.app.state
    found: JournalWriter | None = state.get("journal_writer")
    if found is None:
        found = state["journal_writer"] = JournalWriter(resources(state).sessionmaker)
    return found
