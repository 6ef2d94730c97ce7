"""The public REST API (``/v1``), the OAuth 2.0 server and the OpenAPI schema at ``/schema``."""

from __future__ import annotations

import os
from collections.abc import Sequence

import redis.asyncio as aioredis
from litestar import Litestar
from litestar.middleware import DefineMiddleware
from litestar.types import ControllerRouterHandler

import shared.tasks  # noqa: F401  (every job name the api may enqueue resolves)
from services.api.auth.middleware import PUBLIC_PREFIXES, BearerTokenMiddleware
from services.api.auth.routes import OAUTH_ROUTES
from services.api.auth.state import auth_lifespan
from services.api.controllers.admin import AdminController
from services.api.controllers.agreements import AGREEMENT_CONTROLLERS
from services.api.controllers.channels import CHANNEL_CONTROLLERS
from services.api.controllers.collections import COLLECTION_CONTROLLERS
from services.api.controllers.evidence import EVIDENCE_CONTROLLERS
from services.api.controllers.identity import IDENTITY_CONTROLLERS
from services.api.controllers.imports import IMPORT_CONTROLLERS
from services.api.controllers.inbox import INBOX_CONTROLLERS
from services.api.controllers.negotiation import NEGOTIATION_CONTROLLERS
from services.api.controllers.pix import PIX_CONTROLLERS
from services.api.controllers.portfolio import PORTFOLIO_CONTROLLERS
from services.api.controllers.templates import TEMPLATE_CONTROLLERS
from services.api.controllers.webhook_endpoints import WEBHOOK_ENDPOINT_CONTROLLERS
from services.api.idempotency import IdempotencyMiddleware
from services.api.idempotency import document as document_idempotency
from services.api.pay.routes import PAY_ROUTES
from services.common.app import build_service
from shared.config import Environment, Settings, get_settings
from shared.db import SessionMaker
from shared.logging import configure_logging

DESCRIPTION = """
Quita's public API. Retailers load customers and installments, configure their collection
schedule (régua), and follow every contact and reply. Errors are RFC 9457 problem+json with a
stable `code` and, for invalid input, one entry per field in `errors`.

Every POST honours an `Idempotency-Key` header (1 to 120 visible ASCII characters, the
caller's own): a retry with the same key, path and body gets the first success again, marked
`Idempotent-Replayed: true`, and nothing is done twice; the same key for another path or body
is 422 `idempotency_key_reused`; while the first is still running, 409 `idempotency_key_in_use`
with `Retry-After`. A failed request frees its key. Successes are kept for 24 hours.
"""


def create_app(
    settings: Settings | None = None,
    *,
    sessionmaker: SessionMaker | None = None,
    redis: aioredis.Redis | None = None,
    extra_routes: Sequence[ControllerRouterHandler] = (),
) -> Litestar:
    settings = settings or get_settings()
    if sessionmaker is None:
        configure_logging(settings, "api")
    if settings.env is not Environment.PROD and settings.oauth_issuer_url.startswith("http://"):
        # Authlib refuses plain-http endpoints; only local development and tests run on them.
        os.environ["AUTHLIB_INSECURE_TRANSPORT"] = "1"
    return build_service(
        settings=settings,
        process="api",
        title="Quita API",
        description=DESCRIPTION,
        route_handlers=[
            *OAUTH_ROUTES,
            *IDENTITY_CONTROLLERS,
            *PORTFOLIO_CONTROLLERS,
            *EVIDENCE_CONTROLLERS,
            *IMPORT_CONTROLLERS,
            *CHANNEL_CONTROLLERS,
            *TEMPLATE_CONTROLLERS,
            *COLLECTION_CONTROLLERS,
            *INBOX_CONTROLLERS,
            *NEGOTIATION_CONTROLLERS,
            *AGREEMENT_CONTROLLERS,
            *PIX_CONTROLLERS,
            *WEBHOOK_ENDPOINT_CONTROLLERS,
            AdminController,
            *PAY_ROUTES,
            *extra_routes,
        ],
        max_body_bytes=settings.api_max_body_bytes,
        sessionmaker=sessionmaker,
        redis=redis,
        middleware=[
            DefineMiddleware(BearerTokenMiddleware, exclude=[f"^{p}" for p in PUBLIC_PREFIXES]),
            IdempotencyMiddleware,  # after the token: keys are the caller's
        ],
        lifespans=[auth_lifespan],
        on_startup=[lambda app: document_idempotency(app, PUBLIC_PREFIXES)],
    )
