"""Sealing: rounds over ended transactions, one chain per tenant, never skipping an event."""

from __future__ import annotations

import asyncio

from sqlalchemy import text

from shared.domains.audit.seal import SEAL_LOCK, seal_round
from shared.domains.audit.service import record
from shared.domains.audit.verify import verify
from shared.tenancy import SYSTEM, use_scope
from tests.shared.domains.audit.conftest import Trail


async def _round(trail: Trail, **kwargs: int) -> object:
    async with trail.app() as session:
        await use_scope(session, SYSTEM)
        done = await seal_round(session, **kwargs)
        await session.commit()
        return done


async def _sealed_ids(trail: Trail, tenant: object) -> list[int]:
    return sorted(i for s in await trail.seals(tenant) for i in s.event_ids)  # type: ignore[arg-type]


async def test_sealing_again_seals_nothing_new(trail: Trail) -> None:
    tenant = trail.tenant()
    ids = await trail.write(tenant, 4)
    await trail.seal_until(ids)

    await _round(trail)

    [seal] = await trail.seals(tenant)
    assert (seal.seq, seal.event_count, list(seal.event_ids)) == (1, 4, ids)


async def test_each_tenant_gets_its_own_chain(trail: Trail) -> None:
    one, two = trail.tenant(), trail.tenant()
    first = await trail.write(one, 2)
    second = await trail.write(two, 3)
    await trail.seal_until(first + second)
    more = await trail.write(one, 1)
    await trail.seal_until(more)

    assert [s.seq for s in await trail.seals(one)] == [1, 2]
    assert [s.seq for s in await trail.seals(two)] == [1]
    assert await _sealed_ids(trail, one) == first + more


async def test_two_sealers_at_once_make_one_chain(trail: Trail) -> None:
    tenants = [trail.tenant() for _ in range(3)]
    ids = [i for t in tenants for i in await trail.write(t, 5)]

    for _ in range(3):
        await asyncio.gather(_round(trail), _round(trail), _round(trail))
    await trail.seal_until(ids)

    for tenant in tenants:
        seals = await trail.seals(tenant)
        assert [s.seq for s in seals] == list(range(1, len(seals) + 1))
        assert len(await _sealed_ids(trail, tenant)) == 5
    async with trail.app() as session:
        await use_scope(session, SYSTEM)
        for tenant in tenants:
            assert (await verify(session, tenant_id=tenant)).ok


async def test_a_sealer_finding_the_round_taken_does_nothing(trail: Trail) -> None:
    tenant = trail.tenant()
    await trail.write(tenant, 2)

    async with trail.app() as holder:
        await holder.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": SEAL_LOCK})
        done = await _round(trail)
        await holder.rollback()

    assert done.locked is False  # type: ignore[attr-defined]
    assert await trail.seals(tenant) == []


async def test_an_event_committed_late_with_a_lower_id_is_sealed_later_not_lost(
    trail: Trail,
) -> None:
    tenant = trail.tenant()
    async with trail.app() as slow:
        await use_scope(slow, SYSTEM)
        await record(slow, "note.added", tenant_id=tenant, actor_type="user", actor_id="u-1")
        early = await slow.scalar(
            text("SELECT max(id) FROM audit_events WHERE tenant_id = :t"), {"t": tenant}
        )
        late = await trail.write(tenant, 2)  # committed while ``slow`` is still open
        for _ in range(3):
            await _round(trail)
        sealed_meanwhile = await _sealed_ids(trail, tenant)
        await slow.commit()

    await trail.seal_until([early, *late])

    assert early is not None and early < late[0]
    assert sealed_meanwhile == []  # the sealer waited for the open transaction
    assert await _sealed_ids(trail, tenant) == [early, *late]
    async with trail.app() as session:
        await use_scope(session, SYSTEM)
        assert (await verify(session, tenant_id=tenant)).ok


async def test_small_batches_never_split_a_transaction(trail: Trail) -> None:
    tenant = trail.tenant()
    big = await trail.write(tenant, 5)
    small = await trail.write(tenant, 2)

    for _ in range(200):
        done = await _round(trail, max_events=3)
        if set(await _sealed_ids(trail, tenant)) >= set(big + small):
            break
        await asyncio.sleep(0.02 if not done.limited else 0)  # type: ignore[attr-defined]

    seals = await trail.seals(tenant)
    assert [list(s.event_ids) for s in seals] == [big, small]


async def test_the_minutely_job_seals_what_is_ready(trail: Trail) -> None:
    from shared.domains.audit.tasks import schedule_sealing
    from shared.queue import Outcome, run_job

    tenant = trail.tenant()
    ids = await trail.write(tenant, 3)
    async with trail.app() as session:
        await use_scope(session, SYSTEM)
        await schedule_sealing(session)
        job_id = await session.scalar(text("SELECT max(id) FROM outbox WHERE actor = 'audit.seal'"))
        await session.commit()

    try:
        outcome = await run_job(trail.app, job_id)
        await trail.seal_until(ids)  # the job's round may have found the horizon held back
    finally:
        await trail.as_owner("DELETE FROM outbox WHERE id = :id", id=job_id)

    assert outcome is Outcome.DONE
    assert await _sealed_ids(trail, tenant) == ids
