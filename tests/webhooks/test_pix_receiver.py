"""The Pix receiver: a PSP's webhook is accepted only on an active connection's URL (and with
the expected client certificate where the proxy vouches for it), journaled once per
endToEndId however often it comes, and refused field by field when it is not the BCB's shape —
with nothing stored for any refusal."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.config import Settings
from shared.domains.money.pixcodes import txid_for
from shared.domains.portfolio import pix_connections
from shared.models import WebhookEvent, WebhookReceipt
from shared.tenancy import SYSTEM, tenant_scope, use_scope
from tests.support.identity import Identities
from tests.support.pix import (
    ACTOR,
    body,
    connection,
    hooks_app,
    installment,
    pix_item,
    retailer,
)

Client = Callable[..., Awaitable[httpx.AsyncClient]]
SUBJECT = "CN=psp.example.com.br,OU=Pix,O=Banco Teste S.A.,C=BR"
JSON = {"Content-Type": "application/json"}


@pytest.fixture
async def hooks(http_client: Client) -> httpx.AsyncClient:
    return await http_client(hooks_app)


@pytest.fixture
async def proxied_hooks(http_client: Client) -> httpx.AsyncClient:
    """The webhooks service behind a TLS proxy trusted to pass the client certificate."""

    def factory(settings: Settings, **kw: Any) -> Any:
        trusted = settings.model_copy(update={"pix_client_cert_header_trusted": True})
        return hooks_app(trusted, **kw)

    return await http_client(factory)


async def _stored(session: AsyncSession) -> tuple[int, int]:
    await use_scope(session, SYSTEM)
    receipts = await session.scalar(select(func.count()).select_from(WebhookReceipt))
    events = await session.scalar(select(func.count()).select_from(WebhookEvent))
    return int(receipts or 0), int(events or 0)


async def test_a_pix_is_journaled_once_however_often_the_psp_posts_it(
    hooks: httpx.AsyncClient, session: AsyncSession, ids: Identities, settings: Settings
) -> None:
    shop = await retailer(session, ids, "Loja Pix Um")
    inst = await installment(session, ids, shop, "P-1", "150.00")
    conn, token = await connection(session, settings, shop)
    payload = body(pix_item(txid_for(inst.id), "150.00"))

    first = await hooks.post(f"/pix/{token}/pix", content=payload, headers=JSON)
    again = await hooks.post(f"/pix/{token}", content=payload, headers=JSON)

    assert first.status_code == 200, first.text
    assert first.json() == {"received": 1, "new": 1, "duplicates": 0}
    assert again.json() == {"received": 1, "new": 0, "duplicates": 1}
    await use_scope(session, SYSTEM)
    (event,) = list(await session.scalars(select(WebhookEvent)))
    assert event.provider == "pix" and event.kind == "pix.received"
    assert event.event_key == f"pix:{event.payload['endToEndId']}"
    assert event.tenant_id == shop.id
    assert event.payload["connection_id"] == str(conn.id)
    assert "infoPagador" not in event.payload  # the payer's free text stays in the raw receipt
    assert await _stored(session) == (2, 1)


async def test_an_unknown_token_is_refused_and_nothing_is_stored(
    hooks: httpx.AsyncClient, session: AsyncSession, ids: Identities, settings: Settings
) -> None:
    shop = await retailer(session, ids, "Loja Pix Dois")
    await connection(session, settings, shop)
    guessed = pix_connections.new_token()

    r = await hooks.post(f"/pix/{guessed}/pix", content=body(pix_item("ABC", "1.00")), headers=JSON)

    assert r.status_code == 401
    assert r.headers["content-type"].startswith("application/problem+json")
    assert await _stored(session) == (0, 0)


async def test_a_disabled_or_rotated_connection_refuses_its_old_url(
    hooks: httpx.AsyncClient, session: AsyncSession, ids: Identities, settings: Settings
) -> None:
    shop = await retailer(session, ids, "Loja Pix Três")
    conn, token = await connection(session, settings, shop)
    other, other_token = await connection(session, settings, shop)
    await use_scope(session, tenant_scope(shop.id))
    new_url = await pix_connections.rotate(session, conn, ACTOR, settings)
    await pix_connections.disable(session, other, ACTOR)
    await use_scope(session, SYSTEM)

    old = await hooks.post(f"/pix/{token}", content=body(pix_item(None, "1.00")), headers=JSON)
    off = await hooks.post(
        f"/pix/{other_token}", content=body(pix_item(None, "1.00")), headers=JSON
    )
    new = await hooks.post(
        f"/pix/{new_url.rsplit('/', 1)[1]}", content=body(pix_item(None, "1.00")), headers=JSON
    )

    assert (old.status_code, off.status_code, new.status_code) == (401, 401, 200)
    assert await _stored(session) == (1, 1)


async def test_a_certificate_subject_other_than_the_expected_one_is_refused(
    proxied_hooks: httpx.AsyncClient, session: AsyncSession, ids: Identities, settings: Settings
) -> None:
    shop = await retailer(session, ids, "Loja Pix mTLS")
    _, token = await connection(session, settings, shop, subject=SUBJECT)
    payload = body(pix_item(None, "10.00"))
    header = "X-SSL-Client-S-DN"

    missing = await proxied_hooks.post(f"/pix/{token}", content=payload, headers=JSON)
    wrong = await proxied_hooks.post(
        f"/pix/{token}",
        content=payload,
        headers={**JSON, header: "CN=intruso.example.com,O=Outro Banco,C=BR"},
    )
    assert (missing.status_code, wrong.status_code) == (401, 401)
    assert await _stored(session) == (0, 0)

    # the same subject in OpenSSL's legacy order is the same certificate
    legacy = "/C=BR/O=Banco Teste S.A./OU=Pix/CN=psp.example.com.br"
    ok = await proxied_hooks.post(
        f"/pix/{token}", content=payload, headers={**JSON, header: legacy}
    )
    assert ok.status_code == 200, ok.text


async def test_an_expected_certificate_fails_closed_when_no_proxy_is_trusted(
    hooks: httpx.AsyncClient, session: AsyncSession, ids: Identities, settings: Settings
) -> None:
    shop = await retailer(session, ids, "Loja Pix Sem Proxy")
    _, token = await connection(session, settings, shop, subject=SUBJECT)

    # anyone can send the header when no proxy strips and sets it: it proves nothing
    r = await hooks.post(
        f"/pix/{token}",
        content=body(pix_item(None, "10.00")),
        headers={**JSON, "X-SSL-Client-S-DN": SUBJECT},
    )

    assert r.status_code == 401
    assert await _stored(session) == (0, 0)


@pytest.mark.parametrize(
    ("payload", "fields"),
    [
        (b"{not json", ["body"]),
        (b'{"pix": []}', ["pix"]),
        (b'{"cobs": [{}]}', ["pix"]),
        (
            b'{"pix": [{"endToEndId": "E1", "valor": 12.5, "horario": "ontem"}, 7]}',
            ["pix[0].endToEndId", "pix[0].valor", "pix[0].horario", "pix[1]"],
        ),
        (
            b'{"pix": [{"endToEndId": "E1234567820261207093012345678901", "txid": "a-b",'
            b' "valor": "0.00", "horario": "2026-12-07T09:30:00", "devolucoes": {}}]}',
            ["pix[0].txid", "pix[0].valor", "pix[0].horario", "pix[0].devolucoes"],
        ),
    ],
)
async def test_a_body_that_is_not_the_bcb_shape_is_refused_field_by_field(
    hooks: httpx.AsyncClient,
    session: AsyncSession,
    ids: Identities,
    settings: Settings,
    payload: bytes,
    fields: list[str],
) -> None:
    shop = await retailer(session, ids, "Loja Pix Malformada")
    _, token = await connection(session, settings, shop)

    r = await hooks.post(f"/pix/{token}/pix", content=payload, headers=JSON)

    assert r.status_code == 400, r.text
    assert [e["field"] for e in r.json()["errors"]] == fields
    assert await _stored(session) == (0, 0)


async def test_a_body_past_the_limit_is_refused(
    hooks: httpx.AsyncClient, session: AsyncSession, ids: Identities, settings: Settings
) -> None:
    shop = await retailer(session, ids, "Loja Pix Grande")
    _, token = await connection(session, settings, shop)
    huge = b'{"pix": [' + b" " * (settings.webhooks_max_body_bytes + 1) + b"]}"

    r = await hooks.post(f"/pix/{token}", content=huge, headers=JSON)

    assert r.status_code == 413
    assert await _stored(session) == (0, 0)


async def test_a_devolucao_is_journaled_as_its_own_event(
    hooks: httpx.AsyncClient, session: AsyncSession, ids: Identities, settings: Settings
) -> None:
    shop = await retailer(session, ids, "Loja Pix Devolução")
    _, token = await connection(session, settings, shop)
    item = pix_item(None, "80.00")
    refund = {
        "id": "D1abc",
        "rtrId": "D" + item["endToEndId"][1:],
        "valor": "80.00",
        "horario": {"solicitacao": item["horario"]},
        "status": "DEVOLVIDO",
    }

    await hooks.post(f"/pix/{token}", content=body(item), headers=JSON)
    r = await hooks.post(
        f"/pix/{token}", content=body({**item, "devolucoes": [refund]}), headers=JSON
    )

    assert r.json() == {"received": 2, "new": 1, "duplicates": 1}
    await use_scope(session, SYSTEM)
    kinds = sorted(e.kind for e in await session.scalars(select(WebhookEvent)))
    assert kinds == ["pix.received", "pix.refund"]
