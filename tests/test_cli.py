"""The `quita` command, driven as a script would: JSON out."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

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
