"""The webhook endpoints API: a retailer's owners and admins add, change, rotate and remove the
URLs its systems receive events at, read the delivery log and replay — the secret shown once,
another tenant's endpoint never found."""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest_asyncio
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

import shared.domains.events.tasks  # noqa: F401  (the jobs, even before shared.tasks lists them)
from services.api.app import create_app
from services.api.controllers.webhook_endpoints import WEBHOOK_ENDPOINT_CONTROLLERS
from shared.domains import events
from shared.models import Role
from shared.tenancy import SYSTEM, use_scope
from tests.support.identity import Identities, Party, bearer

URL = "https://erp.loja-exemplo.com.br/quita/webhooks"
BASE = "/v1/webhook-endpoints"


def _app(settings: Any, **kwargs: Any) -> Any:
    """The api, with these routes even before ``create_app`` lists them."""
    app = create_app(settings, **kwargs)
    if not any(route.path.startswith(BASE) for route in app.routes):
        app = create_app(settings, extra_routes=WEBHOOK_ENDPOINT_CONTROLLERS, **kwargs)
    return app


@pytest_asyncio.fixture
async def api(http_client: Callable[..., Awaitable[httpx.AsyncClient]]) -> httpx.AsyncClient:
    return await http_client(_app)


async def _owner(ids: Identities, name: str = "Loja Webhooks") -> tuple[Party, dict[str, str]]:
    party = await ids.party(name)
    return party, bearer(await ids.token(party))


