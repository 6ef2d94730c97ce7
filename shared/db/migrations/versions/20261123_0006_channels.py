"""channels: WhatsApp numbers, SMS and e-mail senders per tenant, credentials encrypted

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from shared.db.migrations.helpers import enable_rls

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "channels",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("status", sa.String(length=16), server_default="active", nullable=False),
        sa.Column("status_reason", sa.String(length=300), nullable=True),
        sa.Column(
            "config", postgresql.JSONB(astext_type=sa.Text()), server_default="{}", nullable=False
        ),
        sa.Column("secrets", sa.Text(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_channels_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_channels")),
    )
    op.create_index("ix_channels_tenant_id", "channels", ["tenant_id"], unique=False)
    op.create_index(
        "uq_channels_whatsapp_phone_number_id",
        "channels",
        [sa.literal_column("(config ->> 'phone_number_id')")],
        unique=True,
        postgresql_where=sa.text("kind = 'whatsapp'"),
    )
    op.create_check_constraint("kind", "channels", "kind IN ('whatsapp', 'sms', 'email')")
    op.create_check_constraint("status", "channels", "status IN ('active', 'paused', 'stopped')")
    # Credentials are a tenant's own: no agency reads them, even with a mandate.
    enable_rls("channels", "quita_is_system() OR tenant_id = quita_tenant_id()")


def downgrade() -> None:
    op.drop_index(
        "uq_channels_whatsapp_phone_number_id",
        table_name="channels",
        postgresql_where=sa.text("kind = 'whatsapp'"),
    )
    op.drop_index("ix_channels_tenant_id", table_name="channels")
    op.drop_table("channels")
