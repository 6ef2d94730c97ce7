"""inbox: operators' internal notes on conversations, and each operator's capacity; the
outbox index for single-attempt send jobs goes (send jobs carry batches)

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from shared.db.migrations.helpers import enable_rls

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_NOW = sa.text("now()")


def _fk(table: str, column: str, target: str, ondelete: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column],
        [f"{target}.id"],
        name=op.f(f"fk_{table}_{column}_{target}"),
        ondelete=ondelete,
    )


def upgrade() -> None:
    # send jobs carry a batch (``attempt_ids``): the sweeper no longer looks jobs up by this
    op.drop_index(
        "ix_outbox_send_attempt",
        table_name="outbox",
        postgresql_where=sa.text("actor = 'collections.send'"),
    )
    op.create_table(
        "conversation_notes",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("conversation_id", sa.Uuid(), nullable=False),
        sa.Column("author_id", sa.Uuid(), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=_NOW, nullable=False),
        _fk("conversation_notes", "tenant_id", "tenants", "CASCADE"),
        _fk("conversation_notes", "conversation_id", "conversations", "CASCADE"),
        sa.ForeignKeyConstraint(
            ["author_id"],
            ["users.id"],
            name=op.f("fk_conversation_notes_author_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_conversation_notes")),
    )
    op.create_index(
        "ix_conversation_notes_timeline", "conversation_notes", ["conversation_id", "created_at"]
    )
    op.create_table(
        "inbox_operators",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("capacity", sa.SmallInteger(), server_default="20", nullable=False),
        sa.Column("available", sa.Boolean(), server_default="true", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=_NOW, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=_NOW, nullable=False),
        _fk("inbox_operators", "tenant_id", "tenants", "CASCADE"),
        _fk("inbox_operators", "user_id", "users", "CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inbox_operators")),
        sa.UniqueConstraint(
            "tenant_id", "user_id", name=op.f("uq_inbox_operators_tenant_id_user_id")
        ),
    )
    op.create_check_constraint("text", "conversation_notes", "char_length(text) BETWEEN 1 AND 4000")
    op.create_check_constraint("capacity", "inbox_operators", "capacity BETWEEN 0 AND 500")
    # Notes follow their conversation: whoever may work it (a mandated agency too) reads and
    # writes them.  An operator's capacity is its own tenant's business.
    enable_rls("conversation_notes", "quita_is_system() OR tenant_id = ANY (quita_tenant_ids())")
    enable_rls("inbox_operators", "quita_is_system() OR tenant_id = quita_tenant_id()")


def downgrade() -> None:
    op.create_index(
        "ix_outbox_send_attempt",
        "outbox",
        [sa.text("(args ->> 'attempt_id')")],
        postgresql_where=sa.text("actor = 'collections.send'"),
    )
    op.drop_table("inbox_operators")
    op.drop_index("ix_conversation_notes_timeline", table_name="conversation_notes")
    op.drop_table("conversation_notes")
