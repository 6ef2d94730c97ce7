"""An async client for Twilio Programmable Messaging, shared by every tenant of a process.

One pooled ``httpx.AsyncClient`` serves all sends, like the WhatsApp client; the account SID and
auth token come with each call because every tenant sends from its own Twilio account.  A send is
a form-encoded POST to ``/2010-04-01/Accounts/{AccountSid}/Messages.json`` with HTTP Basic auth
(handbook contract §10.2); the 201 body becomes an ``SmsResult`` and every failure raises
``SmsError`` with an ``ErrorClass`` (the table is in ``errors.py``).  Logs carry SIDs and the last
four digits of a recipient, never a token, a body or a full phone number.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

import httpx

from shared.config import Settings
from shared.integrations.errors import ErrorClass
from shared.integrations.http import DEFAULT_LIMITS, DEFAULT_TIMEOUT, PooledClient
from shared.integrations.sms.errors import SmsError
from shared.logging import get_logger

__all__ = ["API_VERSION", "OurStatus", "SmsClient", "SmsResult", "map_status"]

DEFAULT_BASE_URL = "https://api.twilio.com"
API_VERSION = "2010-04-01"


# SIDs are two letters and 32 hex digits; refusing anything else keeps a bad SID from
# rewriting the path.
_SID = re.compile(r"[A-Za-z0-9]+")

OurStatus = Literal["queued", "sent", "delivered", "failed", "undelivered"]

# Twilio's Message status enum (contract §10.2) in our terms.  Not yet handed to the carrier is
# "queued"; "read" exists only on WhatsApp/RCS senders.  "partially_delivered" means some
# segments never arrived, so the debtor may hold half a reminder: not a success.  "canceled" was
# a scheduled message that never left: a failure.
_STATUSES: dict[str, OurStatus] = {
    "accepted": "queued",
    "scheduled": "queued",
    "queued": "queued",
    "sending": "queued",
    "sent": "sent",
    "delivered": "delivered",
    "read": "delivered",
    "partially_delivered": "undelivered",
    "undelivered": "undelivered",
    "failed": "failed",
    "canceled": "failed",
}

_log = get_logger(__name__)


def map_status(twilio_status: str) -> OurStatus:
    """Our status for a Twilio message status; ``ValueError`` for one Twilio has not
    documented (a webhook handler should acknowledge and log it, not fail)."""
    try:
        return _STATUSES[twilio_status.strip().lower()]
    except KeyError:
        raise ValueError(f"unknown Twilio message status {twilio_status!r}") from None


@dataclass(frozen=True, slots=True)
class SmsResult:
    """A Message resource as Twilio answers it: accepted (``queued``), not delivered.

    ``num_segments`` is what Twilio bills; ``price`` stays ``None`` until the message is sent
    (then a negative decimal string in ``price_unit``)."""

    sid: str
    account_sid: str
    status: str
    to: str
    from_: str | None
    num_segments: int | None
    price: str | None
    price_unit: str | None
    error_code: int | None
    error_message: str | None
    messaging_service_sid: str | None
    date_created: str | None

    @property
    def our_status(self) -> OurStatus:
        return map_status(self.status)


def _sid(name: str, value: str) -> str:
    if not _SID.fullmatch(value):
        raise ValueError(f"{name} is not a Twilio SID")
    return value


def _last4(to: str) -> str:
    return to[-4:]


def _optional_str(value: Any) -> str | None:
    return None if value is None else str(value)


def _optional_int(value: Any) -> int | None:
    try:
        return None if value is None else int(value)
    except (TypeError, ValueError):
        return None


def parse_message(body: Any) -> SmsResult:
    """An ``SmsResult`` from a Message resource; a body without a ``sid`` is a provider fault."""
    try:
        return SmsResult(
            sid=str(body["sid"]),
            account_sid=str(body.get("account_sid", "")),
            status=str(body.get("status", "queued")),
            to=str(body.get("to", "")),
            from_=_optional_str(body.get("from")),
            num_segments=_optional_int(body.get("num_segments")),
            price=_optional_str(body.get("price")),
            price_unit=_optional_str(body.get("price_unit")),
            error_code=_optional_int(body.get("error_code")),
            error_message=_optional_str(body.get("error_message")),
            messaging_service_sid=_optional_str(body.get("messaging_service_sid")),
            date_created=_optional_str(body.get("date_created")),
        )
    except (KeyError, TypeError, AttributeError):
        raise SmsError(
            error_class=ErrorClass.TRANSIENT,
            message="success body without a sid",
            body=body if isinstance(body, dict) else None,
            maybe_sent=True,
        ) from None


def send_form(
    from_: str | None,
    to: str,
    body: str,
    *,
    status_callback: str | None,
    messaging_service_sid: str | None,
) -> dict[str, str]:
    """The form fields of a send, named as Twilio documents them."""
    if not from_ and not messaging_service_sid:
        raise ValueError("a send needs from_ or messaging_service_sid")
    form = {"To": to, "Body": body}
    if from_:
        form["From"] = from_
    if messaging_service_sid:
        form["MessagingServiceSid"] = messaging_service_sid
    if status_callback:
        form["StatusCallback"] = status_callback
    return form


class SmsClient(PooledClient):
    """Twilio Messaging calls over one connection pool.  Use as an async context manager or
    call ``aclose()``; ``transport`` is for tests."""

    def __init__(
        self,
        *,
        base_url: str = DEFAULT_BASE_URL,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        limits: httpx.Limits = DEFAULT_LIMITS,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(base_url, timeout=timeout, limits=limits, transport=transport)

    @classmethod
    def from_settings(cls, settings: Settings, **kwargs: Any) -> SmsClient:
        return cls(base_url=settings.sms_api_url, **kwargs)

    async def __aenter__(self) -> SmsClient:
        return self

    async def _call(
        self,
        method: Literal["GET", "POST"],
        path: str,
        auth: tuple[str, str],
        *,
        form: dict[str, str] | None = None,
    ) -> Any:
        """One REST call; the parsed success body, or ``SmsError``."""
        try:
            response = await self._http.request(method, path, data=form, auth=auth)
        except httpx.TimeoutException as exc:
            # A connect or pool timeout never left this process; a read or write one may have
            # reached Twilio, which has no idempotency key for sends.
            sent = not isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout)
            raise _network_error(f"timeout: {type(exc).__name__}", maybe_sent=sent) from exc
        except httpx.TransportError as exc:
            sent = not isinstance(exc, httpx.ConnectError)
            raise _network_error(f"network: {type(exc).__name__}", maybe_sent=sent) from exc
        return _body_or_raise(response)

    async def send(
        self,
        account_sid: str,
        auth_token: str,
        from_: str | None,
        to: str,
        body: str,
        *,
        status_callback: str | None,
        messaging_service_sid: str | None = None,
    ) -> SmsResult:
        """Send ``body`` to ``to`` (E.164) from ``from_`` or a Messaging Service; statuses then
        arrive at ``status_callback``, signed with the account's auth token."""
        path = f"/{API_VERSION}/Accounts/{_sid('account_sid', account_sid)}/Messages.json"
        form = send_form(
            from_,
            to,
            body,
            status_callback=status_callback,
            messaging_service_sid=messaging_service_sid,
        )
        try:
            result = parse_message(
                await self._call("POST", path, (account_sid, auth_token), form=form)
            )
        except SmsError as exc:
            _log.warning(
                "sms.send_failed",
                account_sid=account_sid,
                to_last4=_last4(to),
                error_class=str(exc.error_class),
                code=exc.code,
                http_status=exc.http_status,
                maybe_sent=exc.maybe_sent,
            )
            raise
        _log.info(
            "sms.sent",
            account_sid=account_sid,
            to_last4=_last4(to),
            message_sid=result.sid,
            status=result.status,
            num_segments=result.num_segments,
        )
        return result

    async def fetch(self, account_sid: str, auth_token: str, message_sid: str) -> SmsResult:
        """A message's current resource (status, error code, price), e.g. after a lost
        callback."""
        path = (
            f"/{API_VERSION}/Accounts/{_sid('account_sid', account_sid)}"
            f"/Messages/{_sid('message_sid', message_sid)}.json"
        )
        return parse_message(await self._call("GET", path, (account_sid, auth_token)))


def _network_error(message: str, *, maybe_sent: bool) -> SmsError:
    return SmsError(error_class=ErrorClass.TRANSIENT, message=message, maybe_sent=maybe_sent)


def _body_or_raise(response: httpx.Response) -> Any:
    """The JSON body of a success; ``SmsError`` for an error status or a body that is not
    JSON."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.status_code >= 400:
        raise SmsError.from_response(
            response.status_code, body, retry_after=response.headers.get("retry-after")
        )
    if not isinstance(body, dict):
        raise SmsError(
            error_class=ErrorClass.TRANSIENT,
            message="success without a JSON object",
            http_status=response.status_code,
            maybe_sent=True,
        )
    return body
