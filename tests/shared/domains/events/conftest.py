"""What the outbound webhook tests share: a receiving server on a real port (its answer set by
the test), a retailer with an owner, endpoints, and a way to let time pass for retries."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest_asyncio
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

import shared.domains.events.tasks  # noqa: F401  (the jobs, even before shared.tasks lists them)
from shared.domains.audit.service import Actor
from shared.domains.events import endpoints, schemas
from shared.models import Customer, WebhookEndpoint
from shared.tenancy import SYSTEM, use_scope
from tests.support.identity import Identities, Party
from tests.support.serve import serve

OWNER = Actor("user", "tester")


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    status: int


@dataclass
class Receiver:
    """A tenant's system receiving webhooks: answers ``status`` to every request and keeps
    each one (with what it answered)."""

    status: int = 200
    requests: list[Received] = field(default_factory=list)
    url: str = ""

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        body, more = b"", True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        self.requests.append(Received(headers, body, self.status))
        await send({"type": "http.response.start", "status": self.status, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    @property
    def accepted(self) -> list[Received]:
        return [r for r in self.requests if 200 <= r.status < 300]


@pytest_asyncio.fixture
async def receiver() -> AsyncIterator[Receiver]:
    app = Receiver()
    async with serve(app) as url:
        app.url = f"{url}/hooks"
        yield app


@dataclass
class Shop:
    session: AsyncSession
    party: Party
    count: int = 0

    @property
    def tenant_id(self) -> uuid.UUID:
        return self.party.tenant.id

    async def endpoint(
        self, url: str, types: list[str] | None = None
    ) -> tuple[WebhookEndpoint, str]:
        data = schemas.EndpointIn(url=url, event_types=types or [])
        return await endpoints.create(self.session, self.tenant_id, data, OWNER)

    async def customer(self) -> Customer:
        self.count += 1
        row = Customer(tenant_id=self.tenant_id, external_id=f"C-{self.count}", name="Cliente")
        self.session.add(row)
        await self.session.flush()
        return row


@pytest_asyncio.fixture
async def shop(session: AsyncSession, ids: Identities) -> Shop:
    party = await ids.party("Loja Eventos")
    await use_scope(session, SYSTEM)
    return Shop(session, party)


async def time_passes(session: AsyncSession, by: timedelta) -> None:
    """Move every scheduled retry ``by`` closer (deliveries and the jobs that wake them) — an
    hour of an endpoint being down, without sleeping."""
    await session.execute(
        text(
            "UPDATE webhook_deliveries"
            " SET next_attempt_at = next_attempt_at - make_interval(secs => :by)"
            " WHERE state IN ('pending', 'failed')"
        ),
        {"by": by.total_seconds()},
    )
    await session.execute(
        # the test's transaction has a fixed now(): jobs are due by it, retries by the clock
        text(
            "UPDATE outbox SET not_before = not_before - make_interval(secs => :by)"
            " - (clock_timestamp() - now()) WHERE done_at IS NULL"
        ),
        {"by": by.total_seconds()},
    )
    await session.flush()
