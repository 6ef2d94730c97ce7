"""The canonical encoding hashes what an event says, not how Postgres happened to spell it."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from shared.domains.audit.chain import canonical, leaf_hash, merkle_root

_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**20), max_value=10**20)
    | st.decimals(allow_nan=False, allow_infinity=False, places=2)
    | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=12,
)


def _event(data_text: str, **changes: Any) -> dict[str, Any]:
    event = {
        "id": 41,
        "tenant_id": uuid.UUID("00000000-0000-4000-8000-000000000001"),
        "actor_type": "user",
        "actor_id": "u-1",
        "action": "note.added",
        "subject_type": "customer",
        "subject_id": "c-1",
        "data": data_text,
        "request_id": None,
        "created_at": datetime(2026, 12, 7, 3, 0, 0, 123456, tzinfo=UTC),
        "txid": 1234,
    }
    return {**event, **changes}


def _spell(value: Any, *, sort: bool, spaced: bool) -> str:
    """JSON text of ``value`` (Decimals as numbers) with keys in either order, any spacing."""
    sep = ", " if spaced else ","
    colon = " : " if spaced else ":"
    if isinstance(value, dict):
        items = sorted(value.items(), reverse=not sort)
        return (
            "{"
            + sep.join(
                f"{json.dumps(k)}{colon}{_spell(v, sort=sort, spaced=spaced)}" for k, v in items
            )
            + "}"
        )
    if isinstance(value, list):
        return "[" + sep.join(_spell(v, sort=sort, spaced=spaced) for v in value) + "]"
    if isinstance(value, Decimal):
        return str(value)
    return json.dumps(value)


@given(_json)
def test_key_order_and_spacing_do_not_change_the_encoding(value: Any) -> None:
    one = _spell(value, sort=True, spaced=False)
    two = _spell(value, sort=False, spaced=True)

    assert canonical(_event(one)) == canonical(_event(two))


@given(_json, _json)
def test_different_data_never_encodes_the_same(a: Any, b: Any) -> None:
    ta, tb = _spell(a, sort=True, spaced=False), _spell(b, sort=True, spaced=False)

    if ta != tb:
        assert leaf_hash(_event(ta)) != leaf_hash(_event(tb))


def test_the_same_instant_in_any_zone_encodes_the_same() -> None:
    utc = _event("{}")
    sao_paulo = _event("{}", created_at=utc["created_at"].astimezone(timezone(timedelta(hours=-3))))

    assert canonical(utc) == canonical(sao_paulo)
    assert b'"created_at":"2026-12-07T03:00:00.123456Z"' in canonical(utc)


@given(st.lists(st.binary(min_size=32, max_size=32), min_size=1, max_size=40), st.data())
def test_changing_any_leaf_changes_the_root(leaves: list[bytes], data: st.DataObject) -> None:
    i = data.draw(st.integers(min_value=0, max_value=len(leaves) - 1))
    other = data.draw(st.binary(min_size=32, max_size=32).filter(lambda b: b != leaves[i]))

    assert merkle_root([*leaves[:i], other, *leaves[i + 1 :]]) != merkle_root(leaves)


def test_dropping_or_adding_a_leaf_changes_the_root() -> None:
    leaves = [bytes([n]) * 32 for n in range(5)]

    assert merkle_root(leaves[:-1]) != merkle_root(leaves)
    assert merkle_root([*leaves, leaves[-1]]) != merkle_root(leaves)
