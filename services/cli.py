"""``quita``: the platform operator's command line.

Every subcommand accepts ``--json`` and then prints one JSON document, so scripts can drive it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from shared.config import QUEUES, Settings, get_settings, reset_settings

ROOT = Path(__file__).resolve().parent.parent
Handler = Callable[[argparse.Namespace, Settings], Any]


def _out(args: argparse.Namespace, data: dict[str, Any], human: str) -> None:
    if args.json:
        print(json.dumps(data, default=str))
    else:
        print(human)


def _run_async(coro: Coroutine[Any, Any, Any]) -> Any:
    return asyncio.run(coro)


# --- db ---------------------------------------------------------------------------------------


def cmd_db_upgrade(args: argparse.Namespace, settings: Settings) -> None:
    from shared.db import migrate

    migrate.upgrade(settings, args.revision)
    revision = migrate.current(settings)
    _out(args, {"revision": revision}, f"database at revision {revision}")


def cmd_db_current(args: argparse.Namespace, settings: Settings) -> None:
    from shared.db import migrate

    revision = migrate.current(settings)
    _out(args, {"revision": revision}, f"database at revision {revision}")


def cmd_db_revision(args: argparse.Namespace, settings: Settings) -> None:
    from alembic import command

    from shared.db import migrate

    script = command.revision(
        migrate.alembic_config(settings), message=args.message, autogenerate=args.autogenerate
    )
    path = getattr(script, "path", None)
    _out(args, {"path": path}, f"created {path}")


# --- demo -------------------------------------------------------------------------------------


def cmd_demo_seed(args: argparse.Namespace, settings: Settings) -> None:
    summary = _run_async(_seed(settings))
    _out(
        args,
        {
            "tenant_id": summary.tenant_id,
            "tenant": summary.tenant_name,
            "client_id": summary.client_id,
            "access_token": summary.access_token,
        },
        f"demo retailer: {summary.tenant_name} ({summary.tenant_id})\n"
        f"access token (15 min): {summary.access_token}",
    )


async def _seed(settings: Settings) -> Any:
    from shared import demo
    from shared.db import create_engine, create_sessionmaker
    from shared.tenancy import SYSTEM, use_scope

    engine = create_engine(settings, process="cli")
    try:
        async with create_sessionmaker(engine)() as session:
            await use_scope(session, SYSTEM)
            summary = await demo.seed(session, settings)
            await session.commit()
            return summary
    finally:
        await engine.dispose()


def cmd_demo_link(args: argparse.Namespace, settings: Settings) -> None:
    """Keep the demo retailer's WhatsApp number registered in the sandbox (Procfile)."""
    _run_async(_link(settings, once=args.once))


async def _link(settings: Settings, *, once: bool) -> None:
    import httpx
    from sqlalchemy import select

    from shared import demo, demo_sandbox
    from shared.db import create_engine, create_sessionmaker
    from shared.logging import get_logger
    from shared.models import Channel, Tenant
    from shared.tenancy import SYSTEM, use_scope

    log = get_logger("quita.demo")
    engine = create_engine(settings, process="cli")
    maker = create_sessionmaker(engine)
    try:
        async with httpx.AsyncClient(base_url=settings.base_url("sandbox"), timeout=5) as http:
            while True:
                try:
                    async with maker() as session:
                        await use_scope(session, SYSTEM)
                        rows = await session.scalars(
                            select(Channel)
                            .join(Tenant, Tenant.id == Channel.tenant_id)
                            .where(Tenant.slug == demo.DEMO_SLUG, Channel.kind != "email")
                        )
                        for channel in rows:
                            result = await demo_sandbox.link(session, http, settings, channel)
                            if result.registered or result.submitted:
                                log.info(
                                    "demo.sandbox_linked",
                                    registered=result.registered,
                                    submitted=result.submitted,
                                )
                        tenant_id = await session.scalar(
                            select(Tenant.id).where(Tenant.slug == demo.DEMO_SLUG)
                        )
                        if tenant_id is not None and await demo_sandbox.link_pix(
                            session, http, settings, tenant_id
                        ):
                            log.info("demo.sandbox_psp_linked")
                        await session.commit()
                        if once:
                            return
                except httpx.HTTPError as exc:  # the sandbox is not up yet, or restarting
                    log.info("demo.sandbox_unreachable", error=type(exc).__name__)
                    if once:
                        raise SystemExit(1) from exc
                await asyncio.sleep(5)
    finally:
        await engine.dispose()


# --- jobs -------------------------------------------------------------------------------------


