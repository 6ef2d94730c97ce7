"""Channels: a retailer connects its senders; credentials go in encrypted and never come out."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from shared.config import get_settings, reset_settings
from shared.domains.channels import service
from shared.models import Channel
from shared.tenancy import SYSTEM, use_scope
from tests.support.identity import Identities, bearer

WHATSAPP = {
    "kind": "whatsapp",
    "name": "WhatsApp da loja",
    "phone_number_id": "106540352242922",
    "waba_id": "102290129340398",
    "display_number": "+55 11 4000-1234",
    "access_token": "EAAG-secret-token-value",
    "app_secret": "app-secret-value-1",
    "verify_token": "verify-me-please",
}
SECRETS = ("EAAG-secret-token-value", "app-secret-value-1", "verify-me-please")


async def _owner(ids: Identities, name: str = "Loja Canal") -> tuple[Any, dict[str, str]]:
    party = await ids.party(name)
    return party, bearer(await ids.token(party))


async def test_a_whatsapp_number_is_connected_and_its_secrets_never_come_back(
    api: httpx.AsyncClient, ids: Identities, session: AsyncSession
) -> None:
    _, headers = await _owner(ids)
    created = await api.post("/v1/channels", json=WHATSAPP, headers=headers)
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["config"]["phone_number_id"] == "106540352242922"
    assert body["config"]["throughput_per_s"] == 80
    assert body["secrets_held"] == ["access_token", "app_secret", "verify_token"]
    listed = await api.get("/v1/channels", headers=headers)
    one = await api.get(f"/v1/channels/{body['id']}", headers=headers)
    for response in (created, listed, one):
        assert not any(s in response.text for s in SECRETS)

    await use_scope(session, SYSTEM)
    raw = (await session.execute(text("SELECT secrets::text FROM channels"))).scalars().all()
    assert raw and not any(s in r for r in raw for s in SECRETS)
    audit = (await session.execute(text("SELECT data::text FROM audit_events"))).scalars().all()
    assert not any(s in a for a in audit for s in SECRETS)


async def test_a_number_belongs_to_one_account(api: httpx.AsyncClient, ids: Identities) -> None:
    _, a = await _owner(ids, "Loja A")
    _, b = await _owner(ids, "Loja B")
    assert (await api.post("/v1/channels", json=WHATSAPP, headers=a)).status_code == 201
    again = await api.post("/v1/channels", json=WHATSAPP, headers=b)
    assert again.status_code == 409 and again.json()["code"] == "channel_taken"


async def test_bad_channels_are_refused_field_by_field(
    api: httpx.AsyncClient, ids: Identities
) -> None:
    _, headers = await _owner(ids)
    r = await api.post(
        "/v1/channels", json={**WHATSAPP, "phone_number_id": "not-digits"}, headers=headers
    )
    assert r.status_code in (400, 422)
    assert "phone_number_id" in r.text
    r = await api.post("/v1/channels", json={"kind": "fax", "name": "x"}, headers=headers)
    assert r.status_code in (400, 422)


async def test_a_new_app_secret_keeps_the_previous_one_until_dropped(
    api: httpx.AsyncClient, ids: Identities, session: AsyncSession
) -> None:
    _, headers = await _owner(ids)
    ident = (await api.post("/v1/channels", json=WHATSAPP, headers=headers)).json()["id"]
    r = await api.patch(
        f"/v1/channels/{ident}", json={"app_secret": "app-secret-value-2"}, headers=headers
    )
    assert r.status_code == 200, r.text
    assert "previous_app_secret" in r.json()["secrets_held"]
    await use_scope(session, SYSTEM)
    channel = await session.scalar(select(Channel).where(Channel.id == r.json()["id"]))
    assert channel is not None
    held = service.secrets_of(channel)
    assert (held["app_secret"], held["previous_app_secret"]) == (
        "app-secret-value-2",
        "app-secret-value-1",
    )
    dropped = await api.patch(
        f"/v1/channels/{ident}", json={"drop_previous_app_secret": True}, headers=headers
    )
    assert "previous_app_secret" not in dropped.json()["secrets_held"]


async def test_rotating_the_key_encryption_key_reencrypts_without_downtime(
    api: httpx.AsyncClient, ids: Identities, session: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, headers = await _owner(ids)
    ident = (await api.post("/v1/channels", json=WHATSAPP, headers=headers)).json()["id"]
    old = get_settings().secret_keys.get_secret_value()
    new = "k2026:" + base64.b64encode(b"n" * 32).decode()
    monkeypatch.setenv("QUITA_SECRET_KEYS", f"{new},{old}")
    reset_settings()
    try:
        # readable at once under the new keyring, before anything is rewritten
        assert (await api.get(f"/v1/channels/{ident}", headers=headers)).status_code == 200
        await use_scope(session, SYSTEM)
        assert await service.reencrypt_batch(session) >= 1
        assert await service.reencrypt_batch(session) == 0
        monkeypatch.setenv("QUITA_SECRET_KEYS", new)  # the old key is retired
        reset_settings()
        channel = await session.scalar(select(Channel).where(Channel.id == ident))
        assert channel is not None
        assert service.secrets_of(channel)["access_token"] == "EAAG-secret-token-value"
    finally:
        monkeypatch.delenv("QUITA_SECRET_KEYS")
        reset_settings()
