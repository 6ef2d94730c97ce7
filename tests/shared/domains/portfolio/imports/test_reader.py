"""The streaming reader: decoding, records across chunk boundaries, headers, row normalization."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.brazil.errors import InvalidValue
from shared.brazil.phones import DDD_UF, normalize_phone
from shared.domains.portfolio.imports.reader import (
    MAX_LINE_CHARS,
    Decoder,
    FileRejected,
    ImportReader,
    RowError,
    canonical_field,
    fast_phone,
    header_key,
    sniff_delimiter,
)
from tests.shared.domains.portfolio.imports.support import fake_cpf, messy_csv

TENANT = uuid.uuid4()


def read(
    body: bytes, *, chunk: int = 65_536, **kwargs: Any
) -> tuple[list[tuple[Any, ...]], list[RowError], ImportReader]:
    reader = ImportReader(import_id=uuid.uuid4(), tenant_id=TENANT, **kwargs)
    rows: list[tuple[Any, ...]] = []
    errors: list[RowError] = []
    for start in range(0, len(body), chunk):
        parsed = reader.feed(body[start : start + chunk])
        rows += parsed.rows
        errors += parsed.errors
    parsed = reader.finish()
    return rows + parsed.rows, errors + parsed.errors, reader


def by_field(row: tuple[Any, ...]) -> dict[str, Any]:
    from shared.domains.portfolio.imports.reader import ROW_COLUMNS

    return dict(zip(ROW_COLUMNS, row, strict=True))


@pytest.mark.parametrize(
    ("raw", "key", "field"),
    [
        ("Nome", "nome", "name"),
        (" NOME DO CLIENTE ", "nome_do_cliente", None),
        ("Código Cliente", "codigo_cliente", "customer_external_id"),
        ("Data-Vencimento", "data_vencimento", "due_date"),
        ("Valor (R$)", "valor", "principal"),
        ("E-mail", "e_mail", "email"),
        ("Município", "municipio", "city"),
        ("Linha Digitável", "linha_digitavel", "boleto_line"),
        ("Nº Parcela", "no_parcela", None),
        ("Telefone 2", "telefone_2", "phones"),
        ("celular1", "celular1", "phones"),
        ("Qtd. Parcelas", "qtd_parcelas", "count"),
        ("\ufeffcpf", "cpf", "document"),
        ("Descrição", "descricao", "description"),
    ],
)
def test_headers_match_after_lowercasing_and_dropping_accents(
    raw: str, key: str, field: str | None
) -> None:
    assert header_key(raw) == key
    assert canonical_field(raw) == field


def test_the_delimiter_is_the_one_the_header_uses() -> None:
    assert sniff_delimiter("nome;cpf;valor\n") == ";"
    assert sniff_delimiter("nome,cpf,valor\n") == ","
    assert sniff_delimiter("nome\tcpf\n") == "\t"
    assert sniff_delimiter('"nome; completo",cpf,valor\n') == ","


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 64, 65_536])
def test_any_chunking_gives_the_same_rows(chunk: int) -> None:
    whole, whole_errors, _ = read(messy_csv())

    rows, errors, reader = read(messy_csv(), chunk=chunk)

    assert [r[1:] for r in rows] == [r[1:] for r in whole]
    assert errors == whole_errors
    assert reader.rows_total == 10
    assert [r[1] for r in rows] == [2, 3, 4, 10, 11, 12]  # the line each row starts on


def test_bom_crlf_and_a_line_break_inside_quotes() -> None:
    body = '\ufeffnome;codigo_cliente;cidade\r\n"Ana";A1;"Vila\r\nNova"\r\nBia;B1;x\r\n'

    rows, errors, _ = read(body.encode())

    assert errors == []
    assert [(by_field(r)["line"], by_field(r)["name"]) for r in rows] == [(2, "Ana"), (4, "Bia")]
    assert by_field(rows[0])["city"] == "Vila Nova"


def test_old_mac_line_ends_are_lines_too() -> None:
    rows, _, _ = read(b"nome;codigo_cliente\rAna;A1\rBia;B1\r")

    assert [by_field(r)["customer_external_id"] for r in rows] == ["A1", "B1"]


def test_blank_lines_and_rows_of_empty_cells_are_skipped() -> None:
    rows, errors, reader = read(b"\n\nnome;codigo_cliente\n\nAna;A1\n;;\n ; \n")

    assert [by_field(r)["line"] for r in rows] == [5]
    assert errors == []
    assert reader.rows_total == 1


def test_a_row_with_more_cells_than_the_header_is_refused_whole() -> None:
    rows, errors, _ = read(
        b"nome,codigo_cliente,valor,vencimento,id_parcela\nAna,A1,1,234.00,01/01/2026,P\n"
    )

    assert rows == []
    assert errors[0].line == 2
    assert errors[0].field is None
    assert "6 cells" in errors[0].reason


def test_an_unclosed_quote_is_a_structural_error() -> None:
    with pytest.raises(FileRejected, match="Line 2: a quoted field is never closed"):
        read(b'nome;codigo_cliente\n"Ana;A1\nBia;B1\n')


def test_a_huge_line_is_refused_before_it_is_read_whole() -> None:
    decoder = Decoder()
    decoder.feed(b"nome;codigo_cliente\n")

    with pytest.raises(FileRejected, match="Line 2 is longer than 1 MiB"):
        for _ in range(64):
            decoder.feed(b"x" * (MAX_LINE_CHARS // 32))


@pytest.mark.parametrize(
    ("body", "encoding", "message"),
    [
        (b"\x89PNG\r\n\x1a\n" + bytes(200), None, "a PNG image"),
        (b"PK\x03\x04" + bytes(50), None, "Excel workbook"),
        (b"nome;cpf\nJo\xe3o;1\n", None, "not valid UTF-8 text (line 2)"),
        (b"nome;cpf\nAna;1\x00\n", None, "binary"),
        (b"nome;cpf\nJo\x81o;1\n", "cp1252", "not valid cp1252 text"),
        (b"", None, "empty"),
        (b"\n\n  \n", None, "no recognizable header"),
        (b"foo;bar\n1;2\n", None, "no recognizable header"),
        (b"nome;uf\nAna;SP\n", None, "no column identifying the customer"),
        (b"cpf;uf\n1;SP\n", None, "no column for the customer's name"),
        (b"nome;cpf;valor\nAna;1;2\n", None, "none for due_date (vencimento)"),
        (b"nome;cpf;valor;vencimento\nAna;1;2;3\n", None, "no column identifying the installment"),
        (b'{"nome": "Ana"}\n{"nome": \n', None, "Line 2 is not valid JSON"),
        (b'{"nome": "Ana"}\n"Bia"\n', None, "Line 2 is not a JSON object"),
    ],
)
def test_structural_problems(body: bytes, encoding: str | None, message: str) -> None:
    with pytest.raises(FileRejected) as caught:
        read(body, encoding=encoding)

    assert message in caught.value.reason


def test_windows_1252_and_utf16_files_decode() -> None:
    text = "nome;codigo_cliente;cidade\nJoão;J1;São Paulo \u2013 SP\n"

    cp1252, _, _ = read(text.encode("cp1252"), encoding="cp1252")
    utf16, _, _ = read(text.encode("utf-16"))

    assert by_field(cp1252[0])["name"] == "João"
    assert by_field(cp1252[0])["city"] == "São Paulo \u2013 SP"
    assert utf16[0][1:] == cp1252[0][1:]


@pytest.mark.parametrize(
    ("cell", "number", "count"),
    [("3", 3, None), ("3/10", 3, 10), ("03 / 10", 3, 10), ("3 de 10", 3, 10), ("3 DE 10", 3, 10)],
)
def test_installment_numbers(cell: str, number: int, count: int | None) -> None:
    body = f"nome;cpf;parcela;contrato;valor;vencimento\nAna;{fake_cpf(1)};{cell};K;1,00;01/01/2026"

    rows, errors, _ = read(body.encode())

    assert errors == []
    row = by_field(rows[0])
    assert (row["number"], row["count"], row["external_id"]) == (number, count, f"K-{number}")
    assert row["customer_external_id"] == fake_cpf(1)  # no customer id: the document


def test_every_problem_of_a_row_is_reported_and_none_echoes_personal_data() -> None:
    bad_cpf = fake_cpf(7)[:10] + "0" if fake_cpf(7)[10] != "0" else fake_cpf(7)[:10] + "1"
    body = (
        "codigo_cliente;nome;cpf;telefone;email;uf;parcela;total_parcelas;valor;vencimento;"
        "linha_digitavel;link_pagamento;contrato\n"
        f"C1;Ana;{bad_cpf};(11) 1234;ana@;XX;5/3;4;12,345;2026-13-01;123;ftp://x;K\n"
    )

    rows, errors, _ = read(body.encode())

    assert rows == []
    assert {e.field for e in errors} == {
        "document",
        "phones",
        "email",
        "state",
        "count",
        "number",
        "principal",
        "due_date",
        "boleto_line",
        "payment_url",
    }
    assert all(e.line == 2 for e in errors)
    assert not any(bad_cpf in e.reason or "1234" in e.reason for e in errors)


def test_several_phone_columns_and_separators() -> None:
    body = (
        "codigo_cliente;nome;telefone 1;telefone 2;celular\n"
        "A1;Ana;(11) 98765-4321 / 11 3456-7890;;(11) 98765-4321, +55 21 99876-5432\n"
    )

    rows, errors, _ = read(body.encode())

    assert errors == []
    assert by_field(rows[0])["phones"] == ["+5511987654321", "+551134567890", "+5521998765432"]


def test_a_comma_file_keeps_commas_inside_quoted_cells() -> None:
    body = 'codigo_cliente,nome,segmento\nA1,"Silva, Ana","ouro, vip|novo"\n'

    rows, _, _ = read(body.encode())

    row = by_field(rows[0])
    assert (row["name"], row["tags"]) == ("Silva, Ana", ["ouro", "vip", "novo"])


def test_json_numbers_are_exact() -> None:
    body = (
        b'{"customer_id": 7, "name": "Ana", "external_id": "P", "principal": 0.1,'
        b' "due_date": "2026-01-01", "number": 2}\n'
        b'{"customer_id": 8, "name": "Bia", "external_id": "Q", "principal": 1e2,'
        b' "due_date": "2026-01-01"}\n'
        b'{"customer_id": 9, "name": "Caio", "external_id": "R", "principal": true,'
        b' "due_date": "2026-01-01"}\n'
    )

    rows, errors, reader = read(body)

    assert reader.format == "jsonl"
    assert [(by_field(r)["principal"], by_field(r)["number"]) for r in rows] == [
        (Decimal("0.10"), 2),
        (Decimal("100.00"), None),
    ]
    assert by_field(rows[0])["customer_external_id"] == "7"
    assert [(e.line, e.field) for e in errors] == [(3, "principal")]


_DIGITS = "0123456789"
_SUBSCRIBERS = st.one_of(
    st.text(_DIGITS, min_size=8, max_size=8),
    st.text(_DIGITS, min_size=8, max_size=8).map(lambda s: "9" + s),  # mobiles
    st.text(_DIGITS, min_size=7, max_size=10),
)


@settings(max_examples=400, deadline=None)
@given(
    ddd=st.one_of(st.sampled_from(sorted(DDD_UF)), st.text(_DIGITS, min_size=2, max_size=2)),
    subscriber=_SUBSCRIBERS,
    opening=st.sampled_from(["", "(", " ("]),
    closing=st.sampled_from(["", ")", ") "]),
    space=st.sampled_from(["", " ", "  ", "-", "."]),
    middle=st.sampled_from(["", "-", " ", "."]),
    split=st.one_of(st.just(-4), st.integers(min_value=3, max_value=6)),
)
def test_the_fast_phone_path_agrees_with_the_codec(
    ddd: str, subscriber: str, opening: str, closing: str, space: str, middle: str, split: int
) -> None:
    raw = f"{opening}{ddd}{closing}{space}{subscriber[:split]}{middle}{subscriber[split:]}"

    assert _outcome(fast_phone, raw) == _outcome(normalize_phone, raw)


def _outcome(fn: Any, raw: str) -> str:
    try:
        return str(fn(raw))
    except InvalidValue as exc:
        return f"invalid: {exc.reason}"