def cmd_jobs_ping(args: argparse.Namespace, settings: Settings) -> None:
    result = _run_async(_ping(settings, args.timeout))
    if result["status"] != "done":
        _out(args, result, f"job {result['job_id']} not done after {args.timeout}s")
        raise SystemExit(1)
    _out(args, result, f"job {result['job_id']} done in {result['seconds']}s")


async def _ping(settings: Settings, timeout: float) -> dict[str, Any]:
    from sqlalchemy import text

    import shared.tasks  # noqa: F401
    from shared.db import create_engine, create_sessionmaker
    from shared.queue import enqueue

    engine = create_engine(settings, process="cli")
    started = time.monotonic()
    try:
        maker = create_sessionmaker(engine)
        async with maker() as session:
            job_id = await enqueue(session, "system.ping", note="quita jobs ping")
            await session.commit()
        while time.monotonic() - started < timeout:
            async with maker() as session:
                done = (
                    await session.execute(
                        text("SELECT done_at IS NOT NULL FROM outbox WHERE id = :id"),
                        {"id": job_id},
                    )
                ).scalar_one()
            if done:
                return {
                    "job_id": job_id,
                    "status": "done",
                    "seconds": round(time.monotonic() - started, 3),
                }
            await asyncio.sleep(0.1)
        return {"job_id": job_id, "status": "pending", "seconds": timeout}
    finally:
        await engine.dispose()


def cmd_jobs_stats(args: argparse.Namespace, settings: Settings) -> None:
    stats = _run_async(_stats(settings))
    human = "\n".join(f"{k:>12}: {v}" for k, v in stats.items())
    _out(args, stats, human)


async def _stats(settings: Settings) -> dict[str, int]:
    from sqlalchemy import text

    from shared.db import create_engine

    engine = create_engine(settings, process="cli")
    try:
        async with engine.connect() as conn:
            row = (
                await conn.execute(
                    text(
                        """SELECT count(*) FILTER (WHERE dispatched_at IS NULL AND done_at IS NULL
                                            AND failed_at IS NULL),
                          count(*) FILTER (WHERE dispatched_at IS NOT NULL AND done_at IS NULL
                                            AND failed_at IS NULL),
                          count(*) FILTER (WHERE done_at IS NOT NULL),
                          count(*) FILTER (WHERE failed_at IS NOT NULL)
                   FROM outbox"""
                    )
                )
            ).one()
        return dict(zip(("pending", "dispatched", "done", "failed"), row, strict=True))
    finally:
        await engine.dispose()


# --- webhooks ---------------------------------------------------------------------------------


def cmd_webhooks_replay(args: argparse.Namespace, settings: Settings) -> None:
    from datetime import UTC, datetime

    try:
        since = datetime.fromisoformat(args.since)
    except ValueError:
        raise SystemExit(f"--since: not an ISO date or instant: {args.since!r}") from None
    if since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    queued = _run_async(_replay(settings, since, args.all))
    which = "journaled" if args.all else "unprocessed"
    _out(args, {"queued": queued, "since": since.isoformat()}, f"{queued} {which} events queued")


async def _replay(settings: Settings, since: Any, include_processed: bool) -> int:
    import shared.tasks  # noqa: F401
    from shared.db import create_engine, create_sessionmaker
    from shared.domains.inbound.journal import replay
    from shared.tenancy import SYSTEM, use_scope

    engine = create_engine(settings, process="cli")
    try:
        async with create_sessionmaker(engine)() as session:
            await use_scope(session, SYSTEM)
            queued = await replay(session, since=since, include_processed=include_processed)
            await session.commit()
        return queued
    finally:
        await engine.dispose()


# --- processes --------------------------------------------------------------------------------

SERVICES = {
    "api": "services.api.app:create_app",
    "webhooks": "services.webhooks.app:create_app",
    "sandbox": "services.sandbox.app:create_app",
}


def cmd_serve(args: argparse.Namespace, settings: Settings) -> None:
    port = {
        "api": settings.api_port,
        "webhooks": settings.webhooks_port,
        "sandbox": settings.sandbox_port,
    }[args.service]
    argv = [
        _bin("granian"),
        "--interface",
        "asgi",
        "--factory",
        SERVICES[args.service],
        "--host",
        settings.host,
        "--port",
        str(port),
        "--workers",
        str(args.workers),
        "--no-ws",
        "--log-level",
        "warning",
    ]
    os.execv(argv[0], argv)  # noqa: S606


