"""Background work of the channels domain."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from shared.domains.channels import provider as _provider  # noqa: F401  (jobs, handlers)
from shared.domains.channels.service import reencrypt_batch
from shared.queue.scheduler import periodic


@periodic("channels.reencrypt", every=timedelta(minutes=10))
async def reencrypt(session: AsyncSession) -> None:
    """After a key-encryption key rotation, move every channel's secrets to the new key."""
    await reencrypt_batch(session)
