"""The provider sandbox: a faithful stand-in for WhatsApp Cloud API, SMS, SMTP and a Pix PSP.

WhatsApp is in place: the Graph-API-compatible routes (``whatsapp.py``) and their control API
under ``/_sandbox/whatsapp`` (``control.py``).  The sandbox keeps its state in memory and is
single-process by design (see ``state.py``); serve it with one worker.
"""

from __future__ import annotations

import redis.asyncio as aioredis
from litestar import Litestar, MediaType, get

from services.common.app import build_service
from services.sandbox.chat import chat_router
from services.sandbox.control import control_router
from services.sandbox.email import email_lifespan, email_router
from services.sandbox.pix import pix_psp_router
from services.sandbox.sms import sms_control_router, sms_lifespan, twilio_router
from services.sandbox.sms_state import SmsState
from services.sandbox.state import SandboxState
from services.sandbox.whatsapp import graph_router, whatsapp_lifespan
from shared.config import Settings, get_settings
from shared.db import SessionMaker
from shared.logging import configure_logging


@get("/", media_type=MediaType.HTML, sync_to_thread=False, include_in_schema=False)
def index() -> str:
    return (
        "<!doctype html><html lang='pt-BR'><head><meta charset='utf-8'><title>Quita sandbox</title>"
        "</head><body><h1>Quita sandbox</h1><p>Provider stand-ins for demo and tests.</p>"
        "<p><a href='/_sandbox/chat'>Conversas</a>: each debtor phone as a WhatsApp chat.</p>"
        "</body></html>"
    )


def create_app(
    settings: Settings | None = None,
    *,
    sessionmaker: SessionMaker | None = None,
    redis: aioredis.Redis | None = None,
    whatsapp: SandboxState | None = None,
    sms: SmsState | None = None,
) -> Litestar:
    """The sandbox app; tests may pass their own ``whatsapp`` state (to seed it or fix dice)."""
    settings = settings or get_settings()
    if sessionmaker is None:
        configure_logging(settings, "sandbox")
    return build_service(
        settings=settings,
        process="sandbox",
        title="Quita sandbox",
        description="Provider stand-ins: WhatsApp Cloud API, SMS, SMTP sink, Pix PSP.",
        route_handlers=[
            index,
            control_router,
            chat_router,
            graph_router,
            twilio_router,
            sms_control_router,
            email_router,
            pix_psp_router,
        ],
        max_body_bytes=settings.api_max_body_bytes,
        sessionmaker=sessionmaker,
        redis=redis,
        lifespans=[
            whatsapp_lifespan(whatsapp or SandboxState()),
            sms_lifespan(sms or SmsState()),
            email_lifespan(settings),
        ],
    )
