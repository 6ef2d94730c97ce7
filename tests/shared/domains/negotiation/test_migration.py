"""Migration 0016 gives every existing retailer the default negotiation policy as version 1
(agencies get none), and walks down and up again."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest
from alembic import command

from shared.config import Settings
from shared.db import migrate
from shared.domains.negotiation.limits import DEFAULT, LIMIT_FIELDS
from tests.support.migrations import TENANTS, fetch, scratch_database


@pytest.fixture
def scratch(settings: Settings) -> Iterator[Settings]:
    with scratch_database(settings, "negotiation_mig") as own:
        yield own


def test_existing_retailers_get_the_default_policy_as_version_1(scratch: Settings) -> None:
    migrate.upgrade(scratch, "0015")
    tenants = {r["kind"]: r["id"] for r in fetch(scratch, TENANTS)}

    migrate.upgrade(scratch, "0016")
    rows = fetch(scratch, "SELECT * FROM negotiation_policies")

    assert [(r["tenant_id"], r["version"]) for r in rows] == [(tenants["retailer"], 1)]
    for name in LIMIT_FIELDS:  # the same values a new retailer gets on first use
        assert Decimal(rows[0][name]) == Decimal(getattr(DEFAULT, name)), name

    command.downgrade(migrate.alembic_config(scratch), "0015")
    gone = fetch(
        scratch, "SELECT to_regclass('offers') AS o, to_regclass('negotiation_policies') AS p"
    )
    assert (gone[0]["o"], gone[0]["p"]) == (None, None)

    migrate.upgrade(scratch, "0016")  # and up again
