"""Migration 0018 gives every existing retailer what a new one gets — the agreement templates
(WhatsApp waiting for review, SMS and e-mail usable) and the default agreement régua — keeps its
régua as it was (kind ``regua``), and walks down and up again."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from alembic import command

from shared.config import Settings
from shared.db import migrate
from shared.domains.channels.defaults import AGREEMENT_DEFAULTS
from shared.domains.collections.cadences import AGREEMENT_NAME, AGREEMENT_STEPS
from tests.support.migrations import TENANTS, fetch, scratch_database

_BY_KEY = {d.key: d for d in AGREEMENT_DEFAULTS}


@pytest.fixture
def scratch(settings: Settings) -> Iterator[Settings]:
    with scratch_database(settings, "agreement_regua_mig") as own:
        yield own


def test_existing_retailers_get_the_agreement_templates_and_regua(scratch: Settings) -> None:
    migrate.upgrade(scratch, "0017")
    tenants = {r["kind"]: r["id"] for r in fetch(scratch, TENANTS)}
    fetch(  # the régua it had
        scratch,
        f"""INSERT INTO cadences (id, tenant_id, name, is_default)
            VALUES (gen_random_uuid(), '{tenants["retailer"]}', 'Régua padrão', true)
            RETURNING id""",
    )

    migrate.upgrade(scratch, "0018")

    cadences = fetch(scratch, "SELECT id, tenant_id, name, kind, is_default FROM cadences")
    assert {(r["tenant_id"], r["kind"], r["is_default"]) for r in cadences} == {
        (tenants["retailer"], "regua", True),
        (tenants["retailer"], "agreement", True),
    }
    (agreement,) = [r for r in cadences if r["kind"] == "agreement"]
    assert agreement["name"] == AGREEMENT_NAME
    steps = fetch(
        scratch,
        f"""SELECT offset_days, channel, fallback_channel, variants -> 0 ->> 'template' AS t
            FROM cadence_steps WHERE cadence_id = '{agreement["id"]}' ORDER BY offset_days""",
    )
    assert [(r["offset_days"], r["t"]) for r in steps] == [
        (offset, _BY_KEY[key].name) for offset, key in AGREEMENT_STEPS
    ]
    assert {(r["channel"], r["fallback_channel"]) for r in steps} == {("whatsapp", "sms")}
    templates = fetch(
        scratch,
        "SELECT tenant_id, channel_kind, name, status, body FROM message_templates",
    )
    assert {r["tenant_id"] for r in templates} == {tenants["retailer"]}
    for d in AGREEMENT_DEFAULTS:  # the same texts a new retailer gets
        got = {r["channel_kind"]: r for r in templates if r["name"] == d.name}
        assert {k: r["status"] for k, r in got.items()} == {
            "whatsapp": "DRAFT",
            "sms": "APPROVED",
            "email": "APPROVED",
        }
        assert got["whatsapp"]["body"] == got["email"]["body"] == d.body
        assert got["sms"]["body"] == d.sms

    command.downgrade(migrate.alembic_config(scratch), "0017")
    left = fetch(scratch, "SELECT count(*) AS n FROM cadences")
    assert left[0]["n"] == 1

    migrate.upgrade(scratch, "0018")  # and up again
    again = fetch(scratch, "SELECT count(*) AS n FROM cadences WHERE kind = 'agreement'")
    assert again[0]["n"] == 1
