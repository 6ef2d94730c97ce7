"""Authentication cost: an authenticated GET against the same handler without authentication,
and token issuance (client credentials), in the same run on the same app."""

from __future__ import annotations

import asyncio
import base64
import json
import statistics
from typing import Any

import redis.asyncio as aioredis
from litestar import get

from bench.asgi import call, rate
from bench.common import bench_settings, ratio_line
from services.api.app import create_app
from shared.config import Settings
from shared.db import create_engine, create_sessionmaker
from shared.domains.identity import schemas, service
from shared.domains.identity.service import CLI_ACTOR
from shared.tenancy import SYSTEM, use_scope

SECONDS = 6.0
ROUNDS = 6
CONCURRENCY = 16


def _payload() -> dict[str, Any]:
    return {"status": "ok", "items": [{"id": i, "name": f"item {i}"} for i in range(10)]}


@get("/bench/open", exclude_from_auth=True, sync_to_thread=False)
def open_handler() -> dict[str, Any]:
    return _payload()


@get("/bench/private", sync_to_thread=False)
def private_handler() -> dict[str, Any]:
    return _payload()


async def _client(settings: Settings) -> tuple[str, str]:
    engine = create_engine(settings, process="bench", admin=True)
    try:
        async with create_sessionmaker(engine)() as session:
            await use_scope(session, SYSTEM)
            tenant = await service.create_tenant(
                session, schemas.TenantCreate(name="Loja Bench", kind="retailer"), CLI_ACTOR
            )
            client, secret = await service.create_client(
                session,
                tenant.id,
                schemas.ClientCreate(name="bench", scopes=["portfolio:read"]),
                CLI_ACTOR,
            )
            await session.commit()
            assert secret is not None
            return client.client_id, secret
    finally:
        await engine.dispose()


async def _run(settings: Settings) -> list[str]:
    client_id, secret = await _client(settings)
    app = create_app(settings, extra_routes=[open_handler, private_handler])
    basic = base64.b64encode(f"{client_id}:{secret}".encode())
    form = [
        (b"authorization", b"Basic " + basic),
        (b"content-type", b"application/x-www-form-urlencoded"),
    ]
    async with app.lifespan():
        redis: aioredis.Redis = app.state.resources.redis
        await redis.flushdb()
        status, body = await call(
            app, "POST", "/oauth/token", form, b"grant_type=client_credentials"
        )
        assert status == 200, body
        bearer = [(b"authorization", b"Bearer " + json.loads(body)["access_token"].encode())]

        async def open_get() -> int:
            return (await call(app, "GET", "/bench/open", []))[0]

        async def private_get() -> int:
            return (await call(app, "GET", "/bench/private", bearer))[0]

        async def issue() -> int:
            grant = b"grant_type=client_credentials"
            return (await call(app, "POST", "/oauth/token", form, grant))[0]

        await rate(open_get, seconds=1, concurrency=CONCURRENCY, expect=200)  # warm up
        await rate(private_get, seconds=1, concurrency=CONCURRENCY, expect=200)
        # Alternate short rounds so machine noise hits both sides alike; keep the medians.
        bares, authed_runs = [], []
        for _ in range(ROUNDS):
            bares.append(
                await rate(open_get, seconds=SECONDS / ROUNDS, concurrency=CONCURRENCY, expect=200)
            )
            authed_runs.append(
                await rate(
                    private_get, seconds=SECONDS / ROUNDS, concurrency=CONCURRENCY, expect=200
                )
            )
        bare, authed = statistics.median(bares), statistics.median(authed_runs)
        # Issuance is rate-limited per client by design; lift the limit for the measurement.
        settings.token_rate_per_s = 1e9
        settings.token_burst = 10**9
        tokens = await rate(issue, seconds=SECONDS, concurrency=CONCURRENCY, expect=200)
    return [
        ratio_line("authenticated GET", authed, bare, "req/s"),
        ratio_line("token issuance (client creds)", tokens, bare, "req/s"),
    ]


def run() -> list[str]:
    settings = bench_settings("auth")
    settings.log_level = "WARNING"
    return asyncio.run(_run(settings))
