"""Building a reminder e-mail that every mailbox renders and every server accepts.

Portuguese display names and subjects carry accents, so headers are written by the stdlib's
header registry (RFC 2047 encoded words where needed) and bodies as UTF-8 quoted-printable, which
survives any relay, 8BITMIME or not.  We generate the ``Message-ID`` ourselves: it is the only
id a bounce, a complaint or the sandbox can give back to link an e-mail to its contact attempt.
The unsubscribe headers follow RFC 2369 and RFC 8058 (one-click), which Gmail and Yahoo require
of bulk senders and which makes an opt-out (LGPD) one click away.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from email import policy
from email.errors import HeaderParseError
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime

__all__ = ["ATTEMPT_HEADER", "InvalidEmail", "build_message", "message_id_of"]

ATTEMPT_HEADER = "X-Quita-Attempt"

# Headers the builder owns: a caller's ``headers`` may not replace them.
_RESERVED = frozenset(
    {
        "from",
        "to",
        "cc",
        "bcc",
        "subject",
        "date",
        "message-id",
        "reply-to",
        "mime-version",
        "content-type",
        "content-transfer-encoding",
        "list-unsubscribe",
        "list-unsubscribe-post",
        ATTEMPT_HEADER.lower(),
    }
)
_DOMAIN = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9-]{1,63})*")
_HEADER_NAME = re.compile(r"[!-9;-~]+")  # RFC 5322 ftext: printable ASCII except ':'


class InvalidEmail(ValueError):
    """The message cannot be built as asked (a bad address, domain or header)."""


def _address(addr_spec: str, display_name: str = "") -> Address:
    try:
        address = Address(display_name=display_name, addr_spec=addr_spec.strip())
    except (ValueError, IndexError, HeaderParseError):
        raise InvalidEmail("not an e-mail address") from None
    if not address.username or not address.domain:
        raise InvalidEmail("an e-mail address needs a local part and a domain")
    return address


def _new_message_id(domain: str) -> str:
    if not _DOMAIN.fullmatch(domain):
        raise InvalidEmail("message_id_domain is not a domain name")
    return f"<{uuid.uuid4().hex}@{domain}>"


def _unsubscribe_targets(url: str | None, mailto: str | None) -> list[str]:
    targets = []
    if mailto:
        address = mailto.removeprefix("mailto:")
        _address(address.split("?", 1)[0])
        targets.append(f"<mailto:{address}>")
    if url:
        if not url.startswith("https://"):
            raise InvalidEmail("the one-click unsubscribe URL must be https (RFC 8058)")
        if any(c in url for c in "<>, \r\n"):
            raise InvalidEmail("the unsubscribe URL must be percent-encoded")
        targets.append(f"<{url}>")
    return targets


def build_message(
    *,
    from_addr: str,
    from_name: str,
    to: str | Sequence[str],
    subject: str,
    text: str,
    html: str | None = None,
    reply_to: str | None = None,
    headers: Mapping[str, str] | None = None,
    message_id_domain: str,
    attempt_id: str | None = None,
    unsubscribe_url: str | None = None,
    unsubscribe_mailto: str | None = None,
) -> EmailMessage:
    """A ready-to-send message: text, or text and HTML as multipart/alternative.

    Its new ``Message-ID`` is ``message["Message-ID"]`` (see ``message_id_of``).  ``attempt_id``
    becomes ``X-Quita-Attempt``; ``unsubscribe_url`` (https, one-click POST) and/or
    ``unsubscribe_mailto`` become ``List-Unsubscribe``.  Raises ``InvalidEmail``.
    """
    recipients = [to] if isinstance(to, str) else list(to)
    if not recipients:
        raise InvalidEmail("a message needs at least one recipient")
    message = EmailMessage(policy=policy.SMTP)
    message["From"] = _address(from_addr, from_name)
    message["To"] = [_address(r) for r in recipients]
    _set(message, "Subject", subject)
    message["Date"] = format_datetime(datetime.now(UTC))
    message["Message-ID"] = _new_message_id(message_id_domain)
    if reply_to:
        message["Reply-To"] = _address(reply_to)
    # RFC 3834: an automated reminder; out-of-office robots must not answer it.
    message["Auto-Submitted"] = "auto-generated"
    if attempt_id:
        _set(message, ATTEMPT_HEADER, attempt_id)
    targets = _unsubscribe_targets(unsubscribe_url, unsubscribe_mailto)
    if targets:
        message["List-Unsubscribe"] = ", ".join(targets)
    if unsubscribe_url:
        message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    _add_headers(message, headers or {})
    message.set_content(text, charset="utf-8", cte="quoted-printable")
    if html is not None:
        message.add_alternative(html, subtype="html", charset="utf-8", cte="quoted-printable")
    return message


def _add_headers(message: EmailMessage, headers: Mapping[str, str]) -> None:
    for name, value in headers.items():
        if not _HEADER_NAME.fullmatch(name) or name.lower() in _RESERVED:
            raise InvalidEmail(f"header {name!r} cannot be set by the caller")
        if name.lower() == "auto-submitted":
            del message[name]  # the caller knows better (e.g. a reply to the debtor)
        _set(message, name, value)


def _set(message: EmailMessage, name: str, value: str) -> None:
    try:
        message[name] = value
    except ValueError:  # CR or LF in the value: a header injection attempt
        raise InvalidEmail(f"header {name!r} may not contain line breaks") from None


def message_id_of(message: EmailMessage) -> str:
    """The ``Message-ID`` of a message built here (with its angle brackets)."""
    return str(message["Message-ID"])
