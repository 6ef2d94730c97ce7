"""Bulk imports over HTTP: a messy real-world export, re-imports, malformed files, charsets,
JSON Lines, permissions and tenant isolation."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from shared.models import Role
from shared.tenancy import SYSTEM, use_scope
from tests.shared.domains.portfolio.imports.support import (
    BOLETO,
    CPFS,
    fake_cpf,
    messy_csv,
    simple_csv,
)
from tests.support.identity import Identities, Party, bearer

CSV = {"Content-Type": "text/csv"}


@pytest.fixture
async def shop(ids: Identities) -> Party:
    return await ids.party("Loja Importadora")


@pytest.fixture
async def headers(ids: Identities, shop: Party) -> dict[str, str]:
    return bearer(await ids.token(shop, role=None))  # the retailer's ERP client


async def _post(
    api: httpx.AsyncClient,
    headers: dict[str, str],
    body: bytes,
    content_type: str = "text/csv",
    **params: str,
) -> httpx.Response:
    return await api.post(
        "/v1/imports",
        content=body,
        headers={**headers, "Content-Type": content_type},
        params=params,
    )


async def _import(
    api: httpx.AsyncClient,
    headers: dict[str, str],
    run_jobs: Callable[[], Awaitable[list[Any]]],
    body: bytes,
    content_type: str = "text/csv",
    **params: str,
) -> dict[str, Any]:
    posted = await _post(api, headers, body, content_type, **params)
    assert posted.status_code == 202, posted.text
    await run_jobs()
    done = await api.get(posted.headers["location"], headers=headers)
    assert done.status_code == 200
    result: dict[str, Any] = done.json()
    return result


async def _rows(session: AsyncSession, sql: str, **params: Any) -> list[Any]:
    await use_scope(session, SYSTEM)
    return list((await session.execute(text(sql), params)).all())


async def test_a_messy_export_imports_the_good_rows_and_reports_each_bad_one(
    api: httpx.AsyncClient,
    headers: dict[str, str],
    run_jobs: Callable[[], Awaitable[list[Any]]],
    session: AsyncSession,
    shop: Party,
) -> None:
    posted = await _post(api, headers, messy_csv(), "text/csv; charset=utf-8", filename="x.csv")

    assert posted.status_code == 202, posted.text
    assert posted.headers["location"] == f"/v1/imports/{posted.json()['id']}"
    assert posted.json()["status"] == "queued"
    await run_jobs()
    result = (await api.get(posted.headers["location"], headers=headers)).json()

    assert result["status"] == "done"
    assert result["progress"] == 1.0
    assert result["filename"] == "x.csv"
    assert result["finished_at"] is not None
    assert (result["rows_total"], result["rows_valid"], result["rows_rejected"]) == (10, 5, 5)
    assert result["rows_merged"] == 5
    assert (result["customers_created"], result["customers_updated"]) == (4, 0)
    assert (result["installments_created"], result["installments_updated"]) == (5, 0)
    reported = {(e["line"], e["field"]) for e in result["errors"]}
    assert reported == {
        (1, "Loja"),
        (6, "document"),
        (7, "due_date"),
        (8, "principal"),
        (9, "name"),
        (10, "external_id"),
    }
    reasons = {e["field"]: e["reason"] for e in result["errors"]}
    assert "check digits" in reasons["document"]
    assert "does not exist" in reasons["due_date"]
    assert "negative" in reasons["principal"]
    assert reasons["external_id"].startswith("Duplicate of line 12")
    assert reasons["Loja"] == "Unknown column; ignored."
    assert result["errors_total"] == 6
    everything = " ".join(e["reason"] for e in result["errors"])
    assert not any(cpf[:9] in everything.replace(".", "").replace("-", "") for cpf in CPFS.values())

    customers = {
        r.external_id: r
        for r in await _rows(
            session,
            "SELECT external_id, name, document, email, state, city, tags FROM customers"
            " WHERE tenant_id = :t",
            t=shop.id,
        )
    }
    assert set(customers) == {"C001", "C002", "C007", "C008"}
    ana = customers["C001"]
    assert (ana.name, ana.document, ana.email) == (
        "Ana Beatriz Sousa",
        CPFS["cpf_ana"],
        "ana.sousa@exemplo.com.br",
    )
    assert (ana.state, ana.city, ana.tags) == ("SP", "São Paulo", ["ouro"])
    assert customers["C002"].name == 'João "Jota" Pereira'
    assert customers["C002"].state == "RJ"
    assert customers["C002"].tags == ["prata", "bronze"]
    assert customers["C007"].document is None
    phones = await _rows(
        session,
        "SELECT c.external_id, p.number, p.position, p.active, p.wa_key FROM customer_phones p"
        " JOIN customers c ON c.id = p.customer_id WHERE p.tenant_id = :t"
        " ORDER BY c.external_id, p.position",
        t=shop.id,
    )
    assert [(p.external_id, p.number, p.position, p.active) for p in phones][:2] == [
        ("C001", "+5511987654321", 0, True),
        ("C001", "+551134567890", 1, True),
    ]
    assert phones[0].wa_key == "551187654321"

    installments = {
        r.external_id: r
        for r in await _rows(
            session,
            "SELECT i.external_id, c.external_id AS customer, i.contract, i.number, i.count,"
            " i.principal, i.due_date, i.boleto_line, i.description, i.status, i.amount_paid"
            " FROM installments i JOIN customers c ON c.id = i.customer_id"
            " WHERE i.tenant_id = :t",
            t=shop.id,
        )
    }
    assert set(installments) == {"CT-100-1", "CT-100-2", "CT-200-1", "CT-700-2", "CT-800-1"}
    first = installments["CT-100-1"]
    assert (first.customer, first.contract, first.number, first.count) == ("C001", "CT-100", 1, 3)
    assert (first.principal, str(first.due_date)) == (Decimal("1234.56"), "2026-03-10")
    assert first.description == "Compra; loja centro"
    assert (first.status, first.amount_paid) == ("open", Decimal("0.00"))
    assert installments["CT-100-2"].boleto_line == BOLETO
    assert installments["CT-100-2"].number == 2
    assert installments["CT-200-1"].principal == Decimal("99.90")
    assert installments["CT-200-1"].description == "Entrega agendada"
    assert installments["CT-700-2"].principal == Decimal("2000.00")
    assert str(installments["CT-700-2"].due_date) == "2026-05-20"
    assert installments["CT-800-1"].principal == Decimal("12.50")
    assert installments["CT-800-1"].description == "versão final"

    staged = await _rows(
        session, "SELECT count(*) FROM import_rows WHERE tenant_id = :t", t=shop.id
    )
    assert staged[0][0] == 0
    events = await _rows(
        session,
        "SELECT action, actor_type, data FROM audit_events WHERE tenant_id = :t"
        " AND action LIKE 'i%' ORDER BY id",
        t=shop.id,
    )
    created = [e for e in events if e.action == "installment.created"]
    assert len(created) == 5
    assert all(e.actor_type == "client" for e in events)
    assert created[0].data["source"] == "import"
    assert created[0].data["import_id"] == result["id"]
    completed = [e for e in events if e.action == "import.completed"]
    assert len(completed) == 1
    assert completed[0].data["installments_created"] == 5


async def test_importing_the_same_file_again_changes_nothing(
    api: httpx.AsyncClient,
    headers: dict[str, str],
    run_jobs: Callable[[], Awaitable[list[Any]]],
    session: AsyncSession,
    shop: Party,
) -> None:
    await _import(api, headers, run_jobs, messy_csv())
    before = await _rows(
        session,
        "SELECT external_id, updated_at FROM installments WHERE tenant_id = :t"
        " UNION ALL SELECT external_id, updated_at FROM customers WHERE tenant_id = :t"
        " UNION ALL SELECT number, updated_at FROM customer_phones WHERE tenant_id = :t"
        " ORDER BY 1",
        t=shop.id,
    )
    events_before = await _rows(
        session, "SELECT count(*) FROM audit_events WHERE tenant_id = :t", t=shop.id
    )

    again = await _import(api, headers, run_jobs, messy_csv())

    assert again["status"] == "done"
    assert (again["customers_created"], again["customers_updated"]) == (0, 0)
    assert (again["installments_created"], again["installments_updated"]) == (0, 0)
    assert again["installments_unchanged"] == 5
    after = await _rows(
        session,
        "SELECT external_id, updated_at FROM installments WHERE tenant_id = :t"
        " UNION ALL SELECT external_id, updated_at FROM customers WHERE tenant_id = :t"
        " UNION ALL SELECT number, updated_at FROM customer_phones WHERE tenant_id = :t"
        " ORDER BY 1",
        t=shop.id,
    )
    assert after == before
    events_after = await _rows(
        session,
        "SELECT action FROM audit_events WHERE tenant_id = :t ORDER BY id OFFSET :n",
        t=shop.id,
        n=events_before[0][0],
    )
    assert [e.action for e in events_after] == ["import.completed"]


async def test_a_changed_amount_is_updated_and_audited(
    api: httpx.AsyncClient,
    headers: dict[str, str],
    run_jobs: Callable[[], Awaitable[list[Any]]],
    session: AsyncSession,
    shop: Party,
) -> None:
    await _import(api, headers, run_jobs, messy_csv())
    await use_scope(session, SYSTEM)
    await session.execute(
        text("UPDATE installments SET status = 'disputed' WHERE external_id = 'CT-100-1'")
    )

    changed = await _import(api, headers, run_jobs, messy_csv(ana_first_amount="1.300,00"))

    assert changed["installments_updated"] == 1
    assert changed["installments_unchanged"] == 4
    row = await _rows(
        session,
        "SELECT principal, status FROM installments WHERE tenant_id = :t"
        " AND external_id = 'CT-100-1'",
        t=shop.id,
    )
    assert row[0].principal == Decimal("1300.00")
    assert row[0].status == "disputed"  # imports never touch the status
    events = await _rows(
        session,
        "SELECT data FROM audit_events WHERE tenant_id = :t"
        " AND action = 'installment.amount_changed'",
        t=shop.id,
    )
    assert len(events) == 1
    data = events[0].data
    assert data["before"] == {"principal": "1234.56", "due_date": "2026-03-10"}
    assert data["after"] == {"principal": "1300.00", "due_date": "2026-03-10"}
    assert (data["source"], data["import_id"], data["external_id"]) == (
        "import",
        changed["id"],
        "CT-100-1",
    )


LATIN1 = (
    "codigo_cliente;nome;valor;vencimento;parcela;contrato\n"
    "L1;João Conceição;10,00;01/02/2026;1;K\n"
)


@pytest.mark.parametrize(
    ("body", "content_type", "message"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4, "text/csv", "PNG"),
        (LATIN1.encode("latin-1"), "text/csv; charset=utf-8", "not valid UTF-8 text (line 2)"),
        (
            f"C1;Maria;{fake_cpf(1)};10,00;01/02/2026\nC2;Jose;{fake_cpf(2)};5,00;01/03/2026\n".encode(),
            "text/csv",
            "no recognizable header",
        ),
        (
            b"codigo_cliente;nome\nC1;Maria\n" + b"x" * (10 * 1024 * 1024) + b"\nC2;Jose\n",
            "text/csv",
            "Line 3 is longer than 1 MiB",
        ),
        (b"", "text/csv", "empty"),
        (b'{"nome": "Maria", "cpf": "1"}\n[1, 2]\n', "application/x-ndjson", "not a JSON object"),
    ],
    ids=["binary", "latin1-as-utf8", "no-header", "10MB-line", "empty", "jsonl-array"],
)
async def test_a_malformed_file_is_refused_whole_and_leaves_nothing(
    api: httpx.AsyncClient,
    headers: dict[str, str],
    session: AsyncSession,
    shop: Party,
    body: bytes,
    content_type: str,
    message: str,
) -> None:
    response = await _post(api, headers, body, content_type)

    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert message in problem["detail"], problem["detail"]
    assert problem["errors"][0]["field"] == "file"
    failed = (await api.get(f"/v1/imports/{problem['import_id']}", headers=headers)).json()
    assert failed["status"] == "failed"
    assert message in failed["error"]
    assert failed["errors"] == []
    leftovers = await _rows(
        session,
        "SELECT (SELECT count(*) FROM customers WHERE tenant_id = :t)"
        " + (SELECT count(*) FROM installments WHERE tenant_id = :t)"
        " + (SELECT count(*) FROM import_rows WHERE tenant_id = :t)"
        " + (SELECT count(*) FROM import_errors WHERE tenant_id = :t)",
        t=shop.id,
    )
    assert leftovers[0][0] == 0


async def test_a_problem_late_in_a_big_file_removes_what_was_already_staged(
    api: httpx.AsyncClient, headers: dict[str, str], session: AsyncSession, shop: Party
) -> None:
    body = simple_csv(6_000, customers=2_000) + b"C9;Zeca;\x00\x01\x02;1;2\r\n"

    response = await _post(api, headers, body)

    assert response.status_code == 422
    assert "binary" in response.json()["detail"]
    staged = await _rows(
        session,
        "SELECT (SELECT count(*) FROM import_rows WHERE tenant_id = :t)"
        " + (SELECT count(*) FROM customers WHERE tenant_id = :t)",
        t=shop.id,
    )
    assert staged[0][0] == 0


async def test_a_windows_1252_export_imports_when_its_charset_is_declared(
    api: httpx.AsyncClient,
    headers: dict[str, str],
    run_jobs: Callable[[], Awaitable[list[Any]]],
    session: AsyncSession,
    shop: Party,
) -> None:
    body = LATIN1.encode("cp1252")

    by_header = await _import(api, headers, run_jobs, body, "text/csv; charset=windows-1252")
    by_query = await _import(api, headers, run_jobs, body, "text/csv", encoding="latin-1")

    assert by_header["rows_valid"] == 1
    assert by_query["installments_unchanged"] == 1
    names = await _rows(session, "SELECT name FROM customers WHERE tenant_id = :t", t=shop.id)
    assert [n.name for n in names] == ["João Conceição"]


async def test_an_unknown_charset_is_a_422_naming_it(
    api: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    response = await _post(api, headers, b"nome\n", "text/csv; charset=klingon")

    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "charset"


async def test_json_lines_import(
    api: httpx.AsyncClient,
    headers: dict[str, str],
    run_jobs: Callable[[], Awaitable[list[Any]]],
    session: AsyncSession,
    shop: Party,
) -> None:
    body = (
        f'{{"customer_id": "J1", "nome": "Lia Prado", "cpf": "{fake_cpf(31)}", '
        '"phones": ["(11) 98888-1111", "+55 11 97777-2222"], "tags": ["vip", "novo"], '
        '"external_id": "P-1", "valor": 1234.5, "vencimento": "2026-07-01", "parcela": "1/2", '
        '"loja": 3}\n'
        "\n"
        '{"customer_id": "J1", "nome": "Lia Prado", "external_id": "P-2", "valor": "1.234,50",'
        ' "vencimento": "01/08/2026", "number": 2, "count": 2}\n'
        '{"customer_id": "J2", "nome": "Rui", "external_id": "P-3", "valor": 10.001,'
        ' "vencimento": "2026-07-01"}\n'
        '{"customer_id": "J3", "nome": "Ivo Campos"}\n'
    ).encode()

    result = await _import(api, headers, run_jobs, body, "application/x-ndjson")

    assert result["format"] == "jsonl"
    assert (result["rows_total"], result["rows_valid"], result["rows_rejected"]) == (4, 3, 1)
    assert {(e["line"], e["field"]) for e in result["errors"]} == {(1, "loja"), (4, "principal")}
    rows = await _rows(
        session,
        "SELECT external_id, principal, due_date, number, count FROM installments"
        " WHERE tenant_id = :t ORDER BY external_id",
        t=shop.id,
    )
    assert [(r.external_id, r.principal, str(r.due_date), r.number, r.count) for r in rows] == [
        ("P-1", Decimal("1234.50"), "2026-07-01", 1, 2),
        ("P-2", Decimal("1234.50"), "2026-08-01", 2, 2),
    ]
    customers = await _rows(
        session,
        "SELECT external_id, tags FROM customers WHERE tenant_id = :t ORDER BY 1",
        t=shop.id,
    )
    # A key present anywhere in the file is a column: J1's last object has no tags, so none.
    assert [(c.external_id, c.tags) for c in customers] == [("J1", []), ("J3", [])]


async def test_the_error_report_pages_by_whole_lines(
    api: httpx.AsyncClient,
    headers: dict[str, str],
    run_jobs: Callable[[], Awaitable[list[Any]]],
) -> None:
    lines = ["codigo_cliente;nome;uf;valor;vencimento;id_parcela"]
    lines += [f"C{i};;XX;-1;32/13/2026;P{i}" for i in range(150)]  # four errors each
    result = await _import(api, headers, run_jobs, "\n".join(lines).encode())

    assert result["rows_rejected"] == 150
    assert len(result["errors"]) == 100  # the first 100 on the import itself
    assert result["errors_total"] == 600
    seen: list[tuple[int, str]] = []
    after = 0
    while True:
        page = (
            await api.get(
                f"/v1/imports/{result['id']}/errors",
                headers=headers,
                params={"after_line": after, "limit": 7},
            )
        ).json()
        seen += [(e["line"], e["field"]) for e in page["items"]]
        if page["next_after_line"] is None:
            break
        assert len(page["items"]) % 4 == 0  # a page never splits a row's errors
        after = page["next_after_line"]
    assert len(seen) == 600
    assert len(set(seen)) == 600


async def test_imports_are_listed_newest_first(
    api: httpx.AsyncClient,
    headers: dict[str, str],
    run_jobs: Callable[[], Awaitable[list[Any]]],
) -> None:
    ids = [(await _import(api, headers, run_jobs, simple_csv(2)))["id"] for _ in range(3)]

    first = (await api.get("/v1/imports", headers=headers, params={"limit": 2})).json()
    rest = (
        await api.get(
            "/v1/imports", headers=headers, params={"limit": 2, "cursor": first["next_cursor"]}
        )
    ).json()

    assert [i["id"] for i in first["items"] + rest["items"]] == ids[::-1]
    assert rest["next_cursor"] is None


async def test_another_tenant_gets_404_on_the_import_and_its_errors(
    api: httpx.AsyncClient,
    ids: Identities,
    headers: dict[str, str],
    run_jobs: Callable[[], Awaitable[list[Any]]],
) -> None:
    mine = await _import(api, headers, run_jobs, messy_csv())
    other = bearer(await ids.token(await ids.party("Outra Loja")))

    for url in (f"/v1/imports/{mine['id']}", f"/v1/imports/{mine['id']}/errors"):
        response = await api.get(url, headers=other)
        assert response.status_code == 404, url
    listed = (await api.get("/v1/imports", headers=other)).json()
    assert listed["items"] == []


async def test_who_may_import(api: httpx.AsyncClient, ids: Identities, shop: Party) -> None:
    agency = await ids.party("Agência Cobra", "agency")
    viewer = bearer(await ids.token(shop, role=Role.VIEWER))
    agency_owner = bearer(await ids.token(agency))
    admin = bearer(await ids.token(shop, role=Role.ADMIN))

    assert (await _post(api, viewer, simple_csv(1))).status_code == 403
    assert (await _post(api, agency_owner, simple_csv(1))).status_code == 403
    assert (await _post(api, admin, simple_csv(1))).status_code == 202
    assert (await api.get("/v1/imports", headers=viewer)).status_code == 200
