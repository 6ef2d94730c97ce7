from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ARRAY, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import Base, Timestamps, UUIDPrimaryKey


class OAuthClient(UUIDPrimaryKey, Timestamps, Base):
    """An API client.  Confidential clients authenticate with a secret (stored as a digest;
    the previous one keeps working until ``previous_secret_expires_at`` after a rotation)."""

    __tablename__ = "oauth_clients"

    client_id: Mapped[str] = mapped_column(String(64), unique=True)
    tenant_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE")
    )
    name: Mapped[str] = mapped_column(String(200))
    secret_digest: Mapped[str | None] = mapped_column(String(64))
    previous_secret_digest: Mapped[str | None] = mapped_column(String(64))
    previous_secret_expires_at: Mapped[datetime | None]
    grant_types: Mapped[list[str]] = mapped_column(ARRAY(String(64)))
    redirect_uris: Mapped[list[str]] = mapped_column(ARRAY(Text), default=list)
    scopes: Mapped[list[str]] = mapped_column(ARRAY(String(64)))
    token_endpoint_auth_method: Mapped[str] = mapped_column(String(32))
    revoked_at: Mapped[datetime | None]
