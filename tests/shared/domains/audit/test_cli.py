"""``quita audit verify``: exit 0 with a summary when intact, 1 naming the break."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

from shared.config import Settings
from tests.shared.domains.audit.conftest import Trail

QUITA = str(Path(sys.executable).parent / "quita")


async def _quita(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "QUITA_DATABASE_URL": settings.database_url,
        "QUITA_REDIS_URL": settings.redis_url,
        "QUITA_LOG_LEVEL": "WARNING",
    }
    return await asyncio.to_thread(
        subprocess.run, [QUITA, *args], env=env, capture_output=True, text=True, timeout=60
    )


async def test_verify_names_the_edited_event_and_exits_1(trail: Trail, migrated: Settings) -> None:
    tenant = trail.tenant()
    ids = await trail.write(tenant, 3)
    await trail.seal_until(ids)

    clean = await _quita(migrated, "audit", "verify", "--tenant", str(tenant))
    await trail.as_owner("UPDATE audit_events SET action = 'x.y' WHERE id = :id", id=ids[1])
    broken = await _quita(migrated, "audit", "verify", "--tenant", str(tenant))
    as_json = await _quita(migrated, "--json", "audit", "verify", "--tenant", str(tenant))

    assert clean.returncode == 0, clean.stderr
    assert "audit trail intact: 1 chain(s), 1 seal(s), 3 sealed event(s)" in clean.stdout
    assert broken.returncode == 1
    assert f"tenant {tenant}, seal #1, event {ids[1]}: edited" in broken.stdout
    assert f"tenant {tenant}: first broken seal #1" in broken.stdout
    report = json.loads(as_json.stdout)
    assert report["chains"][0]["first_break"] == 1
    assert [(p["kind"], p["event_id"]) for p in report["problems"]] == [("edited", ids[1])]


async def test_seal_seals_what_is_ready(trail: Trail, migrated: Settings) -> None:
    tenant = trail.tenant()
    await trail.write(tenant, 2)

    result = await _quita(migrated, "--json", "audit", "seal", "--budget", "5")

    assert result.returncode == 0, result.stderr
    assert set(json.loads(result.stdout)) == {"seals", "events"}


async def test_a_bad_tenant_is_a_usage_error(migrated: Settings) -> None:
    result = await _quita(migrated, "audit", "verify", "--tenant", "loja")

    assert result.returncode == 2
    assert "not a tenant id" in result.stderr
