from __future__ import annotations

import ast
from pathlib import Path

import pytest
import structlog
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

import shared.tasks  # noqa: F401
from shared.db import SessionMaker
from shared.models import OutboxJob
from shared.queue import REGISTRY, UnknownJob, enqueue

ROOT = Path(__file__).resolve().parents[3]


async def test_enqueue_writes_the_job_in_the_callers_transaction(session: AsyncSession) -> None:
    job_id = await enqueue(session, "system.ping", note="hi")

    job = (await session.execute(select(OutboxJob).where(OutboxJob.id == job_id))).scalar_one()
    assert (job.actor, job.queue, job.args) == ("system.ping", "default", {"note": "hi"})
    assert job.dispatched_at is None and job.done_at is None


async def test_a_rolled_back_change_leaves_no_job(sessionmaker: SessionMaker) -> None:
    async with sessionmaker() as s:
        await enqueue(s, "system.ping")
        await s.rollback()

    async with sessionmaker() as s:
        count = (await s.execute(text("SELECT count(*) FROM outbox"))).scalar_one()
    assert count == 0


async def test_enqueueing_an_unregistered_job_is_refused(session: AsyncSession) -> None:
    with pytest.raises(UnknownJob, match=r"no job named 'system\.nope'"):
        await enqueue(session, "system.nope")


async def test_same_dedupe_key_creates_one_job(session: AsyncSession) -> None:
    first = await enqueue(session, "system.ping", dedupe_key="ping:2026-11-23")
    second = await enqueue(session, "system.ping", dedupe_key="ping:2026-11-23")

    assert first is not None
    assert second is None
    assert (await session.execute(text("SELECT count(*) FROM outbox"))).scalar_one() == 1


async def test_the_request_id_travels_with_the_job(session: AsyncSession) -> None:
    with structlog.contextvars.bound_contextvars(request_id="req-abc"):
        job_id = await enqueue(session, "system.ping")

    job = await session.get(OutboxJob, job_id)
    assert job is not None and job.correlation_id == "req-abc"


def _literal_job_names() -> set[str]:
    """Every job name written as a string literal to ``enqueue(...)`` in the product's code."""
    names: set[str] = set()
    for path in [*ROOT.joinpath("shared").rglob("*.py"), *ROOT.joinpath("services").rglob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if (
                isinstance(node, ast.Call)
                and getattr(node.func, "id", getattr(node.func, "attr", None)) == "enqueue"
                and len(node.args) >= 2
                and isinstance(node.args[1], ast.Constant)
                and isinstance(node.args[1].value, str)
            ):
                names.add(node.args[1].value)
    return names


def test_every_job_name_written_to_the_outbox_is_a_registered_job() -> None:
    names = _literal_job_names()

    assert "system.ping" in names  # the scan sees real call sites
    assert names - set(REGISTRY) == set()


def test_every_registered_job_is_declared_as_a_dramatiq_actor() -> None:
    from shared.config import Settings
    from shared.queue.broker import build_broker, declare_actors

    broker = build_broker(Settings(), resources=False)
    declare_actors(broker)

    assert set(REGISTRY) <= set(broker.actors)
    for name, spec in REGISTRY.items():
        assert broker.get_actor(name).queue_name == spec.queue
