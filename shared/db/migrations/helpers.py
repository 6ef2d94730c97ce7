"""Small helpers the migration scripts share."""

from __future__ import annotations

import re

from alembic import op

from shared.config import get_settings


def app_role() -> str:
    """The application role's name, quoted for SQL."""
    return f'"{get_settings().database_app_role}"'


def notify_on_insert(table: str, channel: str) -> None:
    """A statement-level trigger that NOTIFYs ``channel`` after rows are inserted.

    NOTIFY is transactional: listeners hear it only once the inserting transaction commits.
    """
    op.execute(
        f"""
        CREATE OR REPLACE FUNCTION {table}_notify() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('{channel}', '');
            RETURN NULL;
        END $$
        """
    )
    op.execute(
        f"CREATE TRIGGER {table}_notify AFTER INSERT ON {table} "
        f"FOR EACH STATEMENT EXECUTE FUNCTION {table}_notify()"
    )


_SCOPE_CALL = re.compile(r"(?<!SELECT )\bquita_(is_system|tenant_ids|tenant_id)\(\)")


def initplan(expr: str) -> str:
    """``expr`` with each scope function call wrapped in a scalar subquery.

    Postgres then evaluates it once per statement (an InitPlan) instead of once per row: the
    functions parse transaction settings, which costs more than the rest of a policy check.
    Calls already wrapped are left alone, so applying this twice changes nothing.
    """

    def wrap(match: re.Match[str]) -> str:
        call = f"(SELECT quita_{match.group(1)}())"
        return f"({call}::uuid[])" if match.group(1) == "tenant_ids" else call

    return _SCOPE_CALL.sub(wrap, expr)


def enable_rls(table: str, using: str, *, check: str | None = None) -> None:
    """Turn on row-level security for ``table`` with one policy for every command.

    ``using`` decides which rows are visible; ``check`` (default: the same) which rows may be
    written.  The application role has no BYPASSRLS, so this binds every query it runs.
    """
    op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
    using, check = initplan(using), initplan(check or using)
    op.execute(f"CREATE POLICY tenant_isolation ON {table} USING ({using}) WITH CHECK ({check})")
