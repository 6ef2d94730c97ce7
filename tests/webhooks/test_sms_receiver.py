"""The SMS receiver: Twilio's signature checked over the URL it called and the sorted form
fields, each status and inbound message journaled once however often it is delivered, and no
way for one retailer's token — or a guessed channel id — to write into another channel."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.webhooks.app import create_app
from shared.config import Settings
from shared.domains.audit.service import Actor
from shared.domains.channels import schemas, service
from shared.integrations.sms import twilio_signature
from shared.models import Channel, OutboxJob, WebhookEvent, WebhookReceipt
from shared.tenancy import SYSTEM, use_scope
from tests.support.identity import Identities

Client = Callable[..., Awaitable[httpx.AsyncClient]]
ACTOR = Actor(type="cli", id=None)
ACCOUNT = "AC" + "5a" * 16
SID = "SM" + "0123456789abcdef" * 2
FORM = "application/x-www-form-urlencoded; charset=utf-8"


async def _sms_channel(session: AsyncSession, ids: Identities, name: str, token: str) -> Channel:
    party = await ids.party(name)
    await use_scope(session, SYSTEM)
    channel = await service.create(
        session,
        party.tenant.id,
        schemas.SmsIn(
            name="SMS", account_sid=ACCOUNT, auth_token=token, from_number="+5511940001111"
        ),
        ACTOR,
    )
    await session.flush()
    return channel


def _status(status: str, sid: str = SID, **extra: str) -> dict[str, str]:
    return {
        "AccountSid": ACCOUNT,
        "ApiVersion": "2010-04-01",
        "From": "+5511940001111",
        "MessageSid": sid,
        "MessageStatus": status,
        "SmsSid": sid,
        "SmsStatus": status,
        "To": "+5511987654321",
        **extra,
    }


def _inbound(body: str, sid: str = SID) -> dict[str, str]:
    return {
        "AccountSid": ACCOUNT,
        "ApiVersion": "2010-04-01",
        "Body": body,
        "From": "+5511987654321",
        "MessageSid": sid,
        "NumMedia": "0",
        "NumSegments": "1",
        "SmsStatus": "received",
        "To": "+5511940001111",
    }


async def _post(
    client: httpx.AsyncClient,
    path: str,
    form: dict[str, str],
    token: str | None,
    *,
    signed_url: str | None = None,
) -> httpx.Response:
    """POST ``form`` as Twilio does, signed for ``signed_url`` (the URL called, by default)."""
    headers = {"Content-Type": FORM}
    if token is not None:
        headers["X-Twilio-Signature"] = twilio_signature(
            signed_url or f"http://test{path}", form, token
        )
    return await client.post(path, content=urlencode(form), headers=headers)


async def _count(session: AsyncSession, model: Any) -> int:
    await use_scope(session, SYSTEM)
    return int(await session.scalar(select(func.count()).select_from(model)) or 0)


@pytest.fixture
async def hooks(http_client: Client) -> httpx.AsyncClient:
    return await http_client(create_app)


async def test_a_signed_status_is_journaled_once_however_often_it_comes(
    hooks: httpx.AsyncClient, session: AsyncSession, ids: Identities
) -> None:
    channel = await _sms_channel(session, ids, "Loja Torpedo", "token-1")
    path = f"/sms/{channel.id}/status"
    jobs_before = await _count(session, OutboxJob)

    first = await _post(hooks, path, _status("delivered"), "token-1")
    again = await _post(hooks, path, _status("delivered"), "token-1")

    assert first.status_code == 200, first.text
    assert first.json() == {"received": 1, "new": 1, "duplicates": 0}
    assert again.json() == {"received": 1, "new": 0, "duplicates": 1}
    await use_scope(session, SYSTEM)
    (event,) = list(await session.scalars(select(WebhookEvent)))
    assert (event.provider, event.event_key, event.kind) == (
        "sms",
        f"sms:{SID}:delivered",
        "sms.status",
    )
    assert (event.tenant_id, event.channel_id) == (channel.tenant_id, channel.id)
    assert event.payload["MessageStatus"] == "delivered" and event.occurred_at is not None
    receipts = list(await session.scalars(select(WebhookReceipt)))
    assert len(receipts) == 2  # both POSTs kept raw, byte for byte
    assert receipts[0].body == urlencode(_status("delivered")).encode()
    assert await _count(session, OutboxJob) - jobs_before == 1  # one job for the one new event


async def test_each_status_of_a_message_is_its_own_event(
    hooks: httpx.AsyncClient, session: AsyncSession, ids: Identities
) -> None:
    channel = await _sms_channel(session, ids, "Loja Etapas", "token-2")
    path = f"/sms/{channel.id}/status"

    for status in ("sent", "undelivered"):
        form = _status(status, ErrorCode="30003") if status == "undelivered" else _status(status)
        assert (await _post(hooks, path, form, "token-2")).status_code == 200

    await use_scope(session, SYSTEM)
    keys = list(await session.scalars(select(WebhookEvent.event_key).order_by(WebhookEvent.id)))
    assert keys == [f"sms:{SID}:sent", f"sms:{SID}:undelivered"]


async def test_a_missing_or_forged_signature_is_401_and_nothing_is_kept(
    hooks: httpx.AsyncClient, session: AsyncSession, ids: Identities
) -> None:
    channel = await _sms_channel(session, ids, "Loja Assinada", "token-3")
    path = f"/sms/{channel.id}/status"

    missing = await _post(hooks, path, _status("sent"), None)
    forged = await _post(hooks, path, _status("sent"), "not-the-token")
    other_url = await _post(
        hooks, path, _status("sent"), "token-3", signed_url=f"http://test/sms/{uuid.uuid4()}/status"
    )
    tampered = await hooks.post(
        path,
        content=urlencode(_status("delivered")),
        headers={
            "Content-Type": FORM,
            "X-Twilio-Signature": twilio_signature(
                f"http://test{path}", _status("sent"), "token-3"
            ),
        },
    )

    for response in (missing, forged, other_url, tampered):
        assert response.status_code == 401
        assert response.headers["content-type"] == "application/problem+json"
    assert await _count(session, WebhookReceipt) == 0
    assert await _count(session, WebhookEvent) == 0


async def test_an_unknown_channel_answers_exactly_like_a_forged_signature(
    hooks: httpx.AsyncClient, session: AsyncSession, ids: Identities
) -> None:
    channel = await _sms_channel(session, ids, "Loja Existe", "token-4")
    whatsapp = await service.create(
        session,
        channel.tenant_id,
        schemas.WhatsAppIn(
            name="WhatsApp",
            phone_number_id="4004",
            waba_id="94004",
            display_number="+55 11 4000-4004",
            access_token="wa-token",
            app_secret="token-4",
            verify_token="verify",
        ),
        ACTOR,
    )
    await session.flush()

    def answer(response: httpx.Response) -> tuple[int, Any, Any]:
        body = response.json()
        return response.status_code, body["code"], body["detail"]

    forged = await _post(hooks, f"/sms/{channel.id}/status", _status("sent"), "guess")
    unknown = await _post(hooks, f"/sms/{uuid.uuid4()}/status", _status("sent"), "guess")
    not_sms = await _post(hooks, f"/sms/{whatsapp.id}/status", _status("sent"), "token-4")

    assert answer(forged) == answer(unknown) == answer(not_sms)
    assert forged.status_code == 401
    assert await _count(session, WebhookEvent) == 0


async def test_one_retailers_token_cannot_write_into_another_retailers_channel(
    hooks: httpx.AsyncClient, session: AsyncSession, ids: Identities
) -> None:
    await _sms_channel(session, ids, "Loja A", "token-a")
    victim = await _sms_channel(session, ids, "Loja B", "token-b")

    response = await _post(hooks, f"/sms/{victim.id}/status", _status("failed"), "token-a")

    assert response.status_code == 401
    assert await _count(session, WebhookEvent) == 0


async def test_the_previous_auth_token_still_verifies_during_a_rotation(
    hooks: httpx.AsyncClient, session: AsyncSession, ids: Identities
) -> None:
    channel = await _sms_channel(session, ids, "Loja Rotacao", "old-token")
    channel.secrets = service.seal(
        channel.id, {"auth_token": "new-token", "previous_auth_token": "old-token"}
    )
    await session.flush()
    path = f"/sms/{channel.id}/status"

    by_new = await _post(hooks, path, _status("sent"), "new-token")
    by_old = await _post(hooks, path, _status("delivered"), "old-token")

    assert by_new.status_code == 200 and by_old.status_code == 200


async def test_malformed_callbacks_are_400_and_nothing_is_kept(
    hooks: httpx.AsyncClient, session: AsyncSession, ids: Identities
) -> None:
    channel = await _sms_channel(session, ids, "Loja Torta", "token-5")
    path = f"/sms/{channel.id}/status"
    url = f"http://test{path}"
    no_sid = {k: v for k, v in _status("sent").items() if k not in ("MessageSid", "SmsSid")}
    signature = {"X-Twilio-Signature": twilio_signature(url, {}, "token-5")}

    as_json = await hooks.post(
        path,
        content=b'{"MessageSid": "x"}',
        headers={**signature, "Content-Type": "application/json"},
    )
    not_a_form = await hooks.post(
        path, content=b"\xff\xfe", headers={**signature, "Content-Type": FORM}
    )
    without_sid = await _post(hooks, path, no_sid, "token-5")
    inbound_without_sender = await _post(
        hooks,
        f"/sms/{channel.id}/inbound",
        {k: v for k, v in _inbound("oi").items() if k != "From"},
        "token-5",
    )

    assert as_json.status_code == 400 and not_a_form.status_code == 400
    assert without_sid.status_code == 400, without_sid.text
    assert inbound_without_sender.status_code == 400
    assert await _count(session, WebhookEvent) == 0


async def test_an_oversized_callback_is_refused_with_413(
    hooks: httpx.AsyncClient, session: AsyncSession, ids: Identities, settings: Settings
) -> None:
    channel = await _sms_channel(session, ids, "Loja Grande", "token-6")
    form = _status("sent", Padding="x" * settings.webhooks_max_body_bytes)

    response = await _post(hooks, f"/sms/{channel.id}/status", form, "token-6")

    assert response.status_code == 413
    assert await _count(session, WebhookEvent) == 0


async def test_an_inbound_message_is_journaled_and_answered_with_empty_twiml(
    hooks: httpx.AsyncClient, session: AsyncSession, ids: Identities
) -> None:
    channel = await _sms_channel(session, ids, "Loja Conversa", "token-7")
    path = f"/sms/{channel.id}/inbound"

    first = await _post(hooks, path, _inbound("Já paguei, obrigado!"), "token-7")
    again = await _post(hooks, path, _inbound("Já paguei, obrigado!"), "token-7")

    assert first.status_code == 200 and again.status_code == 200
    assert first.headers["content-type"].startswith("text/xml")
    assert first.text == '<?xml version="1.0" encoding="UTF-8"?><Response/>'
    await use_scope(session, SYSTEM)
    (event,) = list(await session.scalars(select(WebhookEvent)))
    assert (event.event_key, event.kind) == (f"sms-in:{SID}", "sms.message")
    assert event.payload["Body"] == "Já paguei, obrigado!"  # decoded as Twilio signed it


async def test_behind_a_proxy_the_public_url_is_the_one_verified(
    http_client: Client, session: AsyncSession, ids: Identities
) -> None:
    public = "https://hooks.quita.example"
    hooks = await http_client(
        lambda settings, **kw: create_app(
            settings.model_copy(update={"public_base_url": public}), **kw
        )
    )
    channel = await _sms_channel(session, ids, "Loja Proxy", "token-8")
    path = f"/sms/{channel.id}/status?attempt={uuid.uuid4()}"

    as_configured = await _post(
        hooks, path, _status("sent"), "token-8", signed_url=f"{public}{path}"
    )
    with_default_port = await _post(
        hooks, path, _status("delivered"), "token-8", signed_url=f"{public}:443{path}"
    )
    as_seen_inside = await _post(hooks, path, _status("read"), "token-8")

    assert as_configured.status_code == 200, as_configured.text
    assert with_default_port.status_code == 200
    assert as_seen_inside.status_code == 401  # X-Forwarded-* and the inner URL are not trusted
