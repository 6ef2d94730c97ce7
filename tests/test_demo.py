"""The demo data `make run` loads: a retailer whose portfolio answers through the API."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import httpx
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.sandbox.app import create_app as sandbox_app
from shared import demo, demo_sandbox
from shared.config import Settings
from shared.domains.channels.defaults import DEFAULTS
from shared.domains.portfolio import pix_connections
from shared.models import Channel, Customer, Installment, MessageTemplate, PixSettings
from shared.tenancy import SYSTEM, use_scope


async def test_the_demo_is_seeded_once_and_its_portfolio_answers(
    session: AsyncSession, settings: Settings, api: httpx.AsyncClient
) -> None:
    await use_scope(session, SYSTEM)
    first = await demo.seed(session, settings)
    again = await demo.seed(session, settings)
    assert first.tenant_id == again.tenant_id
    assert await session.scalar(select(func.count()).select_from(Customer)) == len(
        demo.DEMO_CUSTOMERS
    )

    headers = {"Authorization": f"Bearer {again.access_token}"}
    overdue = (
        await api.get("/v1/installments/", params={"overdue_min": 1}, headers=headers)
    ).json()
    assert {i["external_id"] for i in overdue["items"]} >= {"PAR-0001-02", "PAR-0003-01"}
    pix = await api.get("/v1/installments/PAR-0003-01/pix", headers=headers)
    assert pix.status_code == 200, pix.text
    balance = (await api.get("/v1/installments/PAR-0003-01/balance", headers=headers)).json()
    assert pix.json()["amount"] == balance["total"]
    assert balance["days_overdue"] >= 44
    await use_scope(session, SYSTEM)
    paid = await session.scalar(
        select(Installment.status).where(Installment.external_id == "PAR-0004-07")
    )
    assert paid == "paid"


async def test_the_demo_number_is_linked_to_the_sandbox_and_relinked_after_a_restart(
    session: AsyncSession,
    settings: Settings,
    http_client: Callable[..., Awaitable[httpx.AsyncClient]],
) -> None:
    await use_scope(session, SYSTEM)
    await demo.seed(session, settings)
    channel = await session.scalar(select(Channel).where(Channel.kind == "whatsapp"))
    assert channel is not None
    sandbox = await http_client(sandbox_app)
    number = f"/_sandbox/whatsapp/numbers/{demo_sandbox.DEMO_PHONE_NUMBER_ID}"

    assert channel.status == "paused"  # nothing goes out before the sandbox knows the number
    first = await demo_sandbox.link(session, sandbox, settings, channel)
    again = await demo_sandbox.link(session, sandbox, settings, channel)
    assert channel.status == "active"

    assert first.registered and first.submitted == len(DEFAULTS)
    assert not again.registered and again.submitted == 0
    assert (await sandbox.get(number)).status_code == 200
    statuses = await session.scalars(
        select(MessageTemplate.status).where(MessageTemplate.channel_kind == "whatsapp")
    )
    assert set(statuses) == {"PENDING"}  # submitted for review, the way a retailer would

    # the sandbox restarts empty: the number comes back with the templates Quita has approved
    await session.execute(
        update(MessageTemplate)
        .where(MessageTemplate.channel_kind == "whatsapp")
        .values(status="APPROVED")
    )
    await sandbox.post("/_sandbox/whatsapp/reset")
    relinked = await demo_sandbox.link(session, sandbox, settings, channel)
    waba = await sandbox.post(f"/_sandbox/whatsapp/wabas/{demo_sandbox.DEMO_WABA_ID}", json={})
    assert relinked.registered and relinked.submitted == 0
    assert len(waba.json()["templates"]) == len(DEFAULTS)
    assert {t["status"] for t in waba.json()["templates"]} == {"APPROVED"}


async def test_the_demo_sms_account_is_registered_in_the_sandbox_once(
    session: AsyncSession,
    settings: Settings,
    http_client: Callable[..., Awaitable[httpx.AsyncClient]],
) -> None:
    await use_scope(session, SYSTEM)
    await demo.seed(session, settings)
    sms = await session.scalar(select(Channel).where(Channel.kind == "sms"))
    email = await session.scalar(select(Channel).where(Channel.kind == "email"))
    assert sms is not None and email is not None
    assert email.config["host"] == settings.sandbox_smtp_host
    sandbox = await http_client(sandbox_app)

    first = await demo_sandbox.link(session, sandbox, settings, sms)
    again = await demo_sandbox.link(session, sandbox, settings, sms)

    assert first.registered and not again.registered
    account = await sandbox.get(f"/_sandbox/sms/accounts/{sms.config['account_sid']}/messages")
    assert account.status_code == 200


async def test_the_demo_pix_key_is_held_by_the_sandbox_psp_and_relinked_after_a_restart(
    session: AsyncSession,
    settings: Settings,
    http_client: Callable[..., Awaitable[httpx.AsyncClient]],
) -> None:
    await use_scope(session, SYSTEM)
    seeded = await demo.seed(session, settings)
    sandbox = await http_client(sandbox_app)
    key = await session.scalar(select(PixSettings.key))

    first = await demo_sandbox.link_pix(session, sandbox, settings, seeded.tenant_id)
    again = await demo_sandbox.link_pix(session, sandbox, settings, seeded.tenant_id)
    held = (await sandbox.get(f"/_sandbox/pix/connections/{key}")).json()

    assert (first, again) == (True, False)
    token = held["webhook_url"].rsplit("/pix/", 1)[1]
    assert held["webhook_url"] == f"{settings.webhooks_url()}/pix/{token}"
    assert await pix_connections.by_token(session, token) is not None

    # the sandbox restarts empty: the key comes back with a new URL, the old one stops working
    await sandbox.post("/_sandbox/pix/reset")
    relinked = await demo_sandbox.link_pix(session, sandbox, settings, seeded.tenant_id)
    now_held = (await sandbox.get(f"/_sandbox/pix/connections/{key}")).json()
    assert relinked is True
    assert now_held["webhook_url"] != held["webhook_url"]
    assert await pix_connections.by_token(session, token) is None
    assert len(await pix_connections.list_for(session, seeded.tenant_id)) == 1
