"""audit trail: audit_events partitioned by month, each event stamped with its transaction id;
audit_seals, the per-tenant hash chains of sealed batches

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07

Partitions live in their own schema (``audit_partitions``) on which the application role has
no privilege at all: it reaches events only through ``audit_events``, where row-level security
and the append-only trigger apply (a partition queried directly has neither).

Rows that exist before this migration get ``txid = id - (max id + 1)``: negative, ordered like
their ids and below every real transaction id, so the first sealing rounds take them in bounded
batches, oldest first.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from shared.db.migrations.helpers import app_role, enable_rls

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PARTS = "audit_partitions"
OWN = "quita_is_system() OR tenant_id = quita_tenant_id()"
_COLUMNS = (
    "id, tenant_id, actor_type, actor_id, action, subject_type, subject_id, data, request_id, "
    "created_at"
)
# The id of the inserting (top-level) transaction: sealing takes only events whose transaction
# ended, so an event committed late is never skipped.
_TXID_DEFAULT = sa.text("(pg_current_xact_id())::text::bigint")


def _event_columns() -> list[sa.Column[object]]:
    return [
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
    ]


def _set_aside(table: str, suffix: str) -> None:
    """Rename ``table`` and the names it owns so a new ``table`` can be created beside it."""
    op.execute(f"ALTER TABLE {table} RENAME TO {table}_{suffix}")
    op.execute(f"ALTER TABLE {table}_{suffix} RENAME CONSTRAINT pk_{table} TO pk_{table}_{suffix}")
    op.execute(f"ALTER INDEX ix_{table}_tenant_id_id RENAME TO ix_{table}_{suffix}_tenant_id_id")
    op.execute(f"ALTER SEQUENCE {table}_id_seq RENAME TO {table}_{suffix}_id_seq")


def _continue_ids(source: str) -> None:
    """The new table's identity goes on exactly where ``source``'s sequence stopped."""
    op.execute(
        f"""SELECT setval(pg_get_serial_sequence('audit_events', 'id'), last_value, is_called)
            FROM {source}_id_seq"""
    )


def _append_only(role: str, table: str, function: str) -> None:
    op.execute(f"REVOKE ALL ON {table} FROM {role}")
    op.execute(f"GRANT SELECT, INSERT ON {table} TO {role}")
    op.execute(
        f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
        f"FOR EACH ROW EXECUTE FUNCTION {function}()"
    )


def upgrade() -> None:
    role = app_role()
    op.execute(f"CREATE SCHEMA {PARTS}")
    op.execute(f"REVOKE ALL ON SCHEMA {PARTS} FROM PUBLIC")

    _set_aside("audit_events", "flat")
    op.execute("DROP TRIGGER audit_events_append_only ON audit_events_flat")
    op.create_table(
        "audit_events",
        *_event_columns(),
        sa.Column("txid", sa.BigInteger(), server_default=_TXID_DEFAULT, nullable=False),
        sa.PrimaryKeyConstraint("id", "created_at", name="pk_audit_events"),
        postgresql_partition_by="RANGE (created_at)",
    )
    op.create_index("ix_audit_events_tenant_id_id", "audit_events", ["tenant_id", "id"])
    # BRIN: transaction ids grow with the table, so a few pages of summaries find the unsealed
    # tail; it costs an insert almost nothing (a btree would add a page write per event).
    op.create_index(
        "ix_audit_events_txid",
        "audit_events",
        ["txid"],
        postgresql_using="brin",
        postgresql_with={"autosummarize": "on"},
    )
    _create_partition_function()
    op.execute(f"CREATE TABLE {PARTS}.audit_events_default PARTITION OF audit_events DEFAULT")
    op.execute(
        "SELECT audit_events_add_partitions(3, coalesce(min(created_at), now())) "
        "FROM audit_events_flat"
    )
    op.execute(
        f"""INSERT INTO audit_events ({_COLUMNS}, txid)
            SELECT {_COLUMNS}, id - (SELECT coalesce(max(id), 0) + 1 FROM audit_events_flat)
            FROM audit_events_flat"""
    )
    _continue_ids("audit_events_flat")
    op.drop_table("audit_events_flat")
    _append_only(role, "audit_events", "audit_events_append_only")
    enable_rls("audit_events", OWN)

    op.create_table(
        "audit_seals",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=True),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("from_txid", sa.BigInteger(), nullable=False),
        sa.Column("to_txid", sa.BigInteger(), nullable=False),
        sa.Column("first_event_id", sa.BigInteger(), nullable=False),
        sa.Column("last_event_id", sa.BigInteger(), nullable=False),
        sa.Column("event_count", sa.Integer(), nullable=False),
        sa.Column("event_ids", postgresql.ARRAY(sa.BigInteger()), nullable=False),
        sa.Column("leaves", sa.LargeBinary(), nullable=False),
        sa.Column("digest", sa.LargeBinary(), nullable=False),
        sa.Column("prev_hash", sa.LargeBinary(), nullable=False),
        sa.Column("seal_hash", sa.LargeBinary(), nullable=False),
        sa.Column(
            "sealed_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.PrimaryKeyConstraint("id", name="pk_audit_seals"),
        # one chain per tenant (NULL: the platform's), never forked even by a racing sealer
        sa.UniqueConstraint(
            "tenant_id",
            "seq",
            name="uq_audit_seals_tenant_id_seq",
            postgresql_nulls_not_distinct=True,
        ),
    )
    # where the next sealing round starts: max(to_txid)
    op.create_index("ix_audit_seals_to_txid", "audit_seals", ["to_txid"])
    op.execute(
        """
        CREATE FUNCTION audit_seals_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'audit_seals is append-only';
        END $$
        """
    )
    _append_only(role, "audit_seals", "audit_seals_append_only")
    enable_rls("audit_seals", OWN)


def _create_partition_function() -> None:
    """``audit_events_add_partitions(months_ahead, since)``: the monthly partitions from the
    month of ``since`` to ``months_ahead`` months after the current one (UTC months).

    Runs as the owner (SECURITY DEFINER) so the application's maintenance job may call it.  A
    month whose rows already sit in the DEFAULT partition is left there, with a warning: moving
    them would mean deleting from an append-only table.
    """
    op.execute(
        f"""
        CREATE FUNCTION audit_events_add_partitions(
            months_ahead integer, since timestamptz DEFAULT now()
        ) RETURNS integer
        LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
        DECLARE
            month timestamp := date_trunc('month', least(since, now()) AT TIME ZONE 'UTC');
            final timestamp := date_trunc('month', now() AT TIME ZONE 'UTC')
                              + make_interval(months => months_ahead);
            lo timestamptz;
            hi timestamptz;
            part text;
            created integer := 0;
        BEGIN
            WHILE month <= final LOOP
                part := 'audit_events_' || to_char(month, 'YYYY_MM');
                lo := month AT TIME ZONE 'UTC';
                hi := (month + interval '1 month') AT TIME ZONE 'UTC';
                IF to_regclass('{PARTS}.' || part) IS NULL THEN
                    IF EXISTS (SELECT 1 FROM {PARTS}.audit_events_default
                               WHERE created_at >= lo AND created_at < hi) THEN
                        RAISE WARNING 'audit_events: % stays in the default partition', part;
                    ELSE
                        -- created apart, then attached: ATTACH takes a lock that lets
                        -- inserts go on (CREATE ... PARTITION OF would block them)
                        EXECUTE format('CREATE TABLE {PARTS}.%I (LIKE public.audit_events)', part);
                        EXECUTE format(
                            'ALTER TABLE public.audit_events ATTACH PARTITION {PARTS}.%I '
                            'FOR VALUES FROM (%L) TO (%L)', part, lo, hi);
                        created := created + 1;
                    END IF;
                END IF;
                month := month + interval '1 month';
            END LOOP;
            RETURN created;
        END $$
        """
    )
    op.execute(
        "REVOKE ALL ON FUNCTION audit_events_add_partitions(integer, timestamptz) FROM PUBLIC"
    )
    op.execute(
        f"GRANT EXECUTE ON FUNCTION audit_events_add_partitions(integer, timestamptz) "
        f"TO {app_role()}"
    )


def downgrade() -> None:
    role = app_role()
    op.drop_table("audit_seals")
    op.execute("DROP FUNCTION IF EXISTS audit_seals_append_only()")

    _set_aside("audit_events", "parted")
    op.execute("DROP INDEX IF EXISTS ix_audit_events_txid")
    op.create_table(
        "audit_events",
        *_event_columns(),
        sa.PrimaryKeyConstraint("id", name="pk_audit_events"),
    )
    op.create_index("ix_audit_events_tenant_id_id", "audit_events", ["tenant_id", "id"])
    op.execute(f"INSERT INTO audit_events ({_COLUMNS}) SELECT {_COLUMNS} FROM audit_events_parted")
    _continue_ids("audit_events_parted")
    op.drop_table("audit_events_parted")
    op.execute(f"DROP SCHEMA {PARTS} CASCADE")
    op.execute("DROP FUNCTION IF EXISTS audit_events_add_partitions(integer, timestamptz)")
    op.execute(f"REVOKE UPDATE, DELETE, TRUNCATE ON audit_events FROM {role}")
    op.execute(
        "CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events "
        "FOR EACH ROW EXECUTE FUNCTION audit_events_append_only()"
    )
    enable_rls("audit_events", OWN)
