from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

import shared.models  # noqa: F401
from shared.db import Base


async def test_models_and_migrations_agree(admin_engine: AsyncEngine) -> None:
    async with admin_engine.connect() as conn:
        diff = await conn.run_sync(
            lambda sync: compare_metadata(MigrationContext.configure(sync), Base.metadata)
        )

    assert diff == []


async def test_services_connect_as_a_role_without_superuser_or_bypassrls(
    session: AsyncSession,
) -> None:
    row = (
        await session.execute(
            text("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user")
        )
    ).one()

    assert tuple(row) == (False, False)


async def test_application_role_cannot_change_the_migration_history(
    session: AsyncSession,
) -> None:
    with pytest.raises(DBAPIError, match="permission denied"):
        await session.execute(text("DELETE FROM alembic_version"))
