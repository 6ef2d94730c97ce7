"""Provider webhooks: verify the signature on the raw body, journal, enqueue, answer 2xx fast.

No business logic lives here; receivers (``receivers/<provider>.py``) only verify and journal.
"""

from __future__ import annotations

from collections.abc import Sequence

import redis.asyncio as aioredis
from litestar import Litestar
from litestar.types import ControllerRouterHandler

import shared.tasks  # noqa: F401
from services.common.app import build_service
from services.webhooks.receivers.pix import pix_router
from services.webhooks.receivers.sms import sms_router
from services.webhooks.receivers.whatsapp import whatsapp_router
from shared.config import Settings, get_settings
from shared.db import SessionMaker
from shared.logging import configure_logging
from shared.tenancy import SYSTEM


def create_app(
    settings: Settings | None = None,
    *,
    sessionmaker: SessionMaker | None = None,
    redis: aioredis.Redis | None = None,
    extra_routes: Sequence[ControllerRouterHandler] = (),
) -> Litestar:
    settings = settings or get_settings()
    if sessionmaker is None:
        configure_logging(settings, "webhooks")
    return build_service(
        settings=settings,
        process="webhooks",
        title="Quita webhooks",
        description="Receivers for provider callbacks (WhatsApp, SMS, Pix PSPs).",
        route_handlers=[whatsapp_router, sms_router, pix_router, *extra_routes],
        max_body_bytes=settings.webhooks_max_body_bytes,
        sessionmaker=sessionmaker,
        redis=redis,
        # Provider callbacks are routed to a tenant only after verification and lookup.
        default_scope=SYSTEM,
    )
