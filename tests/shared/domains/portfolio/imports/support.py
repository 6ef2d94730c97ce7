"""Synthetic import files: invented names, documents valid by checksum but generated here (they
belong to no one), boleto lines built from scratch."""

from __future__ import annotations

import string
from datetime import date
from decimal import Decimal
from pathlib import Path

from shared.brazil.boleto import due_factor, parse_boleto

FIXTURES = Path(__file__).resolve().parents[4] / "fixtures" / "imports"


def fake_cpf(n: int) -> str:
    """A CPF (11 digits) with correct check digits, made from ``n``: synthetic, no one's."""
    base = f"{(n * 7_919 + 123_456_789) % 1_000_000_000:09d}"
    if len(set(base)) == 1:
        base = f"{(int(base) + 1) % 1_000_000_000:09d}"
    digits = [int(c) for c in base]
    for length in (9, 10):
        total = sum(d * (length + 1 - i) for i, d in enumerate(digits[:length]))
        check = total * 10 % 11
        digits.append(0 if check == 10 else check)
    return "".join(map(str, digits))


def formatted_cpf(cpf: str) -> str:
    return f"{cpf[:3]}.{cpf[3:6]}.{cpf[6:9]}-{cpf[9:]}"


def wrong_cpf(cpf: str) -> str:
    """The same CPF with its last check digit off by one."""
    return cpf[:10] + str((int(cpf[10]) + 1) % 10)


def boleto_line(amount: Decimal, due: date, n: int = 1) -> str:
    """A valid 47-digit linha digitável of bank 001 for ``amount`` due on ``due``."""
    free = f"{n:025d}"
    body = f"0019{due_factor(due):04d}{int(amount * 100):010d}{free}"
    total = sum(int(c) * (2 + i % 8) for i, c in enumerate(reversed(body)))
    dv = 11 - total % 11
    barcode = body[:4] + ("1" if dv in (0, 10, 11) else str(dv)) + body[4:]
    return parse_boleto(barcode).line


CPFS = {
    "cpf_ana": fake_cpf(1),
    "cpf_joao": fake_cpf(2),
    "cpf_diego": fake_cpf(4),
    "cpf_elisa": fake_cpf(5),
    "cpf_sem_nome": fake_cpf(6),
    "cpf_gustavo": fake_cpf(8),
}
BOLETO = boleto_line(Decimal("1234.56"), date(2026, 4, 10))


def messy_csv(*, ana_first_amount: str = "1.234,56") -> bytes:
    """The messy export (see tests/fixtures/imports/README.md) as a Brazilian Excel would save
    it: UTF-8 with a BOM, CRLF line ends, a bare LF inside one quoted field."""
    template = string.Template((FIXTURES / "messy_pt_br.csv").read_text(encoding="utf-8"))
    text = template.safe_substitute(
        {k: formatted_cpf(v) for k, v in CPFS.items()},
        cpf_bad=formatted_cpf(wrong_cpf(fake_cpf(3))),
        boleto=BOLETO,
    )
    text = text.replace(";1.234,56;10/03/2026;", f";{ana_first_amount};10/03/2026;", 1)
    return b"\xef\xbb\xbf" + text.replace("\n", "\r\n").replace("⏎", "\n").encode("utf-8")


def simple_csv(rows: int, *, customers: int | None = None, start: int = 0) -> bytes:
    """``rows`` good installment rows (pt-BR, ``;``) spread over ``customers`` customers."""
    customers = customers or rows
    lines = ["codigo_cliente;nome;cpf;telefone;uf;contrato;parcela;valor;vencimento"]
    for i in range(start, start + rows):
        c = i % customers
        lines.append(
            f"CL{c:06d};Cliente {c};{formatted_cpf(fake_cpf(10_000 + c))};"
            f"(11) 9{(c % 9000) + 1000:04d}-{c % 10_000:04d};SP;K{c:06d};{i // customers + 1};"
            f"{(i % 997) + 1},{i % 100:02d};{(i % 28) + 1:02d}/{(i % 12) + 1:02d}/2026"
        )
    return ("\r\n".join(lines) + "\r\n").encode()
