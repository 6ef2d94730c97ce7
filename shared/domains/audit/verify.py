"""Verifying the audit chains: every seal recomputed from the events it names, every link to
the seal before it; events found where a seal says nothing should be.

What it tells apart, per tenant chain (``tenant_id`` None: the platform's):

- ``edited``: a sealed event whose columns no longer hash to its leaf;
- ``missing``: an event a seal names that is gone (deleted, or moved to another tenant);
- ``inserted``: an event below the sealed horizon that no seal of its chain names;
- ``broken``: a seal whose own hash, Merkle root or link to the previous seal does not hold,
  or a gap in the sequence (a deleted seal).

Events above the horizon are ``pending``: the next round seals them. An event inserted with a
fresh transaction id is indistinguishable from a new one — it gets sealed, not flagged.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncSession

from shared.domains.audit.chain import (
    EVENT_COLUMNS,
    GENESIS,
    HASH_SIZE,
    combined_digest,
    leaf_hash,
    merkle_root,
    seal_hash,
    split_leaves,
)
from shared.domains.audit.seal import MIN_TXID


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing found wrong: ``kind`` is edited | missing | inserted | broken."""

    kind: str
    tenant_id: uuid.UUID | None
    seq: int | None
    event_id: int | None
    detail: str

    def describe(self) -> str:
        chain = f"tenant {self.tenant_id}" if self.tenant_id else "platform"
        where = f"seal #{self.seq}" if self.seq is not None else "no seal"
        event = f", event {self.event_id}" if self.event_id is not None else ""
        return f"{chain}, {where}{event}: {self.kind} — {self.detail}"


@dataclass(slots=True)
class ChainReport:
    tenant_id: uuid.UUID | None
    seals: int = 0
    sealed_events: int = 0
    pending: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def first_break(self) -> int | None:
        """The lowest seal seq with a problem (None when the chain holds)."""
        seqs = [p.seq for p in self.problems if p.seq is not None]
        return min(seqs) if seqs else None


@dataclass(slots=True)
class VerifyResult:
    chains: list[ChainReport]

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def problems(self) -> list[Problem]:
        return [p for c in self.chains for p in c.problems]

    def summary(self) -> str:
        seals = sum(c.seals for c in self.chains)
        events = sum(c.sealed_events for c in self.chains)
        pending = sum(c.pending for c in self.chains)
        state = "intact" if self.ok else f"{len(self.problems)} problem(s)"
        return (
            f"audit trail {state}: {len(self.chains)} chain(s), {seals} seal(s), "
            f"{events} sealed event(s), {pending} pending"
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "summary": self.summary(),
            "chains": [
                {
                    "tenant_id": str(c.tenant_id) if c.tenant_id else None,
                    "seals": c.seals,
                    "sealed_events": c.sealed_events,
                    "pending": c.pending,
                    "first_break": c.first_break,
                }
                for c in self.chains
            ],
            "problems": [
                {
                    "kind": p.kind,
                    "tenant_id": str(p.tenant_id) if p.tenant_id else None,
                    "seq": p.seq,
                    "event_id": p.event_id,
                    "detail": p.detail,
                }
                for p in self.problems
            ],
        }


_ALL = object()


async def verify(
    session: AsyncSession, *, tenant_id: uuid.UUID | object | None = _ALL
) -> VerifyResult:
    """Verify every chain, or only ``tenant_id``'s (``None``: the platform chain). Needs a
    scope that sees the chains (SYSTEM for all of them)."""
    horizon = await session.scalar(text("SELECT max(to_txid) FROM audit_seals"))
    horizon = MIN_TXID if horizon is None else horizon
    if tenant_id is _ALL:
        chains: Iterable[uuid.UUID | None] = await _chains(session)
    else:
        chains = [tenant_id]  # type: ignore[list-item]
    return VerifyResult([await verify_chain(session, c, horizon) for c in chains])


