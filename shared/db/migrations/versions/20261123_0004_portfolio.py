"""portfolio: customers and their phones, installments, payments, fee rules, Pix settings,
imports (staging rows loaded with COPY, per-row errors)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from shared.db.migrations.helpers import app_role, enable_rls

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "correction_index_rates",
        sa.Column("index", sa.String(length=16), nullable=False),
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("percent", sa.Numeric(precision=8, scale=4), nullable=False),
        sa.PrimaryKeyConstraint("index", "month", name=op.f("pk_correction_index_rates")),
    )
    op.create_table(
        "import_rows",
        sa.Column("import_id", sa.Uuid(), nullable=False),
        sa.Column("line", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("customer_external_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("document", sa.String(length=14), nullable=True),
        sa.Column("phones", sa.ARRAY(sa.String(length=20)), nullable=True),
        sa.Column("email", sa.String(length=254), nullable=True),
        sa.Column("state", sa.String(length=2), nullable=True),
        sa.Column("city", sa.String(length=100), nullable=True),
        sa.Column("tags", sa.ARRAY(sa.String(length=64)), nullable=True),
        sa.Column("external_id", sa.String(length=64), nullable=True),
        sa.Column("contract", sa.String(length=64), nullable=True),
        sa.Column("number", sa.Integer(), nullable=True),
        sa.Column("count", sa.Integer(), nullable=True),
        sa.Column("principal", sa.Numeric(precision=14, scale=2), nullable=True),
        sa.Column("due_date", sa.Date(), nullable=True),
        sa.Column("boleto_line", sa.String(length=48), nullable=True),
        sa.Column("payment_url", sa.Text(), nullable=True),
        sa.Column("description", sa.String(length=300), nullable=True),
        sa.PrimaryKeyConstraint("import_id", "line", name=op.f("pk_import_rows")),
        prefixes=["UNLOGGED"],
    )
    op.create_table(
        "customers",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("external_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("document", sa.String(length=14), nullable=True),
        sa.Column("email", sa.String(length=254), nullable=True),
        sa.Column("state", sa.String(length=2), nullable=True),
        sa.Column("city", sa.String(length=100), nullable=True),
        sa.Column("tags", sa.ARRAY(sa.String(length=64)), server_default="{}", nullable=False),
        sa.Column("opted_out", sa.ARRAY(sa.String(length=16)), server_default="{}", nullable=False),
        sa.Column("do_not_contact", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("do_not_contact_reason", sa.String(length=200), nullable=True),
        sa.Column(
            "attributes",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default="{}",
            nullable=False,
        ),
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
            name=op.f("fk_customers_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customers")),
        sa.UniqueConstraint(
            "tenant_id", "external_id", name=op.f("uq_customers_tenant_id_external_id")
        ),
    )
    op.create_index(
        "ix_customers_tags", "customers", ["tags"], unique=False, postgresql_using="gin"
    )
    op.create_table(
        "fee_rules",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("effective_from", sa.Date(), nullable=False),
        sa.Column("fine_percent", sa.Numeric(precision=5, scale=2), nullable=False),
        sa.Column("monthly_interest_percent", sa.Numeric(precision=6, scale=3), nullable=False),
        sa.Column("correction_index", sa.String(length=16), nullable=True),
        sa.Column("discount_percent", sa.Numeric(precision=5, scale=2), nullable=False),
        sa.Column("discount_days_before_due", sa.Integer(), nullable=False),
        sa.Column("business_day_grace", sa.Boolean(), nullable=False),
        sa.Column("created_by", sa.String(length=80), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_fee_rules_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fee_rules")),
        sa.UniqueConstraint("tenant_id", "version", name=op.f("uq_fee_rules_tenant_id_version")),
    )
    op.create_table(
        "imports",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("format", sa.String(length=8), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=True),
        sa.Column("sha256", sa.String(length=64), nullable=True),
        sa.Column("created_by", sa.String(length=80), nullable=True),
        sa.Column("rows_total", sa.Integer(), server_default="0", nullable=False),
        sa.Column("rows_valid", sa.Integer(), server_default="0", nullable=False),
        sa.Column("rows_rejected", sa.Integer(), server_default="0", nullable=False),
        sa.Column("rows_merged", sa.Integer(), server_default="0", nullable=False),
        sa.Column("customers_created", sa.Integer(), server_default="0", nullable=False),
        sa.Column("customers_updated", sa.Integer(), server_default="0", nullable=False),
        sa.Column("installments_created", sa.Integer(), server_default="0", nullable=False),
        sa.Column("installments_updated", sa.Integer(), server_default="0", nullable=False),
        sa.Column("installments_unchanged", sa.Integer(), server_default="0", nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
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
            name=op.f("fk_imports_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_imports")),
    )
    op.create_table(
        "pix_settings",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("key", sa.String(length=77), nullable=False),
        sa.Column("key_type", sa.String(length=8), nullable=False),
        sa.Column("merchant_name", sa.String(length=25), nullable=False),
        sa.Column("city", sa.String(length=15), nullable=False),
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
            name=op.f("fk_pix_settings_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", name=op.f("pk_pix_settings")),
    )
    op.create_table(
        "customer_phones",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("number", sa.String(length=20), nullable=False),
        sa.Column("position", sa.SmallInteger(), nullable=False),
        sa.Column("active", sa.Boolean(), server_default="true", nullable=False),
        sa.Column("wa_key", sa.String(length=20), nullable=False),
        sa.Column("whatsapp_id", sa.String(length=20), nullable=True),
        sa.Column("status", sa.String(length=16), server_default="valid", nullable=False),
        sa.Column("status_changed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("no_call_list_since", sa.Date(), nullable=True),
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
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_customer_phones_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_customer_phones_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customer_phones")),
        sa.UniqueConstraint(
            "customer_id", "number", name=op.f("uq_customer_phones_customer_id_number")
        ),
    )
    op.create_index(
        "ix_customer_phones_tenant_id_wa_key",
        "customer_phones",
        ["tenant_id", "wa_key"],
        unique=False,
    )
    op.create_table(
        "import_errors",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("import_id", sa.Uuid(), nullable=False),
        sa.Column("line", sa.Integer(), nullable=False),
        sa.Column("field", sa.String(length=64), nullable=True),
        sa.Column("reason", sa.String(length=300), nullable=False),
        sa.ForeignKeyConstraint(
            ["import_id"],
            ["imports.id"],
            name=op.f("fk_import_errors_import_id_imports"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_import_errors_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_import_errors")),
    )
    op.create_index(
        "ix_import_errors_import_id_line", "import_errors", ["import_id", "line"], unique=False
    )
    op.create_table(
        "installments",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("external_id", sa.String(length=64), nullable=False),
        sa.Column("contract", sa.String(length=64), nullable=True),
        sa.Column("number", sa.Integer(), nullable=True),
        sa.Column("count", sa.Integer(), nullable=True),
        sa.Column("principal", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=16), server_default="open", nullable=False),
        sa.Column("status_reason", sa.String(length=200), nullable=True),
        sa.Column("status_changed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "amount_paid", sa.Numeric(precision=14, scale=2), server_default="0", nullable=False
        ),
        sa.Column("settled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("boleto_line", sa.String(length=48), nullable=True),
        sa.Column("payment_url", sa.Text(), nullable=True),
        sa.Column("description", sa.String(length=300), nullable=True),
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
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_installments_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_installments_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_installments")),
        sa.UniqueConstraint(
            "tenant_id", "external_id", name=op.f("uq_installments_tenant_id_external_id")
        ),
    )
    op.create_index("ix_installments_customer_id", "installments", ["customer_id"], unique=False)
    op.create_index(
        "ix_installments_tenant_id_status_due_date",
        "installments",
        ["tenant_id", "status", "due_date"],
        unique=False,
    )
    op.create_table(
        "payments",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("installment_id", sa.Uuid(), nullable=False),
        sa.Column("external_id", sa.String(length=64), nullable=False),
        sa.Column("amount", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column("applied", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column("overpaid", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column("balance_before", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column("paid_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("method", sa.String(length=16), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("txid", sa.String(length=35), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["installment_id"],
            ["installments.id"],
            name=op.f("fk_payments_installment_id_installments"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_payments_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payments")),
        sa.UniqueConstraint(
            "tenant_id", "external_id", name=op.f("uq_payments_tenant_id_external_id")
        ),
    )
    op.create_index("ix_payments_installment_id", "payments", ["installment_id"], unique=False)
    _constraints_and_policies()


def downgrade() -> None:
    op.drop_index("ix_payments_installment_id", table_name="payments")
    op.drop_table("payments")
    op.drop_index("ix_installments_tenant_id_status_due_date", table_name="installments")
    op.drop_index("ix_installments_customer_id", table_name="installments")
    op.drop_table("installments")
    op.drop_index("ix_import_errors_import_id_line", table_name="import_errors")
    op.drop_table("import_errors")
    op.drop_index("ix_customer_phones_tenant_id_wa_key", table_name="customer_phones")
    op.drop_table("customer_phones")
    op.drop_table("pix_settings")
    op.drop_table("imports")
    op.drop_table("fee_rules")
    op.drop_index("ix_customers_tags", table_name="customers", postgresql_using="gin")
    op.drop_table("customers")
    op.drop_table("import_rows")
    op.drop_table("correction_index_rates")


def _constraints_and_policies() -> None:
    role = app_role()
    checks = {
        "customers": {
            "state": "state IS NULL OR state ~ '^[A-Z]{2}$'",
            "opted_out": "opted_out <@ ARRAY['whatsapp', 'sms', 'email']::varchar[]",
        },
        "customer_phones": {
            "status": "status IN ('valid', 'wrong_person', 'unreachable')",
            "e164": "number ~ '^\\+[1-9][0-9]{6,14}$'",
        },
        "installments": {
            "status": "status IN ('open', 'partially_paid', 'paid', 'renegotiated', 'disputed', "
            "'written_off', 'cancelled')",
            "principal": "principal > 0",
            "amount_paid": "amount_paid >= 0",
            "number": "number IS NULL OR number >= 1",
            "number_count": "count IS NULL OR number IS NULL OR number <= count",
        },
        "payments": {
            "amount": "amount > 0",
            "split": "applied >= 0 AND overpaid >= 0 AND applied + overpaid = amount",
        },
        "fee_rules": {
            # CDC art. 52 par. 1: the late fee on consumer credit is at most 2 %.
            "fine_cap": "fine_percent >= 0 AND fine_percent <= 2",
            "interest": "monthly_interest_percent >= 0 AND monthly_interest_percent <= 10",
            "discount": "discount_percent >= 0 AND discount_percent <= 100",
            "discount_days": "discount_days_before_due >= 0",
            "version": "version >= 1",
        },
        "imports": {
            "status": "status IN ('receiving', 'queued', 'merging', 'done', 'failed')",
            "format": "format IN ('csv', 'jsonl')",
        },
    }
    for table, named in checks.items():
        for name, condition in named.items():
            op.create_check_constraint(name, table, condition)

    # Readable by the owner and by agencies holding a mandate; written only by the owner.
    readable = "quita_is_system() OR tenant_id = ANY (quita_tenant_ids())"
    own = "quita_is_system() OR tenant_id = quita_tenant_id()"
    for table in ("customers", "customer_phones", "installments", "payments"):
        enable_rls(table, readable, check=own)
    for table in ("fee_rules", "pix_settings", "imports", "import_errors"):
        enable_rls(table, own)
    # import_rows has no policy: Postgres refuses COPY FROM into a table with row-level security.
    # It is staging only, never read by the API; the merge writes into customers and
    # installments through their policies, whose WITH CHECK refuses another tenant's rows.
    enable_rls("correction_index_rates", "true", check="quita_is_system()")

    # Payments and fee-rule versions are facts: recorded once, never edited.
    op.execute(f"REVOKE UPDATE, DELETE, TRUNCATE ON payments, fee_rules FROM {role}")

    # Every existing tenant starts with the market default: multa 2 %, juros 1 % a.m.
    op.execute(
        """
        INSERT INTO fee_rules (id, tenant_id, version, effective_from, fine_percent,
            monthly_interest_percent, correction_index, discount_percent,
            discount_days_before_due, business_day_grace, created_by)
        SELECT gen_random_uuid(), id, 1, DATE '2000-01-01', 2, 1, NULL, 0, 0, true, 'system'
        FROM tenants WHERE kind = 'retailer'
        """
    )
