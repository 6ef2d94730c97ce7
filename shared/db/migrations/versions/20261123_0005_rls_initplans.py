"""row-level security policies evaluate the scope once per statement, not once per row

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from shared.db.migrations.helpers import initplan

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    policies = op.get_bind().execute(
        sa.text(
            "SELECT tablename, qual, with_check FROM pg_policies "
            "WHERE schemaname = 'public' AND policyname = 'tenant_isolation'"
        )
    )
    for table, using, check in policies.all():
        clauses = []
        if using and initplan(using) != using:
            clauses.append(f"USING ({initplan(using)})")
        if check and initplan(check) != check:
            clauses.append(f"WITH CHECK ({initplan(check)})")
        if clauses:
            op.execute(f"ALTER POLICY tenant_isolation ON {table} {' '.join(clauses)}")


def downgrade() -> None:
    """Nothing to undo: the wrapped policies mean exactly what the plain ones did."""
