"""Migration tests: a database of the test's own, walked down and up by it, read and written
with plain SQL (the models describe the head, not the revision under test)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import asyncpg

from shared.config import Settings, libpq_dsn

# an existing retailer and an existing agency, before the migration under test
TENANTS = """INSERT INTO tenants (id, slug, name, kind)
             VALUES (gen_random_uuid(), 'loja-antiga', 'Loja Antiga', 'retailer'),
                    (gen_random_uuid(), 'agencia-antiga', 'Agência Antiga', 'agency')
             RETURNING id, kind"""


def fetch(settings: Settings, query: str, *, server: bool = False) -> list[Any]:
    """The rows of ``query`` on ``settings``' database (``server``: on the server's own)."""

    async def run() -> list[Any]:
        url = settings.admin_dsn
        conn = await asyncpg.connect(libpq_dsn(url.set(database="postgres") if server else url))
        try:
            return list(await conn.fetch(query))
        finally:
            await conn.close()

    return asyncio.run(run())


@contextmanager
def scratch_database(settings: Settings, name: str) -> Iterator[Settings]:
    """Settings for an empty database named after the lane's and ``name``, dropped after."""
    url = settings.admin_dsn.set(database=f"{settings.admin_dsn.database}_{name}")
    own = settings.model_copy(
        update={"database_url": url.set(drivername="postgresql").render_as_string(False)}
    )
    fetch(own, f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)', server=True)
    try:
        yield own
    finally:
        fetch(own, f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)', server=True)
