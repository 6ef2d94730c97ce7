"""The provider sandbox: a faithful stand-in for WhatsApp Cloud API, SMS, SMTP and a Pix PSP.

This is the skeleton; the channels issue fills in the Graph-API-compatible endpoints.
"""

from __future__ import annotations

from litestar import Litestar, MediaType, get

from services.common.app import build_service
from shared.config import Settings, get_settings
from shared.logging import configure_logging


@get("/", media_type=MediaType.HTML, sync_to_thread=False, include_in_schema=False)
def index() -> str:
    return (
        "<!doctype html><html lang='pt-BR'><head><meta charset='utf-8'><title>Quita sandbox</title>"
        "</head><body><h1>Quita sandbox</h1><p>Provider stand-ins for demo and tests.</p>"
        "</body></html>"
    )


def create_app(settings: Settings | None = None) -> Litestar:
    settings = settings or get_settings()
    configure_logging(settings, "sandbox")
    return build_service(
        settings=settings,
        process="sandbox",
        title="Quita sandbox",
        description="Provider stand-ins: WhatsApp Cloud API, SMS, SMTP sink, Pix PSP.",
        route_handlers=[index],
        max_body_bytes=settings.api_max_body_bytes,
    )
