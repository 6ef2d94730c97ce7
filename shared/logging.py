"""Structured logging for every process.

JSON lines in production, a readable console in development.  Request, tenant and job ids live in
structlog's contextvars, so every event logged while serving a request (or running a job) carries
them.  A masking processor runs last before rendering: CPF/CNPJ, phone numbers and e-mail
addresses never reach a log line, wherever they hide in the event.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping
from typing import Any

import orjson
import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from shared.config import LogFormat, Settings

# Formatted CPF (123.456.789-09) or CNPJ, including the alphanumeric CNPJ (12.ABC.345/01DE-35).
_DOCUMENT = re.compile(
    r"(?<![\w.])(?:\d{3}\.\d{3}\.\d{3}-\d{2}|[0-9A-Z]{2}\.[0-9A-Z]{3}\.[0-9A-Z]{3}/[0-9A-Z]{4}-\d{2})(?![\w])"
)
# Bare CPF (11 digits) or CNPJ (14 chars, alphanumeric allowed in the first 12).
_BARE_DOCUMENT = re.compile(r"(?<![\w-])(?:\d{11}|[0-9A-Z]{12}\d{2})(?![\w-])")
# Phone numbers: E.164 or Brazilian national formats, e.g. +5511987654321, (11) 98765-4321.
_PHONE = re.compile(r"(?<![\w-])(?:\+\d{10,15}|\(?\d{2}\)?[ ]?9?\d{4}[- ]?\d{4})(?![\w-])")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")

_MASK = "***"
# Keys whose values are never logged at all.
_SECRET_KEYS = frozenset(
    {
        "password",
        "secret",
        "client_secret",
        "token",
        "access_token",
        "refresh_token",
        "authorization",
        "cookie",
        "app_secret",
        "api_key",
    }
)


def mask_text(text: str) -> str:
    """Replace documents, phone numbers and e-mail addresses in ``text`` with a mask."""
    text = _EMAIL.sub(_MASK, text)
    text = _DOCUMENT.sub(_MASK, text)
    text = _BARE_DOCUMENT.sub(_MASK, text)
    return _PHONE.sub(_MASK, text)


def _mask_value(value: Any) -> Any:
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, Mapping):
        return {
            k: (_MASK if str(k).lower() in _SECRET_KEYS else _mask_value(v))
            for k, v in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        return [_mask_value(v) for v in value]
    return value


def mask_personal_data(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """structlog processor: mask personal data and drop secrets in every field."""
    for key, value in list(event_dict.items()):
        if key.lower() in _SECRET_KEYS:
            event_dict[key] = _MASK
        else:
            event_dict[key] = _mask_value(value)
    return event_dict


def _shared_processors() -> list[Processor]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
        structlog.processors.format_exc_info,
        mask_personal_data,
    ]


def _renderer(fmt: LogFormat | None) -> Processor:
    if fmt is LogFormat.JSON:
        return structlog.processors.JSONRenderer(serializer=lambda o, **_: orjson.dumps(o).decode())
    return structlog.dev.ConsoleRenderer(
        colors=sys.stderr.isatty(), exception_formatter=structlog.dev.plain_traceback
    )


def configure_logging(settings: Settings, process: str) -> None:
    """Configure structlog and route stdlib loggers (granian, dramatiq, sqlalchemy) through it."""
    level = logging.getLevelName(settings.log_level.upper())
    level = level if isinstance(level, int) else logging.INFO
    renderer = _renderer(settings.log_format)
    shared = _shared_processors()

    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared[:3], structlog.stdlib.ExtraAdder(), *shared[3:]],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("sqlalchemy.engine", "httpx", "httpcore", "asyncio"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))
    structlog.contextvars.bind_contextvars(process=process)


def get_logger(name: str | None = None) -> Any:
    return structlog.get_logger(name)
