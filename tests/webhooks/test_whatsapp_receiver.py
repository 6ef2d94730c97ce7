"""The WhatsApp receiver: Meta's handshake, signatures checked over the raw bytes, every event
journaled once however often it is delivered, and nothing accepted for a number whose secret
did not sign the POST."""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import event, func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from services.webhooks.app import create_app
from shared.domains.audit.service import Actor
from shared.domains.channels import schemas, service
from shared.domains.channels import templates as message_templates
from shared.domains.inbound.whatsapp import signature
from shared.models import (
    Channel,
    MessageTemplate,
    OutboxJob,
    TemplateStatus,
    WebhookEvent,
    WebhookReceipt,
)
from shared.tenancy import SYSTEM, use_scope
from tests.support.identity import Identities

Client = Callable[..., Awaitable[httpx.AsyncClient]]
ACTOR = Actor(type="cli", id=None)


async def _channel(
    session: AsyncSession, ids: Identities, name: str, number: str, secret: str
) -> Channel:
    party = await ids.party(name)
    await use_scope(session, SYSTEM)
    channel = await service.create(
        session,
        party.tenant.id,
        schemas.WhatsAppIn(
            name="WhatsApp",
            phone_number_id=number,
            waba_id="9" + number,
            display_number="+55 11 4000-0000",
            access_token=f"token-{number}",
            app_secret=secret,
            verify_token=f"verify-{number}",
        ),
        ACTOR,
    )
    await session.flush()
    return channel


def _statuses(number: str, *items: tuple[str, str]) -> dict[str, Any]:
    return {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": "9" + number,
                "changes": [
                    {
                        "field": "messages",
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {
                                "display_phone_number": "551140000000",
                                "phone_number_id": number,
                            },
                            "statuses": [
                                {
                                    "id": wamid,
                                    "status": status,
                                    "timestamp": "1767000000",
                                    "recipient_id": "5511987654321",
                                    "biz_opaque_callback_data": "test:1",
                                }
                                for wamid, status in items
                            ],
                        },
                    }
                ],
            }
        ],
    }


async def _post(
    client: httpx.AsyncClient, payload: Any, secret: str | None, path: str = "/whatsapp"
) -> httpx.Response:
    body = json.dumps(payload).encode() if not isinstance(payload, bytes) else payload
    headers = {"Content-Type": "application/json"}
    if secret is not None:
        headers["X-Hub-Signature-256"] = signature(body, secret)
    return await client.post(path, content=body, headers=headers)


async def _count(session: AsyncSession, model: Any) -> int:
    await use_scope(session, SYSTEM)
    return int(await session.scalar(select(func.count()).select_from(model)) or 0)


@pytest.fixture
async def hooks(http_client: Client) -> httpx.AsyncClient:
    return await http_client(create_app)


async def test_the_handshake_answers_the_challenge_only_to_a_known_verify_token(
    hooks: httpx.AsyncClient, session: AsyncSession, ids: Identities
) -> None:
    channel = await _channel(session, ids, "Loja Aperto", "1001", "s1")
    query = {"hub.mode": "subscribe", "hub.challenge": "1158201444"}

    ok = await hooks.get("/whatsapp", params={**query, "hub.verify_token": "verify-1001"})
    per_channel = await hooks.get(
        f"/whatsapp/{channel.id}", params={**query, "hub.verify_token": "verify-1001"}
    )
    wrong = await hooks.get("/whatsapp", params={**query, "hub.verify_token": "guess"})
    other = await hooks.get(
        f"/whatsapp/{uuid.uuid4()}", params={**query, "hub.verify_token": "verify-1001"}
    )

    assert (ok.status_code, ok.text) == (200, "1158201444")
    assert ok.headers["content-type"].startswith("text/plain")
    assert (per_channel.status_code, per_channel.text) == (200, "1158201444")
    assert wrong.status_code == 403 and other.status_code == 403


