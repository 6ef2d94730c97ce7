"""The import service end to end against Postgres: upsert rules, phones, batches, resuming, the
merge job and the CLI."""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from shared.brazil.numbers import parse_amount, parse_date
from shared.db import SessionMaker
from shared.domains.portfolio.imports import merge, schemas, service, tasks
from shared.domains.portfolio.imports.service import CLI_ACTOR, Progress
from shared.models import DataImport, Tenant
from shared.tenancy import SYSTEM, tenant_scope, use_scope
from tests.shared.domains.portfolio.imports.support import fake_cpf, formatted_cpf, simple_csv
from tests.support.identity import Identities


@pytest.fixture
async def tenant(ids: Identities, session: AsyncSession) -> Tenant:
    shop = await ids.party("Loja Serviço")
    await use_scope(session, tenant_scope(shop.id))
    return shop.tenant


async def _chunks(body: bytes, size: int = 4096) -> AsyncIterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


async def run_import(
    session: AsyncSession,
    tenant: Tenant,
    body: bytes,
    *,
    batch_rows: int = service.MERGE_BATCH_ROWS,
    **kwargs: Any,
) -> schemas.ImportOut:
    received = await service.receive(
        session,
        tenant_id=tenant.id,
        actor=CLI_ACTOR,
        chunks=_chunks(body),
        enqueue_merge=False,
        **kwargs,
    )
    await service.merge(session, received.import_id, fields=received.fields, batch_rows=batch_rows)
    imp = await service.reload(session, received.import_id)
    assert imp is not None
    return await service.import_out(session, imp)


async def _one(session: AsyncSession, sql: str, **params: Any) -> Any:
    return (await session.execute(text(sql), params)).one()


async def _all(session: AsyncSession, sql: str, **params: Any) -> list[Any]:
    return list((await session.execute(text(sql), params)).all())


async def test_columns_absent_from_the_file_keep_their_stored_values(
    session: AsyncSession, tenant: Tenant
) -> None:
    full = (
        "codigo_cliente;nome;cpf;email;uf;cidade;segmento\n"
        f"A1;Ana Lima;{fake_cpf(1)};ana@exemplo.com;SP;Santos;ouro\n"
    )
    await run_import(session, tenant, full.encode())
    await session.execute(
        text(
            "UPDATE customers SET opted_out = '{sms}', do_not_contact = true"
            " WHERE external_id = 'A1'"
        )
    )

    partial = await run_import(session, tenant, b"codigo_cliente;nome;cidade\nA1;Ana Lima;\n")

    assert partial.customers_updated == 1
    row = await _one(
        session,
        "SELECT name, document, email, state, city, tags, opted_out, do_not_contact"
        " FROM customers WHERE external_id = 'A1'",
    )
    assert tuple(row) == (
        "Ana Lima",
        fake_cpf(1),
        "ana@exemplo.com",
        "SP",
        None,  # the column is there and empty: cleared
        ["ouro"],
        ["sms"],  # never touched by imports
        True,
    )


async def test_phones_become_the_listed_ones_in_order_and_old_ones_are_kept_inactive(
    session: AsyncSession, tenant: Tenant
) -> None:
    head = "codigo_cliente;nome;telefone\n"
    await run_import(
        session, tenant, (head + "A1;Ana;(11) 91111-1111 | (11) 92222-2222\n").encode()
    )
    await session.execute(
        text(
            "UPDATE customer_phones SET status = 'wrong_person', whatsapp_id = '5511911111111'"
            " WHERE number = '+5511911111111'"
        )
    )

    moved = await run_import(
        session, tenant, (head + "A1;Ana;(11) 93333-3333 / (11) 92222-2222\n").encode()
    )
    phones = await _all(
        session,
        "SELECT number, position, active, status, whatsapp_id FROM customer_phones"
        " ORDER BY active DESC, position",
    )

    assert moved.customers_updated == 1
    assert [(p.number, p.position, p.active) for p in phones] == [
        ("+5511933333333", 0, True),
        ("+5511922222222", 1, True),
        ("+5511911111111", 0, False),
    ]
    assert (phones[2].status, phones[2].whatsapp_id) == ("wrong_person", "5511911111111")

    back = await run_import(session, tenant, (head + "A1;Ana;(11) 91111-1111\n").encode())
    active = await _all(
        session, "SELECT number, status FROM customer_phones WHERE active ORDER BY position"
    )
    assert back.customers_updated == 1
    assert [(p.number, p.status) for p in active] == [("+5511911111111", "wrong_person")]

    same = await run_import(session, tenant, (head + "A1;Ana;(11) 91111-1111\n").encode())
    assert same.customers_updated == 0


