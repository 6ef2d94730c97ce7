"""Our SMS client end to end against the SMS sandbox: a Portuguese reminder goes out through
``SmsClient``, its signed status callbacks come back to a real HTTP receiver and verify with our
own verifier, and each of the sandbox's refusals reaches the client as the right error class."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import httpx
import pytest

from services.sandbox.app import create_app
from shared.integrations.sms import (
    SmsClient,
    SmsError,
    classify,
    count_segments,
    gsm_fold,
    map_status,
    verify_twilio_signature,
)
from shared.integrations.whatsapp import ErrorClass
from tests.sandbox.receiver import Receiver
from tests.sandbox.sms_support import (
    ACCOUNT,
    DEBTOR,
    FROM,
    OTHER_TOKEN,
    TOKEN,
    forms,
    register_account,
    settle,
    status_url,
)

Client = Callable[..., Awaitable[httpx.AsyncClient]]
REMINDER = "Olá Maria, sua parcela de R$ 150,00 na Loja Exemplo vence amanhã. Pague com Pix."


@pytest.fixture
async def sandbox(http_client: Client) -> httpx.AsyncClient:
    client = await http_client(create_app)
    await register_account(client)
    return client


@pytest.fixture
async def client(sandbox: httpx.AsyncClient) -> SmsClient:
    """Our client, speaking HTTP to the sandbox app (its ASGI transport, lifespan running)."""
    return SmsClient(base_url=str(sandbox.base_url), transport=sandbox._transport)


async def refused(client: SmsClient, to: str = DEBTOR, **overrides: str) -> SmsError:
    args = {"token": TOKEN, "from_": FROM, "body": REMINDER, **overrides}
    with pytest.raises(SmsError) as raised:
        await client.send(
            ACCOUNT, args["token"], args["from_"], to, args["body"], status_callback=None
        )
    return raised.value


async def test_a_reminder_goes_out_and_its_statuses_come_back_signed_in_order(
    client: SmsClient, sandbox: httpx.AsyncClient, receiver: Receiver
) -> None:
    url = status_url(receiver)

    result = await client.send(ACCOUNT, TOKEN, FROM, DEBTOR, REMINDER, status_callback=url)
    activity = await settle(sandbox)

    assert result.sid.startswith("SM")
    assert (result.status, result.our_status) == ("queued", "queued")
    assert (result.to, result.from_, result.account_sid) == (DEBTOR, FROM, ACCOUNT)
    assert result.num_segments == count_segments(REMINDER).segments == 2
    assert result.price is None and result.error_code is None
    # The form exactly as Twilio documents it: To, From, Body, StatusCallback.
    assert activity["messages"][0]["request"] == {
        "To": DEBTOR,
        "From": FROM,
        "Body": REMINDER,
        "StatusCallback": url,
    }
    callbacks = forms(receiver)
    assert [map_status(p["MessageStatus"]) for _, _, p in callbacks] == ["sent", "delivered"]
    assert {p["MessageSid"] for _, _, p in callbacks} == {result.sid}
    for _, headers, params in callbacks:
        signature = headers["x-twilio-signature"]
        assert verify_twilio_signature(url, params, signature, [TOKEN])
        assert verify_twilio_signature(url, params, signature, [OTHER_TOKEN, TOKEN])
        assert not verify_twilio_signature(url, params, signature, [OTHER_TOKEN])
        assert not verify_twilio_signature(url + "&x=1", params, signature, [TOKEN])
    assert (await client.fetch(ACCOUNT, TOKEN, result.sid)).our_status == "delivered"


async def test_a_folded_reminder_costs_one_gsm7_segment(client: SmsClient) -> None:
    result = await client.send(
        ACCOUNT, TOKEN, FROM, DEBTOR, gsm_fold(REMINDER), status_callback=None
    )

    assert result.num_segments == 1


async def test_an_unreachable_number_ends_undelivered_with_30003(
    client: SmsClient, sandbox: httpx.AsyncClient, receiver: Receiver
) -> None:
    await sandbox.post(f"/_sandbox/sms/accounts/{ACCOUNT}/unreachable", json={"numbers": [DEBTOR]})
    url = status_url(receiver)

    result = await client.send(ACCOUNT, TOKEN, FROM, DEBTOR, REMINDER, status_callback=url)
    await settle(sandbox)

    last = forms(receiver)[-1][2]
    assert map_status(last["MessageStatus"]) == "undelivered"
    assert last["ErrorCode"] == "30003"
    assert classify(None, int(last["ErrorCode"])) is ErrorClass.UNDELIVERABLE
    fetched = await client.fetch(ACCOUNT, TOKEN, result.sid)
    assert (fetched.our_status, fetched.error_code) == ("undelivered", 30003)


async def test_a_stop_reply_makes_the_next_send_a_policy_refusal(
    client: SmsClient, sandbox: httpx.AsyncClient
) -> None:
    await sandbox.post(
        f"/_sandbox/sms/accounts/{ACCOUNT}/inbound", json={"from": DEBTOR, "body": "PARE"}
    )

    error = await refused(client)

    assert (error.error_class, error.code, error.http_status) == (ErrorClass.POLICY, 21610, 400)
    assert error.opted_out


@pytest.mark.parametrize(
    ("to", "overrides", "error_class", "code"),
    [
        (DEBTOR, {"token": "wrong"}, ErrorClass.AUTH, 20003),
        ("011987654321", {}, ErrorClass.UNDELIVERABLE, 21211),
        (DEBTOR, {"from_": "+5511900000000"}, ErrorClass.AUTH, 21606),
        (DEBTOR, {"body": ""}, ErrorClass.INVALID_REQUEST, 21602),
        (DEBTOR, {"body": "x" * 1601}, ErrorClass.INVALID_REQUEST, 21617),
    ],
)
async def test_the_sandbox_refusals_arrive_as_error_classes(
    client: SmsClient,
    to: str,
    overrides: dict[str, str],
    error_class: ErrorClass,
    code: int,
) -> None:
    error = await refused(client, to, **overrides)

    assert (error.error_class, error.code) == (error_class, code)
    assert not error.maybe_sent


async def test_the_rate_limit_arrives_as_rate_limited(
    client: SmsClient, sandbox: httpx.AsyncClient
) -> None:
    await register_account(sandbox, rate_limit_per_second=1)
    await client.send(ACCOUNT, TOKEN, FROM, DEBTOR, REMINDER, status_callback=None)

    error = await refused(client)

    assert (error.error_class, error.code, error.http_status) == (
        ErrorClass.RATE_LIMITED,
        20429,
        429,
    )
