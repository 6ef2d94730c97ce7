"""Which Postgres and Redis the suite runs against.

``QUITA_TEST_DATABASE_URL`` / ``QUITA_TEST_REDIS_URL`` when set; else the servers on 127.0.0.1 if
they answer; else embedded ones under ``.quita/test`` (started once by the xdist controller).
``QUITA_TEST_EMBEDDED=1`` forces the embedded ones.
"""

from __future__ import annotations

import os
from pathlib import Path

from shared import embedded

ROOT = Path(__file__).resolve().parents[2]
EMBEDDED_DIR = ROOT / ".quita" / "test"


def resolve() -> tuple[dict[str, str], bool]:
    """Return the environment to export and whether embedded servers were started."""
    given_db = os.environ.get("QUITA_TEST_DATABASE_URL")
    given_redis = os.environ.get("QUITA_TEST_REDIS_URL")
    if given_db and given_redis:
        return {}, False
    db, redis, started = embedded.resolve_local_services(
        EMBEDDED_DIR, force_embedded=os.environ.get("QUITA_TEST_EMBEDDED") == "1"
    )
    return {
        "QUITA_TEST_DATABASE_URL": given_db or db,
        "QUITA_TEST_REDIS_URL": given_redis or redis,
    }, started


def stop_embedded() -> None:
    embedded.stop(EMBEDDED_DIR)
