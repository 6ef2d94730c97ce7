"""The webhooks' writer journals POSTs that arrive together in one transaction — each keeps its
own receipt, its own new and duplicate counts and its own jobs — and a POST the database
refuses fails alone: the others of its group are kept."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select

from services.webhooks.writer import JournalWriter
from shared.db import SessionMaker
from shared.domains.inbound.journal import EventIn, Post
from shared.models import OutboxJob, WebhookEvent, WebhookReceipt
from shared.tenancy import SYSTEM, use_scope


def _post(*keys: str, kind: str = "test.event") -> Post:
    events = [EventIn(key=k, kind=kind, payload={"k": k}) for k in keys]
    return Post("whatsapp", f"body {keys}".encode(), "application/json", events)


async def _count(maker: SessionMaker, model: type) -> int:
    async with maker() as session:
        await use_scope(session, SYSTEM)
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def test_posts_arriving_together_are_kept_each_with_its_own_counts(
    committed: SessionMaker,
) -> None:
    writer = JournalWriter(committed)
    posts = [_post(f"a{n}", f"b{n}") for n in range(30)] + [_post("a0", "c0")]

    answers = await asyncio.gather(*(writer.keep(p) for p in posts))

    assert [(a.new, a.duplicates) for a in answers[:30]] == [(2, 0)] * 30
    assert (answers[30].new, answers[30].duplicates) == (1, 1)  # a0 came in an earlier POST
    assert len({a.receipt_id for a in answers}) == 31
    assert await _count(committed, WebhookReceipt) == 31
    assert await _count(committed, WebhookEvent) == 61
    assert await _count(committed, OutboxJob) == 61  # one job per new event
    async with committed() as session:
        await use_scope(session, SYSTEM)
        receipt = await session.get_one(WebhookReceipt, answers[30].receipt_id)
        assert (receipt.events, receipt.duplicates, receipt.body) == (1, 1, posts[30].body)


async def test_a_post_the_database_refuses_fails_alone(committed: SessionMaker) -> None:
    writer = JournalWriter(committed)
    # a kind longer than the column holds: the database refuses the statement
    posts = [_post("x1"), _post("x2", kind="k" * 61), _post("x3")]

    answers = await asyncio.gather(*(writer.keep(p) for p in posts), return_exceptions=True)

    assert [isinstance(a, Exception) for a in answers] == [False, True, False]
    assert await _count(committed, WebhookReceipt) == 2
    assert await _count(committed, WebhookEvent) == 2


@pytest.mark.parametrize("size", [1, 250])
async def test_any_number_of_posts_at_once_is_kept_exactly_once(
    committed: SessionMaker, size: int
) -> None:
    writer = JournalWriter(committed)
    answers = await asyncio.gather(*(writer.keep(_post(f"k{n}")) for n in range(size)))
    assert sum(a.new for a in answers) == size
    assert await _count(committed, WebhookReceipt) == size
