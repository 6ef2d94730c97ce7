"""The SMS client over HTTP: ``httpx.MockTransport`` plays Twilio's Message resource and error
bodies (contract §10.2), so we check the requests we make and how we read the answers.  The
same client against the sandbox is in tests/sandbox/test_sms_client_against_sandbox.py."""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
import structlog
from structlog.testing import capture_logs

from shared.config import Settings
from shared.integrations.sms import SmsClient, SmsError, map_status
from shared.integrations.sms import client as client_module
from shared.integrations.whatsapp import ErrorClass

ACCOUNT = "AC0123456789abcdef0123456789abcdef"
TOKEN = "twilio-auth-token-secret"
FROM = "+15005550006"
TO = "+5511987654321"
CALLBACK = "https://api.exemplo.com/sms/twilio/status?tenant=loja-1"
SID = "SM0123456789abcdef0123456789abcdef"

MESSAGE = {
    "sid": SID,
    "account_sid": ACCOUNT,
    "status": "queued",
    "to": TO,
    "from": FROM,
    "body": "Lembrete...",
    "num_segments": "1",
    "direction": "outbound-api",
    "error_code": None,
    "error_message": None,
    "price": None,
    "price_unit": "USD",
    "date_created": "Mon, 04 May 2026 12:00:00 +0000",
    "messaging_service_sid": None,
    "uri": f"/2010-04-01/Accounts/{ACCOUNT}/Messages/{SID}.json",
}

Handler = Callable[[httpx.Request], httpx.Response]


def _answer(
    status: int, body: Any, seen: list[httpx.Request] | None = None, **headers: str
) -> Handler:
    def handle(request: httpx.Request) -> httpx.Response:
        if seen is not None:
            seen.append(request)
        return httpx.Response(status, json=body, headers=headers)

    return handle


def _client(handler: Handler) -> SmsClient:
    return SmsClient(base_url="https://api.twilio.test", transport=httpx.MockTransport(handler))


