"""The client over HTTP: ``httpx.MockTransport`` plays the success and error bodies of the contract
(whatsapp-cloud-api.md §2.8, §3.1, §6) so we check the requests we make and how we read answers."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from structlog.testing import capture_logs

from shared.config import Settings
from shared.integrations.whatsapp import (
    Document,
    ErrorClass,
    ListRow,
    ListSection,
    QuickReplyButton,
    ReplyButton,
    SendResult,
    WhatsAppClient,
    WhatsAppError,
)
from shared.integrations.whatsapp import payloads as p
from shared.integrations.whatsapp.client import DEFAULT_LIMITS

PHONE_NUMBER_ID = "106540352242922"
WABA_ID = "102290129340398"
TOKEN = "EAAG-secret-token"
TO = "5511987654321"
CALLBACK = "inv_8841:att_2"
WAMID = "wamid.HBgMNTUxMTg3NjU0MzIxFQIAERgSQjk2NzQ3NDQxQ0VCNzUwNENFAA=="

SUCCESS = json.loads(
    """
{
  "messaging_product": "whatsapp",
  "contacts": [ { "input": "5511987654321", "wa_id": "551187654321" } ],
  "messages": [ { "id": "wamid.HBgMNTUxMTg3NjU0MzIxFQIAERgSQjk2NzQ3NDQxQ0VCNzUwNENFAA==", "message_status": "accepted" } ]
}
"""  # noqa: E501
)
RATE_LIMIT = {
    "error": {
        "message": "(#130429) Rate limit hit",
        "type": "OAuthException",
        "code": 130429,
        "error_data": {
            "messaging_product": "whatsapp",
            "details": "Cloud API message throughput has been reached.",
        },
        "error_subcode": 2494055,
        "fbtrace_id": "Az8or2yhqkZfEZ-_4Qn_Bam",
    }
}
PAIR_LIMIT = json.loads(
    """{"error":{"message":"(#131056) (Business Account, Consumer Account) pair rate limit hit","type":"OAuthException","code":131056,"error_data":{"details":"Message failed to send because there were too many messages sent from this phone number to the same phone number in a short period of time."}}}"""  # noqa: E501
)
EXPIRED_TOKEN = {
    "error": {
        "message": "Error validating access token: Session has expired on Monday, 04-May-26.",
        "type": "OAuthException",
        "code": 190,
        "error_subcode": 463,
        "fbtrace_id": "AbCdEf",
    }
}


def _error(code: int, title: str, details: str) -> dict[str, Any]:
    """A synchronous error in the shape of §3.1 for a code whose body the contract only names."""
    return {
        "error": {
            "message": f"(#{code}) {title}",
            "type": "OAuthException",
            "code": code,
            "error_data": {"messaging_product": "whatsapp", "details": details},
            "fbtrace_id": "A1b2C3",
        }
    }


Handler = Callable[[httpx.Request], httpx.Response]


def _client(handler: Handler) -> WhatsAppClient:
    return WhatsAppClient(transport=httpx.MockTransport(handler))


def _answer(status: int, body: Any, seen: list[httpx.Request] | None = None) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        if seen is not None:
            seen.append(request)
        return httpx.Response(status, json=body)

    return handler


async def _send_text(client: WhatsAppClient) -> SendResult:
    return await client.send_text(PHONE_NUMBER_ID, TOKEN, TO, "oi", callback_data=CALLBACK)


# --- success -------------------------------------------------------------------------------------


async def test_send_template_posts_the_body_with_the_retailers_token() -> None:
    seen: list[httpx.Request] = []
    async with _client(_answer(200, SUCCESS, seen)) as client:
        result = await client.send_template(
            PHONE_NUMBER_ID,
            TOKEN,
            TO,
            "lembrete_vencimento_v1",
            "pt_BR",
            callback_data=CALLBACK,
            body=["Maria", "Loja Exemplo", "R$ 150,00", "10/05/2026"],
            buttons=[QuickReplyButton(1, "PAID:8841")],
        )
    (request,) = seen
    assert request.method == "POST"
    assert str(request.url) == f"https://graph.facebook.com/v24.0/{PHONE_NUMBER_ID}/messages"
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert request.headers["content-type"] == "application/json"
    assert json.loads(request.content) == p.template_message(
        TO,
        "lembrete_vencimento_v1",
        "pt_BR",
        callback_data=CALLBACK,
        body=["Maria", "Loja Exemplo", "R$ 150,00", "10/05/2026"],
        buttons=[QuickReplyButton(1, "PAID:8841")],
    )
    assert result == SendResult(
        message_id=WAMID, input=TO, wa_id="551187654321", message_status="accepted"
    )


async def test_send_without_message_status_leaves_it_none() -> None:
    body = {
        "messaging_product": "whatsapp",
        "contacts": [{"input": TO, "wa_id": "5511987654321"}],
        "messages": [{"id": WAMID}],
    }
    async with _client(_answer(200, body)) as client:
        result = await _send_text(client)
    assert result.message_status is None
    assert result.wa_id == "5511987654321"


async def test_bsuid_send_keeps_user_id_and_empty_wa_id() -> None:
    body = {
        "messaging_product": "whatsapp",
        "contacts": [{"input": "user.abc", "wa_id": "", "user_id": "user.abc"}],
        "messages": [{"id": WAMID}],
    }
    async with _client(_answer(200, body)) as client:
        result = await _send_text(client)
    assert (result.wa_id, result.user_id) == ("", "user.abc")


@pytest.mark.parametrize(
    ("send", "kind"),
    [
        (
            lambda c: c.send_interactive_buttons(
                PHONE_NUMBER_ID, TOKEN, TO, "oi", [ReplyButton("a", "A")], callback_data=CALLBACK
            ),
            "interactive",
        ),
        (
            lambda c: c.send_interactive_list(
                PHONE_NUMBER_ID,
                TOKEN,
                TO,
                "oi",
                "Ver",
                [ListSection([ListRow("a", "A")])],
                callback_data=CALLBACK,
            ),
            "interactive",
        ),
        (
            lambda c: c.send_document(
                PHONE_NUMBER_ID, TOKEN, TO, Document(media_id="42"), callback_data=CALLBACK
            ),
            "document",
        ),
    ],
)
async def test_every_send_posts_to_the_messages_endpoint(send: Any, kind: str) -> None:
    seen: list[httpx.Request] = []
    async with _client(_answer(200, SUCCESS, seen)) as client:
        result = await send(client)
    sent = json.loads(seen[0].content)
    assert seen[0].url.path == f"/v24.0/{PHONE_NUMBER_ID}/messages"
    assert (sent["type"], sent["biz_opaque_callback_data"]) == (kind, CALLBACK)
    assert result.message_id == WAMID


async def test_mark_read_reads_success_true() -> None:
    seen: list[httpx.Request] = []
    async with _client(_answer(200, {"success": True}, seen)) as client:
        assert await client.mark_read(PHONE_NUMBER_ID, TOKEN, "wamid.IN", typing_indicator=True)
    assert json.loads(seen[0].content) == p.mark_read("wamid.IN", typing_indicator=True)


async def test_create_template_returns_id_and_status() -> None:
    seen: list[httpx.Request] = []
    created = {"id": "1192339204654487", "status": "PENDING", "category": "UTILITY"}
    async with _client(_answer(200, created, seen)) as client:
        result = await client.create_template(
            WABA_ID,
            TOKEN,
            "lembrete_vencimento_v1",
            "pt_BR",
            "UTILITY",
            [p.body_component("Olá {{1}}", ["Maria"])],
        )
    assert (result.id, result.status, result.category) == ("1192339204654487", "PENDING", "UTILITY")
    assert seen[0].url.path == f"/v24.0/{WABA_ID}/message_templates"
    assert json.loads(seen[0].content)["name"] == "lembrete_vencimento_v1"


async def test_list_templates_pages_with_the_after_cursor() -> None:
    seen: list[httpx.Request] = []
    page = {
        "data": [{"name": "lembrete_vencimento_v1", "language": "pt_BR", "status": "APPROVED"}],
        "paging": {
            "cursors": {"before": "QVFIUb", "after": "QVFIUa"},
            "next": "https://graph.facebook.com/v24.0/102290129340398/message_templates?after=QVFIUa",
        },
    }
    async with _client(_answer(200, page, seen)) as client:
        result = await client.list_templates(WABA_ID, TOKEN, limit=1)
    assert result.after == "QVFIUa"
    assert result.templates == page["data"]
    assert seen[0].method == "GET"
    assert seen[0].url.params["limit"] == "1"
    assert seen[0].url.params["fields"].startswith("name,language,status")


async def test_last_template_page_has_no_cursor() -> None:
    last = {"data": [], "paging": {"cursors": {"before": "b", "after": "a"}}}
    async with _client(_answer(200, last)) as client:
        assert (await client.list_templates(WABA_ID, TOKEN)).after is None


async def test_delete_template_sends_the_name() -> None:
    seen: list[httpx.Request] = []
    async with _client(_answer(200, {"success": True}, seen)) as client:
        assert await client.delete_template(WABA_ID, TOKEN, "lembrete_vencimento_v1")
    assert seen[0].method == "DELETE"
    assert seen[0].url.params["name"] == "lembrete_vencimento_v1"


async def test_client_from_settings_uses_the_configured_graph() -> None:
    seen: list[httpx.Request] = []
    settings = Settings(whatsapp_graph_url="http://sandbox:8002/", whatsapp_api_version="v25.0")
    client = WhatsAppClient.from_settings(
        settings, transport=httpx.MockTransport(_answer(200, SUCCESS, seen))
    )
    async with client:
        await _send_text(client)
    assert str(seen[0].url) == f"http://sandbox:8002/v25.0/{PHONE_NUMBER_ID}/messages"


def test_settings_default_to_the_contracts_version() -> None:
    settings = Settings()
    assert settings.whatsapp_graph_url == "https://graph.facebook.com"
    assert settings.whatsapp_api_version == "v24.0"


async def test_sixty_four_concurrent_sends_share_one_client() -> None:
    seen: list[httpx.Request] = []
    async with _client(_answer(200, SUCCESS, seen)) as client:
        results = await asyncio.gather(
            *(
                client.send_text(PHONE_NUMBER_ID, TOKEN, TO, "oi", callback_data=f"att_{i}")
                for i in range(64)
            )
        )
    assert len(results) == 64
    callbacks = {json.loads(r.content)["biz_opaque_callback_data"] for r in seen}
    assert callbacks == {f"att_{i}" for i in range(64)}


def test_pool_is_sized_beyond_sixty_four_kept_alive_connections() -> None:
    assert DEFAULT_LIMITS.max_connections is not None
    assert DEFAULT_LIMITS.max_connections >= 64
    assert DEFAULT_LIMITS.max_keepalive_connections == DEFAULT_LIMITS.max_connections


# --- errors --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (400, RATE_LIMIT, ErrorClass.RATE_LIMITED),
        (429, RATE_LIMIT, ErrorClass.RATE_LIMITED),
        (400, PAIR_LIMIT, ErrorClass.PAIR_LIMITED),
        (429, PAIR_LIMIT, ErrorClass.PAIR_LIMITED),
        (401, EXPIRED_TOKEN, ErrorClass.AUTH),
        (400, _error(131047, "Re-engagement message", "24h passed"), ErrorClass.REENGAGE),
        (400, _error(131026, "Message undeliverable", "not on WhatsApp"), ErrorClass.UNDELIVERABLE),
        (400, _error(132001, "Template does not exist", "pt_BR"), ErrorClass.TEMPLATE_PROBLEM),
        (400, _error(132000, "Number of parameters mismatch", "4/3"), ErrorClass.TEMPLATE_PROBLEM),
        (403, _error(368, "Temporarily blocked for policies violations", "x"), ErrorClass.POLICY),
        (400, _error(131042, "Business eligibility payment issue", "x"), ErrorClass.POLICY),
        (400, _error(100, "Invalid parameter", "x"), ErrorClass.INVALID_REQUEST),
        (500, _error(131000, "Something went wrong", "x"), ErrorClass.TRANSIENT),
        (503, _error(2, "Service temporarily unavailable", "x"), ErrorClass.TRANSIENT),
    ],
)
async def test_error_body_raises_its_class(
    status: int, body: dict[str, Any], expected: ErrorClass
) -> None:
    async with _client(_answer(status, body)) as client:
        with pytest.raises(WhatsAppError) as caught:
            await _send_text(client)
    error = caught.value
    assert error.error_class is expected
    assert error.code == body["error"]["code"]
    assert error.http_status == status
    assert error.body == body
    assert error.fbtrace_id == body["error"].get("fbtrace_id")


async def test_error_object_in_a_200_still_raises() -> None:
    async with _client(_answer(200, RATE_LIMIT)) as client:
        with pytest.raises(WhatsAppError) as caught:
            await _send_text(client)
    assert caught.value.error_class is ErrorClass.RATE_LIMITED


async def test_trace_id_header_fills_a_bodyless_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(502, text="Bad Gateway", headers={"x-fb-trace-id": "HdrTrace"})

    async with _client(handler) as client:
        with pytest.raises(WhatsAppError) as caught:
            await _send_text(client)
    assert caught.value.fbtrace_id == "HdrTrace"


async def test_500_without_json_is_transient() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(500, text="<html>Internal Server Error</html>")

    async with _client(handler) as client:
        with pytest.raises(WhatsAppError) as caught:
            await _send_text(client)
    assert (caught.value.error_class, caught.value.http_status) == (ErrorClass.TRANSIENT, 500)


async def test_read_timeout_is_transient_and_may_have_been_sent() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    async with _client(handler) as client:
        with pytest.raises(WhatsAppError) as caught:
            await _send_text(client)
    assert caught.value.error_class is ErrorClass.TRANSIENT
    assert caught.value.maybe_sent
    assert caught.value.http_status is None


async def test_connect_failure_is_transient_and_not_sent() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    async with _client(handler) as client:
        with pytest.raises(WhatsAppError) as caught:
            await _send_text(client)
    assert caught.value.error_class is ErrorClass.TRANSIENT
    assert not caught.value.maybe_sent


async def test_success_without_message_id_is_an_error() -> None:
    async with _client(_answer(200, {"messaging_product": "whatsapp"})) as client:
        with pytest.raises(WhatsAppError) as caught:
            await _send_text(client)
    assert caught.value.error_class is ErrorClass.TRANSIENT


async def test_missing_template_on_delete_raises() -> None:
    body = _error(100, "Invalid parameter", "Template not found")
    async with _client(_answer(404, body)) as client:
        with pytest.raises(WhatsAppError) as caught:
            await client.delete_template(WABA_ID, TOKEN, "nao_existe")
    assert caught.value.http_status == 404


async def test_a_path_like_phone_number_id_is_refused() -> None:
    async with _client(_answer(200, SUCCESS)) as client:
        with pytest.raises(ValueError, match="phone_number_id"):
            await client.send_text("1/../me", TOKEN, TO, "oi", callback_data=CALLBACK)


# --- logs ----------------------------------------------------------------------------------------


@pytest.fixture
def info_logs(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Info-level events captured whatever the suite configured before (the app's logging
    filters below WARNING in tests and caches loggers on first use)."""
    import logging

    import structlog

    from shared.integrations.whatsapp import client as client_module

    saved = structlog.get_config()
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG),
        cache_logger_on_first_use=False,
    )
    monkeypatch.setattr(client_module, "_log", structlog.get_logger(client_module.__name__))
    yield
    structlog.configure(**saved)


@pytest.mark.usefixtures("info_logs")
async def test_logs_carry_neither_the_token_nor_the_full_phone() -> None:
    async with _client(_answer(200, SUCCESS)) as client:
        with capture_logs() as events:
            await _send_text(client)
    async with _client(_answer(400, RATE_LIMIT)) as client:
        with capture_logs() as failures, pytest.raises(WhatsAppError):
            await _send_text(client)
    logged = repr(events + failures)
    assert [e["event"] for e in events + failures] == ["whatsapp.sent", "whatsapp.send_failed"]
    assert TOKEN not in logged
    assert TO not in logged
    assert events[0]["to_last4"] == "4321"