def cmd_worker(args: argparse.Namespace, settings: Settings) -> None:
    argv = [
        _bin("dramatiq"),
        "services.worker.main",
        "--skip-logging",
        "--processes",
        str(args.processes or settings.worker_processes),
        "--threads",
        str(args.threads or settings.worker_threads),
        "--queues",
        *(args.queues or QUEUES),
    ]
    os.execv(argv[0], argv)  # noqa: S606


def cmd_relay(args: argparse.Namespace, settings: Settings) -> None:
    from services.worker import relay

    relay.main(settings)


def cmd_scheduler(args: argparse.Namespace, settings: Settings) -> None:
    from services.worker import scheduler

    scheduler.main(settings)


def _bin(name: str) -> str:
    here = Path(sys.executable).parent / name
    return str(here) if here.exists() else (shutil.which(name) or name)


# --- embedded services and the dev launcher ----------------------------------------------------


def embedded_environment(settings: Settings, *, force: bool = False) -> dict[str, str]:
    """Start the embedded servers the configuration lacks; returns the variables to export."""
    from shared import embedded

    want_db = force or settings.embedded or "database_url" not in settings.model_fields_set
    want_redis = force or settings.embedded or "redis_url" not in settings.model_fields_set
    env: dict[str, str] = {}
    if want_db:
        env["QUITA_DATABASE_URL"] = embedded.start_postgres(
            (settings.data_dir / "pg").resolve(), "quita"
        )
    if want_redis:
        env["QUITA_REDIS_URL"] = embedded.start_redis((settings.data_dir / "redis").resolve())
    return env


def running_embedded_environment(settings: Settings) -> dict[str, str]:
    """For commands run beside `make run`: the embedded servers' URLs, where they are up and
    the configuration does not name other servers."""
    from shared import embedded

    env: dict[str, str] = {}
    if settings.embedded or "database_url" not in settings.model_fields_set:
        url = embedded.running_postgres(settings.data_dir / "pg", "quita")
        if url:
            env["QUITA_DATABASE_URL"] = url
    if settings.embedded or "redis_url" not in settings.model_fields_set:
        url = embedded.running_redis(settings.data_dir / "redis")
        if url:
            env["QUITA_REDIS_URL"] = url
    return env


def cmd_services_start(args: argparse.Namespace, settings: Settings) -> None:
    env = embedded_environment(settings, force=True)
    _out(args, env, "\n".join(f"export {k}='{v}'" for k, v in env.items()))


def cmd_services_stop(args: argparse.Namespace, settings: Settings) -> None:
    from shared import embedded

    embedded.stop(settings.data_dir)
    _out(args, {"stopped": True}, "embedded services stopped")


def cmd_run(args: argparse.Namespace, settings: Settings) -> None:
    """The whole platform with demo data: embedded servers if needed, migrate, seed, Procfile."""
    from shared import embedded

    started = embedded_environment(settings)
    os.environ.update(started)
    reset_settings()
    settings = get_settings()
    cmd_db_upgrade(argparse.Namespace(json=False, revision="head"), settings)
    summary = _run_async(_seed(settings))
    print(_banner(settings, summary, started), flush=True)
    if "whatsapp_graph_url" not in settings.model_fields_set:
        # the demo's numbers live in the sandbox: every process talks to it, not to Meta
        os.environ["QUITA_WHATSAPP_GRAPH_URL"] = settings.base_url("sandbox")
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "PYTHONUNBUFFERED": "1",
    }
    honcho = subprocess.Popen(
        [_bin("honcho"), "start", "-f", str(ROOT / "Procfile"), "-d", str(ROOT)], env=env
    )
    # Ctrl-C reaches honcho too (same process group); SIGTERM is forwarded so a supervisor can
    # stop everything the same way.
    signal.signal(signal.SIGTERM, lambda *_: honcho.send_signal(signal.SIGTERM))
    try:
        while True:
            try:
                code = honcho.wait()
                break
            except KeyboardInterrupt:
                continue
    finally:
        if started:
            embedded.stop(settings.data_dir)
    raise SystemExit(0 if code in (0, 130, 143, -signal.SIGINT, -signal.SIGTERM) else code)


