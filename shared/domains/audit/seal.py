"""Sealing: audit events become, batch by batch, links of per-tenant hash chains.

Where a batch ends. Identity ids are handed out before commit, so transactions commit out of
id order: sealing "every id up to N" would skip an event whose transaction was still running
and commits later with a lower id. Each event therefore carries the id of the transaction
that inserted it (``txid``), and a round seals only events whose transaction id is below the
*horizon* — ``pg_snapshot_xmin``, the oldest transaction still running on the server: every
transaction below it has ended, and every later one gets a higher id, so no event can ever
appear below the horizon again. A long transaction only delays sealing; nothing is skipped,
and writers never wait (``record()`` takes no lock).

A round covers the transaction ids ``[start, horizon)``, ``start`` being where the furthest
seal ends; for each tenant with events there, one seal: ``from_txid`` = the end of that
chain's previous seal, ``to_txid`` = the round's end. So each chain's seals cover the
transaction ids without gap, and an event below the furthest ``to_txid`` that none of its
chain's seals names was put there afterwards (the other chains witness a chain's deleted last
seal). One lock for the whole round (transaction-level, advisory; a second sealer finds it
taken and does nothing) rather than one per chain: the horizon is shared by every chain, so
one pass over the new events (a BRIN range on ``txid``) serves them all. ``(tenant_id, seq)``
is unique besides, so a chain never forks.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import structlog
from sqlalchemy import insert, text
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession

from shared.domains.audit.chain import EVENT_COLUMNS, GENESIS, leaf_hash, merkle_root, seal_hash
from shared.models.audit import AuditSeal

log = structlog.get_logger("quita.audit")

# pg advisory lock key of a sealing round (any constant unique to Quita).
SEAL_LOCK = 0x51_7A_A0
MIN_TXID = -(2**63)
BATCH_EVENTS = 20_000


@dataclass(frozen=True, slots=True)
class SealRound:
    """What one round did: ``locked`` False when another sealer held the round."""

    locked: bool
    seals: int = 0
    events: int = 0
    limited: bool = False  # the batch limit cut the round short: more is ready to seal


@dataclass(frozen=True, slots=True)
class _Head:
    seq: int
    to_txid: int
    seal_hash: bytes


async def seal_round(session: AsyncSession, *, max_events: int = BATCH_EVENTS) -> SealRound:
    """Seal the events whose transactions have ended (at most about ``max_events``), one seal
    per chain that has some. The caller commits; a platform (SYSTEM) scope sees every chain."""
    locked = await session.scalar(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": SEAL_LOCK})
    if not locked:
        return SealRound(locked=False)
    horizon = await session.scalar(
        text("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint")
    )
    start = await session.scalar(text("SELECT max(to_txid) FROM audit_seals"))
    start = MIN_TXID if start is None else start
    if horizon is None or horizon <= start:
        return SealRound(locked=True)
    rows = (
        (
            await session.execute(
                text(
                    f"""SELECT {EVENT_COLUMNS} FROM audit_events
                    WHERE txid >= :start AND txid < :horizon
                    ORDER BY txid, id LIMIT :limit"""
                ),
                {"start": start, "horizon": horizon, "limit": max_events + 1},
            )
        )
        .mappings()
        .all()
    )
    if not rows:
        return SealRound(locked=True)
    limited = len(rows) > max_events
    rows, end = await _whole_transactions(session, rows, max_events, horizon)
    chains: dict[uuid.UUID | None, list[RowMapping]] = defaultdict(list)
    for row in rows:
        chains[row["tenant_id"]].append(row)
    heads = await _heads(session, list(chains))
    values = []
    for tenant_id, events in chains.items():
        head = heads.get(tenant_id)
        # what a chain's last seal covers is never sealed again (the round starts where the
        # furthest seal ends; a chain's own head is the authority for that chain)
        fresh = [e for e in events if head is None or e["txid"] >= head.to_txid]
        if fresh:
            # hashing thousands of events is CPU work that awaits nothing: off the event loop,
            # so a worker's sends keep their slots meanwhile
            batch = sorted(fresh, key=lambda e: e["id"])
            values.append(await asyncio.to_thread(_seal, tenant_id, batch, head, end))
    if not values:
        return SealRound(locked=True)
    await session.execute(insert(AuditSeal).values(values))
    events = sum(v["event_count"] for v in values)
    log.info("audit.sealed", seals=len(values), events=events, limited=limited)
    return SealRound(locked=True, seals=len(values), events=events, limited=limited)


async def _whole_transactions(
    session: AsyncSession, rows: Sequence[RowMapping], max_events: int, horizon: int
) -> tuple[Sequence[RowMapping], int]:
    """Cut a batch between transactions (all events of one transaction share a seal's range):
    the rows kept and the end of the round's range."""
    if len(rows) <= max_events:
        return rows, horizon
    cut = rows[max_events]["txid"]
    kept = [r for r in rows[:max_events] if r["txid"] < cut]
    if kept:
        return kept, cut
    # one transaction larger than the batch: it is sealed whole
    whole = (
        (
            await session.execute(
                text(f"SELECT {EVENT_COLUMNS} FROM audit_events WHERE txid = :t ORDER BY id"),
                {"t": cut},
            )
        )
        .mappings()
        .all()
    )
    return whole, cut + 1


async def _heads(
    session: AsyncSession, tenants: list[uuid.UUID | None]
) -> dict[uuid.UUID | None, _Head]:
    """The last seal of each of these chains."""
    rows = await session.execute(
        text(
            """SELECT DISTINCT ON (tenant_id) tenant_id, seq, to_txid, seal_hash
               FROM audit_seals
               WHERE tenant_id = ANY(CAST(:tenants AS uuid[]))
                  OR (CAST(:platform AS boolean) AND tenant_id IS NULL)
               ORDER BY tenant_id, seq DESC"""
        ),
        {"tenants": [t for t in tenants if t is not None], "platform": None in tenants},
    )
    return {r.tenant_id: _Head(r.seq, r.to_txid, bytes(r.seal_hash)) for r in rows}


def _seal(
    tenant_id: uuid.UUID | None, events: Sequence[RowMapping], head: _Head | None, end: int
) -> dict[str, Any]:
    leaves = [leaf_hash(e) for e in events]
    ids = [e["id"] for e in events]
    digest = merkle_root(leaves)
    seq = head.seq + 1 if head else 1
    from_txid = head.to_txid if head else MIN_TXID
    prev = head.seal_hash if head else GENESIS
    return {
        "tenant_id": tenant_id,
        "seq": seq,
        "from_txid": from_txid,
        "to_txid": end,
        "first_event_id": ids[0],
        "last_event_id": ids[-1],
        "event_count": len(ids),
        "event_ids": ids,
        "leaves": b"".join(leaves),
        "digest": digest,
        "prev_hash": prev,
        "seal_hash": seal_hash(
            tenant_id=tenant_id,
            seq=seq,
            from_txid=from_txid,
            to_txid=end,
            event_ids=ids,
            digest=digest,
            prev_hash=prev,
        ),
    }
