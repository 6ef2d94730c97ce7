"""conversations: one WhatsApp thread per customer (or unknown sender), its messages, the 24 h
window

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from shared.db.migrations.helpers import enable_rls

revision: str = "0010"
down_revision: str | None = "0009"
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
    op.create_table(
        "conversations",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=True),
        sa.Column("channel_id", sa.Uuid(), nullable=True),
        sa.Column("sender_key", sa.String(length=160), nullable=True),
        sa.Column("wa_id", sa.String(length=20), nullable=True),
        sa.Column("bsuid", sa.String(length=128), nullable=True),
        sa.Column("profile_name", sa.String(length=200), nullable=True),
        sa.Column("state", sa.String(length=16), server_default="open", nullable=False),
        sa.Column("assignee_id", sa.Uuid(), nullable=True),
        sa.Column("priority", sa.SmallInteger(), server_default="0", nullable=False),
        sa.Column("intent", sa.String(length=32), nullable=True),
        sa.Column("last_inbound_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_outbound_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("window_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_auto_reply_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=_NOW, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=_NOW, nullable=False),
        _fk("conversations", "tenant_id", "tenants", "CASCADE"),
        _fk("conversations", "customer_id", "customers", "CASCADE"),
        _fk("conversations", "channel_id", "channels", "SET NULL"),
        _fk("conversations", "assignee_id", "users", "SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_conversations")),
    )
    op.create_index(
        "uq_conversations_customer",
        "conversations",
        ["tenant_id", "customer_id"],
        unique=True,
        postgresql_where=sa.text("customer_id IS NOT NULL"),
    )
    op.create_index(
        "uq_conversations_unknown_sender",
        "conversations",
        ["tenant_id", "sender_key"],
        unique=True,
        postgresql_where=sa.text("customer_id IS NULL"),
    )
    op.create_index(
        "ix_conversations_bsuid",
        "conversations",
        ["tenant_id", "bsuid"],
        postgresql_where=sa.text("bsuid IS NOT NULL"),
    )
    op.create_index(
        "ix_conversations_inbox", "conversations", ["tenant_id", "state", "last_inbound_at"]
    )
    op.create_index(
        "ix_conversations_assignee",
        "conversations",
        ["tenant_id", "assignee_id", "state"],
        postgresql_where=sa.text("assignee_id IS NOT NULL"),
    )
    op.create_table(
        "conversation_messages",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("conversation_id", sa.Uuid(), nullable=False),
        sa.Column("direction", sa.String(length=3), nullable=False),
        sa.Column("provider_message_id", sa.String(length=128), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("payload", sa.String(length=256), nullable=True),
        sa.Column("media_id", sa.String(length=128), nullable=True),
        sa.Column("media_mime", sa.String(length=100), nullable=True),
        sa.Column("context_message_id", sa.String(length=128), nullable=True),
        sa.Column("attempt_id", sa.Uuid(), nullable=True),
        sa.Column("intent", sa.String(length=32), nullable=True),
        sa.Column("sent_by", sa.Uuid(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=True),
        sa.Column("error_code", sa.Integer(), nullable=True),
        sa.Column("dedupe_key", sa.String(length=160), nullable=True),
        sa.Column(
            "details", postgresql.JSONB(astext_type=sa.Text()), server_default="{}", nullable=False
        ),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=_NOW, nullable=False),
        _fk("conversation_messages", "tenant_id", "tenants", "CASCADE"),
        _fk("conversation_messages", "conversation_id", "conversations", "CASCADE"),
        _fk("conversation_messages", "attempt_id", "contact_attempts", "SET NULL"),
        sa.ForeignKeyConstraint(
            ["sent_by"],
            ["users.id"],
            name=op.f("fk_conversation_messages_sent_by_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_conversation_messages")),
        sa.UniqueConstraint(
            "tenant_id",
            "provider_message_id",
            name=op.f("uq_conversation_messages_tenant_id_provider_message_id"),
        ),
        sa.UniqueConstraint(
            "tenant_id", "dedupe_key", name=op.f("uq_conversation_messages_tenant_id_dedupe_key")
        ),
    )
    op.create_index(
        "ix_conversation_messages_timeline",
        "conversation_messages",
        ["conversation_id", "occurred_at"],
    )
    op.create_index(
        "ix_conversation_messages_attempt",
        "conversation_messages",
        ["attempt_id"],
        postgresql_where=sa.text("attempt_id IS NOT NULL"),
    )
    checks = {
        "conversations": {
            "state": "state IN ('open', 'pending', 'resolved')",
            "priority": "priority BETWEEN 0 AND 100",
            # a conversation belongs to a customer or, for an unknown sender, to its number
            "owner": "customer_id IS NOT NULL OR sender_key IS NOT NULL",
        },
        "conversation_messages": {
            "direction": "direction IN ('in', 'out')",
            "kind": "kind IN ('text', 'button', 'interactive', 'image', 'document', 'audio', "
            "'video', 'sticker', 'location', 'contacts', 'reaction', 'order', 'system', "
            "'unsupported', 'template', 'other')",
            "status": "(direction = 'in' AND status IS NULL) OR (direction = 'out' AND status IN "
            "('queued', 'sending', 'sent', 'delivered', 'read', 'failed', 'unknown'))",
            # an inbound message always has the provider's id (the key that dedupes it)
            "inbound_id": "direction = 'out' OR provider_message_id IS NOT NULL",
            "details": "jsonb_typeof(details) = 'object'",
        },
    }
    for table, named in checks.items():
        for name, condition in named.items():
            op.create_check_constraint(name, table, condition)
    # Conversations are about customers: agencies with a mandate work them (assign, reply,
    # resolve) as the retailer's own staff do; which actions a mandate allows is checked by
    # the application, RLS keeps everyone inside the tenants they may reach.
    readable = "quita_is_system() OR tenant_id = ANY (quita_tenant_ids())"
    for table in ("conversations", "conversation_messages"):
        enable_rls(table, readable)


def downgrade() -> None:
    op.drop_index(
        "ix_conversation_messages_attempt",
        table_name="conversation_messages",
        postgresql_where=sa.text("attempt_id IS NOT NULL"),
    )
    op.drop_index("ix_conversation_messages_timeline", table_name="conversation_messages")
    op.drop_table("conversation_messages")
    op.drop_index(
        "ix_conversations_assignee",
        table_name="conversations",
        postgresql_where=sa.text("assignee_id IS NOT NULL"),
    )
    op.drop_index("ix_conversations_inbox", table_name="conversations")
    op.drop_index(
        "ix_conversations_bsuid",
        table_name="conversations",
        postgresql_where=sa.text("bsuid IS NOT NULL"),
    )
    op.drop_index(
        "uq_conversations_unknown_sender",
        table_name="conversations",
        postgresql_where=sa.text("customer_id IS NULL"),
    )
    op.drop_index(
        "uq_conversations_customer",
        table_name="conversations",
        postgresql_where=sa.text("customer_id IS NOT NULL"),
    )
    op.drop_table("conversations")
