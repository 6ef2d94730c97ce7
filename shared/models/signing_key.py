from __future__ import annotations

from datetime import datetime

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import Base, Timestamps


class SigningKey(Timestamps, Base):
    """A key that signs access tokens.  One is active; retired keys stay published in the JWKS
    until every token they signed has expired."""

    __tablename__ = "oauth_signing_keys"

    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    private_key: Mapped[str] = mapped_column(Text)  # encrypted at rest (shared.crypto)
    public_jwk: Mapped[str] = mapped_column(Text)
    activated_at: Mapped[datetime]
    retired_at: Mapped[datetime | None]
