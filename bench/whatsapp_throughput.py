"""The WhatsApp client against the sandbox, over real HTTP.

Starts the sandbox as its own server (``quita serve sandbox``, granian, one worker), registers a
number without throughput limits and an approved template, then sends the same reminder with
64 in flight: through :class:`WhatsAppClient` (payload building, response parsing, error
mapping) and, as the ceiling, a bare ``httpx`` POST loop of the prebuilt body to the same
endpoint.  Last, a number at the default 80 messages/s is flooded for a few seconds and the
sandbox's accepted rate (the rest answered 130429) is compared with 80/s.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from bench.common import bench_settings, free_port
from shared.integrations.whatsapp import WhatsAppClient, WhatsAppError, payloads
from shared.logging import configure_logging

ROOT = Path(__file__).resolve().parent.parent
VERSION = "v24.0"
IN_FLIGHT = 64
MESSAGES = 2_000
FLOOD_SECONDS = 8.0
FLOOD_IN_FLIGHT = 16  # enough to keep the number over its limit, light enough to share 2 cores
TEMPLATE = "bench_lembrete_v1"


async def _wait_up(base: str) -> None:
    async with httpx.AsyncClient() as client:
        for _ in range(200):
            try:
                if (await client.get(f"{base}/health")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError("the sandbox did not start")


async def _setup(base: str, phone: str, throughput: int) -> None:
    async with httpx.AsyncClient(base_url=base) as client:
        r = await client.post(
            "/_sandbox/whatsapp/numbers",
            json={
                "phone_number_id": phone,
                "waba_id": "900",
                "display_phone_number": "551140000000",
                "access_token": "bench-token",
                "app_secret": "bench-secret",
                "throughput_per_second": throughput,
                "pair_burst": 1_000_000,
                "pair_interval_ms": 1,
            },
        )
        r.raise_for_status()
        r = await client.post(
            "/_sandbox/whatsapp/wabas/900",
            json={"templates": [{"name": TEMPLATE, "body": "Olá {{1}}, vence em {{2}}."}]},
        )
        r.raise_for_status()


def _to(n: int) -> str:
    return f"55119{n % 100_000_000:08d}"


async def _run(count: int, send: object) -> float:
    queue: asyncio.Queue[int] = asyncio.Queue()
    for n in range(count):
        queue.put_nowait(n)

    async def worker() -> None:
        while True:
            try:
                n = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            await send(n)  # type: ignore[operator]

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(IN_FLIGHT)))
    return count / (time.perf_counter() - started)


async def _client_rate(base: str, phone: str) -> float:
    client = WhatsAppClient(base_url=base, api_version=VERSION)
    try:

        async def send(n: int) -> None:
            await client.send_template(
                phone,
                "bench-token",
                _to(n),
                TEMPLATE,
                "pt_BR",
                callback_data=f"att:{n}",
                body=["Maria", "10/05/2026"],
            )

        await _run(200, send)  # warm the pool
        return await _run(MESSAGES, send)
    finally:
        await client.aclose()


async def _bare_rate(base: str, phone: str) -> float:
    url = f"{base}/{VERSION}/{phone}/messages"
    headers = {"Authorization": "Bearer bench-token"}
    bodies = [
        payloads.template_message(
            _to(n), TEMPLATE, "pt_BR", callback_data=f"att:{n}", body=["Maria", "10/05/2026"]
        )
        for n in range(MESSAGES)
    ]
    limits = httpx.Limits(max_connections=128, max_keepalive_connections=128)
    async with httpx.AsyncClient(limits=limits) as http:

        async def send(n: int) -> None:
            (await http.post(url, json=bodies[n], headers=headers)).raise_for_status()

        await _run(200, send)
        return await _run(MESSAGES, send)


async def _flood(base: str, phone: str) -> float:
    """Accepted sends per second when a default number is pushed far past its limit."""
    client = WhatsAppClient(base_url=base, api_version=VERSION)
    accepted: list[float] = []
    deadline = time.perf_counter() + FLOOD_SECONDS
    try:

        async def worker(w: int) -> None:
            n = w
            while time.perf_counter() < deadline:
                try:
                    await client.send_template(
                        phone,
                        "bench-token",
                        _to(n),
                        TEMPLATE,
                        "pt_BR",
                        callback_data="flood",
                        body=["Maria", "10/05/2026"],
                    )
                    accepted.append(time.perf_counter())
                except WhatsAppError as exc:
                    assert exc.code == 130429, exc
                n += FLOOD_IN_FLIGHT

        await asyncio.gather(*(worker(w) for w in range(FLOOD_IN_FLIGHT)))
    finally:
        await client.aclose()
    # whole one-second windows after the first, so the burst at the start does not count
    start = accepted[0] + 1.0
    whole = int(accepted[-1] - start)
    in_windows = [t for t in accepted if start <= t < start + whole]
    return len(in_windows) / whole


def run() -> list[str]:
    settings = bench_settings("whatsapp")
    # the flood answers thousands of 130429s, each a warning: keep the report readable
    configure_logging(settings.model_copy(update={"log_level": "ERROR"}), "bench")
    port = free_port()
    env = {
        **os.environ,
        "QUITA_DATABASE_URL": settings.database_url,
        "QUITA_REDIS_URL": settings.redis_url,
        "QUITA_SANDBOX_PORT": str(port),
        "QUITA_LOG_LEVEL": "WARNING",
    }
    quita = str(Path(sys.executable).parent / "quita")
    server = subprocess.Popen([quita, "serve", "sandbox"], env=env, cwd=ROOT)
    base = f"http://127.0.0.1:{port}"
    try:
        asyncio.run(_wait_up(base))
        asyncio.run(_setup(base, "101", 1_000_000))
        asyncio.run(_setup(base, "102", 80))
        client_rates, bare_rates = [], []
        for _ in range(3):  # alternate, report medians
            client_rates.append(asyncio.run(_client_rate(base, "101")))
            bare_rates.append(asyncio.run(_bare_rate(base, "101")))
        client_rate, bare = sorted(client_rates)[1], sorted(bare_rates)[1]
        flood = asyncio.run(_flood(base, "102"))
    finally:
        server.terminate()
        server.wait(timeout=10)
    return [
        f"{'whatsapp client -> sandbox (64 in flight)':<42} {client_rate:>8,.0f} msg/s"
        f"   ceiling {bare:>8,.0f} msg/s (bare httpx)   ratio {client_rate / bare:.2f}",
        f"{'sandbox 130429 limit, default number':<42} {flood:>8.1f} msg/s accepted"
        f"   (limit 80/s: {100 * (flood - 80) / 80:+.1f} %)",
    ]
