"""Pix PSP connections: where each retailer's PSP posts payment webhooks, and how they are
authenticated.

A connection's webhook URL is ``{webhooks}/pix/{token}`` with a 32-byte random token; Quita keeps
only its SHA-256, so the URL is shown once (on creation and on rotation) and a copy of the
database cannot be used to post payments.  A connection may also name the subject of the PSP's
client certificate (mutual TLS, as the Banco Central's Pix API requires): the TLS-terminating
proxy passes it in a header, trusted only when the deployment says the proxy sets it.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import uuid
from datetime import datetime
from typing import Annotated

import msgspec
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.config import Settings
from shared.domains.audit.service import Actor, record_by
from shared.errors import NotFound
from shared.models.pix_connection import PixConnection, PixConnectionStatus

TOKEN_BYTES = 32
# Deployment settings (shared.config.Settings), read leniently until they are declared there.

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
Psp = Annotated[str, msgspec.Meta(min_length=1, max_length=60)]
Subject = Annotated[str, msgspec.Meta(min_length=3, max_length=500)]


class PixConnectionIn(msgspec.Struct, forbid_unknown_fields=True):
    """A PSP account that will post Pix webhooks.  ``client_cert_subject``: the subject DN of
    the certificate the PSP presents (``CN=...,O=...``), checked when the proxy passes it."""

    name: Name
    psp: Psp
    client_cert_subject: Subject | None = None


class PixConnectionOut(msgspec.Struct):
    id: uuid.UUID
    name: str
    psp: str
    status: str
    client_cert_subject: str | None
    created_at: datetime
    updated_at: datetime
    rotated_at: datetime | None
    # Only in the answer that created or rotated the token: register it with the PSP now.
    webhook_url: str | None = None


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def webhook_url(settings: Settings, token: str) -> str:
    """The URL to register with the PSP; per the BCB's Pix API it posts to ``{url}/pix``."""
    return f"{settings.webhooks_url()}/pix/{token}"


def cert_header(settings: Settings) -> str | None:
    """The header carrying the client certificate's subject, or None when no proxy is trusted
    to set it (then a connection that expects a subject accepts nothing: fail closed)."""
    if not settings.pix_client_cert_header_trusted:
        return None
    return settings.pix_client_cert_header


_RDN_SPLIT = re.compile(r"\s*[,/]\s*")


def _rdns(subject: str) -> list[str]:
    """A DN as sorted ``TYPE=value`` parts: RFC 2253 (``CN=a,O=b``) and the legacy OpenSSL
    form (``/O=b/CN=a``) name the same certificate in opposite orders."""
    parts = []
    for part in _RDN_SPLIT.split(subject.strip().strip("/")):
        kind, sep, value = part.partition("=")
        if sep:
            parts.append(f"{kind.strip().upper()}={value.strip()}")
    return sorted(parts)


def subject_matches(expected: str, presented: str | None) -> bool:
    if not presented:
        return False
    wanted = _rdns(expected)
    return bool(wanted) and secrets.compare_digest(
        "\n".join(wanted).encode(), "\n".join(_rdns(presented)).encode()
    )


def connection_out(row: PixConnection, url: str | None = None) -> PixConnectionOut:
    return PixConnectionOut(
        id=row.id,
        name=row.name,
        psp=row.psp,
        status=row.status,
        client_cert_subject=row.client_cert_subject,
        created_at=row.created_at,
        updated_at=row.updated_at,
        rotated_at=row.rotated_at,
        webhook_url=url,
    )


async def _audit(
    session: AsyncSession, action: str, row: PixConnection, actor: Actor, **data: object
) -> None:
    await record_by(
        session,
        actor,
        action,
        tenant_id=row.tenant_id,
        subject=("pix_connection", row.id),
        data={"name": row.name, "psp": row.psp, **data},
    )


async def create(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    data: PixConnectionIn,
    actor: Actor,
    settings: Settings,
) -> tuple[PixConnection, str]:
    """A new active connection and its webhook URL (the only time the token is known)."""
    token = new_token()
    row = PixConnection(
        id=uuid.uuid4(),
        tenant_id=tenant_id,
        name=data.name,
        psp=data.psp,
        token_hash=token_hash(token),
        client_cert_subject=data.client_cert_subject,
    )
    session.add(row)
    await session.flush()
    await _audit(
        session,
        "pix_connection.created",
        row,
        actor,
        client_cert_subject=data.client_cert_subject,
    )
    await session.refresh(row)
    return row, webhook_url(settings, token)


async def get(session: AsyncSession, tenant_id: uuid.UUID, ident: uuid.UUID) -> PixConnection:
    row = await session.scalar(
        select(PixConnection)
        .where(PixConnection.id == ident, PixConnection.tenant_id == tenant_id)
        .with_for_update()
    )
    if row is None:
        raise NotFound("The Pix connection was not found.")
    return row


async def list_for(session: AsyncSession, tenant_id: uuid.UUID) -> list[PixConnection]:
    rows = await session.scalars(
        select(PixConnection)
        .where(PixConnection.tenant_id == tenant_id)
        .order_by(PixConnection.created_at, PixConnection.id)
    )
    return list(rows)


async def rotate(
    session: AsyncSession, row: PixConnection, actor: Actor, settings: Settings
) -> str:
    """A new token: the old URL answers 401 from now on.  Returns the new webhook URL."""
    token = new_token()
    row.token_hash = token_hash(token)
    row.rotated_at = func.now()
    await session.flush()
    await _audit(session, "pix_connection.rotated", row, actor)
    await session.refresh(row)
    return webhook_url(settings, token)


async def disable(session: AsyncSession, row: PixConnection, actor: Actor) -> PixConnection:
    """Stop accepting the connection's webhooks (idempotent)."""
    if row.status != PixConnectionStatus.DISABLED:
        row.status = PixConnectionStatus.DISABLED
        await session.flush()
        await _audit(session, "pix_connection.disabled", row, actor)
        await session.refresh(row)
    return row


async def by_token(session: AsyncSession, token: str) -> PixConnection | None:
    """The connection a webhook URL token names, active or not (the caller decides)."""
    if not token or len(token) > 200:
        return None
    return await session.scalar(
        select(PixConnection).where(PixConnection.token_hash == token_hash(token))
    )