async def test_the_last_line_of_a_customer_wins_across_batches(
    session: AsyncSession, tenant: Tenant
) -> None:
    body = (
        "codigo_cliente;nome;uf;id_parcela;valor;vencimento\n"
        "A1;Ana Primeira;SP;P1;10,00;01/01/2026\n"
        "B1;Bruno;RJ;P2;20,00;01/01/2026\n"
        "A1;Ana Segunda;MG;P3;30,00;01/01/2026\n"
        "A1;Ana Terceira;BA;P4;40,00;01/01/2026\n"
        "B1;Bruno Final;RJ;P5;50,00;01/01/2026\n"
    )

    out = await run_import(session, tenant, body.encode(), batch_rows=2)

    assert (out.rows_merged, out.installments_created, out.customers_created) == (5, 5, 2)
    rows = await _all(session, "SELECT external_id, name, state FROM customers ORDER BY 1")
    assert [tuple(r) for r in rows] == [("A1", "Ana Terceira", "BA"), ("B1", "Bruno Final", "RJ")]
    owners = await _all(
        session,
        "SELECT count(DISTINCT customer_id) FROM installments i"
        " JOIN customers c ON c.id = i.customer_id",
    )
    assert owners[0][0] == 2


async def test_an_installment_moves_to_the_customer_the_file_names(
    session: AsyncSession, tenant: Tenant
) -> None:
    head = "codigo_cliente;nome;id_parcela;valor;vencimento\n"
    await run_import(session, tenant, (head + "A1;Ana;P1;10,00;01/01/2026\n").encode())

    moved = await run_import(session, tenant, (head + "B1;Bia;P1;10,00;01/01/2026\n").encode())

    assert moved.installments_updated == 1
    owner = await _one(
        session,
        "SELECT c.external_id FROM installments i JOIN customers c ON c.id = i.customer_id",
    )
    assert owner[0] == "B1"
    audited = await _all(
        session, "SELECT action FROM audit_events WHERE action LIKE 'installment.%' ORDER BY id"
    )
    assert [a.action for a in audited] == ["installment.created"]  # the amount did not change


async def test_a_merge_interrupted_between_batches_resumes_without_double_counting(
    session: AsyncSession, tenant: Tenant
) -> None:
    received = await service.receive(
        session,
        tenant_id=tenant.id,
        actor=CLI_ACTOR,
        chunks=_chunks(simple_csv(10, customers=4)),
        enqueue_merge=False,
    )
    # A first run merges one batch of 3 lines, then "crashes".
    first = await merge.merge_batch(
        session,
        import_id=received.import_id,
        tenant_id=tenant.id,
        fields=received.fields,
        actor=CLI_ACTOR,
        request_id=None,
        size=3,
    )
    assert first is not None
    await session.execute(
        text(
            "UPDATE imports SET status = 'merging', rows_merged = 3,"
            " customers_created = :c, installments_created = 3 WHERE id = :id"
        ),
        {"c": first.customers_created, "id": received.import_id},
    )

    await service.merge(session, received.import_id, fields=received.fields, batch_rows=4)
    again = await service.merge(session, received.import_id, fields=received.fields)

    assert again is not None
    assert again.status == "done"
    assert (again.rows_merged, again.installments_created, again.customers_created) == (10, 10, 4)
    assert (await _one(session, "SELECT count(*) FROM installments"))[0] == 10
    completed = await _all(
        session, "SELECT data FROM audit_events WHERE action = 'import.completed'"
    )
    assert len(completed) == 1