def _error(code: int, status: int) -> dict[str, Any]:
    return {
        "code": code,
        "message": "Twilio says no",
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


async def _send(client: SmsClient, **kwargs: Any) -> Any:
    return await client.send(
        ACCOUNT, TOKEN, FROM, TO, "Olá Maria", status_callback=CALLBACK, **kwargs
    )


async def test_send_posts_twilios_form_with_basic_auth() -> None:
    seen: list[httpx.Request] = []
    async with _client(_answer(201, MESSAGE, seen)) as client:
        await _send(client)

    request = seen[0]
    assert request.method == "POST"
    assert request.url.path == f"/2010-04-01/Accounts/{ACCOUNT}/Messages.json"
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    expected = base64.b64encode(f"{ACCOUNT}:{TOKEN}".encode()).decode()
    assert request.headers["authorization"] == f"Basic {expected}"
    assert parse_qsl(request.content.decode()) == [
        ("To", TO),
        ("Body", "Olá Maria"),
        ("From", FROM),
        ("StatusCallback", CALLBACK),
    ]


async def test_a_messaging_service_may_replace_from_and_no_callback_is_sent_when_none() -> None:
    seen: list[httpx.Request] = []
    async with _client(_answer(201, MESSAGE, seen)) as client:
        await client.send(
            ACCOUNT,
            TOKEN,
            None,
            TO,
            "Oi",
            status_callback=None,
            messaging_service_sid="MG0123456789abcdef0123456789abcdef",
        )

    form = dict(parse_qsl(seen[0].content.decode()))
    assert form == {
        "To": TO,
        "Body": "Oi",
        "MessagingServiceSid": "MG0123456789abcdef0123456789abcdef",
    }


async def test_a_send_without_sender_or_with_a_bad_sid_never_leaves() -> None:
    seen: list[httpx.Request] = []
    async with _client(_answer(201, MESSAGE, seen)) as client:
        with pytest.raises(ValueError, match="from_"):
            await client.send(ACCOUNT, TOKEN, None, TO, "Oi", status_callback=None)
        with pytest.raises(ValueError, match="SID"):
            await client.send("AC/../x", TOKEN, FROM, TO, "Oi", status_callback=None)
    assert seen == []


async def test_the_201_body_becomes_the_result() -> None:
    async with _client(_answer(201, MESSAGE)) as client:
        result = await _send(client)

    assert (result.sid, result.status, result.our_status) == (SID, "queued", "queued")
    assert (result.to, result.from_, result.account_sid) == (TO, FROM, ACCOUNT)
    assert (result.num_segments, result.price, result.price_unit) == (1, None, "USD")
    assert result.error_code is None
    assert result.date_created == "Mon, 04 May 2026 12:00:00 +0000"


async def test_fetch_reads_the_message_resource() -> None:
    seen: list[httpx.Request] = []
    delivered = {**MESSAGE, "status": "delivered", "price": "-0.00750"}
    async with _client(_answer(200, delivered, seen)) as client:
        result = await client.fetch(ACCOUNT, TOKEN, SID)

    assert seen[0].method == "GET"
    assert seen[0].url.path == f"/2010-04-01/Accounts/{ACCOUNT}/Messages/{SID}.json"
    assert (result.our_status, result.price) == ("delivered", "-0.00750")


@pytest.mark.parametrize(
    ("code", "status", "error_class"),
    [
        (20003, 401, ErrorClass.AUTH),
        (20005, 401, ErrorClass.AUTH),
        (21211, 400, ErrorClass.UNDELIVERABLE),
        (21614, 400, ErrorClass.UNDELIVERABLE),
        (21612, 400, ErrorClass.UNDELIVERABLE),
        (21408, 400, ErrorClass.UNDELIVERABLE),
        (30003, 400, ErrorClass.UNDELIVERABLE),
        (30005, 400, ErrorClass.UNDELIVERABLE),
        (30006, 400, ErrorClass.UNDELIVERABLE),
        (21610, 400, ErrorClass.POLICY),
        (20429, 429, ErrorClass.RATE_LIMITED),
        (14107, 400, ErrorClass.RATE_LIMITED),
        (21602, 400, ErrorClass.INVALID_REQUEST),
        (21617, 400, ErrorClass.INVALID_REQUEST),
        (21603, 400, ErrorClass.INVALID_REQUEST),
        (21604, 400, ErrorClass.INVALID_REQUEST),
        (21606, 400, ErrorClass.AUTH),
        (21999, 400, ErrorClass.INVALID_REQUEST),
        (20404, 404, ErrorClass.INVALID_REQUEST),
        (20500, 500, ErrorClass.TRANSIENT),
    ],
)
async def test_twilio_codes_map_to_error_classes(
    code: int, status: int, error_class: ErrorClass
) -> None:
    async with _client(_answer(status, _error(code, status))) as client:
        with pytest.raises(SmsError) as raised:
            await _send(client)

    assert raised.value.error_class is error_class
    assert (raised.value.code, raised.value.http_status) == (code, status)
    assert raised.value.more_info == f"https://www.twilio.com/docs/errors/{code}"
    assert raised.value.opted_out is (code == 21610)


@pytest.mark.parametrize(
    ("status", "error_class", "maybe_sent"),
    [
        (429, ErrorClass.RATE_LIMITED, False),
        (401, ErrorClass.AUTH, False),
        (403, ErrorClass.AUTH, False),
        (418, ErrorClass.INVALID_REQUEST, False),
        (502, ErrorClass.TRANSIENT, True),
        (503, ErrorClass.TRANSIENT, True),
    ],
)
async def test_statuses_without_a_twilio_body_map_by_http_status(
    status: int, error_class: ErrorClass, maybe_sent: bool
) -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, text="<html>gateway</html>", headers={"Retry-After": "2"})

    async with _client(handle) as client:
        with pytest.raises(SmsError) as raised:
            await _send(client)

    assert (raised.value.error_class, raised.value.maybe_sent) == (error_class, maybe_sent)
    assert raised.value.code is None
    assert raised.value.retry_after_s == 2.0