async def _chains(session: AsyncSession) -> list[uuid.UUID | None]:
    """Every chain with seals, every tenant, and the platform."""
    rows = await session.scalars(
        text(
            """SELECT DISTINCT tenant_id FROM audit_seals
               UNION SELECT id FROM tenants
               UNION SELECT NULL::uuid"""
        )
    )
    return sorted(rows, key=lambda t: (t is not None, str(t)))


def _chain_filter() -> str:
    return "tenant_id IS NOT DISTINCT FROM CAST(:tenant AS uuid)"


async def verify_chain(
    session: AsyncSession, tenant_id: uuid.UUID | None, horizon: int
) -> ChainReport:
    """Verify one chain: its seals in order, then the events no seal names."""
    report = ChainReport(tenant_id)
    prev_hash, prev_to, expected = GENESIS, MIN_TXID, 1
    ranges: list[tuple[int, int, int]] = []
    async for seal in _seals(session, tenant_id):
        report.seals += 1
        report.sealed_events += seal.event_count
        _check_link(report, seal, expected, prev_hash, prev_to)
        _check_seal(report, seal)
        await _check_events(session, report, seal)
        ranges.append((seal.from_txid, seal.to_txid, seal.seq))
        prev_hash, prev_to, expected = bytes(seal.seal_hash), seal.to_txid, seal.seq + 1
    await _check_strays(session, report, horizon, ranges)
    return report


async def _seals(
    session: AsyncSession, tenant_id: uuid.UUID | None, page: int = 100
) -> AsyncIterator[Row[Any]]:
    """A chain's seals in order, a page at a time (their leaves take 32 bytes an event)."""
    after = MIN_TXID
    while True:
        rows = (
            await session.execute(
                text(
                    f"""SELECT seq, from_txid, to_txid, first_event_id, last_event_id,
                               event_count, event_ids, leaves, digest, prev_hash, seal_hash
                        FROM audit_seals WHERE {_chain_filter()} AND seq > :after
                        ORDER BY seq LIMIT :page"""
                ),
                {"tenant": tenant_id, "after": after, "page": page},
            )
        ).all()
        for row in rows:
            yield row
        if len(rows) < page:
            return
        after = rows[-1].seq


def _check_link(
    report: ChainReport, seal: Row[Any], expected: int, prev_hash: bytes, prev_to: int
) -> None:
    def broken(detail: str) -> None:
        report.problems.append(Problem("broken", report.tenant_id, seal.seq, None, detail))

    if seal.seq != expected:
        broken(f"seal(s) #{expected}..#{seal.seq - 1} are gone")
    elif bytes(seal.prev_hash) != prev_hash:
        broken(f"does not follow seal #{seal.seq - 1} (previous hash differs)")
    if seal.from_txid != prev_to and seal.seq == expected:
        broken(f"its range does not continue seal #{seal.seq - 1}'s")


def _check_seal(report: ChainReport, seal: Row[Any]) -> None:
    def broken(detail: str) -> None:
        report.problems.append(Problem("broken", report.tenant_id, seal.seq, None, detail))

    ids, blob = list(seal.event_ids), bytes(seal.leaves)
    if len(blob) != HASH_SIZE * len(ids) or len(ids) != seal.event_count or not ids:
        broken("its event list and leaf hashes do not match its count")
        return
    if (ids[0], ids[-1]) != (seal.first_event_id, seal.last_event_id) or ids != sorted(ids):
        broken("its event ids are not its stated range, in order")
    if merkle_root(split_leaves(blob)) != bytes(seal.digest):
        broken("its digest is not the Merkle root of its leaves")
    recomputed = seal_hash(
        tenant_id=report.tenant_id,
        seq=seal.seq,
        from_txid=seal.from_txid,
        to_txid=seal.to_txid,
        event_ids=ids,
        digest=bytes(seal.digest),
        prev_hash=bytes(seal.prev_hash),
    )
    if recomputed != bytes(seal.seal_hash):
        broken("its seal hash does not match its contents")


