"""The SMS sandbox: a stand-in for Twilio Programmable Messaging, and its control API.

``/2010-04-01/Accounts/{AccountSid}/Messages.json`` takes form-encoded sends with HTTP Basic auth
and answers as Twilio does per the handbook contract (§10.2): the Message resource with status
``queued`` on 201, Twilio's error body (``{code, message, more_info, status}``, not problem+json)
otherwise.  An accepted message then moves to ``sent`` and ``delivered`` (or ``undelivered`` /
``failed`` with an ``ErrorCode``) after the account's delays, each step posted to its
``StatusCallback`` form-encoded and signed with ``X-Twilio-Signature``, retried on non-2xx like
the WhatsApp webhooks.  Demo and test mode point the SMS client here instead of api.twilio.com.

The control API under ``/_sandbox/sms`` (JSON, problem+json errors) registers accounts, marks
phones unreachable, plays a phone texting an account's number (STOP / PARE / SAIR opt it out),
and shows what each account sent.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import dataclasses
import secrets
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import parse_qsl, urlencode

import httpx
import msgspec
import structlog
from litestar import Litestar, Request, Response, Router, get, post
from litestar.params import FromPath, FromQuery, JSONBody

from services.sandbox.sms_state import (
    ACCOUNT_SID,
    API_VERSION,
    E164,
    SmsAccount,
    SmsAccountConfig,
    SmsMessage,
    SmsState,
    keyword,
    new_sid,
)
from shared.errors import NotFound, ValidationFailed
from shared.integrations.sms.segments import segments
from shared.integrations.sms.signature import twilio_signature

log = structlog.get_logger("quita.sandbox.sms")

MAX_BODY_CHARS = 1600

# (due after acceptance in ms, status, ErrorCode)
Event = tuple[int, str, int | None]


# --- Twilio's errors ---------------------------------------------------------------------------


@dataclass
class TwilioError(Exception):
    """A REST API error, rendered in Twilio's shape rather than problem+json."""

    code: int
    message: str
    status: int = 400

    def body(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "message": self.message,
            "more_info": f"https://www.twilio.com/docs/errors/{self.code}",
            "status": self.status,
        }


def twilio_error_response(request: Request[Any, Any, Any], exc: TwilioError) -> Response[Any]:
    headers = {"WWW-Authenticate": 'Basic realm="Twilio API"'} if exc.status == 401 else {}
    return Response(content=exc.body(), status_code=exc.status, headers=headers)


def not_found(request: Request[Any, Any, Any]) -> TwilioError:
    return TwilioError(
        20404, f"The requested resource {request.url.path} was not found", status=404
    )


# --- background deliveries ---------------------------------------------------------------------


