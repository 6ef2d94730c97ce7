"""Idempotency keys (DESIGN.md §5): a POST retried with the same ``Idempotency-Key`` gets the
answer the first one got, and its effect happens once.

A request claims its key in a committed statement before it runs, so a second one arriving
meanwhile finds it in flight (409, try again); a success is kept with its answer, encrypted, for
a day; anything else frees the key, so a retry runs again — as Stripe does, and as the IETF draft
on the header allows.  A claim whose process died before keeping the answer is taken over once
its lease ran out.
"""

from __future__ import annotations

import json
from base64 import b64decode, b64encode
from dataclasses import dataclass
from datetime import timedelta

import structlog
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from shared import crypto
from shared.db import SessionMaker
from shared.queue.scheduler import periodic
from shared.tenancy import Principal

log = structlog.get_logger("quita.idempotency")

KEPT_FOR = timedelta(hours=24)
# how long a claim holds while its request runs; a request body is read within the run (an
# import streams its file), so this is generous
LEASE = timedelta(minutes=5)
_CONTEXT = "idempotency-response"


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes


@dataclass(frozen=True, slots=True)
class Claimed:
    """This request holds the key: it runs, then keeps or frees it."""


@dataclass(frozen=True, slots=True)
class Busy:
    """Another request with the key is running."""


@dataclass(frozen=True, slots=True)
class Done:
    """A request with the key succeeded: what it was, and what it was answered."""

    request: str
    fingerprint: bytes | None
    answer: Answer


Claim = Claimed | Busy | Done


def owner_of(principal: Principal) -> str:
    """Whose keys these are: the tenant and the person or system client of the verified token."""
    tenant = principal.tenant_id or "platform"
    return f"{tenant}:{principal.kind}:{principal.subject}"[:200]


_CLAIM = text(
    """
    INSERT INTO idempotency_keys AS k (owner, key, request, locked_until)
    VALUES (:owner, :key, :request, now() + make_interval(secs => :lease))
    ON CONFLICT (owner, key) DO UPDATE
       SET request = excluded.request, locked_until = excluded.locked_until,
           created_at = now(), status = NULL, response = NULL, fingerprint = NULL
     WHERE k.created_at < now() - make_interval(secs => :kept)
        OR (k.status IS NULL AND k.locked_until < now())
    RETURNING true
    """
)

_FIND = text(
    """SELECT request, fingerprint, status, response FROM idempotency_keys
        WHERE owner = :owner AND key = :key"""
)


async def claim(maker: SessionMaker, owner: str, key: str, request: str) -> Claim:
    """Take ``key`` for this request, or say who has it."""
    async with maker() as session:
        claimed = await session.execute(
            _CLAIM,
            {
                "owner": owner,
                "key": key,
                "request": request,
                "lease": LEASE.total_seconds(),
                "kept": KEPT_FOR.total_seconds(),
            },
        )
        if claimed.scalar_one_or_none():
            await session.commit()
            return Claimed()
        row = (await session.execute(_FIND, {"owner": owner, "key": key})).one_or_none()
        await session.rollback()
    if row is None or row.status is None or row.response is None:
        return Busy()  # running, or freed this instant: a retry will tell
    return Done(row.request, row.fingerprint, _open(row.status, row.response))


async def keep(
    maker: SessionMaker, owner: str, key: str, answer: Answer, fingerprint: bytes | None
) -> None:
    """The request succeeded: its answer is what every retry gets."""
    async with maker() as session:
        await session.execute(
            text(
                """UPDATE idempotency_keys
                      SET status = :status, response = :response, fingerprint = :fingerprint,
                          locked_until = NULL
                    WHERE owner = :owner AND key = :key"""
            ),
            {
                "owner": owner,
                "key": key,
                "status": answer.status,
                "response": _seal(answer),
                "fingerprint": fingerprint,
            },
        )
        await session.commit()


async def free(maker: SessionMaker, owner: str, key: str) -> None:
    """The request did not succeed: the key may be used again."""
    async with maker() as session:
        await session.execute(
            text(
                """DELETE FROM idempotency_keys
                    WHERE owner = :owner AND key = :key AND status IS NULL"""
            ),
            {"owner": owner, "key": key},
        )
        await session.commit()


def _seal(answer: Answer) -> str:
    payload = {
        "headers": [[k.decode("latin-1"), v.decode("latin-1")] for k, v in answer.headers],
        "body": b64encode(answer.body).decode(),
    }
    return crypto.encrypt(json.dumps(payload), context=_CONTEXT)


def _open(status: int, sealed: str) -> Answer:
    payload = json.loads(crypto.decrypt(sealed, context=_CONTEXT))
    headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in payload["headers"]]
    return Answer(status, headers, b64decode(payload["body"]))


@periodic("system.idempotency_expire", every=timedelta(hours=1))
async def expire(session: AsyncSession) -> None:
    """Keys older than a day are forgotten: the same key is then a new request."""
    gone = await session.execute(
        text("DELETE FROM idempotency_keys WHERE created_at < now() - make_interval(secs => :k)"),
        {"k": KEPT_FOR.total_seconds()},
    )
    if gone.rowcount:  # type: ignore[attr-defined]
        log.info("idempotency.expired", count=gone.rowcount)  # type: ignore[attr-defined]