def _banner(settings: Settings, summary: Any, started: dict[str, str]) -> str:
    where = "embedded (data in .quita/)" if started else "configured servers"
    api, auth = settings.base_url("api"), 'curl -H "Authorization: Bearer $TOKEN"'
    sandbox = settings.base_url("sandbox")
    return f"""
Quita is starting — Postgres and Redis: {where}
  API        {settings.base_url("api")}        (OpenAPI: {settings.base_url("api")}/schema)
  Webhooks   {settings.base_url("webhooks")}
  Sandbox    {sandbox}        (debtors' WhatsApp chats: {sandbox}/_sandbox/chat)
  Demo retailer: {summary.tenant_name} ({summary.tenant_id})
    sign-in (OAuth consent page): {summary.email} / {summary.password}
    an API token for its ERP client, valid 15 min (more: .venv/bin/quita token --tenant loja-demo)
    TOKEN={summary.access_token}
    {auth} {api}/v1/me
    {auth} "{api}/v1/installments/?overdue_min=1"
    {auth} {api}/v1/installments/PAR-0003-01/balance
    {auth} {api}/v1/installments/PAR-0003-01/pix
    {auth} {api}/v1/channels/        (the demo WhatsApp number lives in the sandbox)
Ctrl-C stops everything; the data stays for the next run.
"""


# --- parser -----------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    # --json is accepted before or after the subcommand.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--json", action="store_true", default=argparse.SUPPRESS, help="print one JSON document"
    )
    parser = argparse.ArgumentParser(prog="quita", description=__doc__)
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    sub = parser.add_subparsers(dest="command", required=True)

    def add(name: str, handler: Handler, help_: str, parent: Any = sub) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = parent.add_parser(name, help=help_, parents=[common])
        p.set_defaults(handler=handler)
        return p

    db = sub.add_parser("db", help="database schema").add_subparsers(dest="db", required=True)
    add("upgrade", cmd_db_upgrade, "create the role and migrate to a revision", db).add_argument(
        "revision", nargs="?", default="head"
    )
    add("current", cmd_db_current, "print the current revision", db)
    rev = add("revision", cmd_db_revision, "create a migration script", db)
    rev.add_argument("-m", "--message", required=True)
    rev.add_argument("--autogenerate", action="store_true")

    demo = sub.add_parser("demo", help="demo data").add_subparsers(dest="demo", required=True)
    add("seed", cmd_demo_seed, "create the demo retailer (idempotent)", demo)
    link = add(
        "link", cmd_demo_link, "keep the demo WhatsApp number registered in the sandbox", demo
    )
    link.add_argument("--once", action="store_true", help="link once and exit")

    jobs = sub.add_parser("jobs", help="background jobs").add_subparsers(dest="jobs", required=True)
    ping = add("ping", cmd_jobs_ping, "run a no-op job end to end and wait for it", jobs)
    ping.add_argument("--timeout", type=float, default=30.0)
    add("stats", cmd_jobs_stats, "outbox counts by state", jobs)

    hooks = sub.add_parser("webhooks", help="the provider webhook journal")
    hsub = hooks.add_subparsers(dest="webhooks", required=True)
    again = add(
        "replay",
        cmd_webhooks_replay,
        "process journaled events again (idempotent: what is applied stays applied)",
        hsub,
    )
    again.add_argument(
        "--since", required=True, help="ISO date or instant (UTC unless it says otherwise)"
    )
    again.add_argument(
        "--all", action="store_true", help="also events already processed or ignored"
    )

    services = sub.add_parser("services", help="embedded Postgres and Redis")
    ssub = services.add_subparsers(dest="services", required=True)
    add("start", cmd_services_start, "start them and print their URLs", ssub)
    add("stop", cmd_services_stop, "stop them (data stays in .quita/)", ssub)

    serve = add("serve", cmd_serve, "run an HTTP service with granian")
    serve.add_argument("service", choices=sorted(SERVICES))
    serve.add_argument("--workers", type=int, default=1)
    worker = add("worker", cmd_worker, "run Dramatiq workers on every queue")
    worker.add_argument("--processes", type=int)
    worker.add_argument("--threads", type=int)
    worker.add_argument("--queues", nargs="*", choices=QUEUES)
    add("relay", cmd_relay, "run the outbox relay")
    add("scheduler", cmd_scheduler, "run the scheduler")
    add("run", cmd_run, "the whole platform with demo data (what `make run` calls)")

    from services import cli_audit, cli_identity, cli_import, cli_money

    cli_audit.register(sub, add, _out)
    cli_identity.register(sub, add, _out)
    cli_import.register(sub, add, _out)
    cli_money.register(sub, add, _out)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    settings = get_settings()
    if args.handler not in (cmd_run, cmd_services_start, cmd_services_stop):
        found = running_embedded_environment(settings)
        if found:
            os.environ.update(found)
            reset_settings()
            settings = get_settings()
    args.handler(args, settings)


if __name__ == "__main__":
    main()
