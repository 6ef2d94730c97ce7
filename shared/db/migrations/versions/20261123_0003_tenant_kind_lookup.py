"""tenant kind lookup: a retailer may learn whether an id is an agency (to give it a mandate)
without seeing anything else of it

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from collections.abc import Sequence

from alembic import op

from shared.db.migrations.helpers import app_role

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        """
        CREATE FUNCTION quita_tenant_kind(tenant uuid) RETURNS text
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public AS
        $$ SELECT kind FROM tenants WHERE id = tenant AND status = 'active' $$
        """
    )
    op.execute("REVOKE ALL ON FUNCTION quita_tenant_kind(uuid) FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION quita_tenant_kind(uuid) TO {app_role()}")


def downgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS quita_tenant_kind(uuid)")
