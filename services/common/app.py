"""Building a Quita Litestar service: the same conventions in api, webhooks and sandbox."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis
from litestar import Litestar
from litestar.di import Provide
from litestar.logging.config import LoggingConfig
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import ScalarRenderPlugin
from litestar.types import ControllerRouterHandler, Middleware

from services.common.http import (
    EXCEPTION_HANDLERS,
    RequestContextMiddleware,
    health,
    lifespan,
    provide_db,
    ready,
)
from shared.config import Settings
from shared.db import SessionMaker
from shared.tenancy import Scope


def build_service(
    *,
    settings: Settings,
    process: str,
    title: str,
    description: str,
    route_handlers: Sequence[ControllerRouterHandler],
    max_body_bytes: int,
    sessionmaker: SessionMaker | None = None,
    redis: aioredis.Redis | None = None,
    middleware: Sequence[Middleware] = (),
    openapi: bool = True,
    default_scope: Scope | None = None,
    lifespans: Sequence[Any] = (),
    **extra: Any,
) -> Litestar:
    """A Litestar app with problem+json errors, request ids, /health, /ready and /schema."""
    return Litestar(
        route_handlers=[health, ready, *route_handlers],
        dependencies={"db": Provide(provide_db)},
        exception_handlers=EXCEPTION_HANDLERS,
        middleware=[RequestContextMiddleware, *middleware],
        lifespan=[
            lifespan(
                settings,
                process,
                sessionmaker=sessionmaker,
                redis=redis,
                default_scope=default_scope,
            ),
            *lifespans,
        ],
        openapi_config=OpenAPIConfig(
            title=title,
            version="0.1.0",
            description=description,
            path="/schema",
            render_plugins=[ScalarRenderPlugin()],
            use_handler_docstrings=True,
            create_examples=False,
        )
        if openapi
        else None,
        # Our own handlers log exceptions and the access line; Litestar's logging stays quiet.
        logging_config=LoggingConfig(log_exceptions="never", configure_root_logger=False),
        request_max_body_size=max_body_bytes,
        **extra,
    )
