"""The sandbox's SMTP sink: every e-mail Quita sends in demo and test mode lands here.

An aiosmtpd server takes the mail over real SMTP, keeps the last ``MAX_MESSAGES`` in memory and
shows them under ``/_sandbox/email`` (JSON, and each message as ``.eml``).  It can play the
failures a real server answers with: a login required (535 on a bad password), mailboxes that do
not exist (550 5.1.1) and mailboxes that answer "later" (451).

It runs on the app's own event loop (``loop.create_server``), not in aiosmtpd's threaded
``Controller``: the SMTP hooks and the HTTP handlers then share the state without locks, like the
rest of the sandbox (see ``state.py``), it starts and stops with the app's lifespan, and port 0
needs no readiness probe: the bound port is known as soon as ``create_server`` returns.
"""

from __future__ import annotations

import asyncio
import dataclasses
import fnmatch
import logging
import secrets
import time
import weakref
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any

import msgspec
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from litestar import Litestar, MediaType, Request, Response, Router, get, post
from litestar.params import FromPath, FromQuery, JSONBody

from shared.config import Settings
from shared.errors import NotFound, ServiceUnavailable, ValidationFailed
from shared.logging import get_logger

MAX_MESSAGES = 10_000
SERVER_NAME = "sandbox.quita.test"
MAILBOX_UNAVAILABLE = "550 5.1.1 mailbox unavailable"
TRY_LATER = "451 4.3.0 mailbox temporarily unavailable, try again later"
AUTH_REQUIRED = "530 5.7.0 Authentication required"
# Shown in listings: what a test or a demo checks first.
HEADERS_OF_INTEREST = (
    "From",
    "To",
    "Reply-To",
    "Date",
    "Message-ID",
    "X-Quita-Attempt",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
    "Auto-Submitted",
)

_log = get_logger(__name__)


@dataclass
class SinkConfig:
    """How the sink answers.  ``password`` set: AUTH is required (any ``username`` unless one is
    set).  ``rejected`` / ``temporary_failures``: shell-style patterns of recipient addresses
    (``*@invalido.com.br``) answered 550 / 451."""

    username: str | None = None
    password: str | None = None
    rejected: list[str] = field(default_factory=list)
    temporary_failures: list[str] = field(default_factory=list)

    @property
    def auth_required(self) -> bool:
        return self.password is not None

    def accepts_login(self, login: str, password: str) -> bool:
        if self.password is None:
            return True
        same_user = self.username is None or secrets.compare_digest(login, self.username)
        return same_user and secrets.compare_digest(password.encode(), self.password.encode())

    def refusal(self, address: str) -> str | None:
        """The error reply to ``RCPT TO:<address>``, or ``None`` to accept it."""
        if _matches(address, self.rejected):
            return MAILBOX_UNAVAILABLE
        if _matches(address, self.temporary_failures):
            return TRY_LATER
        return None

    def public(self) -> dict[str, Any]:
        return {
            "auth_required": self.auth_required,
            "username": self.username,
            "rejected": self.rejected,
            "temporary_failures": self.temporary_failures,
        }


def _matches(address: str, patterns: list[str]) -> bool:
    address = address.casefold()
    return any(fnmatch.fnmatchcase(address, p.casefold()) for p in patterns)


@dataclass
class ReceivedEmail:
    """One message as the sink took it: the envelope, the raw bytes and what a reader sees."""

    id: str
    received_at: datetime
    mail_from: str
    rcpt_tos: list[str]
    raw: bytes = field(repr=False)
    subject: str | None
    text: str | None
    html: str | None
    headers: list[tuple[str, str]] = field(repr=False)

    def summary(self) -> dict[str, Any]:
        present = {name.lower(): value for name, value in self.headers}
        return {
            "id": self.id,
            "received_at": self.received_at.isoformat(),
            "mail_from": self.mail_from,
            "rcpt_tos": self.rcpt_tos,
            "subject": self.subject,
            "text": self.text,
            "html": self.html,
            "headers": {h: present[h.lower()] for h in HEADERS_OF_INTEREST if h.lower() in present},
            "size": len(self.raw),
        }

    def detail(self) -> dict[str, Any]:
        return {**self.summary(), "all_headers": [[k, v] for k, v in self.headers]}


