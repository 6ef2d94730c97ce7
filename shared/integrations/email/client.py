"""Sending e-mail over SMTP (aiosmtplib), one connection per message.

Each retailer sends through its own SMTP account (host, credentials, TLS mode), so the sender
takes an ``SmtpConfig`` with every call, as the WhatsApp client takes a number and its token.
Every failure raises ``EmailError`` with a class the reminder worker already understands.  Logs
carry the message id and masked addresses (``m***@exemplo.com.br``): the domain helps to read a
wave of bounces, the person stays out of the logs; passwords are never logged.
"""

from __future__ import annotations

import ssl
from collections.abc import Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import getaddresses
from typing import Any, Literal

import aiosmtplib

from shared.integrations.email.errors import EmailError, class_of_reply
from shared.integrations.email.message import message_id_of
from shared.integrations.errors import ErrorClass
from shared.logging import get_logger, mask_text

__all__ = ["EmailResult", "Security", "SmtpConfig", "SmtpSender", "mask_email"]

Security = Literal["starttls", "tls", "none"]
QUIT_TIMEOUT_S = 5.0

_log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class SmtpConfig:
    """One SMTP account.  ``port`` ``None``: 587 for starttls, 465 for tls, 25 for none."""

    host: str
    port: int | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    security: Security = "starttls"
    timeout: float = 30.0
    validate_certs: bool = True


@dataclass(frozen=True, slots=True)
class EmailResult:
    """The server took the message for ``accepted`` (queued, not delivered); ``refused`` maps
    each refused recipient to the server's (code, reply)."""

    message_id: str
    accepted: list[str]
    refused: dict[str, tuple[int, str]]
    server_reply: str = ""


def mask_email(address: str) -> str:
    """``maria.silva@exemplo.com.br`` → ``m***@exemplo.com.br`` (for logs)."""
    local, at, domain = address.strip().rpartition("@")
    if not at:
        return "***"
    return f"{local[:1]}***@{domain.lower()}"


class _TrackedSMTP(aiosmtplib.SMTP):
    """Remembers whether the DATA phase began: after that a broken connection may have left
    the message with the server (``maybe_sent``)."""

    data_started = False

    async def data(self, *args: Any, **kwargs: Any) -> aiosmtplib.SMTPResponse:
        self.data_started = True
        return await super().data(*args, **kwargs)


def _recipients(message: EmailMessage) -> list[str]:
    fields = [str(v) for name in ("To", "Cc", "Bcc") for v in message.get_all(name, [])]
    return [addr for _, addr in getaddresses(fields) if addr]


class SmtpSender:
    """Sends built messages (``build_message``) through the account given with each call.

    ``local_hostname`` is the EHLO name (default: this host's FQDN)."""

    def __init__(self, *, local_hostname: str | None = None) -> None:
        self.local_hostname = local_hostname

    async def send(self, config: SmtpConfig, message: EmailMessage) -> EmailResult:
        """Send ``message`` to its To/Cc/Bcc; ``EmailError`` if no recipient took it."""
        message_id = message_id_of(message)
        recipients = _recipients(message)
        masked = [mask_email(r) for r in recipients]
        smtp = _TrackedSMTP(
            hostname=config.host,
            port=config.port,
            username=config.username or None,
            password=config.password if config.username else None,
            use_tls=config.security == "tls",
            start_tls={"starttls": True, "tls": False, "none": False}[config.security],
            validate_certs=config.validate_certs,
            timeout=config.timeout,
            local_hostname=self.local_hostname,
        )
        try:
            refused, reply = await self._transaction(smtp, message, recipients)
        except EmailError as exc:
            _log.warning(
                "email.send_failed",
                message_id=message_id,
                to=masked,
                smtp_host=config.host,
                error_class=str(exc.error_class),
                smtp_code=exc.smtp_code,
                maybe_sent=exc.maybe_sent,
                reason=mask_text(exc.message),  # replies often quote the address
            )
            raise
        result = EmailResult(
            message_id=message_id,
            accepted=[r for r in recipients if r not in refused],
            refused={r: (int(response.code), response.message) for r, response in refused.items()},
            server_reply=reply,
        )
        _log.info(
            "email.sent",
            message_id=message_id,
            to=masked,
            refused=[mask_email(r) for r in result.refused],
            smtp_host=config.host,
        )
        return result

    async def _transaction(
        self, smtp: _TrackedSMTP, message: EmailMessage, recipients: Sequence[str]
    ) -> tuple[dict[str, aiosmtplib.SMTPResponse], str]:
        try:
            await smtp.connect()
        except aiosmtplib.SMTPException as exc:
            raise _connect_error(exc) from exc
        try:
            result = await smtp.send_message(message, recipients=list(recipients))
        except BaseException as exc:
            smtp.close()  # no polite QUIT after a failure, nor while being cancelled
            if isinstance(exc, aiosmtplib.SMTPException):
                raise _send_error(exc, maybe_sent=smtp.data_started) from exc
            if isinstance(exc, ValueError):  # an address aiosmtplib will not put on the wire
                raise EmailError(ErrorClass.UNDELIVERABLE, str(exc)) from exc
            raise
        await _quit(smtp)
        return result


