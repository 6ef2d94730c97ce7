"""The SMS sandbox behaves like Twilio Programmable Messaging as the handbook contract (§10.2)
describes it: real HTTP into the sandbox app, form-encoded as Twilio takes it, and a real HTTP
receiver on 127.0.0.1 for its signed status and inbound callbacks."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Awaitable, Callable
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import pytest

from services.sandbox.app import create_app
from services.sandbox.sms_state import SmsState
from shared.config import Settings
from shared.db import SessionMaker
from shared.integrations.sms import twilio_signature
from tests.conftest import run_lifespan
from tests.sandbox.receiver import Receiver
from tests.sandbox.sms_support import (
    ACCOUNT,
    DEBTOR,
    FROM,
    MESSAGES,
    OTHER_ACCOUNT,
    OTHER_TOKEN,
    SERVICE,
    TOKEN,
    forms,
    inbound_url,
    register_account,
    settle,
    status_url,
)

Client = Callable[..., Awaitable[httpx.AsyncClient]]


@pytest.fixture
async def sms(http_client: Client, receiver: Receiver) -> httpx.AsyncClient:
    """The sandbox app with one Twilio account whose inbound messages go to ``receiver``."""
    client = await http_client(create_app)
    await register_account(client, inbound_url=inbound_url(receiver))
    return client


def basic(account: str = ACCOUNT, token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{account}:{token}".encode()).decode()}


async def send(
    client: httpx.AsyncClient,
    form: dict[str, str] | None = None,
    *,
    headers: dict[str, str] | None = None,
    path: str = MESSAGES,
) -> httpx.Response:
    fields = {"To": DEBTOR, "From": FROM, "Body": "Olá Maria, sua parcela vence amanhã."}
    if form is not None:
        fields = {k: v for k, v in {**fields, **form}.items() if v is not None}
    return await client.post(path, data=fields, headers=basic() if headers is None else headers)


def twilio_error(response: httpx.Response) -> tuple[int, int]:
    body = response.json()
    assert body["more_info"] == f"https://www.twilio.com/docs/errors/{body['code']}"
    assert body["status"] == response.status_code
    assert body["message"]
    return response.status_code, body["code"]


async def test_an_accepted_send_answers_201_with_the_message_resource(
    sms: httpx.AsyncClient,
) -> None:
    response = await send(sms)

    assert response.status_code == 201
    message = response.json()
    assert message["sid"].startswith("SM") and len(message["sid"]) == 34
    int(message["sid"][2:], 16)
    assert message["account_sid"] == ACCOUNT
    assert (message["status"], message["direction"]) == ("queued", "outbound-api")
    assert (message["to"], message["from"]) == (DEBTOR, FROM)
    assert message["body"] == "Olá Maria, sua parcela vence amanhã."
    assert message["num_segments"] == "1"
    assert (message["error_code"], message["error_message"], message["price"]) == (
        None,
        None,
        None,
    )
    assert message["uri"] == f"/2010-04-01/Accounts/{ACCOUNT}/Messages/{message['sid']}.json"
    assert message["api_version"] == "2010-04-01"
    created = parsedate_to_datetime(message["date_created"])
    assert abs(created.timestamp() - time.time()) < 60
    assert message["date_created"].endswith("+0000")


async def test_a_long_portuguese_text_counts_ucs2_segments(sms: httpx.AsyncClient) -> None:
    response = await send(sms, {"Body": "ã" * 71})

    assert response.json()["num_segments"] == "2"


async def test_status_callbacks_arrive_in_order_signed_with_the_auth_token(
    sms: httpx.AsyncClient, receiver: Receiver
) -> None:
    url = status_url(receiver)
    sid = (await send(sms, {"StatusCallback": url})).json()["sid"]

    await settle(sms)

    callbacks = forms(receiver)
    assert [params["MessageStatus"] for _, _, params in callbacks] == ["sent", "delivered"]
    for target, headers, params in callbacks:
        assert url.endswith(target)
        assert headers["content-type"].startswith("application/x-www-form-urlencoded")
        assert headers["x-twilio-signature"] == twilio_signature(url, params, TOKEN)
        assert headers["x-twilio-signature"] != twilio_signature(url, params, OTHER_TOKEN)
        assert params["MessageSid"] == params["SmsSid"] == sid
        assert params["SmsStatus"] == params["MessageStatus"]
        assert (params["AccountSid"], params["From"], params["To"]) == (ACCOUNT, FROM, DEBTOR)
        assert params["ApiVersion"] == "2010-04-01"
        assert "ErrorCode" not in params


async def test_fetching_a_message_shows_its_current_status(sms: httpx.AsyncClient) -> None:
    sid = (await send(sms)).json()["sid"]
    await settle(sms)

    response = await sms.get(f"/2010-04-01/Accounts/{ACCOUNT}/Messages/{sid}.json", headers=basic())

    assert response.status_code == 200
    assert response.json()["status"] == "delivered"
    assert response.json()["date_sent"] is not None


async def test_fetching_an_unknown_message_is_20404(sms: httpx.AsyncClient) -> None:
    response = await sms.get(
        f"/2010-04-01/Accounts/{ACCOUNT}/Messages/SM{'0' * 32}.json", headers=basic()
    )

    assert twilio_error(response) == (404, 20404)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        basic(token="wrong"),
        basic(account=OTHER_ACCOUNT, token=TOKEN),
        {"Authorization": "Basic not-base64!"},
        {"Authorization": f"Bearer {TOKEN}"},
    ],
)
async def test_bad_credentials_are_401_code_20003(
    sms: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    response = await send(sms, headers=headers)

    assert twilio_error(response) == (401, 20003)
    assert response.headers["www-authenticate"].startswith("Basic")


async def test_one_accounts_credentials_do_not_open_another_account(
    sms: httpx.AsyncClient,
) -> None:
    await register_account(sms, account_sid=OTHER_ACCOUNT, auth_token=OTHER_TOKEN)

    response = await send(sms, headers=basic(OTHER_ACCOUNT, OTHER_TOKEN))

    assert twilio_error(response) == (401, 20003)


@pytest.mark.parametrize(
    ("form", "code"),
    [
        ({"To": None}, 21604),
        ({"To": "11987654321"}, 21211),
        ({"To": "+55119"}, 21211),
        ({"To": "+55 11 98765-4321"}, 21211),
        ({"To": "+5511987654321000"}, 21211),
        ({"From": None}, 21603),
        ({"From": "+5511900000000"}, 21606),
        ({"From": None, "MessagingServiceSid": "MG" + "f" * 32}, 21606),
        ({"Body": None}, 21602),
        ({"Body": ""}, 21602),
        ({"Body": "x" * 1601}, 21617),
    ],
)
async def test_invalid_sends_are_refused_with_twilios_codes(
    sms: httpx.AsyncClient, form: dict[str, str], code: int
) -> None:
    response = await send(sms, form)

    assert twilio_error(response) == (400, code)


async def test_1600_characters_are_accepted(sms: httpx.AsyncClient) -> None:
    response = await send(sms, {"Body": "x" * 1600})

    assert response.status_code == 201
    assert response.json()["num_segments"] == "11"


async def test_a_registered_messaging_service_sends_from_the_accounts_number(
    sms: httpx.AsyncClient,
) -> None:
    response = await send(sms, {"From": None, "MessagingServiceSid": SERVICE})

    assert response.status_code == 201
    assert (response.json()["from"], response.json()["messaging_service_sid"]) == (FROM, SERVICE)


async def test_an_unreachable_number_is_accepted_then_undelivered_with_30003(
    sms: httpx.AsyncClient, receiver: Receiver
) -> None:
    marked = await sms.post(
        f"/_sandbox/sms/accounts/{ACCOUNT}/unreachable", json={"numbers": [DEBTOR]}
    )
    assert marked.status_code == 200

    response = await send(sms, {"StatusCallback": status_url(receiver)})
    await settle(sms)

    assert response.status_code == 201
    callbacks = [params for _, _, params in forms(receiver)]
    assert [p["MessageStatus"] for p in callbacks] == ["sent", "undelivered"]
    assert callbacks[-1]["ErrorCode"] == "30003"
    fetched = await sms.get(response.json()["uri"], headers=basic())
    assert (fetched.json()["status"], fetched.json()["error_code"]) == ("undelivered", 30003)


async def test_a_number_marked_failed_fails_without_being_sent(
    sms: httpx.AsyncClient, receiver: Receiver
) -> None:
    await sms.post(
        f"/_sandbox/sms/accounts/{ACCOUNT}/unreachable",
        json={"numbers": [DEBTOR], "status": "failed", "error_code": 30006},
    )

    await send(sms, {"StatusCallback": status_url(receiver)})
    await settle(sms)

    callbacks = [params for _, _, params in forms(receiver)]
    assert [(p["MessageStatus"], p["ErrorCode"]) for p in callbacks] == [("failed", "30006")]


async def test_the_accounts_rate_limit_answers_429_code_20429(sms: httpx.AsyncClient) -> None:
    await register_account(sms, rate_limit_per_second=2)

    answers = [await send(sms) for _ in range(3)]

    assert [a.status_code for a in answers[:2]] == [201, 201]
    assert twilio_error(answers[2]) == (429, 20429)


async def test_the_default_rate_limit_is_ten_per_second(sms: httpx.AsyncClient) -> None:
    registered = await sms.post(
        "/_sandbox/sms/accounts",
        json={"account_sid": ACCOUNT, "auth_token": TOKEN, "numbers": [FROM]},
    )

    answers = [(await send(sms)).status_code for _ in range(11)]

    assert registered.json()["rate_limit_per_second"] == 10
    assert answers == [201] * 10 + [429]


async def test_a_failing_callback_is_retried_until_the_receiver_accepts(
    sms: httpx.AsyncClient, receiver: Receiver
) -> None:
    receiver.statuses = [500, 503]
    url = status_url(receiver)

    await send(sms, {"StatusCallback": url})
    activity = await settle(sms)

    callbacks = forms(receiver)
    assert [p["MessageStatus"] for _, _, p in callbacks] == ["sent", "sent", "sent", "delivered"]
    assert [d["outcome"] for d in activity["deliveries"]] == [500, 503, 200, 200]
    # A retry is the same request: same signature, same idempotency token.
    assert len({h["x-twilio-signature"] for _, h, _ in callbacks[:3]}) == 1
    assert len({h["i-twilio-idempotency-token"] for _, h, _ in callbacks[:3]}) == 1


async def test_a_phone_texting_the_account_reaches_its_inbound_url_signed(
    sms: httpx.AsyncClient, receiver: Receiver
) -> None:
    response = await sms.post(
        f"/_sandbox/sms/accounts/{ACCOUNT}/inbound",
        json={"from": DEBTOR, "body": "Já paguei ontem"},
    )
    await settle(sms)

    assert response.status_code == 201
    (target, headers, params) = forms(receiver)[0]
    assert inbound_url(receiver).endswith(target)
    assert headers["x-twilio-signature"] == twilio_signature(inbound_url(receiver), params, TOKEN)
    assert (params["From"], params["To"], params["Body"]) == (DEBTOR, FROM, "Já paguei ontem")
    assert params["MessageSid"].startswith("SM")
    assert (params["AccountSid"], params["NumMedia"]) == (ACCOUNT, "0")
    assert "OptOutType" not in params


@pytest.mark.parametrize("word", ["STOP", "pare", " Sair "])
async def test_an_opt_out_keyword_makes_later_sends_fail_21610(
    sms: httpx.AsyncClient, receiver: Receiver, word: str
) -> None:
    await sms.post(f"/_sandbox/sms/accounts/{ACCOUNT}/inbound", json={"from": DEBTOR, "body": word})
    await settle(sms)

    assert twilio_error(await send(sms)) == (400, 21610)
    assert forms(receiver)[0][2]["OptOutType"] == "STOP"
    other = await send(sms, {"To": "+5511912345678"})
    assert other.status_code == 201


@pytest.mark.parametrize("word", ["START", "voltar"])
async def test_an_opt_in_keyword_lets_sends_through_again(
    sms: httpx.AsyncClient, word: str
) -> None:
    inbound = f"/_sandbox/sms/accounts/{ACCOUNT}/inbound"
    await sms.post(inbound, json={"from": DEBTOR, "body": "PARE"})
    await sms.post(inbound, json={"from": DEBTOR, "body": word})

    assert (await send(sms)).status_code == 201
    assert (await settle(sms))["opted_out"] == []


async def test_inbound_to_a_number_of_another_account_is_refused(sms: httpx.AsyncClient) -> None:
    response = await sms.post(
        f"/_sandbox/sms/accounts/{ACCOUNT}/inbound",
        json={"from": DEBTOR, "to": "+5511900000000", "body": "oi"},
    )

    assert response.status_code == 422


async def test_the_control_api_lists_what_was_sent_newest_last(
    sms: httpx.AsyncClient, receiver: Receiver
) -> None:
    url = status_url(receiver)
    first = (await send(sms, {"Body": "primeira"})).json()["sid"]
    second = (await send(sms, {"Body": "segunda", "StatusCallback": url})).json()["sid"]

    activity = await settle(sms)

    messages = activity["messages"]
    assert [(m["sid"], m["body"], m["status"]) for m in messages] == [
        (first, "primeira", "delivered"),
        (second, "segunda", "delivered"),
    ]
    assert messages[1]["statuses"] == ["sent", "delivered"]
    assert messages[1]["request"] == {
        "To": DEBTOR,
        "From": FROM,
        "Body": "segunda",
        "StatusCallback": url,
    }


@pytest.mark.parametrize(
    "fields",
    [
        {"account_sid": "AC123"},
        {"numbers": ["11987654321"]},
        {"auth_token": ""},
    ],
)
async def test_registering_an_invalid_account_is_422(
    sms: httpx.AsyncClient, fields: dict[str, Any]
) -> None:
    base = {"account_sid": ACCOUNT, "auth_token": TOKEN, "numbers": [FROM]}
    response = await sms.post("/_sandbox/sms/accounts", json={**base, **fields})

    assert response.status_code == 422


async def test_reset_forgets_every_account(sms: httpx.AsyncClient) -> None:
    assert (await sms.post("/_sandbox/sms/reset")).status_code == 200

    assert (await sms.get(f"/_sandbox/sms/accounts/{ACCOUNT}/messages")).status_code == 404
    assert twilio_error(await send(sms)) == (401, 20003)


async def test_shutdown_cancels_pending_status_changes(
    settings: Settings, sessionmaker: SessionMaker, receiver: Receiver
) -> None:
    state = SmsState()
    app = create_app(settings, sessionmaker=sessionmaker, sms=state)
    started = time.monotonic()
    async with run_lifespan(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            await register_account(client, sent_delay_ms=60_000, delivered_delay_ms=120_000)
            assert (await send(client, {"StatusCallback": status_url(receiver)})).is_success
            await asyncio.sleep(0)
            assert app.state.sms.tasks

    assert time.monotonic() - started < 5
    assert app.state.sms.tasks == set()
    assert state.accounts[ACCOUNT].messages[0].status == "queued"
    assert receiver.requests == []
