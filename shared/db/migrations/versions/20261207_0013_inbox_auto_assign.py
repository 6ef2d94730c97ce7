"""inbox auto-assignment (operators who opt in are handed waiting conversations in turn);
what the provider charges for each reminder and the exact text it carried
(``contact_attempts.pricing``, ``rendered_text``); data subjects' requests (LGPD art. 18:
access within 15 days) tracked per customer;
agencies read the retailer's fee rules and Pix settings of the customers they may see (the
balances and Pix codes they show)

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

from shared.db.migrations.helpers import enable_rls, initplan

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_READABLE = "quita_is_system() OR tenant_id = ANY (quita_tenant_ids())"
_OWN = "quita_is_system() OR tenant_id = quita_tenant_id()"


def _policy(table: str, using: str, check: str) -> None:
    op.execute(
        f"ALTER POLICY tenant_isolation ON {table} "
        f"USING ({initplan(using)}) WITH CHECK ({initplan(check)})"
    )


def upgrade() -> None:
    op.add_column(
        "inbox_operators",
        sa.Column("auto_assign", sa.Boolean(), server_default="false", nullable=False),
    )
    op.add_column(
        "inbox_operators", sa.Column("last_assigned_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.add_column("contact_attempts", sa.Column("pricing", JSONB(), nullable=True))
    op.add_column("contact_attempts", sa.Column("rendered_text", sa.Text(), nullable=True))
    op.create_table(
        "data_requests",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(16), server_default="access", nullable=False),
        sa.Column("status", sa.String(16), server_default="open", nullable=False),
        sa.Column("received_via", sa.String(32), nullable=True),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("fulfilled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("export_sha256", sa.String(64), nullable=True),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_data_requests_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_data_requests_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["created_by"],
            ["users.id"],
            name=op.f("fk_data_requests_created_by_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_data_requests")),
    )
    op.create_index("ix_data_requests_open", "data_requests", ["tenant_id", "status", "due_at"])
    op.create_check_constraint("kind", "data_requests", "kind IN ('access')")
    op.create_check_constraint("status", "data_requests", "status IN ('open', 'fulfilled')")
    enable_rls("data_requests", _OWN)
    # An agency that sees a customer shows its balances and Pix codes: it reads the retailer's
    # fee rules and Pix settings (written only by the retailer, as before).
    for table in ("fee_rules", "pix_settings"):
        _policy(table, _READABLE, _OWN)


def downgrade() -> None:
    for table in ("fee_rules", "pix_settings"):
        _policy(table, _OWN, _OWN)
    op.drop_index("ix_data_requests_open", table_name="data_requests")
    op.drop_table("data_requests")
    op.drop_column("contact_attempts", "rendered_text")
    op.drop_column("contact_attempts", "pricing")
    op.drop_column("inbox_operators", "last_assigned_at")
    op.drop_column("inbox_operators", "auto_assign")