async def test_a_signed_post_is_journaled_once_however_often_it_comes(
    hooks: httpx.AsyncClient, session: AsyncSession, ids: Identities
) -> None:
    await _channel(session, ids, "Loja Diario", "1002", "secret-1002")
    payload = _statuses("1002", ("wamid.A", "sent"), ("wamid.A", "delivered"))
    jobs_before = await _count(session, OutboxJob)

    first = await _post(hooks, payload, "secret-1002")
    again = await _post(hooks, payload, "secret-1002")

    assert first.status_code == 200, first.text
    assert first.json() == {"received": 2, "new": 2, "duplicates": 0}
    assert again.json() == {"received": 2, "new": 0, "duplicates": 2}
    await use_scope(session, SYSTEM)
    events = list(await session.scalars(select(WebhookEvent).order_by(WebhookEvent.id)))
    assert [e.event_key for e in events] == ["status:wamid.A:sent", "status:wamid.A:delivered"]
    assert all(e.state == "pending" and e.tenant_id is not None for e in events)
    receipts = list(await session.scalars(select(WebhookReceipt)))
    assert len(receipts) == 2  # both POSTs kept raw, byte for byte
    assert receipts[0].body == json.dumps(payload).encode()
    assert await _count(session, OutboxJob) - jobs_before == 2  # one job per new event


async def test_a_missing_or_wrong_signature_is_401_and_nothing_is_kept(
    hooks: httpx.AsyncClient, session: AsyncSession, ids: Identities
) -> None:
    await _channel(session, ids, "Loja Assinada", "1003", "secret-1003")
    payload = _statuses("1003", ("wamid.B", "sent"))

    missing = await _post(hooks, payload, None)
    forged = await _post(hooks, payload, "not-the-secret")
    garbled = await hooks.post(
        "/whatsapp", content=b"{not json", headers={"X-Hub-Signature-256": "sha256=00"}
    )

    assert missing.status_code == 401 and forged.status_code == 401
    assert missing.headers["content-type"] == "application/problem+json"
    assert garbled.status_code == 400
    assert await _count(session, WebhookReceipt) == 0
    assert await _count(session, WebhookEvent) == 0


async def test_the_previous_app_secret_still_verifies_during_a_rotation(
    hooks: httpx.AsyncClient, session: AsyncSession, ids: Identities
) -> None:
    channel = await _channel(session, ids, "Loja Rotacao", "1004", "old-secret")
    await service.update(session, channel, schemas.ChannelUpdate(app_secret="new-secret"), ACTOR)

    by_new = await _post(hooks, _statuses("1004", ("wamid.C", "sent")), "new-secret")
    by_old = await _post(hooks, _statuses("1004", ("wamid.C", "read")), "old-secret")
    await service.update(
        session, channel, schemas.ChannelUpdate(drop_previous_app_secret=True), ACTOR
    )
    after_drop = await _post(hooks, _statuses("1004", ("wamid.D", "sent")), "old-secret")

    assert by_new.status_code == 200 and by_old.status_code == 200
    assert after_drop.status_code == 401


async def test_a_burst_from_one_number_reads_its_channel_once_and_a_rotation_still_applies_at_once(
    hooks: httpx.AsyncClient, session: AsyncSession, ids: Identities, connection: AsyncConnection
) -> None:
    channel = await _channel(session, ids, "Loja Rajada", "1010", "first")
    reads: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if "FROM channels" in statement:
            reads.append(statement)

    event.listen(connection.sync_connection, "before_cursor_execute", seen)
    try:
        burst = [
            await _post(hooks, _statuses("1010", (f"wamid.R{i}", "sent")), "first")
            for i in range(5)
        ]
        once = len(reads)
        await service.update(session, channel, schemas.ChannelUpdate(app_secret="second"), ACTOR)
        by_new = await _post(hooks, _statuses("1010", ("wamid.R5", "sent")), "second")
        by_old = await _post(hooks, _statuses("1010", ("wamid.R6", "sent")), "first")
        await service.update(
            session, channel, schemas.ChannelUpdate(drop_previous_app_secret=True), ACTOR
        )
        after_drop = await _post(hooks, _statuses("1010", ("wamid.R7", "sent")), "first")
    finally:
        event.remove(connection.sync_connection, "before_cursor_execute", seen)

    assert [r.status_code for r in burst] == [200] * 5 and once == 1
    assert (by_new.status_code, by_old.status_code, after_drop.status_code) == (200, 200, 401)


