"""message templates: WhatsApp, SMS and e-mail texts per tenant with named variables and the
provider's review status

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from shared.db.migrations.helpers import enable_rls

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "message_templates",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("channel_kind", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=512), nullable=False),
        sa.Column("language", sa.String(length=16), server_default="pt_BR", nullable=False),
        sa.Column("category", sa.String(length=16), server_default="UTILITY", nullable=False),
        sa.Column("key", sa.String(length=64), nullable=True),
        sa.Column("header", sa.String(length=60), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("footer", sa.String(length=60), nullable=True),
        sa.Column(
            "buttons", postgresql.JSONB(astext_type=sa.Text()), server_default="[]", nullable=False
        ),
        sa.Column("subject", sa.String(length=200), nullable=True),
        sa.Column("html", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=16), server_default="DRAFT", nullable=False),
        sa.Column("rejected_reason", sa.String(length=100), nullable=True),
        sa.Column("provider_template_id", sa.String(length=64), nullable=True),
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
            name=op.f("fk_message_templates_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_message_templates")),
        sa.UniqueConstraint(
            "tenant_id",
            "channel_kind",
            "name",
            "language",
            name=op.f("uq_message_templates_tenant_id_channel_kind_name_language"),
        ),
    )
    op.create_check_constraint(
        "channel_kind", "message_templates", "channel_kind IN ('whatsapp', 'sms', 'email')"
    )
    op.create_check_constraint(
        "category", "message_templates", "category IN ('UTILITY', 'MARKETING', 'AUTHENTICATION')"
    )
    op.create_check_constraint(
        "status",
        "message_templates",
        "status IN ('DRAFT', 'PENDING', 'APPROVED', 'REJECTED', 'PAUSED', 'DISABLED')",
    )
    op.create_check_constraint(
        "name", "message_templates", "name ~ '^[a-z0-9_]+$' AND length(name) <= 512"
    )
    enable_rls("message_templates", "quita_is_system() OR tenant_id = quita_tenant_id()")


def downgrade() -> None:
    op.drop_table("message_templates")
