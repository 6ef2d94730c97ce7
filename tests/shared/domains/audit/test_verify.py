"""``verify`` recomputes every seal and link, and names what was edited, deleted or inserted."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.domains.audit.verify import VerifyResult, covering_seals, verify
from shared.tenancy import SYSTEM, use_scope
from tests.shared.domains.audit.conftest import Trail


async def _verify(trail: Trail, tenant_id: uuid.UUID) -> VerifyResult:
    async with trail.app() as session:
        await use_scope(session, SYSTEM)
        return await verify(session, tenant_id=tenant_id)


async def _sealed(trail: Trail, batches: int = 2, size: int = 5) -> tuple[uuid.UUID, list[int]]:
    tenant = trail.tenant()
    ids: list[int] = []
    for _ in range(batches):
        batch = await trail.write(tenant, size)
        await trail.seal_until(batch)
        ids += batch
    return tenant, ids


def _found(result: VerifyResult) -> set[tuple[str, int | None, int | None]]:
    return {(p.kind, p.seq, p.event_id) for p in result.problems}


async def test_an_untouched_chain_verifies_clean(trail: Trail) -> None:
    tenant, ids = await _sealed(trail)

    result = await _verify(trail, tenant)

    assert result.ok, result.problems
    [chain] = result.chains
    assert (chain.seals, chain.sealed_events, chain.pending) == (2, len(ids), 0)


async def test_an_edited_event_is_named_with_its_seal(trail: Trail) -> None:
    tenant, ids = await _sealed(trail)

    await trail.as_owner(
        """UPDATE audit_events SET data = jsonb_set(data, '{principal}', '"15.00"')
           WHERE id = :id""",
        id=ids[7],
    )

    result = await _verify(trail, tenant)
    assert _found(result) == {("edited", 2, ids[7])}
    assert result.chains[0].first_break == 2


async def test_an_edited_timestamp_is_named_too(trail: Trail) -> None:
    tenant, ids = await _sealed(trail, batches=1)

    await trail.as_owner(
        "UPDATE audit_events SET created_at = created_at - interval '1 day' WHERE id = :id",
        id=ids[2],
    )

    assert _found(await _verify(trail, tenant)) == {("edited", 1, ids[2])}


async def test_a_deleted_event_is_named_with_its_seal(trail: Trail) -> None:
    tenant, ids = await _sealed(trail)

    await trail.as_owner("DELETE FROM audit_events WHERE id = :id", id=ids[1])

    assert _found(await _verify(trail, tenant)) == {("missing", 1, ids[1])}


async def test_an_event_inserted_into_a_sealed_range_is_named(trail: Trail) -> None:
    tenant, ids = await _sealed(trail)
    first = (await trail.seals(tenant))[0]
    forged = ids[2] + 1_000_000_000  # any id; what gives it away is being below the horizon

    await trail.as_owner(
        """INSERT INTO audit_events (id, tenant_id, actor_type, action, data, txid)
           VALUES (:id, :t, 'user', 'installment.paid', '{}', :txid)""",
        id=forged,
        t=tenant,
        txid=first.to_txid - 1,
    )

    assert _found(await _verify(trail, tenant)) == {("inserted", 1, forged)}


async def test_an_event_moved_to_another_tenant_is_missing_from_its_chain(trail: Trail) -> None:
    tenant, ids = await _sealed(trail, batches=1)
    other, _ = await _sealed(trail, batches=1)

    await trail.as_owner(
        "UPDATE audit_events SET tenant_id = :o WHERE id = :id", o=other, id=ids[0]
    )

    assert _found(await _verify(trail, tenant)) == {("missing", 1, ids[0])}
    assert _found(await _verify(trail, other)) == {("inserted", 1, ids[0])}


async def test_a_tampered_seal_breaks_the_chain_there(trail: Trail) -> None:
    tenant, _ = await _sealed(trail, batches=3)

    await trail.as_owner(
        "UPDATE audit_seals SET digest = sha256(digest) WHERE tenant_id = :t AND seq = 2",
        t=tenant,
    )

    result = await _verify(trail, tenant)
    assert {(p.kind, p.seq) for p in result.problems} == {("broken", 2)}
    assert result.chains[0].first_break == 2


_SEAL_EDITS = {
    "from_txid": "from_txid - 1",
    "to_txid": "to_txid + 1",
    "first_event_id": "first_event_id - 1",
    "event_count": "event_count + 1",
    "event_ids": "array_replace(event_ids, event_ids[1], event_ids[1] + 1000000000)",
    "leaves": "overlay(leaves placing sha256(leaves) from 1)",
    "digest": "sha256(digest)",
    "prev_hash": "sha256(prev_hash)",
}


@pytest.mark.parametrize("column", sorted(_SEAL_EDITS))
async def test_any_edit_of_a_seal_breaks_the_chain_at_that_seal(trail: Trail, column: str) -> None:
    tenant, _ = await _sealed(trail, batches=3, size=3)

    await trail.as_owner(
        f"UPDATE audit_seals SET {column} = {_SEAL_EDITS[column]} WHERE tenant_id = :t AND seq = 2",
        t=tenant,
    )

    result = await _verify(trail, tenant)
    assert ("broken", 2) in {(p.kind, p.seq) for p in result.problems}
    assert result.chains[0].first_break == 2


async def test_a_seal_rebuilt_over_edited_events_still_breaks_the_next_link(
    trail: Trail,
) -> None:
    tenant, _ = await _sealed(trail, batches=3)
    [_, second, _] = await trail.seals(tenant)

    await trail.as_owner(
        "UPDATE audit_seals SET seal_hash = sha256(seal_hash) WHERE id = :id", id=second.id
    )

    assert {(p.kind, p.seq) for p in (await _verify(trail, tenant)).problems} == {
        ("broken", 2),
        ("broken", 3),
    }


async def test_a_deleted_seal_is_a_gap_and_its_events_unsealed(trail: Trail) -> None:
    tenant, ids = await _sealed(trail, batches=3, size=2)

    await trail.as_owner("DELETE FROM audit_seals WHERE tenant_id = :t AND seq = 2", t=tenant)

    assert _found(await _verify(trail, tenant)) == {
        ("broken", 3, None),
        ("inserted", None, ids[2]),
        ("inserted", None, ids[3]),
    }


async def test_events_not_sealed_yet_are_pending_not_problems(trail: Trail) -> None:
    tenant, _ = await _sealed(trail, batches=1)
    await trail.write(tenant, 3)

    result = await _verify(trail, tenant)

    assert result.ok
    assert result.chains[0].pending == 3


async def test_covering_seals_name_the_seals_of_a_set_of_events(trail: Trail) -> None:
    tenant, ids = await _sealed(trail, batches=2, size=3)
    later = await trail.write(tenant, 1)

    async with trail.app() as session:
        await use_scope(session, SYSTEM)
        coverage = await covering_seals(session, tenant, [ids[0], ids[4], *later])
        again = await covering_seals(session, tenant, [ids[4], ids[0], *later])

    assert [seq for _, seq, _ in coverage.seals] == [1, 2]
    assert coverage.unsealed == later
    assert coverage.digest is not None and coverage.digest == again.digest


_EDITS = {
    "action": "'installment.deleted'",
    "actor_id": "'someone-else'",
    "subject_id": "'PAR-9999'",
    "request_id": "'req-forged'",
    "data": """data || '{"principal": "0.01"}'""",
    "created_at": "created_at + interval '1 microsecond'",
    "txid": "txid + 1",
}


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(victim=st.integers(min_value=0, max_value=11), column=st.sampled_from(sorted(_EDITS)))
async def test_any_single_edit_of_any_event_is_detected(
    trail: Trail, victim: int, column: str
) -> None:
    tenant, ids = await _sealed(trail, batches=2, size=6)

    await trail.as_owner(
        f"UPDATE audit_events SET {column} = {_EDITS[column]} WHERE id = :id", id=ids[victim]
    )

    result = await _verify(trail, tenant)
    assert ("edited", 1 + victim // 6, ids[victim]) in _found(result)


async def test_a_deleted_last_seal_shows_against_the_other_chains_and_sealing_goes_on(
    trail: Trail,
) -> None:
    victim, witness = trail.tenant(), trail.tenant()
    ids = await trail.write(victim, 2)
    witnessed = await trail.write(witness, 2)
    # both chains sealed past the victim's events (another transaction on the server may have
    # held the first round's horizon between them)
    await trail.seal_until([*ids, *witnessed])
    await trail.as_owner("DELETE FROM audit_seals WHERE tenant_id = :t", t=victim)

    later = await trail.write(witness, 1)
    await trail.seal_until(later)

    assert _found(await _verify(trail, victim)) == {
        ("inserted", None, ids[0]),
        ("inserted", None, ids[1]),
    }
    assert (await _verify(trail, witness)).ok
