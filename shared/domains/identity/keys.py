"""Access-token signing keys: one active RSA key signs; retired keys stay published in the JWKS
until every token they signed has expired, so rotation needs no downtime."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from joserfc.jwk import KeyParameters, KeySet, RSAKey
from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from shared import crypto
from shared.db import SessionMaker
from shared.models import SigningKey
from shared.tenancy import SYSTEM, use_scope

ALGORITHM = "RS256"
_CACHE_SECONDS = 30.0
_MIN_REFRESH_SECONDS = 5.0


def _context(kid: str) -> str:
    return f"oauth_signing_key:{kid}"


def _params(kid: str) -> KeyParameters:
    return {"kid": kid, "alg": ALGORITHM, "use": "sig"}


async def create_key(session: AsyncSession, *, now: datetime | None = None) -> SigningKey:
    """Make a new active key and retire the current one (the caller commits)."""
    now = now or datetime.now(UTC)
    kid = f"{now:%Y%m%d}-{uuid.uuid4().hex[:8]}"
    key = RSAKey.generate_key(2048, parameters=_params(kid), private=True)
    await session.execute(
        update(SigningKey).where(SigningKey.retired_at.is_(None)).values(retired_at=now)
    )
    row = SigningKey(
        kid=kid,
        private_key=crypto.encrypt(key.as_pem(private=True), context=_context(kid)),
        public_jwk=json.dumps(key.as_dict(private=False)),
        activated_at=now,
    )
    session.add(row)
    await session.flush()
    return row


async def ensure_key(session: AsyncSession) -> None:
    """Create the first key if there is none."""
    active = await session.scalar(select(SigningKey.kid).where(SigningKey.retired_at.is_(None)))
    if active is None:
        await create_key(session)


@dataclass(frozen=True, slots=True)
class Keys:
    signing: RSAKey
    published: KeySet

    @property
    def kid(self) -> str:
        return str(self.signing.kid)


async def load_keys(session: AsyncSession, token_ttl: timedelta) -> Keys:
    """The active private key and every public key a live token may have been signed with."""
    cutoff = datetime.now(UTC) - token_ttl - timedelta(minutes=5)
    rows = (
        await session.scalars(
            select(SigningKey)
            .where(or_(SigningKey.retired_at.is_(None), SigningKey.retired_at > cutoff))
            .order_by(SigningKey.activated_at.desc())
        )
    ).all()
    active = next((r for r in rows if r.retired_at is None), None)
    if active is None:
        raise LookupError("no active signing key: run `quita keys rotate`")
    pem = crypto.decrypt(active.private_key, context=_context(active.kid))
    signing = RSAKey.import_key(pem, parameters=_params(active.kid))
    published = KeySet([RSAKey.import_key(json.loads(r.public_jwk)) for r in rows])
    return Keys(signing=signing, published=published)


class KeyCache:
    """Per-process cache of :class:`Keys`, refreshed every 30 s and on an unknown ``kid``."""

    def __init__(self, maker: SessionMaker, token_ttl: timedelta) -> None:
        self.maker = maker
        self.token_ttl = token_ttl
        self._keys: Keys | None = None
        self._loaded = 0.0
        self._lock = asyncio.Lock()

    async def get(self, *, refresh: bool = False) -> Keys:
        age = time.monotonic() - self._loaded
        if self._keys is None or age > _CACHE_SECONDS or (refresh and age > _MIN_REFRESH_SECONDS):
            async with self._lock:
                if self._keys is None or time.monotonic() - self._loaded > _MIN_REFRESH_SECONDS:
                    async with self.maker() as session:
                        await use_scope(session, SYSTEM)
                        self._keys = await load_keys(session, self.token_ttl)
                        await session.rollback()
                    self._loaded = time.monotonic()
        assert self._keys is not None
        return self._keys

    def invalidate(self) -> None:
        self._keys = None
