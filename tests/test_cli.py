"""The `quita` command, driven as a script would: JSON out."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.config import Settings

QUITA = str(Path(sys.executable).parent / "quita")


def _head(settings: Settings) -> str | None:
    from alembic.script import ScriptDirectory

    from shared.db.migrate import alembic_config

    return ScriptDirectory.from_config(alembic_config(settings)).get_current_head()


def _quita(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "QUITA_DATABASE_URL": settings.database_url,
        "QUITA_REDIS_URL": settings.redis_url,
        "QUITA_LOG_LEVEL": "WARNING",
    }
    return subprocess.run([QUITA, *args], env=env, capture_output=True, text=True, timeout=60)


def test_db_current_prints_json(migrated: Settings) -> None:
    result = _quita(migrated, "--json", "db", "current")

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"revision": _head(migrated)}


def test_json_flag_works_after_the_subcommand_too(migrated: Settings) -> None:
    result = _quita(migrated, "db", "current", "--json")

    assert json.loads(result.stdout) == {"revision": _head(migrated)}


def test_upgrade_is_idempotent(migrated: Settings) -> None:
    result = _quita(migrated, "--json", "db", "upgrade")

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"revision": _head(migrated)}


def test_jobs_stats_counts_outbox_states(migrated: Settings) -> None:
    result = _quita(migrated, "--json", "jobs", "stats")

    assert result.returncode == 0, result.stderr
    assert set(json.loads(result.stdout)) == {"pending", "dispatched", "done", "failed"}


@pytest.fixture
def clean(migrated: Settings) -> Iterator[Settings]:
    yield migrated
    import asyncio

    import asyncpg

    from shared.config import libpq_dsn

    async def wipe() -> None:
        conn = await asyncpg.connect(libpq_dsn(migrated.admin_dsn))
        try:
            await conn.execute(
                "TRUNCATE tenants, users, oauth_clients, audit_events, outbox"
                " RESTART IDENTITY CASCADE"
            )
        finally:
            await conn.close()

    asyncio.run(wipe())


def test_an_operator_onboards_a_retailer_and_its_api_client(clean: Settings) -> None:
    created = _quita(
        clean,
        "--json",
        "tenant",
        "create",
        "--name",
        "Loja Teste CLI",
        "--kind",
        "retailer",
        "--cnpj",
        "11.222.333/0001-81",
        "--slug",
        "loja-cli",
    )
    client = _quita(
        clean,
        "--json",
        "client",
        "create",
        "--tenant",
        "loja-cli",
        "--scopes",
        "portfolio:read portfolio:write",
    )
    listed = _quita(clean, "--json", "tenant", "list")
    token = _quita(clean, "--json", "token", "--tenant", "loja-cli")

    assert created.returncode == 0, created.stderr
    assert json.loads(created.stdout)["slug"] == "loja-cli"
    credentials = json.loads(client.stdout)
    assert set(credentials) == {"client_id", "client_secret"}
    assert len(credentials["client_secret"]) >= 40
    assert "loja-cli" in [t["slug"] for t in json.loads(listed.stdout)["tenants"]]
    assert json.loads(token.stdout)["access_token"].count(".") == 2
    # The secret went to the operator's terminal only: never into a log line.
    assert credentials["client_secret"] not in client.stderr


def test_a_bad_cnpj_is_a_clear_error_not_a_traceback(clean: Settings) -> None:
    result = _quita(clean, "tenant", "create", "--name", "X", "--kind", "retailer", "--cnpj", "123")

    assert result.returncode == 2
    assert "CNPJ" in result.stderr
    assert "Traceback" not in result.stderr


def test_index_rates_are_set_and_listed(migrated: Settings) -> None:
    """An operator records IPCA months for fee rules that correct for inflation (1990s months,
    so no other test's balance sees them)."""
    assert (
        _quita(migrated, "--json", "index-rates", "set", "ipca", "1999-01", "0,70").returncode == 0
    )
    again = _quita(migrated, "--json", "index-rates", "set", "ipca", "1999-01", "0.65")
    assert json.loads(again.stdout) == {"index": "ipca", "month": "1999-01", "percent": "0.65"}
    listed = json.loads(_quita(migrated, "--json", "index-rates", "list", "ipca").stdout)
    assert {"month": "1999-01", "percent": "0.6500"} in listed["rates"]
    bad = _quita(migrated, "index-rates", "set", "ipca", "1999-13", "0.5")
    assert bad.returncode == 2 and "YYYY-MM" in bad.stderr


def test_demo_seed_runs_from_a_fresh_process(migrated: Settings) -> None:
    """What `make run` does first: seeding writes outbox jobs (a settled installment) from a
    process that never imported the job registry itself."""
    result = _quita(migrated, "--json", "demo", "seed")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["tenant"] == "Loja Demo Móveis e Eletro"
    again = _quita(migrated, "--json", "demo", "seed")
    assert again.returncode == 0, again.stderr


def test_webhooks_replay_queues_journaled_events_again(clean: Settings) -> None:
    import asyncio
    import uuid

    import asyncpg

    from shared.config import libpq_dsn

    # two events received on a day of their own (so nothing else in the database counts)
    async def journal_two() -> None:
        conn = await asyncpg.connect(libpq_dsn(clean.admin_dsn))
        try:
            receipt = uuid.uuid4()
            await conn.execute(
                "INSERT INTO webhook_receipts (id, provider, body) VALUES ($1, 'whatsapp', '{}')",
                receipt,
            )
            for state in ("pending", "processed"):
                await conn.execute(
                    """INSERT INTO webhook_events (receipt_id, provider, event_key, kind, payload,
                                                   state, received_at)
                       VALUES ($1, 'whatsapp', $2, 'whatsapp.status', '{}', $3,
                               '2999-06-01T12:00:00Z')""",
                    receipt,
                    f"status:{uuid.uuid4()}:sent",
                    state,
                )
        finally:
            await conn.close()

    asyncio.run(journal_two())

    since = ("--since", "2999-06-01")
    pending = _quita(clean, "--json", "webhooks", "replay", *since)
    everything = _quita(clean, "--json", "webhooks", "replay", *since, "--all")
    later = _quita(clean, "--json", "webhooks", "replay", "--since", "2999-06-01T10:00:00-03:00")
    wrong = _quita(clean, "webhooks", "replay", "--since", "ontem")

    assert pending.returncode == 0, pending.stderr
    assert json.loads(pending.stdout)["queued"] == 1  # the unprocessed one
    assert json.loads(everything.stdout)["queued"] == 2
    assert json.loads(later.stdout)["queued"] == 0  # 13:00 UTC, after they came in
    assert wrong.returncode != 0 and "--since" in wrong.stderr
