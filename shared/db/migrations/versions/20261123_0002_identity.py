"""identity: tenants' creditor data, users, memberships, mandates, OAuth state, audit events,
row-level security

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from shared.db.migrations.helpers import app_role, enable_rls

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _timestamps() -> list[sa.Column[Any]]:
    return [
        sa.Column(name, sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False)
        for name in ("created_at", "updated_at")
    ]


def upgrade() -> None:
    role = app_role()
    # The tenant scope of the current transaction, set by the application (shared.tenancy):
    # quita.tenant_id — the caller's own tenant; quita.tenant_ids — every tenant whose data the
    # caller may read (its own plus, for an agency, the retailers that gave it a mandate);
    # quita.system — platform processes (token endpoint, relay, scheduler, admin).
    op.execute(
        """
        CREATE FUNCTION quita_tenant_id() RETURNS uuid LANGUAGE sql STABLE AS
        $$ SELECT NULLIF(current_setting('quita.tenant_id', true), '')::uuid $$
        """
    )
    op.execute(
        """
        CREATE FUNCTION quita_tenant_ids() RETURNS uuid[] LANGUAGE sql STABLE AS
        $$ SELECT string_to_array(
               NULLIF(current_setting('quita.tenant_ids', true), ''), ',')::uuid[] $$
        """
    )
    op.execute(
        """
        CREATE FUNCTION quita_is_system() RETURNS boolean LANGUAGE sql STABLE AS
        $$ SELECT coalesce(current_setting('quita.system', true), '') = 'on' $$
        """
    )

    op.add_column("tenants", sa.Column("legal_name", sa.String(200), nullable=True))
    op.add_column("tenants", sa.Column("document", sa.String(14), nullable=True))
    op.add_column("tenants", sa.Column("address", sa.String(300), nullable=True))
    op.add_column("tenants", sa.Column("city", sa.String(100), nullable=True))
    op.add_column("tenants", sa.Column("state", sa.String(2), nullable=True))
    op.add_column(
        "tenants",
        sa.Column("time_zone", sa.String(64), nullable=False, server_default="America/Sao_Paulo"),
    )
    op.add_column(
        "tenants", sa.Column("status", sa.String(16), nullable=False, server_default="active")
    )
    op.create_unique_constraint("uq_tenants_document", "tenants", ["document"])
    op.create_check_constraint("status", "tenants", "status IN ('active', 'suspended')")

    op.create_table(
        "users",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("email", sa.String(254), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=False),
        sa.Column("is_platform_admin", sa.Boolean(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        *_timestamps(),
        sa.PrimaryKeyConstraint("id", name="pk_users"),
        sa.UniqueConstraint("email", name="uq_users_email"),
        sa.CheckConstraint("email = lower(email)", name="ck_users_email_lower"),
    )

    op.create_table(
        "memberships",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        *_timestamps(),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name="fk_memberships_user_id_users", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name="fk_memberships_tenant_id_tenants",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_memberships"),
        sa.UniqueConstraint("user_id", "tenant_id", name="uq_memberships_user_id_tenant_id"),
        sa.CheckConstraint(
            "role IN ('owner', 'admin', 'operator', 'viewer')", name="ck_memberships_role"
        ),
    )

    op.create_table(
        "mandates",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("agency_id", sa.Uuid(), nullable=False),
        sa.Column("tags", postgresql.ARRAY(sa.String(64)), nullable=True),
        sa.Column("actions", postgresql.ARRAY(sa.String(16)), nullable=False),
        sa.Column("limits", postgresql.JSONB(), nullable=False),
        sa.Column("valid_from", sa.DateTime(timezone=True), nullable=False),
        sa.Column("valid_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        *_timestamps(),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name="fk_mandates_tenant_id_tenants", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["agency_id"], ["tenants.id"], name="fk_mandates_agency_id_tenants", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_mandates"),
        sa.CheckConstraint("tenant_id <> agency_id", name="ck_mandates_distinct_parties"),
    )
    op.create_index("ix_mandates_agency_id", "mandates", ["agency_id"])

    op.create_table(
        "oauth_clients",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("client_id", sa.String(64), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("secret_digest", sa.String(64), nullable=True),
        sa.Column("previous_secret_digest", sa.String(64), nullable=True),
        sa.Column("previous_secret_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("grant_types", postgresql.ARRAY(sa.String(64)), nullable=False),
        sa.Column("redirect_uris", postgresql.ARRAY(sa.Text()), nullable=False),
        sa.Column("scopes", postgresql.ARRAY(sa.String(64)), nullable=False),
        sa.Column("token_endpoint_auth_method", sa.String(32), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        *_timestamps(),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name="fk_oauth_clients_tenant_id_tenants",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_oauth_clients"),
        sa.UniqueConstraint("client_id", name="uq_oauth_clients_client_id"),
    )

    op.create_table(
        "oauth_authorization_codes",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("code_digest", sa.String(64), nullable=False),
        sa.Column("client_id", sa.String(64), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("redirect_uri", sa.Text(), nullable=False),
        sa.Column("scope", sa.Text(), nullable=False),
        sa.Column("code_challenge", sa.String(128), nullable=False),
        sa.Column("code_challenge_method", sa.String(8), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name="fk_oauth_authorization_codes_user_id_users",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name="fk_oauth_authorization_codes_tenant_id_tenants",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_oauth_authorization_codes"),
        sa.UniqueConstraint("code_digest", name="uq_oauth_authorization_codes_code_digest"),
    )

    op.create_table(
        "oauth_refresh_tokens",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("token_digest", sa.String(64), nullable=False),
        sa.Column("family_id", sa.Uuid(), nullable=False),
        sa.Column("client_id", sa.String(64), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("scope", sa.Text(), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name="fk_oauth_refresh_tokens_user_id_users",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name="fk_oauth_refresh_tokens_tenant_id_tenants",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_oauth_refresh_tokens"),
        sa.UniqueConstraint("token_digest", name="uq_oauth_refresh_tokens_token_digest"),
    )
    op.create_index("ix_oauth_refresh_tokens_family_id", "oauth_refresh_tokens", ["family_id"])

    op.create_table(
        "oauth_signing_keys",
        sa.Column("kid", sa.String(64), nullable=False),
        sa.Column("private_key", sa.Text(), nullable=False),
        sa.Column("public_jwk", sa.Text(), nullable=False),
        sa.Column("activated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("retired_at", sa.DateTime(timezone=True), nullable=True),
        *_timestamps(),
        sa.PrimaryKeyConstraint("kid", name="pk_oauth_signing_keys"),
    )

    op.create_table(
        "audit_events",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=True),
        sa.Column("actor_type", sa.String(16), nullable=False),
        sa.Column("actor_id", sa.String(64), nullable=True),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("subject_type", sa.String(32), nullable=True),
        sa.Column("subject_id", sa.String(64), nullable=True),
        sa.Column("data", postgresql.JSONB(), nullable=False),
        sa.Column("request_id", sa.String(64), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.PrimaryKeyConstraint("id", name="pk_audit_events"),
    )
    op.create_index("ix_audit_events_tenant_id_id", "audit_events", ["tenant_id", "id"])
    # Append-only: the app role may insert and read; a trigger refuses changes from anyone.
    op.execute(f"REVOKE UPDATE, DELETE, TRUNCATE ON audit_events FROM {role}")
    op.execute(
        """
        CREATE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'audit_events is append-only';
        END $$
        """
    )
    op.execute(
        "CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events "
        "FOR EACH ROW EXECUTE FUNCTION audit_events_append_only()"
    )

    # Row-level security: the second wall behind the application's scoping helper.
    own = "quita_is_system() OR tenant_id = quita_tenant_id()"
    enable_rls(
        "tenants",
        "quita_is_system() OR id = ANY (quita_tenant_ids())",
        check="quita_is_system() OR id = quita_tenant_id()",
    )
    enable_rls("memberships", own)
    enable_rls("oauth_clients", own)
    enable_rls("audit_events", own)
    enable_rls(
        "mandates",
        "quita_is_system() OR tenant_id = quita_tenant_id() OR agency_id = quita_tenant_id()",
        check=own,
    )
    for table in ("oauth_authorization_codes", "oauth_refresh_tokens", "oauth_signing_keys"):
        enable_rls(table, "quita_is_system()")


def downgrade() -> None:
    for table in (
        "audit_events",
        "oauth_signing_keys",
        "oauth_refresh_tokens",
        "oauth_authorization_codes",
        "oauth_clients",
        "mandates",
        "memberships",
        "users",
    ):
        op.drop_table(table)
    op.execute("DROP FUNCTION IF EXISTS audit_events_append_only()")
    op.execute("DROP POLICY IF EXISTS tenant_isolation ON tenants")
    op.execute("ALTER TABLE tenants DISABLE ROW LEVEL SECURITY")
    op.drop_constraint("ck_tenants_status", "tenants")
    op.drop_constraint("uq_tenants_document", "tenants")
    for column in ("status", "time_zone", "state", "city", "address", "document", "legal_name"):
        op.drop_column("tenants", column)
    for fn in ("quita_is_system()", "quita_tenant_ids()", "quita_tenant_id()"):
        op.execute(f"DROP FUNCTION IF EXISTS {fn}")