@pytest.mark.parametrize(
    ("exc", "maybe_sent"),
    [
        (httpx.ConnectTimeout("x"), False),
        (httpx.PoolTimeout("x"), False),
        (httpx.ReadTimeout("x"), True),
        (httpx.ConnectError("x"), False),
        (httpx.RemoteProtocolError("x"), True),
    ],
)
async def test_network_failures_are_transient_and_say_whether_twilio_may_have_it(
    exc: Exception, maybe_sent: bool
) -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        raise exc

    async with _client(handle) as client:
        with pytest.raises(SmsError) as raised:
            await _send(client)

    assert raised.value.error_class is ErrorClass.TRANSIENT
    assert raised.value.maybe_sent is maybe_sent


@pytest.mark.parametrize("body", [{"status": "queued"}, ["not", "an", "object"]])
async def test_a_success_without_a_sid_is_a_transient_maybe_sent_failure(body: Any) -> None:
    async with _client(_answer(201, body)) as client:
        with pytest.raises(SmsError) as raised:
            await _send(client)

    assert (raised.value.error_class, raised.value.maybe_sent) == (ErrorClass.TRANSIENT, True)


@pytest.fixture
def info_logs(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Info events reach ``capture_logs`` even when the test session logs at WARNING and the
    client's logger was cached by an earlier test."""
    saved = structlog.get_config()
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG),
        cache_logger_on_first_use=False,
    )
    monkeypatch.setattr(client_module, "_log", structlog.get_logger(client_module.__name__))
    yield
    structlog.configure(**saved)


@pytest.mark.usefixtures("info_logs")
async def test_logs_carry_neither_the_token_nor_the_full_phone_nor_the_text() -> None:
    async with _client(_answer(201, MESSAGE)) as client:
        with capture_logs() as events:
            await _send(client)
    async with _client(_answer(400, _error(21211, 400))) as client:
        with capture_logs() as failures, pytest.raises(SmsError):
            await _send(client)

    logged = repr(events + failures)
    assert [e["event"] for e in events + failures] == ["sms.sent", "sms.send_failed"]
    assert TOKEN not in logged
    assert TO not in logged
    assert "Olá Maria" not in logged
    assert events[0]["to_last4"] == "4321"
    assert failures[0]["code"] == 21211


async def test_client_from_settings_uses_the_configured_api() -> None:
    seen: list[httpx.Request] = []
    settings = Settings(sms_api_url="http://sandbox:8002/")
    client = SmsClient.from_settings(
        settings, transport=httpx.MockTransport(_answer(201, MESSAGE, seen))
    )
    async with client:
        await _send(client)

    assert str(seen[0].url) == f"http://sandbox:8002/2010-04-01/Accounts/{ACCOUNT}/Messages.json"
    assert Settings().sms_api_url == "https://api.twilio.com"


@pytest.mark.parametrize(
    ("twilio", "ours"),
    [
        ("accepted", "queued"),
        ("scheduled", "queued"),
        ("queued", "queued"),
        ("sending", "queued"),
        ("sent", "sent"),
        ("delivered", "delivered"),
        ("read", "delivered"),
        ("undelivered", "undelivered"),
        ("partially_delivered", "undelivered"),
        ("failed", "failed"),
        ("canceled", "failed"),
        ("DELIVERED", "delivered"),
    ],
)
def test_twilio_statuses_map_to_ours(twilio: str, ours: str) -> None:
    assert map_status(twilio) == ours


def test_an_undocumented_status_is_refused_not_guessed() -> None:
    with pytest.raises(ValueError, match="unknown Twilio message status"):
        map_status("teleported")
