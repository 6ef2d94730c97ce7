"""Channels: create, change and read a tenant's senders, with credentials encrypted at rest.

Secrets are one JSON object encrypted with AES-GCM under the key-encryption keyring
(``shared.crypto``), bound to the channel's id as associated data, so a ciphertext copied onto
another row does not decrypt.  Rotating the keyring (a new key first in ``QUITA_SECRET_KEYS``)
keeps every old ciphertext readable; the ``channels.reencrypt`` periodic task then rewrites them
under the new key, a bounded batch per tick — no downtime, no moment without a readable secret.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from shared import crypto
from shared.domains.audit.service import Actor, record
from shared.domains.channels import schemas
from shared.errors import Conflict, NotFound
from shared.models import Channel, ChannelKind, ChannelStatus

SECRET_FIELDS = {
    ChannelKind.WHATSAPP: ("access_token", "app_secret", "verify_token"),
    ChannelKind.SMS: ("auth_token",),
    ChannelKind.EMAIL: ("password",),
}


class ChannelTaken(Conflict):
    code = "channel_taken"


def _context(channel_id: uuid.UUID) -> str:
    return f"channel:{channel_id}"


def seal(channel_id: uuid.UUID, secrets: dict[str, str]) -> str:
    return crypto.encrypt(json.dumps(secrets, sort_keys=True), context=_context(channel_id))


def secrets_of(channel: Channel) -> dict[str, str]:
    """The channel's credentials, decrypted (for the senders and webhook verifiers only)."""
    return decrypt_secrets(channel.id, channel.secrets)


def decrypt_secrets(channel_id: uuid.UUID, ciphertext: str) -> dict[str, str]:
    """The credentials stored as ``ciphertext`` for the channel ``channel_id``."""
    data: dict[str, str] = json.loads(crypto.decrypt(ciphertext, context=_context(channel_id)))
    return data


def _split(data: schemas.ChannelIn) -> tuple[ChannelKind, dict[str, Any], dict[str, str]]:
    kind = ChannelKind(type(data).__struct_config__.tag)  # type: ignore[arg-type]
    values = {f: getattr(data, f) for f in data.__struct_fields__ if f != "name"}
    secret_names = SECRET_FIELDS[kind]
    secrets = {k: v for k, v in values.items() if k in secret_names and v is not None}
    config = {k: v for k, v in values.items() if k not in secret_names}
    return kind, config, secrets


async def create(
    session: AsyncSession, tenant_id: uuid.UUID, data: schemas.ChannelIn, actor: Actor
) -> Channel:
    kind, config, secrets = _split(data)
    channel = Channel(id=uuid.uuid4(), tenant_id=tenant_id, kind=kind, name=data.name)
    channel.config = config
    channel.secrets = seal(channel.id, secrets)
    session.add(channel)
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError as exc:
        raise ChannelTaken("This WhatsApp number is already connected to a Quita account.") from exc
    await record(
        session,
        "channel.created",
        tenant_id=tenant_id,
        actor_type=actor.type,
        actor_id=actor.id,
        subject_type="channel",
        subject_id=str(channel.id),
        data={"kind": kind, "name": data.name, "secrets": sorted(secrets)},
    )
    await session.refresh(channel)
    return channel


async def update(
    session: AsyncSession, channel: Channel, data: schemas.ChannelUpdate, actor: Actor
) -> Channel:
    changed: list[str] = []
    if data.name is not None and data.name != channel.name:
        channel.name = data.name
        changed.append("name")
    if data.status is not None and data.status != channel.status:
        channel.status = ChannelStatus(data.status)
        channel.status_reason = None
        changed.append("status")
    if data.throughput_per_s is not None and channel.kind != ChannelKind.EMAIL:
        channel.config = {**channel.config, "throughput_per_s": data.throughput_per_s}
        changed.append("throughput_per_s")
    secrets = secrets_of(channel)
    rotated = []
    for name in SECRET_FIELDS[ChannelKind(channel.kind)]:
        value = getattr(data, name, None)
        if value is not None and value != secrets.get(name):
            if name == "app_secret" and name in secrets:
                secrets["previous_app_secret"] = secrets[name]
            secrets[name] = value
            rotated.append(name)
    if data.drop_previous_app_secret and secrets.pop("previous_app_secret", ""):
        rotated.append("previous_app_secret")
    if rotated:
        channel.secrets = seal(channel.id, secrets)
    if changed or rotated:
        await session.flush()
        await record(
            session,
            "channel.updated",
            tenant_id=channel.tenant_id,
            actor_type=actor.type,
            actor_id=actor.id,
            subject_type="channel",
            subject_id=str(channel.id),
            data={"fields": changed, "secrets_replaced": rotated},
        )
        await session.refresh(channel)
    return channel


async def get(session: AsyncSession, tenant_id: uuid.UUID, channel_id: uuid.UUID) -> Channel:
    channel = await session.scalar(
        select(Channel).where(Channel.id == channel_id, Channel.tenant_id == tenant_id)
    )
    if channel is None:
        raise NotFound("The channel was not found.")
    return channel


async def list_for(session: AsyncSession, tenant_id: uuid.UUID) -> list[Channel]:
    return list(
        await session.scalars(
            select(Channel).where(Channel.tenant_id == tenant_id).order_by(Channel.created_at)
        )
    )


def channel_out(channel: Channel) -> schemas.ChannelOut:
    return schemas.ChannelOut(
        id=channel.id,
        kind=channel.kind,
        name=channel.name,
        status=channel.status,
        status_reason=channel.status_reason,
        config=channel.config,
        secrets_held=sorted(secrets_of(channel)),
        created_at=channel.created_at,
        updated_at=channel.updated_at,
    )


async def reencrypt_batch(session: AsyncSession, limit: int = 500) -> int:
    """Rewrite under the keyring's current key the secrets still sealed with an older one."""
    done = 0
    rows = await session.scalars(
        select(Channel).order_by(Channel.id).with_for_update(skip_locked=True)
    )
    for channel in rows:
        if crypto.needs_rotation(channel.secrets):
            channel.secrets = crypto.reencrypt(channel.secrets, context=_context(channel.id))
            done += 1
            if done >= limit:
                break
    await session.flush()
    return done