async def _create(api: httpx.AsyncClient, headers: dict[str, str], **fields: Any) -> Any:
    response = await api.post(BASE, json={"url": URL, **fields}, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


async def test_an_endpoint_is_created_with_its_secret_shown_once(
    api: httpx.AsyncClient, ids: Identities, session: AsyncSession
) -> None:
    _, headers = await _owner(ids)
    body = await _create(
        api, headers, description="ERP", event_types=["installment.settled", "customer.opted_out"]
    )
    secret = body["secret"]
    assert secret.startswith("whsec_") and len(base64.b64decode(secret[6:])) >= 24
    assert body["status"] == "active" and body["event_types"] == [
        "installment.settled",
        "customer.opted_out",
    ]
    listed = await api.get(BASE, headers=headers)
    one = await api.get(f"{BASE}/{body['id']}", headers=headers)
    assert listed.status_code == 200 and one.status_code == 200
    assert [e["id"] for e in listed.json()] == [body["id"]]
    for response in (listed, one):
        items = response.json() if isinstance(response.json(), list) else [response.json()]
        assert secret[6:] not in response.text and all("secret" not in i for i in items)

    await use_scope(session, SYSTEM)
    stored = (await session.execute(text("SELECT secret FROM webhook_endpoints"))).scalar_one()
    assert secret[6:] not in stored
    audit = (await session.execute(text("SELECT data::text FROM audit_events"))).scalars().all()
    assert any(URL in a for a in audit) and not any(secret[6:] in a for a in audit)


async def test_bad_endpoints_are_refused_field_by_field(
    api: httpx.AsyncClient, ids: Identities
) -> None:
    _, headers = await _owner(ids)
    cases = [
        ({"url": "ftp://erp.example.com/x"}, "url"),
        ({"url": "https://user:pass@erp.example.com/x"}, "url"),
        ({"url": "not a url"}, "url"),
        ({"url": URL, "event_types": ["installment.settled", "payment.made"]}, "event_types[1]"),
    ]
    for fields, field in cases:
        response = await api.post(BASE, json=fields, headers=headers)
        assert response.status_code == 422, (fields, response.text)
        problem = response.json()
        assert problem["code"] == "validation_failed"
        assert [e["field"] for e in problem["errors"]] == [field]
    unknown = await api.post(BASE, json={"url": URL, "colour": "blue"}, headers=headers)
    assert unknown.status_code in (400, 422)


async def test_production_takes_https_to_public_hosts_only(
    api: httpx.AsyncClient, ids: Identities
) -> None:
    from shared.config import get_settings, reset_settings

    _, headers = await _owner(ids)
    import os

    os.environ["QUITA_ENV"] = "prod"
    reset_settings()
    try:
        assert get_settings().env == "prod"
        for url in (
            "http://erp.example.com/x",
            "https://localhost/x",
            "https://10.0.0.5/x",
            "https://169.254.169.254/latest",
        ):
            response = await api.post(BASE, json={"url": url}, headers=headers)
            assert response.status_code == 422, url
        assert (await api.post(BASE, json={"url": URL}, headers=headers)).status_code == 201
    finally:
        os.environ["QUITA_ENV"] = "test"
        reset_settings()


async def test_an_endpoint_is_changed_turned_off_and_on_and_removed(
    api: httpx.AsyncClient, ids: Identities
) -> None:
    _, headers = await _owner(ids)
    created = await _create(api, headers)
    path = f"{BASE}/{created['id']}"
    changed = await api.patch(
        path,
        json={"url": URL + "/v2", "event_types": ["attempt.status_changed"], "enabled": False},
        headers=headers,
    )
    assert changed.status_code == 200, changed.text
    body = changed.json()
    assert body["url"] == URL + "/v2" and body["event_types"] == ["attempt.status_changed"]
    assert body["status"] == "disabled" and body["disabled_reason"] == "disabled by the tenant"
    again = await api.patch(path, json={"enabled": True}, headers=headers)
    assert again.json()["status"] == "active" and again.json()["disabled_reason"] is None
    bad = await api.patch(path, json={"event_types": ["nope"]}, headers=headers)
    assert bad.status_code == 422

    assert (await api.delete(path, headers=headers)).status_code == 204
    assert (await api.get(path, headers=headers)).status_code == 404


async def test_rotating_the_secret_keeps_the_old_one_for_the_overlap(
    api: httpx.AsyncClient, ids: Identities
) -> None:
    _, headers = await _owner(ids)
    created = await _create(api, headers)
    path = f"{BASE}/{created['id']}/rotate-secret"
    rotated = await api.post(path, json={"overlap_hours": 6}, headers=headers)
    assert rotated.status_code == 200, rotated.text
    body = rotated.json()
    assert body["secret"].startswith("whsec_") and body["secret"] != created["secret"]
    until = datetime.fromisoformat(body["previous_secret_valid_until"])
    assert abs(until - (datetime.now(UTC) + timedelta(hours=6))) < timedelta(minutes=1)
    default = await api.post(path, headers=headers)
    assert default.status_code == 200
    until = datetime.fromisoformat(default.json()["previous_secret_valid_until"])
    assert abs(until - (datetime.now(UTC) + timedelta(hours=24))) < timedelta(minutes=1)
    too_long = await api.post(path, json={"overlap_hours": 1000}, headers=headers)
    assert too_long.status_code in (400, 422)


async def test_the_delivery_log_pages_filters_and_replays(
    api: httpx.AsyncClient, ids: Identities, session: AsyncSession
) -> None:
    party, headers = await _owner(ids)
    created = await _create(api, headers)
    await use_scope(session, SYSTEM)
    t0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    for i in range(3):
        await events.emit(
            session, party.tenant.id, "customer.opted_out", {"n": i}, t0 + timedelta(minutes=i)
        )
    await session.execute(
        text(
            "UPDATE webhook_deliveries SET state = CASE WHEN occurred_at = :t THEN 'dead'"
            " ELSE 'delivered' END"
        ),
        {"t": t0},
    )
    path = f"{BASE}/{created['id']}/deliveries"
    first = (await api.get(path, params={"limit": 2}, headers=headers)).json()
    assert [d["occurred_at"][:16] for d in first["items"]] == [
        "2026-12-01T12:02",
        "2026-12-01T12:01",
    ]
    assert first["items"][0]["event_type"] == "customer.opted_out"
    rest = (
        await api.get(path, params={"limit": 2, "cursor": first["next_cursor"]}, headers=headers)
    ).json()
    assert len(rest["items"]) == 1 and rest["next_cursor"] is None
    dead = (await api.get(path, params={"state": "dead"}, headers=headers)).json()["items"]
    assert len(dead) == 1 and dead[0]["state"] == "dead"
    bad = await api.get(path, params={"state": "lost"}, headers=headers)
    assert bad.status_code == 422

    one = await api.post(f"{path}/{dead[0]['id']}/replay", headers=headers)
    assert one.status_code == 202 and one.json() == {"queued": 1}
    since = await api.post(
        f"{BASE}/{created['id']}/replay",
        params={"since": "2026-12-01T00:00:00Z", "all": "true"},
        headers=headers,
    )
    assert since.status_code == 202 and since.json() == {"queued": 2}  # one already waits
    pending = (await api.get(path, params={"state": "pending"}, headers=headers)).json()["items"]
    assert len(pending) == 3 and all(d["replay"] for d in pending)


async def test_another_tenants_endpoint_is_not_found(
    api: httpx.AsyncClient, ids: Identities
) -> None:
    _, a = await _owner(ids, "Loja A")
    _, b = await _owner(ids, "Loja B")
    theirs = await _create(api, a)
    path = f"{BASE}/{theirs['id']}"
    attempts = [
        api.get(path, headers=b),
        api.patch(path, json={"enabled": False}, headers=b),
        api.post(f"{path}/rotate-secret", headers=b),
        api.get(f"{path}/deliveries", headers=b),
        api.post(f"{path}/replay", params={"since": "2026-01-01T00:00:00Z"}, headers=b),
        api.post(f"{path}/deliveries/{theirs['id']}/replay", headers=b),
        api.delete(path, headers=b),
    ]
    for attempt in attempts:
        response = await attempt
        assert response.status_code == 404, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
    assert (await api.get(BASE, headers=b)).json() == []
    assert (await api.get(path, headers=a)).status_code == 200


async def test_operators_cannot_manage_endpoints(api: httpx.AsyncClient, ids: Identities) -> None:
    party, owner = await _owner(ids)
    await _create(api, owner)
    operator = bearer(await ids.token(party, role=Role.OPERATOR))
    assert (await api.get(BASE, headers=operator)).status_code == 403
    assert (await api.post(BASE, json={"url": URL}, headers=operator)).status_code == 403


async def test_a_retried_creation_with_the_same_idempotency_key_answers_the_same_endpoint(
    api: httpx.AsyncClient, ids: Identities
) -> None:
    _, headers = await _owner(ids)
    keyed = {**headers, "Idempotency-Key": "erp-setup-1"}
    first = await api.post(BASE, json={"url": URL}, headers=keyed)
    again = await api.post(BASE, json={"url": URL}, headers=keyed)
    assert first.status_code == again.status_code == 201
    assert again.json()["id"] == first.json()["id"]
    assert again.json()["secret"] == first.json()["secret"]
    other = await api.post(BASE, json={"url": URL + "/x"}, headers=keyed)
    assert other.status_code == 409 and other.json()["code"] == "idempotency_conflict"
    assert len((await api.get(BASE, headers=headers)).json()) == 1
