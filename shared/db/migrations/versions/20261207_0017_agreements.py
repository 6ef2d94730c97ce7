"""agreements: accepted offers with their own installments (number 0 the down payment), the
original installments they renegotiated and what those were before, and payments on them

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from shared.db.migrations.helpers import app_role, enable_rls

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_NOW = sa.text("now()")
_MONEY = sa.Numeric(14, 2)


def _fk(table: str, column: str, target: str, ondelete: str = "CASCADE") -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], [f"{target}.id"], name=op.f(f"fk_{table}_{column}_{target}"), ondelete=ondelete
    )


def _stamp(name: str) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sa.DateTime(timezone=True), nullable=True)


def upgrade() -> None:
    op.create_table(
        "agreements",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("offer_id", sa.Uuid(), nullable=False),
        sa.Column("option_id", sa.String(length=40), nullable=False),
        sa.Column("mandate_id", sa.Uuid(), nullable=True),
        sa.Column("policy_version", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), server_default="active", nullable=False),
        sa.Column("original_total", _MONEY, nullable=False),
        sa.Column("negotiated_total", _MONEY, nullable=False),
        sa.Column("interest", _MONEY, nullable=False),
        sa.Column("down_payment_amount", _MONEY, nullable=False),
        sa.Column("down_payment_due", sa.Date(), nullable=True),
        sa.Column("created_by", sa.String(length=80), nullable=True),
        sa.Column("idempotency_key", sa.String(length=200), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=_NOW, nullable=False),
        _stamp("voided_at"),
        _stamp("broken_at"),
        _stamp("completed_at"),
        _stamp("cancelled_at"),
        sa.Column("end_reason", sa.String(length=200), nullable=True),
        _fk("agreements", "tenant_id", "tenants"),
        _fk("agreements", "customer_id", "customers"),
        _fk("agreements", "offer_id", "offers", ondelete="RESTRICT"),
        _fk("agreements", "mandate_id", "mandates", ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agreements")),
        sa.UniqueConstraint("offer_id", name=op.f("uq_agreements_offer_id")),
    )
    op.create_check_constraint(
        "status",
        "agreements",
        "status IN ('active', 'void', 'broken', 'completed', 'cancelled')",
    )
    op.create_index("ix_agreements_customer_id", "agreements", ["customer_id"])
    op.create_index("ix_agreements_tenant_id_created_at", "agreements", ["tenant_id", "created_at"])
    # the lifecycle task reads only the active ones
    op.create_index(
        "ix_agreements_active",
        "agreements",
        ["tenant_id"],
        postgresql_where=sa.text("status = 'active'"),
    )
    op.create_table(
        "agreement_installments",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("agreement_id", sa.Uuid(), nullable=False),
        sa.Column("number", sa.SmallInteger(), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=False),
        sa.Column("amount", _MONEY, nullable=False),
        sa.Column("amount_paid", _MONEY, server_default="0", nullable=False),
        sa.Column("status", sa.String(length=16), server_default="open", nullable=False),
        sa.Column("paid_at", sa.DateTime(timezone=True), nullable=True),
        _fk("agreement_installments", "tenant_id", "tenants"),
        _fk("agreement_installments", "agreement_id", "agreements"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agreement_installments")),
        sa.UniqueConstraint(
            "agreement_id", "number", name=op.f("uq_agreement_installments_agreement_id_number")
        ),
    )
    op.create_check_constraint(
        "status", "agreement_installments", "status IN ('open', 'partially_paid', 'paid')"
    )
    op.create_check_constraint("amount", "agreement_installments", "amount > 0")
    op.create_table(
        "agreement_originals",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("agreement_id", sa.Uuid(), nullable=False),
        sa.Column("installment_id", sa.Uuid(), nullable=False),
        sa.Column("amount_paid_before", _MONEY, nullable=False),
        sa.Column("status_before", sa.String(length=16), nullable=False),
        sa.Column("applied_on_break", _MONEY, nullable=True),
        _fk("agreement_originals", "tenant_id", "tenants"),
        _fk("agreement_originals", "agreement_id", "agreements"),
        _fk("agreement_originals", "installment_id", "installments"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agreement_originals")),
        sa.UniqueConstraint(
            "agreement_id",
            "installment_id",
            name=op.f("uq_agreement_originals_agreement_id_installment_id"),
        ),
    )
    op.create_index(
        "ix_agreement_originals_installment_id", "agreement_originals", ["installment_id"]
    )
    op.create_table(
        "agreement_payments",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("agreement_installment_id", sa.Uuid(), nullable=False),
        sa.Column("external_id", sa.String(length=64), nullable=False),
        sa.Column("amount", _MONEY, nullable=False),
        sa.Column("applied", _MONEY, nullable=False),
        sa.Column("overpaid", _MONEY, nullable=False),
        sa.Column("paid_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("method", sa.String(length=16), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("txid", sa.String(length=35), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=_NOW, nullable=False),
        _fk("agreement_payments", "tenant_id", "tenants"),
        _fk("agreement_payments", "agreement_installment_id", "agreement_installments"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agreement_payments")),
        sa.UniqueConstraint(
            "tenant_id", "external_id", name=op.f("uq_agreement_payments_tenant_id_external_id")
        ),
    )
    op.create_index(
        "ix_agreement_payments_agreement_installment_id",
        "agreement_payments",
        ["agreement_installment_id"],
    )
    # As offers: an agency with a mandate reads and writes agreements for the retailers it works
    # for (which mandate, and whether it may negotiate, the application checks).  Payments are
    # the retailer's facts: written under its own scope (the PSP's webhook) and never edited.
    readable = "quita_is_system() OR tenant_id = ANY (quita_tenant_ids())"
    own = "quita_is_system() OR tenant_id = quita_tenant_id()"
    for table in ("agreements", "agreement_installments", "agreement_originals"):
        enable_rls(table, readable)
    enable_rls("agreement_payments", readable, check=own)
    op.execute(f"REVOKE UPDATE, DELETE, TRUNCATE ON agreement_payments FROM {app_role()}")


def downgrade() -> None:
    op.drop_table("agreement_payments")
    op.drop_table("agreement_originals")
    op.drop_table("agreement_installments")
    op.drop_table("agreements")
