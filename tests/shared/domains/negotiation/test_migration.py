"""Migration 0016 gives every existing retailer the default negotiation policy as version 1
(agencies get none), and walks down and up again."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import asyncpg
import pytest
from alembic import command

from shared.config import Settings, libpq_dsn
from shared.db import migrate
from shared.domains.negotiation.limits import DEFAULT, LIMIT_FIELDS


@pytest.fixture
def scratch(settings: Settings) -> Iterator[Settings]:
    """A database of its own, walked down and up by the test."""
    url = settings.admin_dsn.set(database=f"{settings.admin_dsn.database}_negotiation_mig")
    own = settings.model_copy(
        update={"database_url": url.set(drivername="postgresql").render_as_string(False)}
    )
    _fetch(own, f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)', server=True)
    yield own
    _fetch(own, f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)', server=True)


def _fetch(settings: Settings, query: str, *, server: bool = False) -> list[Any]:
    async def run() -> list[Any]:
        url = settings.admin_dsn
        conn = await asyncpg.connect(libpq_dsn(url.set(database="postgres") if server else url))
        try:
            return list(await conn.fetch(query))
        finally:
            await conn.close()

    return asyncio.run(run())


_TENANTS = """INSERT INTO tenants (id, slug, name, kind)
              VALUES (gen_random_uuid(), 'loja-antiga', 'Loja Antiga', 'retailer'),
                     (gen_random_uuid(), 'agencia-antiga', 'Agência Antiga', 'agency')
              RETURNING id, kind"""


def test_existing_retailers_get_the_default_policy_as_version_1(scratch: Settings) -> None:
    migrate.upgrade(scratch, "0015")
    tenants = {r["kind"]: r["id"] for r in _fetch(scratch, _TENANTS)}

    migrate.upgrade(scratch, "0016")
    rows = _fetch(scratch, "SELECT * FROM negotiation_policies")

    assert [(r["tenant_id"], r["version"]) for r in rows] == [(tenants["retailer"], 1)]
    for name in LIMIT_FIELDS:  # the same values a new retailer gets on first use
        assert Decimal(rows[0][name]) == Decimal(getattr(DEFAULT, name)), name

    command.downgrade(migrate.alembic_config(scratch), "0015")
    gone = _fetch(
        scratch, "SELECT to_regclass('offers') AS o, to_regclass('negotiation_policies') AS p"
    )
    assert (gone[0]["o"], gone[0]["p"]) == (None, None)

    migrate.upgrade(scratch, "0016")  # and up again