async def _quit(smtp: aiosmtplib.SMTP) -> None:
    """Say goodbye, briefly: the message is taken, a slow or failing QUIT changes nothing."""
    try:
        await smtp.quit(timeout=QUIT_TIMEOUT_S)
    except aiosmtplib.SMTPException:
        pass
    finally:
        smtp.close()


_NETWORK = (
    aiosmtplib.SMTPConnectError,
    aiosmtplib.SMTPServerDisconnected,
    aiosmtplib.SMTPTimeoutError,
)


def _connect_error(exc: aiosmtplib.SMTPException) -> EmailError:
    """Failures before any envelope: the message never left this process."""
    if isinstance(exc.__cause__, ssl.SSLCertVerificationError):
        return EmailError(ErrorClass.AUTH, "server certificate not trusted")
    if isinstance(exc, aiosmtplib.SMTPResponseException):  # incl. 535 to AUTH, 421 greeting
        cls = class_of_reply(exc.code, recipient=False)
        return EmailError(cls, exc.message, smtp_code=exc.code)
    if isinstance(exc, _NETWORK):
        return EmailError(ErrorClass.TRANSIENT, f"{type(exc).__name__}: {exc.message}")
    # STARTTLS or AUTH asked for but not offered: the account is set up wrong.
    return EmailError(ErrorClass.AUTH, exc.message)


def _send_error(exc: aiosmtplib.SMTPException, *, maybe_sent: bool) -> EmailError:
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        return _all_refused(exc)
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        # A reply is an answer: even a 4xx/5xx to the body means the server did not take it.
        cls = class_of_reply(exc.code, recipient=False)
        return EmailError(cls, exc.message, smtp_code=exc.code)
    if isinstance(exc, aiosmtplib.SMTPNotSupported):  # e.g. SMTPUTF8 for a non-ASCII address
        return EmailError(ErrorClass.UNDELIVERABLE, exc.message)
    # Disconnects and timeouts: if they hit during DATA the server may have queued the message.
    message = f"{type(exc).__name__}: {exc.message}"
    return EmailError(ErrorClass.TRANSIENT, message, maybe_sent=maybe_sent)


def _all_refused(exc: aiosmtplib.SMTPRecipientsRefused) -> EmailError:
    """Every recipient refused: undeliverable if all for good (5xx), else retry later."""
    refused = {e.recipient: (e.code, e.message) for e in exc.recipients}
    classes = {class_of_reply(e.code, recipient=True) for e in exc.recipients}
    if ErrorClass.AUTH in classes:  # 530: the server wants a login before taking anything
        cls = ErrorClass.AUTH
    elif ErrorClass.TRANSIENT in classes:  # one mailbox said "later": worth a retry
        cls = ErrorClass.TRANSIENT
    else:
        cls = ErrorClass.UNDELIVERABLE
    first = exc.recipients[0]
    return EmailError(cls, first.message, smtp_code=first.code, refused=refused)
