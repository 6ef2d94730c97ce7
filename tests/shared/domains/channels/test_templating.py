"""A WhatsApp value goes out as Meta accepts it — never empty, no line break, tab or more than
four spaces in a row — and the text we keep as what the debtor read holds the same values."""

from __future__ import annotations

from decimal import Decimal

import pytest

from shared.brazil.numbers import format_brl
from shared.domains.channels import templating

BODY = "Olá, {{primeiro_nome}}! Pix: {{pix_copia_e_cola}}\nLink: {{link_pagamento}} ."


@pytest.mark.parametrize(
    ("value", "sent"),
    [
        ("", "-"),
        ("   ", "-"),
        ("\n\t", "-"),
        ("Rua A, 10\nSão Paulo", "Rua A, 10 São Paulo"),
        ("Rua A, 10 \r\n  São Paulo", "Rua A, 10 São Paulo"),
        ("a\tb", "a b"),
        ("a     b", "a b"),
        ("a    b", "a    b"),
        ("  Maria  ", "Maria"),
    ],
)
def test_a_value_goes_out_as_meta_accepts_it(value: str, sent: str) -> None:
    assert templating.clean_parameter(value) == sent


def test_an_amount_keeps_its_no_break_space() -> None:
    amount = format_brl(Decimal("1234.56"))

    assert templating.clean_parameter(amount) == amount


def test_the_text_the_debtor_reads_holds_the_values_that_are_sent() -> None:
    values = {"primeiro_nome": "Maria", "pix_copia_e_cola": "", "link_pagamento": " \n "}

    sent = templating.parameters(templating.compile_body(BODY), values)
    read = templating.render(BODY, values)

    assert sent == ["Maria", "-", "-"]
    assert read == "Olá, Maria! Pix: -\nLink: - ."
