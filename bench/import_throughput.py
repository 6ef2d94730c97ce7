"""Bulk import throughput: 100,000 installments of 30,000 customers from a pt-BR CSV, through the
whole pipeline as ``quita import`` runs it (decode, parse, validate, COPY into staging, set-based
merge into customers, phones and installments, audit), against the ceiling: a bare binary
``COPY`` of the same 100,000 already-typed rows straight into ``installments`` (as the owner,
customers already there), measured in the same run on the same table.

Each timed phase starts after a ``CHECKPOINT`` (when the owner may ask for one), so neither
pays for the other's writes.

Memory: the CSV is written to a temporary file and streamed, so the pipeline should hold a
batch at a time.  Reported: the process's RSS before the pipeline, the peak RSS sampled every
20 ms during it (``/proc/self/statm`` via psutil), and ``getrusage(RUSAGE_SELF).ru_maxrss``
right after it (the lifetime peak so far, before the ceiling builds its 100,000 tuples).
"""

from __future__ import annotations

import asyncio
import os
import resource
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import psutil

from bench.common import bench_settings, ratio_line
from shared.config import Settings, libpq_dsn

ROWS = 100_000
CUSTOMERS = 30_000
HEADER = "Código Cliente;Nome;CPF;Telefone;E-mail;UF;Cidade;Contrato;Parcela;Valor;Vencimento\r\n"
_UFS = ("SP", "RJ", "MG", "BA", "PR", "RS", "PE", "CE", "SC", "GO")
_CITIES = ("São Paulo", "Rio de Janeiro", "Belo Horizonte", "Salvador", "Curitiba")
_FIRST = ("Ana", "João", "Maria", "José", "Carla", "Paulo", "Lúcia", "Marcos", "Bruna", "Tiago")
_LAST = ("Silva", "Souza", "Oliveira", "Santos", "Lima", "Pereira", "Costa", "Rodrigues")


def _cpf(n: int) -> str:
    base = f"{(n * 7_919 + 123_456_789) % 1_000_000_000:09d}"
    digits = [int(c) for c in base]
    for length in (9, 10):
        total = sum(d * (length + 1 - i) for i, d in enumerate(digits[:length]))
        check = total * 10 % 11
        digits.append(0 if check == 10 else check)
    s = "".join(map(str, digits))
    return f"{s[:3]}.{s[3:6]}.{s[6:9]}-{s[9:]}"


def _installments() -> Iterator[tuple[int, int, int, Decimal, date]]:
    """(customer, number, count, principal, due date): 10,000 customers with 4 installments and
    20,000 with 3, grouped by customer as ERP exports list them."""
    start = date(2026, 1, 5)
    for c in range(CUSTOMERS):
        count = 4 if c < ROWS - 3 * CUSTOMERS else 3
        principal = Decimal(1000 + (c * 37) % 250_000).scaleb(-2)
        for n in range(1, count + 1):
            yield c, n, count, principal, start + timedelta(days=30 * n + c % 28)


def _brl(value: Decimal) -> str:
    integer, cents = divmod(int(value * 100), 100)
    return f"{integer:,}".replace(",", ".") + f",{cents:02d}"


def write_csv(path: Path) -> int:
    rows = 0
    with path.open("w", encoding="utf-8-sig", newline="") as f:
        f.write(HEADER)
        for c, n, count, principal, due in _installments():
            name = f"{_FIRST[c % 10]} {_LAST[(c // 10) % 8]} {c}"
            f.write(
                f"CL{c:06d};{name};{_cpf(c)};(11) 9{c % 10_000:04d}-{(c * 7) % 10_000:04d};"
                f"cliente{c}@exemplo.com.br;{_UFS[c % 10]};{_CITIES[c % 5]};CT{c:06d};"
                f"{n}/{count};{_brl(principal)};{due.strftime('%d/%m/%Y')}\r\n"
            )
            rows += 1
    return rows


class _PeakRss:
    """Samples this process's RSS in a thread while the block runs."""

    def __init__(self) -> None:
        self.process = psutil.Process(os.getpid())
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.process.memory_info().rss)
            self._stop.wait(0.02)

    def __enter__(self) -> _PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.process.memory_info().rss)


async def _tenant(settings: Settings, name: str) -> tuple[uuid.UUID, str]:
    from shared.db import create_engine, create_sessionmaker
    from shared.domains.identity import schemas, service
    from shared.domains.identity.service import CLI_ACTOR
    from shared.tenancy import SYSTEM, use_scope

    engine = create_engine(settings, process="bench")
    try:
        async with create_sessionmaker(engine)() as session:
            await use_scope(session, SYSTEM)
            tenant = await service.create_tenant(
                session, schemas.TenantCreate(name=name, kind="retailer"), CLI_ACTOR
            )
            await session.commit()
            return tenant.id, tenant.slug
    finally:
        await engine.dispose()


