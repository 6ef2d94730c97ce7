"""webhook journal: provider POSTs kept raw, split into events deduplicated by natural key

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from shared.db.migrations.helpers import enable_rls

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "webhook_receipts",
        sa.Column("provider", sa.String(length=16), nullable=False),
        sa.Column(
            "received_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("channel_id", sa.Uuid(), nullable=True),
        sa.Column("tenant_id", sa.Uuid(), nullable=True),
        sa.Column("content_type", sa.String(length=100), nullable=True),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("events", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("duplicates", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["channel_id"],
            ["channels.id"],
            name=op.f("fk_webhook_receipts_channel_id_channels"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_receipts")),
    )
    op.create_index(
        "ix_webhook_receipts_received_at", "webhook_receipts", ["received_at"], unique=False
    )
    op.create_table(
        "webhook_events",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("receipt_id", sa.Uuid(), nullable=False),
        sa.Column("provider", sa.String(length=16), nullable=False),
        sa.Column("event_key", sa.String(length=400), nullable=False),
        sa.Column("kind", sa.String(length=60), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=True),
        sa.Column("channel_id", sa.Uuid(), nullable=True),
        sa.Column("payload", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "received_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("state", sa.String(length=16), server_default="pending", nullable=False),
        sa.Column("result", sa.String(length=300), nullable=True),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.ForeignKeyConstraint(
            ["channel_id"],
            ["channels.id"],
            name=op.f("fk_webhook_events_channel_id_channels"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["receipt_id"],
            ["webhook_receipts.id"],
            name=op.f("fk_webhook_events_receipt_id_webhook_receipts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_events")),
        sa.UniqueConstraint(
            "provider", "event_key", name=op.f("uq_webhook_events_provider_event_key")
        ),
    )
    op.create_index(
        "ix_webhook_events_received_at", "webhook_events", ["received_at"], unique=False
    )
    op.create_index(
        "ix_webhook_events_unfinished",
        "webhook_events",
        ["received_at"],
        unique=False,
        postgresql_where=sa.text("state = 'pending'"),
    )
    op.create_index(
        "ix_channels_whatsapp_waba_id",
        "channels",
        [sa.literal_column("(config ->> 'waba_id')")],
        unique=False,
        postgresql_where=sa.text("kind = 'whatsapp'"),
    )
    op.create_check_constraint(
        "state", "webhook_events", "state IN ('pending', 'processed', 'ignored')"
    )
    op.create_check_constraint(
        "provider", "webhook_events", "provider IN ('whatsapp', 'sms', 'pix')"
    )
    op.create_check_constraint(
        "provider", "webhook_receipts", "provider IN ('whatsapp', 'sms', 'pix')"
    )
    # The receiver writes as the platform (it routes to a tenant only after verifying); the
    # processing jobs read their tenant's events.
    owner = "quita_is_system() OR tenant_id = quita_tenant_id()"
    enable_rls("webhook_receipts", owner)
    enable_rls("webhook_events", owner)


def downgrade() -> None:
    op.drop_index(
        "ix_channels_whatsapp_waba_id",
        table_name="channels",
        postgresql_where=sa.text("kind = 'whatsapp'"),
    )
    op.drop_index(
        "ix_webhook_events_unfinished",
        table_name="webhook_events",
        postgresql_where=sa.text("state = 'pending'"),
    )
    op.drop_index("ix_webhook_events_received_at", table_name="webhook_events")
    op.drop_table("webhook_events")
    op.drop_index("ix_webhook_receipts_received_at", table_name="webhook_receipts")
    op.drop_table("webhook_receipts")
