"""Database setup: the database itself, the application role, and the Alembic migrations.

Run by ``quita db upgrade`` as the owner (``QUITA_DATABASE_URL``).  The services then connect as
the application role, which is neither superuser nor BYPASSRLS, so row-level security binds them.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import URL

from shared.config import Settings, get_settings, libpq_dsn

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(settings: Settings) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("file_template", "%%(year)d%%(month).2d%%(day).2d_%%(rev)s_%%(slug)s")
    cfg.attributes["settings"] = settings
    return cfg


async def ensure_database(settings: Settings) -> None:
    """Create the target database if it does not exist (dev and test convenience)."""
    url = settings.admin_dsn
    name = url.database or "postgres"
    conn = await asyncpg.connect(libpq_dsn(url.set(database="postgres")))
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if not exists:
            await conn.execute(f'CREATE DATABASE "{_ident(name)}"')
    finally:
        await conn.close()


async def ensure_app_role(settings: Settings) -> None:
    """Create (or fix) the login role the services use: no superuser, no BYPASSRLS."""
    admin: URL = settings.admin_dsn
    role = _ident(settings.database_app_role)
    if role == admin.username:
        raise RuntimeError("the application role must differ from the migration owner")
    password = settings.database_app_password.get_secret_value().replace("'", "''")
    conn = await asyncpg.connect(libpq_dsn(admin))
    try:
        # Roles are cluster-wide: migrations of two databases of one cluster (test workers, say)
        # may race on them; both statements are idempotent, so a lost race is simply retried.
        for attempt in range(5):
            try:
                exists = await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", role)
                verb = "ALTER" if exists else "CREATE"
                await conn.execute(
                    f"""{verb} ROLE "{role}" LOGIN PASSWORD '{password}'
                        NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE"""
                )
                await conn.execute(
                    f'GRANT CONNECT ON DATABASE "{_ident(admin.database or "")}" TO "{role}"'
                )
                break
            except (asyncpg.UniqueViolationError, asyncpg.InternalServerError):
                if attempt == 4:
                    raise
                await asyncio.sleep(0.1 * (attempt + 1))
    finally:
        await conn.close()


def upgrade(settings: Settings | None = None, revision: str = "head") -> None:
    """Everything ``quita db upgrade`` does.  Call from sync code (it runs its own loop)."""
    settings = settings or get_settings()
    asyncio.run(_prepare(settings))
    command.upgrade(alembic_config(settings), revision)
    asyncio.run(_seed_platform(settings))


async def _seed_platform(settings: Settings) -> None:
    """What every installation needs before it serves a request: a signing key."""
    from sqlalchemy.ext.asyncio import create_async_engine

    from shared.db import create_sessionmaker
    from shared.domains.identity.keys import ensure_key

    engine = create_async_engine(settings.admin_dsn)
    try:
        async with create_sessionmaker(engine)() as session:
            await ensure_key(session)
            await session.commit()
    finally:
        await engine.dispose()


async def _prepare(settings: Settings) -> None:
    await ensure_database(settings)
    await ensure_app_role(settings)


def current(settings: Settings | None = None) -> str | None:
    settings = settings or get_settings()

    async def read() -> str | None:
        conn = await asyncpg.connect(libpq_dsn(settings.admin_dsn))
        try:
            return await conn.fetchval("SELECT version_num FROM alembic_version")  # type: ignore[no-any-return]
        except asyncpg.UndefinedTableError:
            return None
        finally:
            await conn.close()

    return asyncio.run(read())


def _ident(name: str) -> str:
    if not name.replace("_", "").replace("-", "").isalnum():
        raise ValueError(f"unsafe SQL identifier: {name!r}")
    return name
