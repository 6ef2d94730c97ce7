"""Conventions every HTTP service shares, seen from a client: health, readiness, problem+json,
request ids, and the request's unit of work."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import httpx
import msgspec
import redis.asyncio as aioredis
from litestar import get, post
from litestar.di import NamedDependency
from litestar.params import JSONBody
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.api.app import create_app
from shared.config import Settings
from shared.db import SessionMaker
from shared.errors import Conflict
from shared.models import OutboxJob
from shared.queue import enqueue

Client = Callable[..., Awaitable[httpx.AsyncClient]]


class Greeting(msgspec.Struct, forbid_unknown_fields=True):
    name: Annotated[str, msgspec.Meta(min_length=2)]
    amount: Annotated[str, msgspec.Meta(pattern=r"^\d+\.\d{2}$")]


@post("/test/greetings", status_code=201, exclude_from_auth=True)
async def create_greeting(
    data: JSONBody[Greeting], db: NamedDependency[AsyncSession]
) -> dict[str, Any]:
    job_id = await enqueue(db, "system.ping", note=data.name)
    return {"job_id": job_id}


@get("/test/conflict", sync_to_thread=False, exclude_from_auth=True)
def conflict() -> None:
    raise Conflict("Installment 42 is already paid.")


@get("/test/boom", sync_to_thread=False, exclude_from_auth=True)
def boom() -> None:
    raise RuntimeError("secret internals 123.456.789-09")


@post("/test/fail-after-write", exclude_from_auth=True)
async def fail_after_write(db: NamedDependency[AsyncSession]) -> None:
    await enqueue(db, "system.ping", note="must vanish")
    raise Conflict("changed my mind")


ROUTES = [create_greeting, conflict, boom, fail_after_write]


async def test_health_and_ready_answer_200(http_client: Client) -> None:
    client = await http_client(create_app)

    health = await client.get("/health")
    ready = await client.get("/ready")

    assert health.status_code == 200
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"postgres": "ok", "redis": "ok"}


async def test_ready_answers_503_naming_what_is_down(
    settings: Settings, sessionmaker: SessionMaker
) -> None:
    from tests.conftest import run_lifespan

    dead_redis = aioredis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    app = create_app(settings, sessionmaker=sessionmaker, redis=dead_redis)
    async with (
        run_lifespan(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client,
    ):
        response = await client.get("/ready")

    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert "redis unavailable" in response.json()["detail"]
    await dead_redis.aclose()


async def test_openapi_schema_is_served(http_client: Client) -> None:
    client = await http_client(create_app)

    response = await client.get("/schema/openapi.json")

    assert response.status_code == 200
    assert response.json()["info"]["title"] == "Quita API"


async def test_unknown_route_is_a_problem_json_404(http_client: Client) -> None:
    client = await http_client(create_app)

    response = await client.get("/v1/nothing-here")

    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "not_found"


async def test_invalid_body_gets_field_by_field_errors(http_client: Client) -> None:
    client = await http_client(create_app, extra_routes=ROUTES)

    response = await client.post("/test/greetings", json={"name": "A", "amount": "12,50"})

    assert response.status_code == 422
    problem = response.json()
    assert problem["code"] == "validation_failed"
    assert {e["field"] for e in problem["errors"]} >= {"name"}


async def test_malformed_json_is_a_400_not_a_500(http_client: Client) -> None:
    client = await http_client(create_app, extra_routes=ROUTES)

    response = await client.post(
        "/test/greetings", content=b"{not json", headers={"content-type": "application/json"}
    )

    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"


async def test_app_errors_keep_their_status_and_code(http_client: Client) -> None:
    client = await http_client(create_app, extra_routes=ROUTES)

    response = await client.get("/test/conflict")

    assert response.status_code == 409
    assert response.json() == {
        "type": "https://quita.dev/problems/conflict",
        "title": "Conflict",
        "status": 409,
        "detail": "Installment 42 is already paid.",
        "code": "conflict",
        "instance": "/test/conflict",
    }


async def test_an_unexpected_error_is_a_500_that_reveals_nothing(http_client: Client) -> None:
    client = await http_client(create_app, extra_routes=ROUTES)

    response = await client.get("/test/boom")

    assert response.status_code == 500
    assert response.json()["code"] == "internal_error"
    assert "secret" not in response.text and "123.456" not in response.text


async def test_request_id_is_echoed_and_travels_into_the_jobs_it_causes(
    http_client: Client, session: AsyncSession
) -> None:
    client = await http_client(create_app, extra_routes=ROUTES)

    response = await client.post(
        "/test/greetings",
        json={"name": "Ana", "amount": "10.00"},
        headers={"x-request-id": "req-from-erp-7"},
    )

    assert response.status_code == 201
    assert response.headers["x-request-id"] == "req-from-erp-7"
    job = await session.get(OutboxJob, response.json()["job_id"])
    assert job is not None and job.correlation_id == "req-from-erp-7"


async def test_a_request_id_is_generated_when_none_is_sent(http_client: Client) -> None:
    client = await http_client(create_app)

    response = await client.get("/health")

    assert len(response.headers["x-request-id"]) == 32


async def test_a_failed_request_commits_nothing_and_enqueues_nothing(
    http_client: Client, session: AsyncSession
) -> None:
    client = await http_client(create_app, extra_routes=ROUTES)

    response = await client.post("/test/fail-after-write")

    assert response.status_code == 409
    jobs = (await session.execute(select(OutboxJob))).scalars().all()
    assert jobs == []
