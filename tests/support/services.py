"""Which Postgres and Redis the suite runs against.

``QUITA_TEST_DATABASE_URL`` / ``QUITA_TEST_REDIS_URL`` when set; else the servers on 127.0.0.1 if
they answer; else embedded ones under ``.quita/test`` (started once by the xdist controller).
"""

from __future__ import annotations

import os
from pathlib import Path

from shared import embedded

ROOT = Path(__file__).resolve().parents[2]
EMBEDDED_DIR = ROOT / ".quita" / "test"


def resolve() -> tuple[dict[str, str], bool]:
    """Return the environment to export and whether embedded servers were started."""
    env: dict[str, str] = {}
    started = False
    force = os.environ.get("QUITA_TEST_EMBEDDED") == "1"
    if not os.environ.get("QUITA_TEST_DATABASE_URL"):
        if not force and embedded.tcp_answers("127.0.0.1", 5432):
            env["QUITA_TEST_DATABASE_URL"] = "postgresql://postgres@127.0.0.1:5432/postgres"
        else:
            env["QUITA_TEST_DATABASE_URL"] = embedded.start_postgres(
                EMBEDDED_DIR / "pg", "postgres"
            )
            started = True
    if not os.environ.get("QUITA_TEST_REDIS_URL"):
        if not force and embedded.tcp_answers("127.0.0.1", 6379):
            env["QUITA_TEST_REDIS_URL"] = "redis://127.0.0.1:6379/0"
        else:
            env["QUITA_TEST_REDIS_URL"] = embedded.start_redis(EMBEDDED_DIR / "redis")
            started = True
    return env, started


def stop_embedded() -> None:
    embedded.stop(EMBEDDED_DIR)
