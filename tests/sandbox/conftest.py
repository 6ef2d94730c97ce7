"""Fixtures of the sandbox tests: a real HTTP receiver for webhooks and the sandbox app with
one registered number and an approved template."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest
import pytest_asyncio
import redis.asyncio as aioredis

from services.sandbox.app import create_app
from services.sandbox.state import SandboxState
from shared.config import Settings
from shared.db import SessionMaker
from tests.sandbox.receiver import Receiver
from tests.sandbox.support import BODY, WABA_ID, register
from tests.support.pix_world import World, open_world

Client = Callable[..., Awaitable[httpx.AsyncClient]]


@pytest_asyncio.fixture
async def receiver() -> AsyncIterator[Receiver]:
    server = Receiver()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
def state() -> SandboxState:
    return SandboxState(seed=7)


@pytest_asyncio.fixture
async def sandbox(
    http_client: Client, receiver: Receiver, state: SandboxState
) -> httpx.AsyncClient:
    """The sandbox app with one number (webhooks to ``receiver``) and an approved template."""
    client = await http_client(create_app, whatsapp=state)
    await register(client, webhook_url=receiver.url)
    response = await client.post(
        f"/_sandbox/whatsapp/wabas/{WABA_ID}",
        json={
            "review_delay_ms": 20,
            "rejected_words": ["ameaça"],
            "templates": [
                {"name": "lembrete_vencimento_v1", "body": BODY},
                {"name": "em_revisao", "body": "Olá {{1}}", "status": "PENDING"},
            ],
        },
    )
    assert response.status_code == 200
    return client


@pytest_asyncio.fixture
async def world(
    committed: SessionMaker, settings: Settings, redis: aioredis.Redis
) -> AsyncIterator[World]:
    """The api, the sandbox and the webhooks service (a real port) for Pix tests."""
    async with open_world(committed, settings, redis) as opened:
        yield opened