async def _pipeline(settings: Settings, path: Path) -> dict[str, Any]:
    from services.cli_import import run_import
    from shared.db import create_engine, create_sessionmaker
    from shared.domains.portfolio.imports.service import Progress

    _, slug = await _tenant(settings, "Bench Import")
    phases: dict[str, float] = {}

    def on_progress(p: Progress) -> None:
        phases.setdefault(p.phase, time.perf_counter())

    engine = create_engine(settings, process="bench")
    try:
        maker = create_sessionmaker(engine)
        rss_before = psutil.Process(os.getpid()).memory_info().rss
        with _PeakRss() as sampler:
            started = time.perf_counter()
            out, accepted = await run_import(maker, tenant=slug, path=path, on_progress=on_progress)
            elapsed = time.perf_counter() - started
    finally:
        await engine.dispose()
    assert accepted and out.status == "done", out.error
    assert out.installments_created == ROWS, out
    assert out.customers_created == CUSTOMERS, out
    merging_started = phases.get("merging", phases.get("done", started))
    return {
        "rows_per_s": ROWS / elapsed,
        "seconds": elapsed,
        "staging_s": merging_started - started,
        "merging_s": started + elapsed - merging_started,
        "rss_before": rss_before,
        "rss_peak": sampler.peak,
        "maxrss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    }


async def _bare_copy(settings: Settings) -> float:
    """The ceiling: COPY the same rows, already typed, into ``installments`` as the owner."""
    tenant_id, _ = await _tenant(settings, "Bench Bare Copy")
    conn = await asyncpg.connect(libpq_dsn(settings.admin_dsn))
    try:
        customer_ids = [uuid.uuid4() for _ in range(CUSTOMERS)]
        await conn.copy_records_to_table(
            "customers",
            records=[
                (i, tenant_id, f"CL{c:06d}", f"Cliente {c}") for c, i in enumerate(customer_ids)
            ],
            columns=("id", "tenant_id", "external_id", "name"),
        )
        records = [
            (
                uuid.uuid4(),
                tenant_id,
                customer_ids[c],
                f"CT{c:06d}-{n}",
                f"CT{c:06d}",
                n,
                count,
                principal,
                due,
            )
            for c, n, count, principal, due in _installments()
        ]
        columns = (
            "id",
            "tenant_id",
            "customer_id",
            "external_id",
            "contract",
            "number",
            "count",
            "principal",
            "due_date",
        )
        started = time.perf_counter()
        await conn.copy_records_to_table("installments", records=records, columns=columns)
        elapsed = time.perf_counter() - started
        copied = await conn.fetchval(
            "SELECT count(*) FROM installments WHERE tenant_id = $1", tenant_id
        )
        assert copied == ROWS
        return ROWS / elapsed
    finally:
        await conn.close()


async def _checkpoint(settings: Settings) -> None:
    """Start each timed phase with no checkpoint pending from the previous one's writes (when
    the owner may ask for one)."""
    conn = await asyncpg.connect(libpq_dsn(settings.admin_dsn))
    try:
        await conn.execute("CHECKPOINT")
    except asyncpg.InsufficientPrivilegeError:
        pass
    finally:
        await conn.close()


async def _run(settings: Settings) -> list[str]:
    with tempfile.TemporaryDirectory(prefix="quita-bench-import-") as tmp:
        path = Path(tmp) / "carteira.csv"
        rows = write_csv(path)
        assert rows == ROWS
        size = path.stat().st_size
        await _checkpoint(settings)
        pipeline = await _pipeline(settings, path)
    await _checkpoint(settings)
    ceiling = await _bare_copy(settings)
    mb = 1024 * 1024
    return [
        ratio_line(
            f"import ({ROWS:,} rows, {CUSTOMERS:,} customers)",
            pipeline["rows_per_s"],
            ceiling,
            "rows/s",
        ),
        f"  file {size / mb:,.1f} MiB; {pipeline['seconds']:.1f}s in all: staging (parse,"
        f" validate, COPY; a second connection merging alongside) {pipeline['staging_s']:.1f}s,"
        f" then the rest of the merge {pipeline['merging_s']:.1f}s",
        f"  memory: RSS {pipeline['rss_before'] / mb:,.0f} MiB before, peak"
        f" {pipeline['rss_peak'] / mb:,.0f} MiB during the import (sampled every 20 ms);"
        f" ru_maxrss {pipeline['maxrss'] / mb:,.0f} MiB",
    ]


def run() -> list[str]:
    return asyncio.run(_run(bench_settings("import")))
