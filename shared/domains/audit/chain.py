"""The hashing both the sealer and the verifier use: an event's canonical encoding, its leaf
hash, the Merkle root of a batch and the hash that links a seal to the one before it.

Nothing here depends on how Postgres stores JSONB (key order, whitespace): ``data`` is decoded
and written again with sorted keys, numbers exactly as stored (``Decimal``), times in UTC.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

HASH_SIZE = 32
GENESIS = bytes(HASH_SIZE)  # the "previous hash" of a chain's first seal
SEAL_VERSION = "quita-audit-seal-v1"

# What sealing and verifying read of an event: every column, ``data`` as JSON text so no driver
# codec decides how numbers come back.
EVENT_COLUMNS = (
    "id, tenant_id, actor_type, actor_id, action, subject_type, subject_id, "
    "data::text AS data, request_id, created_at, txid"
)


def _json(value: Any) -> str:
    """Canonical JSON: sorted keys, no spaces, non-ASCII kept, numbers exactly as parsed."""
    if isinstance(value, dict):
        items = sorted(value.items())
        return "{" + ",".join(f"{_json(str(k))}:{_json(v)}" for k, v in items) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_json(v) for v in value) + "]"
    if isinstance(value, Decimal):
        return str(value)
    return json.dumps(value, ensure_ascii=False)


def _instant(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical(event: Mapping[Any, Any]) -> bytes:
    """The bytes an event's leaf hash covers (every column; ``data`` given as JSON text)."""
    tenant = event["tenant_id"]
    fields = {
        "id": event["id"],
        "tenant_id": str(tenant) if isinstance(tenant, uuid.UUID) else tenant,
        "actor_type": event["actor_type"],
        "actor_id": event["actor_id"],
        "action": event["action"],
        "subject_type": event["subject_type"],
        "subject_id": event["subject_id"],
        "data": json.loads(event["data"], parse_float=Decimal),
        "request_id": event["request_id"],
        "created_at": _instant(event["created_at"]),
        "txid": event["txid"],
    }
    return _json(fields).encode("utf-8")


def leaf_hash(event: Mapping[Any, Any]) -> bytes:
    return hashlib.sha256(b"\x00" + canonical(event)).digest()


def merkle_root(leaves: Sequence[bytes]) -> bytes:
    """The Merkle root of ``leaves`` (in order); an odd node out is carried up unchanged."""
    if not leaves:
        raise ValueError("a batch has at least one event")
    level = list(leaves)
    while len(level) > 1:
        paired = [
            hashlib.sha256(b"\x01" + level[i] + level[i + 1]).digest()
            for i in range(0, len(level) - 1, 2)
        ]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0]


def split_leaves(blob: bytes) -> list[bytes]:
    return [blob[i : i + HASH_SIZE] for i in range(0, len(blob), HASH_SIZE)]


def seal_hash(
    *,
    tenant_id: uuid.UUID | None,
    seq: int,
    from_txid: int,
    to_txid: int,
    event_ids: Sequence[int],
    digest: bytes,
    prev_hash: bytes,
) -> bytes:
    """H(header ‖ prev_hash ‖ digest): the header names the chain, the seq, both ranges and a
    hash of the event id list, so changing any of them, or the link, breaks the chain."""
    chain = str(tenant_id) if tenant_id else "platform"
    first, last = (event_ids[0], event_ids[-1]) if event_ids else (0, 0)
    ids = hashlib.sha256(",".join(map(str, event_ids)).encode()).hexdigest()
    header = (
        f"{SEAL_VERSION}|{chain}|{seq}|{from_txid}|{to_txid}|{first}|{last}|{len(event_ids)}|{ids}|"
    )
    return hashlib.sha256(header.encode() + prev_hash + digest).digest()


def combined_digest(hashes: Sequence[bytes]) -> str:
    """One hex digest naming a set of seals (their hashes, sorted)."""
    h = hashlib.sha256()
    for seal in sorted(hashes):
        h.update(seal)
    return h.hexdigest()
