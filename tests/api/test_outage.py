"""Postgres away for a moment (a restart, a failover): the API answers 503 with Retry-After —
what clients and providers retry — instead of a 500, and serves again as soon as it is back.
The app runs as in production, on its own engine, reaching Postgres through a proxy this test
takes down."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import redis.exceptions as redis_errors
from sqlalchemy.exc import DBAPIError, IntegrityError

from services.api.app import create_app
from shared.config import Settings
from shared.db.outage import is_outage
from shared.domains.paypage import links
from tests.conftest import run_lifespan
from tests.support.tcp_proxy import TcpProxy


@pytest.fixture
async def postgres(migrated: Settings) -> AsyncIterator[TcpProxy]:
    proxy = TcpProxy.before_database(migrated.database_url)
    await proxy.start()
    yield proxy
    await proxy.down()


async def test_while_postgres_is_away_the_api_answers_503_and_then_serves_again(
    migrated: Settings, postgres: TcpProxy
) -> None:
    settings = migrated.model_copy(update={"database_url": postgres.url()})
    app = create_app(settings)
    # a payment page link names a message: reading it needs the database
    page = f"/pagar/{links.token(links.ATTEMPT, uuid.uuid4(), datetime.now(UTC) + timedelta(1))}"
    transport = httpx.ASGITransport(app=app)
    async with (
        run_lifespan(app),
        httpx.AsyncClient(transport=transport, base_url="http://a") as client,
    ):
        assert (await client.get(page)).status_code == 404  # no such message

        await postgres.down()
        away = await client.get(page)
        ready = await client.get("/ready")
        await postgres.start()
        back = await client.get(page)

    assert away.status_code == 503, away.text
    assert away.headers["retry-after"] == "5"
    assert away.headers["content-type"] == "application/problem+json"
    assert away.json()["code"] == "service_unavailable"
    assert ready.status_code == 503 and "postgres" in ready.text
    assert back.status_code == 404


def test_only_a_lost_or_refused_connection_counts_as_an_outage() -> None:
    cut = DBAPIError("SELECT 1", {}, Exception("closed"), connection_invalidated=True)
    refused_inside = DBAPIError(
        "SELECT 1", {}, ConnectionRefusedError(), connection_invalidated=False
    )
    conflict = IntegrityError("INSERT", {}, Exception("duplicate key"))
    assert is_outage(cut) and is_outage(refused_inside)
    assert is_outage(ConnectionRefusedError()) and is_outage(redis_errors.ConnectionError())
    assert not is_outage(conflict)  # a bug or a race of ours: a 500, logged
    assert not is_outage(ValueError()) and not is_outage(PermissionError())