def _body(message: EmailMessage, subtype: str) -> str | None:
    part = message.get_body(preferencelist=(subtype,))
    if part is None or part.get_content_type() != f"text/{subtype}":
        return None
    try:
        content = part.get_content()
    except (LookupError, ValueError):  # an unknown charset or a broken encoding
        return None
    # Lines as a reader sees them: the wire's CRLF is transport, not content.
    return content.replace("\r\n", "\n") if isinstance(content, str) else None


def parse_received(raw: bytes, mail_from: str, rcpt_tos: list[str], now: datetime) -> ReceivedEmail:
    """Read a message the way a mail client would (decoded headers, text and HTML parts)."""
    message = BytesParser(policy=policy.default).parsebytes(raw)
    assert isinstance(message, EmailMessage)  # policy.default builds EmailMessage
    subject = message["Subject"]
    return ReceivedEmail(
        id=secrets.token_hex(8),
        received_at=now,
        mail_from=mail_from,
        rcpt_tos=rcpt_tos,
        raw=raw,
        subject=None if subject is None else str(subject),
        text=_body(message, "plain"),
        html=_body(message, "html"),
        headers=[(k, str(v).strip()) for k, v in message.items()],  # unfolded
    )


class EmailSink:
    """The sink's state and its aiosmtpd hooks; everything runs on the app's event loop."""

    def __init__(self, max_messages: int = MAX_MESSAGES) -> None:
        self.messages: deque[ReceivedEmail] = deque(maxlen=max_messages)
        self.config = SinkConfig()
        self.host = ""
        self.port = 0
        self.clock: Callable[[], float] = time.time
        self._server: asyncio.Server | None = None
        self._sessions: weakref.WeakSet[SMTP] = weakref.WeakSet()

    # --- lifecycle ---------------------------------------------------------------------------

    async def start(self, host: str, port: int) -> None:
        """Listen on ``host:port`` (0: a free port, then ``self.port`` is the one bound)."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._new_session, host, port)
        self.host, self.port = host, self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self._server is None:
            return
        self._server.close()
        for session in list(self._sessions):
            if session.transport is not None:
                session.transport.close()
        await self._server.wait_closed()
        self._server = None

    def _new_session(self) -> SMTP:
        session = SMTP(
            self,
            hostname=SERVER_NAME,
            enable_SMTPUTF8=True,
            authenticator=self.authenticate,
            # A sandbox without TLS; AUTH is enforced in handle_MAIL, because aiosmtpd's own
            # ``auth_required`` insists on TLS (with a warning) when it is not required.
            auth_require_tls=False,
            loop=asyncio.get_running_loop(),
        )
        self._sessions.add(session)
        return session

    # --- aiosmtpd hooks ----------------------------------------------------------------------

    def authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        if not isinstance(data, LoginPassword):
            return AuthResult(success=False, handled=False)
        login = data.login.decode("utf-8", "replace")
        password = data.password.decode("utf-8", "replace")
        return AuthResult(success=self.config.accepts_login(login, password), handled=False)

    async def handle_MAIL(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        if self.config.auth_required and not session.authenticated:
            return AUTH_REQUIRED
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        refusal = self.config.refusal(address)
        if refusal is not None:
            return refusal
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        now = datetime.fromtimestamp(self.clock(), UTC)
        received = parse_received(raw, envelope.mail_from or "", list(envelope.rcpt_tos), now)
        self.messages.append(received)
        return f"250 2.0.0 OK queued as {received.id}"

    # --- queries -----------------------------------------------------------------------------

    def listing(self, to: str | None, limit: int) -> list[ReceivedEmail]:
        """Newest first; ``to``: only messages with that envelope recipient."""
        wanted = to.casefold() if to else None
        found = []
        for message in reversed(self.messages):
            if wanted is None or wanted in (r.casefold() for r in message.rcpt_tos):
                found.append(message)
                if len(found) >= limit:
                    break
        return found

    def find(self, message_id: str) -> ReceivedEmail | None:
        return next((m for m in self.messages if m.id == message_id), None)

    def reset(self) -> None:
        self.messages.clear()
        self.config = SinkConfig()


def email_lifespan(settings: Settings) -> Callable[[Litestar], AbstractAsyncContextManager[None]]:
    """Owns the SMTP sink: listening from startup to shutdown, reachable as ``app.state.email``."""

    @asynccontextmanager
    async def run(app: Litestar) -> AsyncIterator[None]:
        # aiosmtpd logs every connection at INFO and a deprecation at each AUTH; the sink logs
        # what matters itself.
        logging.getLogger("mail.log").setLevel(logging.ERROR)
        sink = EmailSink()
        try:
            await sink.start(settings.sandbox_smtp_host, settings.sandbox_smtp_port or 0)
        except OSError as exc:
            # Another program holds the port (8025 is also MailHog's): the rest of the sandbox
            # still serves; the e-mail routes say why they cannot.
            _log.warning(
                "sandbox.smtp_unavailable",
                port=settings.sandbox_smtp_port,
                error=str(exc),
                hint="set QUITA_SANDBOX_SMTP_PORT to a free port",
            )
            app.state.email = None
            yield
            return
        app.state.email = sink
        _log.info("sandbox.smtp_listening", host=sink.host, port=sink.port)
        try:
            yield
        finally:
            await sink.close()

    return run


# --- control routes ----------------------------------------------------------------------------


def sink_of(request: Request[Any, Any, Any]) -> EmailSink:
    sink: EmailSink | None = request.app.state.email
    if sink is None:
        raise ServiceUnavailable(
            "The SMTP sink is not listening: its port was taken. "
            "Set QUITA_SANDBOX_SMTP_PORT to a free port and restart the sandbox."
        )
    return sink


@get("/")
async def sink_address(request: Request[Any, Any, Any]) -> dict[str, Any]:
    """Where the sink listens (point the SMTP sender here) and how it is configured."""
    sink = sink_of(request)
    return {
        "host": sink.host,
        "port": sink.port,
        "messages": len(sink.messages),
        **sink.config.public(),
    }


@get("/messages")
async def list_messages(
    request: Request[Any, Any, Any], to: FromQuery[str | None] = None, limit: FromQuery[int] = 50
) -> dict[str, Any]:
    """The messages received, newest first; ``to`` filters on an envelope recipient."""
    if not 1 <= limit <= MAX_MESSAGES:
        raise ValidationFailed(f"limit must be between 1 and {MAX_MESSAGES}.")
    found = sink_of(request).listing(to, limit)
    return {"messages": [m.summary() for m in found]}


@get("/messages/{message_id:str}")
async def show_message(request: Request[Any, Any, Any], message_id: FromPath[str]) -> Response[Any]:
    """One message: JSON, or the raw message as received with ``.eml`` after the id."""
    raw = message_id.endswith(".eml")
    message = sink_of(request).find(message_id.removesuffix(".eml"))
    if message is None:
        raise NotFound(f"No message {message_id} in the sandbox sink.")
    if raw:
        return Response(message.raw, media_type="message/rfc822")
    return Response(message.detail(), media_type=MediaType.JSON)


@post("/reset", status_code=200)
async def reset_sink(request: Request[Any, Any, Any]) -> dict[str, str]:
    """Forget every message and go back to the default configuration (no AUTH, no failures)."""
    sink_of(request).reset()
    return {"status": "reset"}


@post("/config", status_code=200)
async def configure_sink(
    request: Request[Any, Any, Any], data: JSONBody[dict[str, Any]]
) -> dict[str, Any]:
    """Change some of: ``username``/``password`` (AUTH required when a password is set; null
    to drop it), ``rejected`` and ``temporary_failures`` (recipient patterns)."""
    sink = sink_of(request)
    known = {f.name for f in dataclasses.fields(SinkConfig)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValidationFailed(f"Unknown settings: {', '.join(unknown)}.")
    try:
        sink.config = msgspec.convert({**dataclasses.asdict(sink.config), **data}, SinkConfig)
    except msgspec.ValidationError as exc:
        raise ValidationFailed(str(exc)) from None
    return sink.config.public()


email_router = Router(
    path="/_sandbox/email",
    route_handlers=[sink_address, list_messages, show_message, reset_sink, configure_sink],
    tags=["sandbox control"],
)
