"""Templates at the provider: submitted in Meta's shape, reviewed by the sandbox, kept in sync
by the hourly pull when no webhook comes, edited (back to review) after a change."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.sandbox.app import create_app as sandbox_app
from shared.domains.audit.service import Actor
from shared.domains.channels import provider, schemas, senders, service, templates
from shared.domains.channels.defaults import DEFAULTS, FOOTER
from shared.integrations.whatsapp import WhatsAppClient
from shared.models import Channel, MessageTemplate
from shared.queue import enqueue
from shared.tenancy import SYSTEM, use_scope
from tests.support.identity import Identities

ACTOR = Actor("cli", None)
PHONE_ID, WABA_ID = "5511000077", "5511000078"
Jobs = Callable[[], Awaitable[list[Any]]]


@pytest.fixture
async def sandbox(
    http_client: Callable[..., Awaitable[httpx.AsyncClient]],
) -> AsyncIterator[httpx.AsyncClient]:
    client = await http_client(sandbox_app)
    await client.post(
        "/_sandbox/whatsapp/numbers",
        json={
            "phone_number_id": PHONE_ID,
            "waba_id": WABA_ID,
            "display_phone_number": "5511000077",
            "access_token": "tok-77",
            "app_secret": "sec-77",
        },
    )
    await client.post(f"/_sandbox/whatsapp/wabas/{WABA_ID}", json={"review_delay_ms": 5})
    with senders.using_clients(WhatsAppClient(base_url="http://test", transport=client._transport)):
        yield client


@pytest.fixture
async def channel(session: AsyncSession, ids: Identities) -> Channel:
    party = await ids.party("Loja Modelos Meta")
    await use_scope(session, SYSTEM)
    return await service.create(
        session,
        party.tenant.id,
        schemas.WhatsAppIn(
            name="WhatsApp",
            phone_number_id=PHONE_ID,
            waba_id=WABA_ID,
            display_number="+55 11 0000-0077",
            access_token="tok-77",
            app_secret="sec-77",
            verify_token="v-77",
        ),
        ACTOR,
    )


async def _row(session: AsyncSession, channel: Channel, key: str) -> MessageTemplate:
    row = await session.scalar(
        select(MessageTemplate).where(
            MessageTemplate.tenant_id == channel.tenant_id,
            MessageTemplate.channel_kind == "whatsapp",
            MessageTemplate.key == key,
        )
    )
    assert row is not None
    return row


async def _in_sandbox(sandbox: httpx.AsyncClient) -> dict[str, Any]:
    await asyncio.sleep(0.05)  # the simulated review
    waba = (await sandbox.post(f"/_sandbox/whatsapp/wabas/{WABA_ID}", json={})).json()
    return {t["name"]: t for t in waba["templates"]}


async def _sync(session: AsyncSession, channel: Channel, run_jobs: Jobs) -> None:
    await enqueue(
        session, provider.sync_templates, tenant_id=channel.tenant_id, channel_id=str(channel.id)
    )
    await run_jobs()


def test_a_default_template_is_submitted_in_metas_component_shape() -> None:
    default = next(d for d in DEFAULTS if d.key == "atraso_d5")
    row = MessageTemplate(
        name=default.name,
        header=default.header,
        body=default.body,
        footer=FOOTER,
        buttons=[{"type": "QUICK_REPLY", "text": "Já paguei", "payload": "PAID"}],
    )

    header, body, footer, buttons = provider.components_of(row)

    assert header == {"type": "HEADER", "format": "TEXT", "text": default.header}
    assert body["type"] == "BODY" and "{{1}}" in body["text"]
    assert "{{" not in str(body["example"]["body_text"])
    assert len(body["example"]["body_text"][0]) == body["text"].count("{{")
    assert footer == {"type": "FOOTER", "text": FOOTER}
    assert buttons == {"type": "BUTTONS", "buttons": [{"type": "QUICK_REPLY", "text": "Já paguei"}]}


async def test_submission_review_and_the_hourly_pull_bring_the_verdict(
    session: AsyncSession, channel: Channel, sandbox: httpx.AsyncClient, run_jobs: Jobs
) -> None:
    row = await _row(session, channel, "vence_hoje")

    await provider.request_submission(session, row, ACTOR)
    await run_jobs()
    seen = await _in_sandbox(sandbox)
    await session.refresh(row)
    assert row.status == "PENDING" and row.provider_template_id == seen[row.name]["id"]
    assert seen[row.name]["status"] == "APPROVED"

    await _sync(session, channel, run_jobs)  # no webhook reached Quita: the pull catches up
    await session.refresh(row)
    assert row.status == "APPROVED"


async def test_a_text_the_reviewers_refuse_comes_back_rejected_with_the_reason(
    session: AsyncSession, channel: Channel, sandbox: httpx.AsyncClient, run_jobs: Jobs
) -> None:
    row = await templates.create(
        session,
        channel.tenant_id,
        templates.TemplateIn(
            channel_kind="whatsapp",
            name="aviso_processo",
            body="Olá {{primeiro_nome}}, evite um processo: pague {{valor_total}} hoje.",
        ),
        ACTOR,
    )

    await provider.request_submission(session, row, ACTOR)
    await run_jobs()
    await _in_sandbox(sandbox)
    await _sync(session, channel, run_jobs)

    await session.refresh(row)
    assert (row.status, row.rejected_reason) == ("REJECTED", "ABUSIVE_CONTENT")


async def test_an_edited_template_goes_back_to_review_with_its_new_text(
    session: AsyncSession, channel: Channel, sandbox: httpx.AsyncClient, run_jobs: Jobs
) -> None:
    row = await _row(session, channel, "vence_hoje")
    await provider.request_submission(session, row, ACTOR)
    await run_jobs()
    await _in_sandbox(sandbox)
    await _sync(session, channel, run_jobs)
    await session.refresh(row)
    first_id = row.provider_template_id

    edited = row.body.replace("Bom dia", "Olá, bom dia")
    await templates.update(session, row, templates.TemplateUpdate(body=edited), ACTOR)
    assert row.status == "DRAFT"
    await provider.request_submission(session, row, ACTOR)
    await run_jobs()
    seen = await _in_sandbox(sandbox)
    await _sync(session, channel, run_jobs)

    await session.refresh(row)
    assert row.status == "APPROVED" and row.provider_template_id == first_id
    assert "Olá, bom dia" in str(seen[row.name]["components"])


async def test_submitting_needs_a_whatsapp_template_and_a_connected_number(
    session: AsyncSession, ids: Identities
) -> None:
    party = await ids.party("Loja Sem Numero")
    await use_scope(session, SYSTEM)
    rows = list(
        await session.scalars(
            select(MessageTemplate).where(MessageTemplate.tenant_id == party.tenant.id)
        )
    )
    whatsapp = next(r for r in rows if r.channel_kind == "whatsapp")
    sms = next(r for r in rows if r.channel_kind == "sms")

    with pytest.raises(provider.NoWhatsAppChannel):
        await provider.request_submission(session, whatsapp, ACTOR)
    with pytest.raises(provider.NotSubmittable):
        await provider.request_submission(session, sms, ACTOR)
