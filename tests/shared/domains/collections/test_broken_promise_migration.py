"""Migration 0020 gives every existing retailer the broken-promise template a new one gets
(WhatsApp waiting for review, SMS and e-mail usable), once, and walks down and up again."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from alembic import command

from shared.config import Settings
from shared.db import migrate
from shared.domains.channels.defaults import BROKEN_PROMISE
from tests.support.migrations import TENANTS, fetch, scratch_database


@pytest.fixture
def scratch(settings: Settings) -> Iterator[Settings]:
    with scratch_database(settings, "broken_promise_mig") as own:
        yield own


def test_existing_retailers_get_the_broken_promise_template(scratch: Settings) -> None:
    migrate.upgrade(scratch, "0019")
    fetch(scratch, TENANTS)
    query = f"""SELECT t.kind AS tenant_kind, m.channel_kind, m.status, m.body, m.key
                FROM message_templates m JOIN tenants t ON t.id = m.tenant_id
                WHERE m.name = '{BROKEN_PROMISE.name}'"""

    migrate.upgrade(scratch, "0020")
    rows = fetch(scratch, query)
    command.downgrade(migrate.alembic_config(scratch), "0019")
    gone = fetch(scratch, query)
    migrate.upgrade(scratch, "0020")
    again = fetch(scratch, query)

    got = {r["channel_kind"]: r for r in rows}
    assert {r["tenant_kind"] for r in rows} == {"retailer"} and len(rows) == 3
    assert {k: r["status"] for k, r in got.items()} == {
        "whatsapp": "DRAFT",
        "sms": "APPROVED",
        "email": "APPROVED",
    }
    # the same texts a new retailer gets
    assert got["whatsapp"]["body"] == got["email"]["body"] == BROKEN_PROMISE.body
    assert got["sms"]["body"] == BROKEN_PROMISE.sms and got["sms"]["key"] == BROKEN_PROMISE.key
    assert gone == [] and len(again) == 3