async def test_the_merge_job_merges_and_a_duplicate_run_is_harmless(
    session: AsyncSession, tenant: Tenant, run_jobs: Callable[[], Awaitable[list[Any]]]
) -> None:
    import shared.tasks  # noqa: F401

    received = await service.receive(
        session, tenant_id=tenant.id, actor=CLI_ACTOR, chunks=_chunks(simple_csv(3))
    )
    await session.commit()

    outcomes = await run_jobs()
    await use_scope(session, tenant_scope(tenant.id))
    from shared.domains.portfolio.imports.tasks import import_merge
    from shared.queue import JobContext

    await import_merge.fn(
        JobContext(session, 0, service.MERGE_JOB, tenant.id, 1, None),
        import_id=str(received.import_id),
        fields=sorted(received.fields),
    )

    assert [str(o) for o in outcomes] == ["done"]
    imp = await service.reload(session, received.import_id)
    assert imp is not None
    assert (imp.status, imp.installments_created) == ("done", 3)
    assert (await _one(session, "SELECT count(*) FROM installments"))[0] == 3


async def test_a_merge_that_keeps_failing_marks_the_import_failed(
    session: AsyncSession, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shared.domains.portfolio.imports.tasks import MAX_ATTEMPTS, import_merge
    from shared.queue import JobContext

    received = await service.receive(
        session,
        tenant_id=tenant.id,
        actor=CLI_ACTOR,
        chunks=_chunks(simple_csv(2)),
        enqueue_merge=False,
    )

    await session.commit()  # staged by an earlier request

    async def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("the database went away")

    monkeypatch.setattr(merge, "merge_batch", broken)
    ctx = JobContext(session, 0, service.MERGE_JOB, tenant.id, 1, None)
    with pytest.raises(RuntimeError):
        await import_merge.fn(ctx, import_id=str(received.import_id), fields=[])
    last = JobContext(session, 0, service.MERGE_JOB, tenant.id, MAX_ATTEMPTS, None)

    await import_merge.fn(last, import_id=str(received.import_id), fields=[])

    imp = await service.reload(session, received.import_id)
    assert imp is not None
    assert imp.status == "failed"
    assert "merge failed" in (imp.error or "")
    assert (
        await _one(
            session, "SELECT count(*) FROM import_rows WHERE import_id = :i", i=received.import_id
        )
    )[0] == 0


async def test_the_cli_imports_a_file_in_process(
    sessionmaker: SessionMaker, ids: Identities, session: AsyncSession, tmp_path: Path
) -> None:
    from services.cli import build_parser
    from services.cli_import import ProgressBar, run_import

    shop = await ids.party("Loja do Terminal")
    await session.flush()
    path = tmp_path / "carteira.csv"
    path.write_bytes(simple_csv(30, customers=10))
    stream = io.StringIO()

    out, accepted = await run_import(
        sessionmaker,
        tenant=shop.tenant.slug,
        path=path,
        encoding="utf-8",
        on_progress=ProgressBar(path.stat().st_size, stream),
        overlap=False,  # one connection here; the overlapped path has its own test
    )

    assert accepted
    assert (out.status, out.filename, out.created_by) == ("done", "carteira.csv", "cli")
    assert (out.customers_created, out.installments_created) == (10, 30)
    assert "staging" in stream.getvalue()
    assert "done" in stream.getvalue()
    json.dumps(__import__("msgspec").to_builtins(out))  # what --json prints
    args = build_parser().parse_args(
        ["import", str(path), "--tenant", shop.tenant.slug, "--format", "csv", "--json"]
    )
    assert args.handler.__name__ == "import_file"

    bad = tmp_path / "foto.csv"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    failed, accepted = await run_import(sessionmaker, tenant=str(shop.id), path=bad, overlap=False)
    assert not accepted
    assert failed.status == "failed"
    assert "PNG" in (failed.error or "")


def test_the_progress_bar_writes_lines_when_not_on_a_terminal() -> None:
    from services.cli_import import ProgressBar

    stream = io.StringIO()
    ticks = iter([0.0, 0.0, 2.0, 2.0, 3.0])
    bar = ProgressBar(1000, stream, clock=lambda: next(ticks))
    bar(Progress("staging", 500, 10, 9, 1, 0))  # started at 0, first shown at 0
    bar(Progress("staging", 1000, 20, 18, 2, 0))  # 5 s have not passed: not shown
    bar(Progress("merging", 0, 20, 18, 2, 0))
    bar(Progress("done", 0, 20, 18, 2, 18))

    lines = stream.getvalue().splitlines()
    assert [line.split()[0] for line in lines] == ["staging", "merging", "done"]
    assert "50%" in lines[0]
    assert "0.5 kB/1.0 kB  10 rows" in lines[0]
    assert lines[2].endswith("100%  18/18 rows  18 rows/s")


# --- property: what is stored is what a direct parse of the cell says ----------------------------


def _pt_br(value: Decimal, thousands: bool) -> str:
    integer, cents = divmod(int(value * 100), 100)
    digits = f"{integer:,}".replace(",", ".") if thousands else str(integer)
    return f"{digits},{cents:02d}"


amounts = st.integers(min_value=1, max_value=99_999_999_999).map(lambda c: Decimal(c).scaleb(-2))
amount_texts = st.tuples(amounts, st.sampled_from(["br", "br-plain", "dot", "rs"])).map(
    lambda p: {
        "br": _pt_br(p[0], True),
        "br-plain": _pt_br(p[0], False),
        "dot": f"{p[0]:.2f}",
        "rs": "R$ " + _pt_br(p[0], True),
    }[p[1]]
)
date_texts = st.tuples(
    st.dates(min_value=date(2000, 1, 1), max_value=date(2100, 12, 31)),
    st.sampled_from(["br", "iso", "short"]),
).map(
    lambda p: {
        "br": p[0].strftime("%d/%m/%Y"),
        "iso": p[0].isoformat(),
        "short": f"{p[0].day}/{p[0].month}/{p[0].year}",
    }[p[1]]
)


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(rows=st.lists(st.tuples(amount_texts, date_texts), min_size=1, max_size=6))
async def test_imported_installments_equal_a_direct_parse(
    session: AsyncSession, ids: Identities, rows: list[tuple[str, str]]
) -> None:
    await use_scope(session, SYSTEM)
    tenant = await ids.tenant(f"Loja {uuid.uuid4().hex[:8]}")
    await use_scope(session, tenant_scope(tenant.id))
    lines = ["codigo_cliente;nome;cpf;id_parcela;valor;vencimento"]
    for i, (amount, due) in enumerate(rows):
        lines.append(
            f'C{i % 3};Cliente {i % 3};{formatted_cpf(fake_cpf(i % 3))};P{i};"{amount}";{due}'
        )

    out = await run_import(session, tenant, "\r\n".join(lines).encode())

    assert (out.rows_valid, out.rows_rejected) == (len(rows), 0), out.errors
    stored = {
        r.external_id: (r.principal, r.due_date)
        for r in await _all(
            session,
            "SELECT external_id, principal, due_date FROM installments WHERE tenant_id = :t",
            t=tenant.id,
        )
    }
    assert stored == {
        f"P{i}": (parse_amount(amount), parse_date(due)) for i, (amount, due) in enumerate(rows)
    }


# --- the CLI's overlapped merge (a second connection: real commits) ------------------------------


async def _committed_tenant(committed: SessionMaker) -> uuid.UUID:
    from shared.domains.identity import schemas as identity
    from shared.domains.identity import service as identities

    async with committed() as s:
        await use_scope(s, SYSTEM)
        tenant = await identities.create_tenant(
            s, identity.TenantCreate(name="Loja Paralela", kind="retailer"), identities.CLI_ACTOR
        )
        await s.commit()
        return tenant.id


@pytest.fixture
def follower_spy(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Small reads (so staging commits several times) and a record of how far the merging
    connection got before staging ended."""
    import services.cli_import

    monkeypatch.setattr(services.cli_import, "READ_CHUNK", 64 * 1024)
    merged: list[int] = []
    finish = service._Follower.finish

    async def spy(self: Any) -> None:
        await finish(self)
        merged.append(self.merged_through)

    monkeypatch.setattr(service._Follower, "finish", spy)
    return merged


@pytest.mark.committed
async def test_the_cli_merges_alongside_staging(
    committed: SessionMaker, tmp_path: Path, follower_spy: list[int]
) -> None:
    from services.cli_import import run_import

    tenant_id = await _committed_tenant(committed)
    path = tmp_path / "grande.csv"
    path.write_bytes(simple_csv(12_000, customers=4_000))

    out, accepted = await run_import(committed, tenant=str(tenant_id), path=path)

    assert accepted
    assert follower_spy[0] > 0  # part of the file was merged while the rest was being read
    assert (out.status, out.rows_merged, out.rows_rejected) == ("done", 12_000, 0)
    assert (out.customers_created, out.installments_created) == (4_000, 12_000)
    async with committed() as s:
        await use_scope(s, tenant_scope(tenant_id))
        counts = await _one(
            s,
            "SELECT (SELECT count(*) FROM installments), (SELECT count(*) FROM customers),"
            " (SELECT count(*) FROM customer_phones),"
            " (SELECT count(*) FROM audit_events WHERE action = 'installment.created'),"
            " (SELECT count(*) FROM import_rows WHERE import_id = :id)",
            id=out.id,
        )
    assert tuple(counts) == (12_000, 4_000, 4_000, 12_000, 0)


@pytest.mark.committed
async def test_a_late_duplicate_of_a_merged_line_undoes_the_early_merge(
    committed: SessionMaker, tmp_path: Path, follower_spy: list[int]
) -> None:
    from services.cli_import import run_import

    tenant_id = await _committed_tenant(committed)
    lines = simple_csv(12_000, customers=4_000).decode().split("\r\n")
    # Line 2 becomes a customer of its own whose only installment (K000000-1) comes back at
    # the end of the file for customer CL000000: line 2 must not be applied at all.
    lines[1] = f"EARLY;Cliente Precoce;{formatted_cpf(fake_cpf(99))};;SP;K000000;1;5,00;01/01/2026"
    lines[-1] = "CL000000;Cliente 0;;;SP;K000000;1;77,70;02/02/2026"
    path = tmp_path / "duplicada.csv"
    path.write_text("\r\n".join(lines) + "\r\n")

    out, accepted = await run_import(committed, tenant=str(tenant_id), path=path)

    assert accepted
    assert follower_spy[0] >= 2  # line 2 had been merged before the duplicate was read
    assert (out.rows_valid, out.rows_rejected, out.rows_merged) == (12_000, 1, 12_000)
    assert [(e.line, e.field) for e in out.errors] == [(2, "external_id")]
    async with committed() as s:
        await use_scope(s, tenant_scope(tenant_id))
        early = await _one(s, "SELECT count(*) FROM customers WHERE external_id = 'EARLY'")
        owner = await _one(
            s,
            "SELECT c.external_id, i.principal FROM installments i"
            " JOIN customers c ON c.id = i.customer_id WHERE i.external_id = 'K000000-1'",
        )
        created = await _one(
            s, "SELECT count(*) FROM audit_events WHERE action = 'installment.created'"
        )
    assert early[0] == 0
    assert tuple(owner) == ("CL000000", Decimal("77.70"))
    assert created[0] == 12_000


async def test_an_upload_its_process_left_receiving_is_failed_with_the_reason(
    session: AsyncSession, tenant: Tenant
) -> None:
    stalled, fresh = (
        DataImport(tenant_id=tenant.id, status="receiving", format="csv") for _ in range(2)
    )
    session.add_all([stalled, fresh])
    await session.flush()
    await session.execute(
        text(
            """INSERT INTO import_errors (tenant_id, import_id, line, field, reason)
               VALUES (:t, :i, 2, 'due_date', 'not a date')"""
        ),
        {"t": tenant.id, "i": stalled.id},
    )
    await session.execute(
        text("UPDATE imports SET updated_at = now() - interval '31 minutes' WHERE id = :i"),
        {"i": stalled.id},
    )
    await use_scope(session, SYSTEM)

    await tasks.sweep_stalled(session)

    rows = await _all(session, "SELECT id, status, error FROM imports ORDER BY created_at")
    assert {r.id: (r.status, r.error) for r in rows} == {
        stalled.id: ("failed", tasks.STALLED),
        fresh.id: ("receiving", None),
    }
    left = await _one(
        session, "SELECT count(*) FROM import_errors WHERE import_id = :i", i=stalled.id
    )
    assert tuple(left) == (0,)  # what it staged is gone
