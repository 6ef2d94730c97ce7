"""Migrations that add a default template give every existing retailer the template a new one
gets (WhatsApp waiting for review, SMS and e-mail usable), once, and walk down and up again:
0020 the broken-promise reminder, 0021 the offer sent outside the window."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from alembic import command

from shared.config import Settings
from shared.db import migrate
from shared.domains.channels.defaults import BROKEN_PROMISE, OFFER, DefaultTemplate
from tests.support.migrations import TENANTS, fetch, scratch_database


@pytest.fixture
def scratch(settings: Settings) -> Iterator[Settings]:
    with scratch_database(settings, "template_mig") as own:
        yield own


@pytest.mark.parametrize(
    ("before", "revision", "template"),
    [("0019", "0020", BROKEN_PROMISE), ("0020", "0021", OFFER)],
    ids=["broken_promise", "offer"],
)
def test_existing_retailers_get_the_new_default_template(
    scratch: Settings, before: str, revision: str, template: DefaultTemplate
) -> None:
    migrate.upgrade(scratch, before)
    fetch(scratch, TENANTS)
    query = f"""SELECT t.kind AS tenant_kind, m.channel_kind, m.status, m.body, m.key,
                       m.header
                FROM message_templates m JOIN tenants t ON t.id = m.tenant_id
                WHERE m.name = '{template.name}'"""

    migrate.upgrade(scratch, revision)
    rows = fetch(scratch, query)
    command.downgrade(migrate.alembic_config(scratch), before)
    gone = fetch(scratch, query)
    migrate.upgrade(scratch, revision)
    again = fetch(scratch, query)

    got = {r["channel_kind"]: r for r in rows}
    assert {r["tenant_kind"] for r in rows} == {"retailer"} and len(rows) == 3
    assert {k: r["status"] for k, r in got.items()} == {
        "whatsapp": "DRAFT",
        "sms": "APPROVED",
        "email": "APPROVED",
    }
    # the same texts a new retailer gets
    assert got["whatsapp"]["body"] == got["email"]["body"] == template.body
    assert got["whatsapp"]["header"] == template.header
    assert got["sms"]["body"] == template.sms and got["sms"]["key"] == template.key
    assert gone == [] and len(again) == 3
