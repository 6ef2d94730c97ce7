"""What every Quita HTTP service shares: problem+json errors, request ids and access lines,
health and readiness, and the lifespan that owns the database engine and the Redis client."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import redis.asyncio as aioredis
import redis.exceptions as redis_errors
import structlog
from litestar import Litestar, MediaType, Request, Response, get
from litestar.datastructures import State
from litestar.enums import ScopeType
from litestar.exceptions import HTTPException, ValidationException
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from shared.config import Settings
from shared.db import SessionMaker, create_engine, create_sessionmaker
from shared.db.outage import cause_of, is_outage
from shared.errors import AppError, FieldError, ServiceUnavailable, ValidationFailed
from shared.tenancy import Principal, use_scope
from shared.tenancy import Scope as TenantScope

log = structlog.get_logger("quita.http")

# Paths that carry a secret (a Pix PSP's per-connection URL token): never logged or echoed.
_SECRET_PATH = re.compile(r"^(/pix/)[^/]+")


def loggable_path(path: str) -> str:
    """``path`` with any secret segment masked (``/pix/<token>`` → ``/pix/***``)."""
    return _SECRET_PATH.sub(r"\1***", path)


PROBLEM_JSON = "application/problem+json"

_STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "too_many_requests",
    500: "internal_error",
    503: "service_unavailable",
}


def problem_response(
    request: Request[Any, Any, Any], body: dict[str, Any], headers: dict[str, str] | None = None
) -> Response[Any]:
    body.setdefault("instance", loggable_path(request.url.path))
    return Response(
        content=body, status_code=body["status"], media_type=PROBLEM_JSON, headers=headers or {}
    )


def _app_error(request: Request[Any, Any, Any], exc: AppError) -> Response[Any]:
    return problem_response(request, exc.problem(), exc.headers)


def _validation_error(request: Request[Any, Any, Any], exc: ValidationException) -> Response[Any]:
    errors = []
    for item in exc.extra if isinstance(exc.extra, list) else []:
        if isinstance(item, dict):
            source = item.get("source")
            key = item.get("key") or ""
            name = f"{source}.{key}" if source and source != "body" else key or "body"
            errors.append(FieldError(name, str(item.get("message", "invalid value"))))
    detail = "The request has invalid fields." if errors else str(exc.detail)
    return _app_error(request, ValidationFailed(detail, errors=errors))


def _http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    status = exc.status_code
    body = {
        "type": f"https://quita.dev/problems/{_STATUS_CODES.get(status, 'error')}",
        "title": exc.__class__.__name__.removesuffix("Exception") or "Error",
        "status": status,
        "detail": exc.detail,
        "code": _STATUS_CODES.get(status, "error"),
    }
    return problem_response(request, body, dict(exc.headers or {}))


def _unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    log.error("http.unhandled_exception", path=loggable_path(request.url.path), exc_info=exc)
    body = {
        "type": "https://quita.dev/problems/internal_error",
        "title": "Internal server error",
        "status": 500,
        "detail": "Something went wrong on our side; it has been logged.",
        "code": "internal_error",
    }
    return problem_response(request, body)


# A dependency that is away for a moment — Postgres restarting or failing over, Redis
# unreachable — is nobody's mistake and passes: 503 with Retry-After, which clients and
# providers retry, instead of a 500.
RETRY_AFTER_OUTAGE_S = 5


def _unavailable(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    if not is_outage(exc):
        return _unexpected(request, exc)
    log.warning(
        "http.dependency_unavailable",
        path=loggable_path(request.url.path),
        error=cause_of(exc),
    )
    unavailable = ServiceUnavailable(
        "A service Quita depends on is unavailable for a moment; retry shortly.",
        headers={"Retry-After": str(RETRY_AFTER_OUTAGE_S)},
    )
    return _app_error(request, unavailable)


EXCEPTION_HANDLERS: dict[Any, Any] = {
    AppError: _app_error,
    ValidationException: _validation_error,
    HTTPException: _http_error,
    DBAPIError: _unavailable,
    OSError: _unavailable,
    asyncpg.PostgresError: _unavailable,
    asyncpg.InterfaceError: _unavailable,
    redis_errors.RedisError: _unavailable,
    Exception: _unexpected,
}

_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class RequestContextMiddleware:
    """Gives each request an id (``X-Request-ID``, ours or the caller's), binds it to the log
    context, and writes one access line per request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        incoming = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if _SAFE_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                message["headers"] = headers
            await send(message)

        with structlog.contextvars.bound_contextvars(request_id=request_id):
            try:
                await self.app(scope, receive, send_with_id)
            finally:
                log.info(
                    "http.request",
                    method=scope.get("method"),
                    path=loggable_path(scope["path"]),
                    status=status,
                    duration_ms=round((time.perf_counter() - started) * 1000, 2),
                )


@dataclass
class Resources:
    """Per-process clients, created in the app's lifespan (on the server's event loop).

    ``default_scope`` is the database scope of a request without a principal: nothing for the
    api (its routes authenticate), the whole platform for provider webhooks."""

    settings: Settings
    sessionmaker: SessionMaker
    redis: aioredis.Redis
    engine: AsyncEngine | None = None
    default_scope: TenantScope = field(default_factory=TenantScope)


def lifespan(
    settings: Settings,
    process: str,
    *,
    sessionmaker: SessionMaker | None = None,
    redis: aioredis.Redis | None = None,
    default_scope: TenantScope | None = None,
) -> Any:
    """A lifespan that puts :class:`Resources` on ``app.state.resources``.

    Tests pass their own ``sessionmaker`` (bound to a rolled-back connection) and ``redis``.
    """

    @asynccontextmanager
    async def run(app: Litestar) -> AsyncIterator[None]:
        engine = None
        maker = sessionmaker
        if maker is None:
            engine = create_engine(settings, process=process)
            maker = create_sessionmaker(engine)
        client = redis or aioredis.Redis.from_url(settings.redis_url, socket_connect_timeout=3)
        scope = default_scope or TenantScope()
        app.state.resources = Resources(settings, maker, client, engine, scope)
        try:
            yield
        finally:
            if redis is None:
                await client.aclose()
            if engine is not None:
                await engine.dispose()

    return run


def resources(state: State) -> Resources:
    res: Resources = state.resources
    return res


async def provide_db(request: Request[Any, Any, Any]) -> AsyncIterator[AsyncSession]:
    """The request's unit of work, scoped to the caller's tenants (RLS): commits when the handler
    succeeds, rolls back otherwise."""
    res = resources(request.app.state)
    principal = request.scope.get("user")
    scope = principal.scope() if isinstance(principal, Principal) else res.default_scope
    async with res.sessionmaker() as session:
        await use_scope(session, scope)
        try:
            yield session
        except BaseException:
            await session.rollback()
            raise
        await session.commit()


@get("/health", tags=["health"], summary="Liveness", sync_to_thread=False, exclude_from_auth=True)
def health() -> dict[str, str]:
    """Answers 200 while the process is up; checks nothing else."""
    return {"status": "ok"}


@get("/ready", tags=["health"], summary="Readiness", exclude_from_auth=True)
async def ready(state: State) -> dict[str, Any]:
    """200 when Postgres and Redis both answer; 503 naming what does not."""
    res = resources(state)
    checks: dict[str, str] = {}
    try:
        async with res.sessionmaker() as session:
            await session.execute(text("SELECT 1"))
        checks["postgres"] = "ok"
    except Exception as exc:
        checks["postgres"] = f"unavailable: {type(exc).__name__}"
    try:
        await res.redis.ping()
        checks["redis"] = "ok"
    except Exception as exc:
        checks["redis"] = f"unavailable: {type(exc).__name__}"
    if any(v != "ok" for v in checks.values()):
        raise ServiceUnavailable(
            "Not ready: " + ", ".join(f"{k} {v}" for k, v in checks.items() if v != "ok")
        )
    return {"status": "ready", "checks": checks}


__all__ = [
    "EXCEPTION_HANDLERS",
    "PROBLEM_JSON",
    "MediaType",
    "RequestContextMiddleware",
    "Resources",
    "health",
    "lifespan",
    "provide_db",
    "ready",
    "resources",
]