class SmsDispatcher:
    """Moves accepted messages through their statuses and posts signed callbacks in the
    background; ``close()`` cancels what is still pending."""

    def __init__(self, state: SmsState, client: httpx.AsyncClient) -> None:
        self.state = state
        self.client = client
        self.tasks: set[asyncio.Task[None]] = set()

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def close(self) -> None:
        self.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.client.aclose()

    def cancel(self) -> None:
        for task in list(self.tasks):
            task.cancel()

    async def idle(self) -> None:
        """Wait until every scheduled status change and callback is done."""
        while self.tasks:
            await asyncio.gather(*list(self.tasks), return_exceptions=True)

    async def post_signed(self, account: SmsAccount, url: str, params: dict[str, str]) -> None:
        """POST ``params`` form-encoded to ``url``, signed with the account's auth token;
        retried with exponential backoff while the receiver fails."""
        config = account.config
        headers = {
            "Content-Type": "application/x-www-form-urlencoded; charset=utf-8",
            "X-Twilio-Signature": twilio_signature(url, params, config.auth_token),
            "I-Twilio-Idempotency-Token": secrets.token_hex(16),
            "User-Agent": "TwilioProxy/1.1",
        }
        body = urlencode(params)
        for attempt in range(config.callback_retries + 1):
            outcome: int | str
            try:
                response = await self.client.post(url, content=body, headers=headers)
                outcome = response.status_code
            except httpx.HTTPError as exc:
                outcome = type(exc).__name__
            account.deliveries.append(
                {"url": url, "attempt": attempt + 1, "outcome": outcome, "params": params}
            )
            if isinstance(outcome, int) and 200 <= outcome < 300:
                return
            log.info("sandbox.sms_callback_retry", attempt=attempt + 1, outcome=outcome)
            await asyncio.sleep(config.callback_retry_base_ms * 2**attempt / 1000)
        log.warning("sandbox.sms_callback_abandoned", account_sid=config.account_sid)

    def lifecycle(self, account: SmsAccount, message: SmsMessage) -> None:
        """Schedule the message's status changes and their callbacks, in order."""
        config = account.config
        status, code = account.unreachable.get(message.to, ("delivered", None))
        events: list[Event]
        if status == "failed":  # never reached the carrier: no "sent" first
            events = [(config.sent_delay_ms, status, code)]
        else:
            events = [
                (config.sent_delay_ms, "sent", None),
                (config.delivered_delay_ms, status, code),
            ]
        self.spawn(self._advance(account, message, events))

    async def _advance(self, account: SmsAccount, message: SmsMessage, events: list[Event]) -> None:
        started = asyncio.get_running_loop().time()
        for due_ms, status, error_code in events:
            wait = started + due_ms / 1000 - asyncio.get_running_loop().time()
            await asyncio.sleep(max(wait, 0))
            now = self.state.clock()
            message.status, message.error_code, message.updated_at = status, error_code, now
            if status == "sent":
                message.sent_at = now
            message.statuses.append(status)
            if message.status_callback:
                params = status_params(message, status, error_code, now)
                await self.post_signed(account, message.status_callback, params)


def status_params(
    message: SmsMessage, status: str, error_code: int | None, at: float
) -> dict[str, str]:
    """A status callback's form fields, as Twilio names them."""
    params = {
        "AccountSid": message.account_sid,
        "ApiVersion": API_VERSION,
        "From": message.from_,
        "MessageSid": message.sid,
        "MessageStatus": status,
        "SmsSid": message.sid,
        "SmsStatus": status,
        "To": message.to,
    }
    if message.messaging_service_sid:
        params["MessagingServiceSid"] = message.messaging_service_sid
    if error_code is not None:
        params["ErrorCode"] = str(error_code)
    if status == "delivered":
        params["RawDlrDoneDate"] = _dlr_date(at)
    return params


