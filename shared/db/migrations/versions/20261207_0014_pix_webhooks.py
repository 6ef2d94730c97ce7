"""pix webhooks: each retailer's Pix PSP connections, authenticated by a URL token kept only as
its SHA-256 (and, where the proxy passes it, the PSP's client-certificate subject)

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from shared.db.migrations.helpers import enable_rls

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_NOW = sa.text("now()")


def upgrade() -> None:
    op.create_table(
        "pix_connections",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("psp", sa.String(length=60), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("client_cert_subject", sa.String(length=500), nullable=True),
        sa.Column("status", sa.String(length=16), server_default="active", nullable=False),
        sa.Column("rotated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=_NOW, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=_NOW, nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_pix_connections_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pix_connections")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_pix_connections_token_hash")),
    )
    op.create_index("ix_pix_connections_tenant_id", "pix_connections", ["tenant_id"])
    op.create_check_constraint("status", "pix_connections", "status IN ('active', 'disabled')")
    op.create_check_constraint("token_hash", "pix_connections", "token_hash ~ '^[0-9a-f]{64}$'")
    # The receiver finds a connection by its token hash as the platform (before it knows the
    # tenant); the api and the processing jobs see their own tenant's connections only.
    enable_rls("pix_connections", "quita_is_system() OR tenant_id = quita_tenant_id()")


def downgrade() -> None:
    op.drop_index("ix_pix_connections_tenant_id", table_name="pix_connections")
    op.drop_table("pix_connections")
