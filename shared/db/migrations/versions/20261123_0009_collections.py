"""collections: régua (cadences, steps), governance settings, holds, campaigns, contact attempts

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from shared.db.migrations.helpers import enable_rls

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "cadences",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("is_default", sa.Boolean(), server_default="false", nullable=False),
        sa.Column(
            "tags_any", postgresql.ARRAY(sa.String(length=64)), server_default="{}", nullable=False
        ),
        sa.Column("priority", sa.SmallInteger(), server_default="100", nullable=False),
        sa.Column("active", sa.Boolean(), server_default="true", nullable=False),
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
            name=op.f("fk_cadences_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cadences")),
        sa.UniqueConstraint("tenant_id", "name", name=op.f("uq_cadences_tenant_id_name")),
    )
    op.create_index(
        "uq_cadences_default",
        "cadences",
        ["tenant_id"],
        unique=True,
        postgresql_where=sa.text("is_default"),
    )
    op.create_table(
        "collection_settings",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column(
            "window", postgresql.JSONB(astext_type=sa.Text()), server_default="{}", nullable=False
        ),
        sa.Column("daily_cap", sa.SmallInteger(), server_default="1", nullable=False),
        sa.Column("weekly_cap", sa.SmallInteger(), server_default="3", nullable=False),
        sa.Column("catch_up_days", sa.SmallInteger(), server_default="2", nullable=False),
        sa.Column("paid_hold_days", sa.SmallInteger(), server_default="3", nullable=False),
        sa.Column("fallback_after_hours", sa.SmallInteger(), server_default="24", nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_collection_settings_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", name=op.f("pk_collection_settings")),
    )
    op.create_table(
        "cadence_steps",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("cadence_id", sa.Uuid(), nullable=False),
        sa.Column("offset_days", sa.SmallInteger(), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("fallback_channel", sa.String(length=16), nullable=True),
        sa.Column("variants", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("holdout_percent", sa.SmallInteger(), server_default="0", nullable=False),
        sa.Column("min_amount", sa.Numeric(precision=14, scale=2), nullable=True),
        sa.Column(
            "tags_any", postgresql.ARRAY(sa.String(length=64)), server_default="{}", nullable=False
        ),
        sa.Column("max_days_overdue", sa.SmallInteger(), nullable=True),
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
            ["cadence_id"],
            ["cadences.id"],
            name=op.f("fk_cadence_steps_cadence_id_cadences"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_cadence_steps_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cadence_steps")),
        sa.UniqueConstraint(
            "cadence_id", "offset_days", name=op.f("uq_cadence_steps_cadence_id_offset_days")
        ),
    )
    op.create_table(
        "collection_holds",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("installment_id", sa.Uuid(), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=300), nullable=True),
        sa.Column("until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("released_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_by", sa.String(length=100), nullable=True),
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
            name=op.f("fk_collection_holds_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["installment_id"],
            ["installments.id"],
            name=op.f("fk_collection_holds_installment_id_installments"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_collection_holds_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_collection_holds")),
    )
    op.create_index(
        "ix_collection_holds_active",
        "collection_holds",
        ["tenant_id", "customer_id"],
        unique=False,
        postgresql_where=sa.text("released_at IS NULL"),
    )
    op.create_table(
        "campaigns",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("filter", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("template_name", sa.String(length=512), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("fallback_channel", sa.String(length=16), nullable=True),
        sa.Column("created_by", sa.String(length=100), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "counts", postgresql.JSONB(astext_type=sa.Text()), server_default="{}", nullable=False
        ),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_campaigns_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaigns")),
    )
    op.create_index(
        "ix_campaigns_tenant_created", "campaigns", ["tenant_id", "created_at"], unique=False
    )
    op.create_table(
        "contact_attempts",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=16), server_default="regua", nullable=False),
        sa.Column("cadence_id", sa.Uuid(), nullable=True),
        sa.Column("step_id", sa.Uuid(), nullable=True),
        sa.Column("campaign_id", sa.Uuid(), nullable=True),
        sa.Column("offset_days", sa.SmallInteger(), nullable=True),
        sa.Column("template_name", sa.String(length=512), nullable=True),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("fallback_channel", sa.String(length=16), nullable=True),
        sa.Column("fallback_of", sa.Uuid(), nullable=True),
        sa.Column("channel_id", sa.Uuid(), nullable=True),
        sa.Column("template_id", sa.Uuid(), nullable=True),
        sa.Column("recipient", sa.String(length=254), nullable=True),
        sa.Column("state", sa.String(length=16), server_default="planned", nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=True),
        sa.Column("contact_day", sa.Date(), nullable=False),
        sa.Column("planned_for", sa.DateTime(timezone=True), nullable=False),
        sa.Column("queued_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sending_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("read_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("failed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("tries", sa.SmallInteger(), server_default="0", nullable=False),
        sa.Column("provider_message_id", sa.String(length=128), nullable=True),
        sa.Column("error_class", sa.String(length=32), nullable=True),
        sa.Column("error_code", sa.Integer(), nullable=True),
        sa.Column("amounts", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("rendered_sha256", sa.String(length=64), nullable=True),
        sa.Column(
            "decisions",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default="[]",
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
            ["cadence_id"],
            ["cadences.id"],
            name=op.f("fk_contact_attempts_cadence_id_cadences"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_contact_attempts_campaign_id_campaigns"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["channel_id"],
            ["channels.id"],
            name=op.f("fk_contact_attempts_channel_id_channels"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_contact_attempts_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["fallback_of"],
            ["contact_attempts.id"],
            name=op.f("fk_contact_attempts_fallback_of_contact_attempts"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["step_id"],
            ["cadence_steps.id"],
            name=op.f("fk_contact_attempts_step_id_cadence_steps"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["template_id"],
            ["message_templates.id"],
            name=op.f("fk_contact_attempts_template_id_message_templates"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_contact_attempts_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contact_attempts")),
    )
    op.create_index(
        "ix_contact_attempts_customer",
        "contact_attempts",
        ["tenant_id", "customer_id", "planned_for"],
        unique=False,
    )
    op.create_index(
        "ix_contact_attempts_open",
        "contact_attempts",
        ["state", "planned_for"],
        unique=False,
        postgresql_where=sa.text("state IN ('planned', 'queued', 'sending', 'unknown')"),
    )
    op.create_index(
        "uq_contact_attempts_provider_message",
        "contact_attempts",
        ["provider_message_id"],
        unique=True,
        postgresql_where=sa.text("provider_message_id IS NOT NULL"),
    )
    op.create_index(
        "ix_contact_attempts_campaign",
        "contact_attempts",
        ["tenant_id", "campaign_id"],
        unique=False,
    )
    op.create_table(
        "contact_attempt_items",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("attempt_id", sa.Uuid(), nullable=False),
        sa.Column("installment_id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("step_id", sa.Uuid(), nullable=True),
        sa.ForeignKeyConstraint(
            ["attempt_id"],
            ["contact_attempts.id"],
            name=op.f("fk_contact_attempt_items_attempt_id_contact_attempts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["installment_id"],
            ["installments.id"],
            name=op.f("fk_contact_attempt_items_installment_id_installments"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["step_id"],
            ["cadence_steps.id"],
            name=op.f("fk_contact_attempt_items_step_id_cadence_steps"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_contact_attempt_items_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contact_attempt_items")),
        sa.UniqueConstraint(
            "installment_id",
            "step_id",
            name=op.f("uq_contact_attempt_items_installment_id_step_id"),
        ),
    )
    op.create_index("ix_contact_attempt_items_attempt_id", "contact_attempt_items", ["attempt_id"])
    # the sweeper's "has it a fallback already?" and deletes (a self-referencing FK)
    op.create_index("ix_contact_attempts_fallback_of", "contact_attempts", ["fallback_of"])
    op.create_index(
        "ix_outbox_send_attempt",
        "outbox",
        [sa.literal_column("(args ->> 'attempt_id')")],
        postgresql_where=sa.text("actor = 'collections.send'"),
    )
    op.add_column("customers", sa.Column("cadence_id", sa.Uuid(), nullable=True))
    op.create_foreign_key(
        op.f("fk_customers_cadence_id_cadences"),
        "customers",
        "cadences",
        ["cadence_id"],
        ["id"],
        ondelete="SET NULL",
    )
    checks = {
        "collection_settings": {
            # the caps can be tightened, never switched off (issue: "never off")
            "daily_cap": "daily_cap BETWEEN 1 AND 3",
            "weekly_cap": "weekly_cap BETWEEN 1 AND 7 AND weekly_cap >= daily_cap",
            "catch_up_days": "catch_up_days BETWEEN 0 AND 15",
            "paid_hold_days": "paid_hold_days BETWEEN 0 AND 30",
            "fallback_after_hours": "fallback_after_hours BETWEEN 1 AND 168",
        },
        "cadence_steps": {
            "offset": "offset_days BETWEEN -30 AND 365",
            "channel": "channel IN ('whatsapp', 'sms', 'email')",
            "fallback": "fallback_channel IS NULL OR "
            "(fallback_channel IN ('whatsapp', 'sms', 'email') AND fallback_channel <> channel)",
            "holdout": "holdout_percent BETWEEN 0 AND 50",
            "variants": "jsonb_typeof(variants) = 'array' AND jsonb_array_length(variants) >= 1",
        },
        "collection_holds": {"kind": "kind IN ('pause', 'paid_claim', 'promise', 'dispute')"},
        "campaigns": {
            "name": "length(btrim(name)) > 0",
            "channel": "channel IN ('whatsapp', 'sms', 'email')",
            "fallback": "fallback_channel IS NULL OR "
            "(fallback_channel IN ('whatsapp', 'sms', 'email') AND fallback_channel <> channel)",
            "filter": "jsonb_typeof(filter) = 'object'",
            "counts": "jsonb_typeof(counts) = 'object'",
        },
        "contact_attempts": {
            "state": "state IN ('planned', 'queued', 'sending', 'sent', 'delivered', 'read', "
            "'failed', 'unknown', 'cancelled', 'skipped')",
            "kind": "kind IN ('regua', 'manual', 'campaign')",
            "channel": "channel IN ('whatsapp', 'sms', 'email')",
        },
    }
    # Retailers that exist already get what new ones get: settings and the default régua.
    op.execute(
        "INSERT INTO collection_settings (tenant_id) SELECT id FROM tenants WHERE kind = 'retailer'"
    )
    op.execute(
        """INSERT INTO cadences (id, tenant_id, name, is_default)
           SELECT gen_random_uuid(), id, 'Régua padrão', true FROM tenants
           WHERE kind = 'retailer'"""
    )
    op.execute(
        """INSERT INTO cadence_steps (id, tenant_id, cadence_id, offset_days, channel,
                                      fallback_channel, variants)
           SELECT gen_random_uuid(), c.tenant_id, c.id, s.offset_days, 'whatsapp', 'sms',
                  jsonb_build_array(jsonb_build_object('template', s.template, 'weight', 1))
           FROM cadences c CROSS JOIN (VALUES
               (-3, 'quita_lembrete_d3_v1'),
               (0, 'quita_vence_hoje_v1'), (1, 'quita_atraso_d1_v1'),
               (5, 'quita_atraso_d5_v1'), (15, 'quita_lembrete_final_d15_v1')
           ) AS s (offset_days, template)"""
    )
    for table, named in checks.items():
        for name, condition in named.items():
            op.create_check_constraint(name, table, condition)
    # Settings and réguas are the retailer's own; attempts, their items and holds are about
    # customers, so agencies with a mandate read them, as they read the customers.
    own = "quita_is_system() OR tenant_id = quita_tenant_id()"
    readable = "quita_is_system() OR tenant_id = ANY (quita_tenant_ids())"
    # Campaigns are the retailer's own too (its decision to message a segment).
    for table in ("collection_settings", "cadences", "cadence_steps", "campaigns"):
        enable_rls(table, own)
    for table in ("collection_holds", "contact_attempts", "contact_attempt_items"):
        enable_rls(table, readable, check=own)


def downgrade() -> None:
    op.drop_index("ix_outbox_send_attempt", table_name="outbox")
    op.drop_index("ix_contact_attempts_fallback_of", table_name="contact_attempts")
    op.drop_constraint(op.f("fk_customers_cadence_id_cadences"), "customers", type_="foreignkey")
    op.drop_column("customers", "cadence_id")
    op.drop_index("ix_contact_attempt_items_attempt_id", table_name="contact_attempt_items")
    op.drop_table("contact_attempt_items")
    op.drop_index(
        "uq_contact_attempts_provider_message",
        table_name="contact_attempts",
        postgresql_where=sa.text("provider_message_id IS NOT NULL"),
    )
    op.drop_index(
        "ix_contact_attempts_open",
        table_name="contact_attempts",
        postgresql_where=sa.text("state IN ('planned', 'queued', 'sending', 'unknown')"),
    )
    op.drop_index("ix_contact_attempts_customer", table_name="contact_attempts")
    op.drop_index("ix_contact_attempts_campaign", table_name="contact_attempts")
    op.drop_table("contact_attempts")
    op.drop_index("ix_campaigns_tenant_created", table_name="campaigns")
    op.drop_table("campaigns")
    op.drop_index(
        "ix_collection_holds_active",
        table_name="collection_holds",
        postgresql_where=sa.text("released_at IS NULL"),
    )
    op.drop_table("collection_holds")
    op.drop_table("cadence_steps")
    op.drop_table("collection_settings")
    op.drop_index(
        "uq_cadences_default", table_name="cadences", postgresql_where=sa.text("is_default")
    )
    op.drop_table("cadences")
