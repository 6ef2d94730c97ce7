"""negotiation: versioned negotiation policies per retailer (version 1, the default, for every
existing retailer), agency limits per mandate, and stored offers

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from shared.db.migrations.helpers import enable_rls

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_NOW = sa.text("now()")
_PERCENT = sa.Numeric(5, 2)
_MONEY = sa.Numeric(14, 2)
_RATE = sa.Numeric(6, 3)


def _fk(table: str, column: str, target: str, ondelete: str = "CASCADE") -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], [f"{target}.id"], name=op.f(f"fk_{table}_{column}_{target}"), ondelete=ondelete
    )


def _limit_columns(nullable: bool) -> list[sa.Column]:  # type: ignore[type-arg]
    return [
        sa.Column("max_discount_fees_percent", _PERCENT, nullable=nullable),
        sa.Column("max_discount_principal_percent", _PERCENT, nullable=nullable),
        sa.Column("min_down_payment_percent", _PERCENT, nullable=nullable),
        sa.Column("max_installments", sa.SmallInteger(), nullable=nullable),
        sa.Column("min_installment_amount", _MONEY, nullable=nullable),
        sa.Column("monthly_interest_percent", _RATE, nullable=nullable),
        sa.Column("offer_validity_hours", sa.SmallInteger(), nullable=nullable),
        sa.Column("max_broken_agreements", sa.SmallInteger(), nullable=nullable),
    ]


def upgrade() -> None:
    op.create_table(
        "negotiation_policies",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        *_limit_columns(nullable=False),
        sa.Column("created_by", sa.String(length=80), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=_NOW, nullable=False),
        _fk("negotiation_policies", "tenant_id", "tenants"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_negotiation_policies")),
        sa.UniqueConstraint(
            "tenant_id", "version", name=op.f("uq_negotiation_policies_tenant_id_version")
        ),
    )
    op.create_table(
        "mandate_negotiation_limits",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("mandate_id", sa.Uuid(), nullable=False),
        *_limit_columns(nullable=True),
        sa.Column("updated_by", sa.String(length=80), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=_NOW, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=_NOW, nullable=False),
        _fk("mandate_negotiation_limits", "tenant_id", "tenants"),
        _fk("mandate_negotiation_limits", "mandate_id", "mandates"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mandate_negotiation_limits")),
        sa.UniqueConstraint("mandate_id", name=op.f("uq_mandate_negotiation_limits_mandate_id")),
    )
    op.create_table(
        "offers",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("policy_version", sa.Integer(), nullable=False),
        sa.Column("mandate_id", sa.Uuid(), nullable=True),
        sa.Column("installment_ids", postgresql.ARRAY(sa.Uuid()), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("limits", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("basis", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("options", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("created_by", sa.String(length=80), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=_NOW, nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        _fk("offers", "tenant_id", "tenants"),
        _fk("offers", "customer_id", "customers"),
        _fk("offers", "mandate_id", "mandates", ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_offers")),
    )
    op.create_check_constraint("kind", "offers", "kind IN ('menu', 'custom')")
    op.create_index("ix_offers_customer_id", "offers", ["customer_id"])
    op.create_index("ix_offers_tenant_id_created_at", "offers", ["tenant_id", "created_at"])
    # Every existing retailer starts with the default policy as version 1 (new retailers get it
    # on first use, with the same values: shared.domains.negotiation.policy.DEFAULT).
    op.execute(
        """
        INSERT INTO negotiation_policies (id, tenant_id, version, max_discount_fees_percent,
            max_discount_principal_percent, min_down_payment_percent, max_installments,
            min_installment_amount, monthly_interest_percent, offer_validity_hours,
            max_broken_agreements, created_by)
        SELECT gen_random_uuid(), id, 1, 50, 0, 10, 6, 20.00, 0, 72, 2, 'system'
        FROM tenants WHERE kind = 'retailer'
        """
    )
    # An agency reads the policy and its mandate's limits of the retailers it works for, and
    # writes offers for them; only the retailer writes its policy and its agencies' limits.
    readable = "quita_is_system() OR tenant_id = ANY (quita_tenant_ids())"
    own = "quita_is_system() OR tenant_id = quita_tenant_id()"
    enable_rls("negotiation_policies", readable, check=own)
    enable_rls("mandate_negotiation_limits", readable, check=own)
    enable_rls("offers", readable)


def downgrade() -> None:
    op.drop_table("offers")
    op.drop_table("mandate_negotiation_limits")
    op.drop_table("negotiation_policies")