def _dlr_date(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%y%m%d%H%M")


def dispatcher_of(request: Request[Any, Any, Any]) -> SmsDispatcher:
    dispatcher: SmsDispatcher = request.app.state.sms
    return dispatcher


def sms_lifespan(state: SmsState) -> Callable[[Litestar], AbstractAsyncContextManager[None]]:
    """Owns the SMS dispatcher: its HTTP client and background status changes."""

    @asynccontextmanager
    async def run(app: Litestar) -> AsyncIterator[None]:
        dispatcher = SmsDispatcher(state, httpx.AsyncClient(timeout=5.0))
        app.state.sms = dispatcher
        try:
            yield
        finally:
            await dispatcher.close()

    return run


# --- the Twilio-compatible REST API ------------------------------------------------------------


def basic_auth(request: Request[Any, Any, Any]) -> tuple[str, str]:
    scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return "", ""
    try:
        user, _, password = base64.b64decode(encoded.strip()).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return "", ""
    return user, password


def authorised_account(request: Request[Any, Any, Any], account_sid: str) -> SmsAccount:
    """The account of the URL, when the Basic credentials are its SID and auth token."""
    user, token = basic_auth(request)
    account = dispatcher_of(request).state.authenticate(user, token)
    if account is None or user != account_sid:
        raise TwilioError(20003, "Authenticate", status=401)
    return account


async def form_fields(request: Request[Any, Any, Any]) -> dict[str, str]:
    """The first value of each form field; a repeated field counts once."""
    raw = (await request.body()).decode("utf-8", errors="replace")
    fields: dict[str, str] = {}
    for name, value in parse_qsl(raw, keep_blank_values=True):
        fields.setdefault(name, value)
    return fields


def check_send(account: SmsAccount, form: dict[str, str]) -> str:
    """Validate a send as Twilio does; the number it leaves from."""
    to = form.get("To", "").strip()
    if not to:
        raise TwilioError(21604, "A 'To' phone number is required.")
    if not E164.fullmatch(to):
        raise TwilioError(21211, f"The 'To' number {to} is not a valid phone number.")
    from_, service = form.get("From", "").strip(), form.get("MessagingServiceSid", "").strip()
    if not from_ and not service:
        raise TwilioError(21603, "A 'From' phone number is required.")
    sender = account.sender_for(from_ or None, service or None)
    if sender is None:
        raise TwilioError(
            21606,
            f"The From phone number {from_ or service} is not a valid, SMS-capable inbound "
            "phone number or short code for your account.",
        )
    body = form.get("Body", "")
    if not body:
        raise TwilioError(21602, "Message body is required.")
    if len(body) > MAX_BODY_CHARS:
        raise TwilioError(21617, "The concatenated message body exceeds the 1600 character limit.")
    if to in account.opted_out:
        raise TwilioError(21610, "Attempt to send to unsubscribed recipient")
    return sender


@post("/Accounts/{account_sid:str}/Messages.json", status_code=201)
async def create_message(
    request: Request[Any, Any, Any], account_sid: FromPath[str]
) -> dict[str, Any]:
    """Send an SMS (Twilio): accepted means queued; statuses arrive at ``StatusCallback``."""
    dispatcher = dispatcher_of(request)
    account = authorised_account(request, account_sid)
    limit = account.config.rate_limit_per_second
    if not account.rate.take(limit, dispatcher.state.clock()):
        raise TwilioError(20429, "Too Many Requests", status=429)
    form = await form_fields(request)
    sender = check_send(account, form)
    message = SmsMessage(
        sid=new_sid(),
        account_sid=account_sid,
        to=form["To"].strip(),
        from_=sender,
        body=form["Body"],
        num_segments=segments(form["Body"]),
        created_at=dispatcher.state.clock(),
        messaging_service_sid=form.get("MessagingServiceSid") or None,
        status_callback=form.get("StatusCallback") or None,
        request=form,
    )
    account.messages.append(message)
    dispatcher.lifecycle(account, message)
    return message.resource()


@get("/Accounts/{account_sid:str}/Messages/{resource:str}")
async def fetch_message(
    request: Request[Any, Any, Any], account_sid: FromPath[str], resource: FromPath[str]
) -> dict[str, Any]:
    """A message's resource with its current status."""
    account = authorised_account(request, account_sid)
    sid = resource.removesuffix(".json")
    message = account.find(sid) if resource.endswith(".json") else None
    if message is None:
        raise not_found(request)
    return message.resource()


twilio_router = Router(
    path=f"/{API_VERSION}",
    route_handlers=[create_message, fetch_message],
    exception_handlers={TwilioError: twilio_error_response},
    tags=["sms (Twilio API)"],
)


# --- control API -------------------------------------------------------------------------------


class Unreachable(msgspec.Struct, kw_only=True):
    """Phones whose messages end ``undelivered`` (or ``failed``) with ``error_code``."""

    numbers: list[str]
    status: Literal["undelivered", "failed"] = "undelivered"
    error_code: int = 30003


class Inbound(msgspec.Struct, kw_only=True):
    """A phone texting one of the account's numbers (its first when ``to`` is left out)."""

    from_: str = msgspec.field(name="from")
    body: str
    to: str | None = None


def account_of(request: Request[Any, Any, Any], account_sid: str) -> SmsAccount:
    account = dispatcher_of(request).state.accounts.get(account_sid)
    if account is None:
        raise NotFound(f"No sandbox SMS account {account_sid}.")
    return account


def check_phones(name: str, numbers: list[str]) -> None:
    bad = [n for n in numbers if not E164.fullmatch(n)]
    if bad:
        raise ValidationFailed(f"{name} must be E.164 numbers (+ and 8 to 15 digits): {bad}")


@post("/accounts", status_code=201)
async def register_account(
    request: Request[Any, Any, Any], data: JSONBody[SmsAccountConfig]
) -> dict[str, Any]:
    """Register (or replace) a Twilio account: SID, auth token, senders, inbound URL, delays
    and rate limit."""
    if not ACCOUNT_SID.fullmatch(data.account_sid):
        raise ValidationFailed("account_sid must be AC followed by 32 hex digits.")
    if not data.auth_token:
        raise ValidationFailed("auth_token is required.")
    check_phones("numbers", data.numbers)
    account = dispatcher_of(request).state.register(data)
    return dataclasses.asdict(account.config)


@get("/accounts/{account_sid:str}/messages")
async def account_messages(
    request: Request[Any, Any, Any], account_sid: FromPath[str], wait: FromQuery[bool] = False
) -> dict[str, Any]:
    """What the account sent (newest last, with status and body), received, and each callback
    attempt; ``?wait=true`` first waits for every pending status change and callback."""
    if wait:
        await dispatcher_of(request).idle()
    account = account_of(request, account_sid)
    return {
        "account_sid": account_sid,
        "messages": [m.as_dict() for m in account.messages],
        "received": account.received,
        "deliveries": account.deliveries,
        "opted_out": sorted(account.opted_out),
        "unreachable": sorted(account.unreachable),
    }


@post("/accounts/{account_sid:str}/unreachable", status_code=200)
async def mark_unreachable(
    request: Request[Any, Any, Any], account_sid: FromPath[str], data: JSONBody[Unreachable]
) -> dict[str, Any]:
    """Messages to these phones are accepted, then end with the given status and code."""
    account = account_of(request, account_sid)
    check_phones("numbers", data.numbers)
    for number in data.numbers:
        account.unreachable[number] = (data.status, data.error_code)
    return {"unreachable": sorted(account.unreachable)}


@post("/accounts/{account_sid:str}/inbound", status_code=201)
async def phone_texts(
    request: Request[Any, Any, Any], account_sid: FromPath[str], data: JSONBody[Inbound]
) -> dict[str, str]:
    """A phone texts the account: opt-out/opt-in keywords apply, and the message is posted,
    signed, to the account's ``inbound_url``."""
    dispatcher = dispatcher_of(request)
    account = account_of(request, account_sid)
    check_phones("from", [data.from_])
    to = data.to or (account.config.numbers[0] if account.config.numbers else "")
    if to not in account.config.numbers:
        raise ValidationFailed(f"{to or 'to'} is not a number of account {account_sid}.")
    params = inbound_params(account, data.from_, to, data.body)
    account.received.append(params)
    if params.get("OptOutType") == "STOP":
        account.opted_out.add(data.from_)
    elif params.get("OptOutType") == "START":
        account.opted_out.discard(data.from_)
    if account.config.inbound_url:
        dispatcher.spawn(dispatcher.post_signed(account, account.config.inbound_url, params))
    return params


def inbound_params(account: SmsAccount, from_: str, to: str, body: str) -> dict[str, str]:
    """An incoming message's webhook fields, as Twilio names them."""
    sid = new_sid()
    params = {
        "AccountSid": account.config.account_sid,
        "ApiVersion": API_VERSION,
        "Body": body,
        "From": from_,
        "MessageSid": sid,
        "NumMedia": "0",
        "NumSegments": str(max(segments(body), 1)),
        "SmsMessageSid": sid,
        "SmsSid": sid,
        "SmsStatus": "received",
        "To": to,
    }
    word = keyword(body)
    if word is not None:
        params["OptOutType"] = word
    return params


@post("/reset", status_code=200)
async def reset(request: Request[Any, Any, Any]) -> dict[str, str]:
    """Forget every account and cancel pending status changes and callbacks."""
    dispatcher = dispatcher_of(request)
    dispatcher.cancel()
    dispatcher.state.reset()
    return {"status": "reset"}


sms_control_router = Router(
    path="/_sandbox/sms",
    route_handlers=[register_account, account_messages, mark_unreachable, phone_texts, reset],
    tags=["sandbox control"],
)

__all__ = [
    "SmsDispatcher",
    "TwilioError",
    "sms_control_router",
    "sms_lifespan",
    "twilio_router",
]