async def test_one_retailers_secret_cannot_write_events_for_another_retailers_number(
    hooks: httpx.AsyncClient, session: AsyncSession, ids: Identities
) -> None:
    await _channel(session, ids, "Loja A", "2001", "secret-a")
    await _channel(session, ids, "Loja B", "2002", "secret-b")
    mixed = _statuses("2001", ("wamid.A1", "sent"))
    mixed["entry"] += _statuses("2002", ("wamid.B1", "sent"))["entry"]

    response = await _post(hooks, mixed, "secret-a")

    assert response.json() == {"received": 1, "new": 1, "duplicates": 0}
    await use_scope(session, SYSTEM)
    keys = list(await session.scalars(select(WebhookEvent.event_key)))
    assert keys == ["status:wamid.A1:sent"]


async def test_unknown_fields_are_answered_200_and_journaled_as_ignored(
    hooks: httpx.AsyncClient,
    session: AsyncSession,
    ids: Identities,
    run_jobs: Callable[[], Awaitable[list[Any]]],
) -> None:
    await _channel(session, ids, "Loja Campos", "1005", "secret-1005")
    payload = {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": "91005",
                "time": 1767000000,
                "changes": [
                    {"field": "phone_number_quality_update", "value": {"event": "FLAGGED"}}
                ],
            }
        ],
    }

    response = await _post(hooks, payload, "secret-1005")
    await run_jobs()

    assert response.status_code == 200
    await use_scope(session, SYSTEM)
    event = await session.scalar(select(WebhookEvent))
    assert event is not None
    assert (event.kind, event.state) == ("whatsapp.phone_number_quality_update", "ignored")


async def test_a_template_review_verdict_updates_the_template(
    hooks: httpx.AsyncClient,
    session: AsyncSession,
    ids: Identities,
    run_jobs: Callable[[], Awaitable[list[Any]]],
) -> None:
    channel = await _channel(session, ids, "Loja Revisao", "1006", "secret-1006")
    row = await session.scalar(
        select(MessageTemplate).where(
            MessageTemplate.tenant_id == channel.tenant_id,
            MessageTemplate.channel_kind == "whatsapp",
            MessageTemplate.key == "vence_hoje",
        )
    )
    assert row is not None
    row.status = TemplateStatus.PENDING
    await session.flush()

    def verdict(event: str, reason: str = "NONE") -> dict[str, Any]:
        value = {
            "event": event,
            "message_template_id": 778899,
            "message_template_name": row.name,
            "message_template_language": "pt_BR",
            "reason": reason,
        }
        change = {"field": "message_template_status_update", "value": value}
        entry = {"id": "91006", "time": 1767000000, "changes": [change]}
        return {"object": "whatsapp_business_account", "entry": [entry]}

    await _post(hooks, verdict("APPROVED"), "secret-1006")
    await run_jobs()
    await session.refresh(row)
    assert (row.status, row.provider_template_id) == ("APPROVED", "778899")

    await _post(hooks, verdict("PAUSED"), "secret-1006")
    await run_jobs()
    await session.refresh(row)
    assert row.status == "PAUSED"
    assert message_templates.out(row).status == "PAUSED"


async def test_a_signed_body_of_an_odd_shape_is_journaled_not_a_500(
    hooks: httpx.AsyncClient, session: AsyncSession, ids: Identities
) -> None:
    await _channel(session, ids, "Loja Estranha", "1007", "secret-1007")
    odd = _statuses("1007", ("wamid.E", "sent"))
    value = odd["entry"][0]["changes"][0]["value"]
    value["contacts"] = 7  # not a list
    value["messages"] = {"id": "x"}  # not a list
    value["statuses"][0]["errors"] = "boom"

    response = await _post(hooks, odd, "secret-1007")

    assert response.status_code == 200, response.text
    assert response.json()["new"] == 1  # the status still counts; the odd parts are ignored