async def _check_events(session: AsyncSession, report: ChainReport, seal: Row[Any]) -> None:
    """Each event the seal names must still exist, in this chain, with the same leaf hash."""
    expected = dict(zip(seal.event_ids, split_leaves(bytes(seal.leaves)), strict=False))
    rows = await session.execute(
        text(
            f"""SELECT {EVENT_COLUMNS} FROM audit_events
                WHERE {_chain_filter()} AND id BETWEEN :first AND :last
                  AND id = ANY(CAST(:ids AS bigint[]))"""
        ),
        {
            "tenant": report.tenant_id,
            "first": seal.first_event_id,
            "last": seal.last_event_id,
            "ids": list(expected),
        },
    )
    found = set()
    for event in rows.mappings():
        found.add(event["id"])
        if leaf_hash(event) != expected[event["id"]]:
            report.problems.append(
                Problem(
                    "edited",
                    report.tenant_id,
                    seal.seq,
                    event["id"],
                    "its contents differ from what was sealed",
                )
            )
    for event_id in sorted(set(expected) - found):
        report.problems.append(
            Problem(
                "missing",
                report.tenant_id,
                seal.seq,
                event_id,
                "sealed, no longer in this chain (deleted or moved)",
            )
        )


async def _check_strays(
    session: AsyncSession, report: ChainReport, horizon: int, ranges: Sequence[tuple[int, int, int]]
) -> None:
    """Events of the chain no seal names: pending above the horizon, inserted below it."""
    rows = await session.execute(
        text(
            f"""SELECT e.id, e.txid FROM audit_events e
                LEFT JOIN (SELECT unnest(s.event_ids) AS id FROM audit_seals s
                           WHERE s.{_chain_filter()}) m ON m.id = e.id
                WHERE e.{_chain_filter()} AND m.id IS NULL"""
        ),
        {"tenant": report.tenant_id},
    )
    for event_id, txid in rows:
        if txid >= horizon:
            report.pending += 1
            continue
        seq = next((s for lo, hi, s in ranges if lo <= txid < hi), None)
        detail = "not in the seal covering it" if seq else "below the sealed horizon, in no seal"
        report.problems.append(Problem("inserted", report.tenant_id, seq, event_id, detail))


@dataclass(frozen=True, slots=True)
class Coverage:
    """Which seals hold a set of events, and one digest naming them (a dossier prints it)."""

    digest: str | None
    seals: list[tuple[uuid.UUID | None, int, str]]  # (tenant, seq, seal hash hex)
    unsealed: list[int]


async def covering_seals(
    session: AsyncSession, tenant_id: uuid.UUID | None, event_ids: Sequence[int]
) -> Coverage:
    """The seals of ``tenant_id``'s chain covering ``event_ids`` (events not sealed yet are
    listed apart)."""
    if not event_ids:
        return Coverage(digest=None, seals=[], unsealed=[])
    rows = (
        await session.execute(
            text(
                f"""SELECT s.tenant_id, s.seq, s.seal_hash, array_agg(m.id) AS ids
                    FROM audit_seals s
                    CROSS JOIN LATERAL unnest(s.event_ids) AS m(id)
                    WHERE s.{_chain_filter()}
                      AND s.first_event_id <= :last AND s.last_event_id >= :first
                      AND m.id = ANY(CAST(:ids AS bigint[]))
                    GROUP BY s.tenant_id, s.seq, s.seal_hash
                    ORDER BY s.seq"""
            ),
            {
                "tenant": tenant_id,
                "first": min(event_ids),
                "last": max(event_ids),
                "ids": list(event_ids),
            },
        )
    ).all()
    covered = {i for r in rows for i in r.ids}
    hashes = [bytes(r.seal_hash) for r in rows]
    return Coverage(
        digest=combined_digest(hashes) if hashes else None,
        seals=[(r.tenant_id, r.seq, bytes(r.seal_hash).hex()) for r in rows],
        unsealed=sorted(set(event_ids) - covered),
    )
