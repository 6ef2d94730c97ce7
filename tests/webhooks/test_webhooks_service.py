from __future__ import annotations

from collections.abc import Awaitable, Callable

import httpx
from litestar import Request, post

from services.webhooks.app import create_app
from shared.config import Settings

Client = Callable[..., Awaitable[httpx.AsyncClient]]


@post("/test/echo-size", status_code=200)
async def echo_size(request: Request) -> dict[str, int]:  # type: ignore[type-arg]
    return {"bytes": len(await request.body())}


async def test_webhooks_service_is_ready(http_client: Client) -> None:
    client = await http_client(create_app)

    assert (await client.get("/ready")).status_code == 200


async def test_raw_body_within_the_limit_is_read_whole(
    http_client: Client, settings: Settings
) -> None:
    client = await http_client(create_app, extra_routes=[echo_size])
    body = b"x" * settings.webhooks_max_body_bytes

    response = await client.post("/test/echo-size", content=body)

    assert response.json() == {"bytes": settings.webhooks_max_body_bytes}


async def test_oversized_body_is_refused_with_413(http_client: Client, settings: Settings) -> None:
    client = await http_client(create_app, extra_routes=[echo_size])

    response = await client.post(
        "/test/echo-size", content=b"x" * (settings.webhooks_max_body_bytes + 1)
    )

    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "payload_too_large"
