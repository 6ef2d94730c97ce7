"""Template texts: named variables, their values in pt-BR, and the provider's positional form.

Retailers write ``Olá, {{primeiro_nome}}! A parcela {{parcela}} de {{valor_total}}…``; WhatsApp
templates are submitted with positional placeholders (``{{1}}``, ``{{2}}``…) numbered by first
use, and sent with the values in that order.  SMS and e-mail bodies use the same variables
through a sandboxed Jinja environment (no attribute access to Python objects, no imports).

Amounts are formatted by :func:`shared.brazil.numbers.format_brl` (``R$ 1.234,56`` with a
no-break space), dates ``dd/mm/aaaa``.  Meta refuses a parameter that is empty or holds a
newline, a tab or more than four spaces in a row, so every value goes out through
:func:`clean_parameter` — in the provider's parameters and in the text we keep as what the debtor
read alike.  Itemized amounts are separate variables laid out by the template's own line breaks.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from jinja2 import StrictUndefined
from jinja2.sandbox import SandboxedEnvironment

from shared.brazil import InvalidValue

# Every variable a template may use, with what it holds.  The collection engine fills them.
VARIABLES: dict[str, str] = {
    "primeiro_nome": "the debtor's first name",
    "nome": "the debtor's full name",
    "empresa": "the creditor's trade name",
    "razao_social": "the creditor's legal name",
    "cnpj_empresa": "the creditor's CNPJ, formatted",
    "endereco_empresa": "the creditor's address",
    "parcela": 'the installment, e.g. "3 de 10"',
    "contrato": "the contract reference",
    "vencimento": "the due date, dd/mm/aaaa",
    "dias_atraso": "days since the due date",
    "valor_original": "the principal (R$)",
    "multa": "the late fee (R$)",
    "juros": "the default interest (R$)",
    "correcao": "the monetary correction (R$)",
    "desconto": "the early-payment discount (R$)",
    "data_desconto": "the last day with the discount, dd/mm/aaaa",
    "valor_total": "what is owed on the day of the message (R$)",
    "itens": "a one-line summary of several installments",
    "pix_copia_e_cola": "the Pix BR Code for the total",
    "link_pagamento": "the payment page",
}

_NAMED = re.compile(r"\{\{\s*([a-z_][a-z0-9_]*)\s*\}\}")
_ANY_PLACEHOLDER = re.compile(r"\{\{(.*?)\}\}")
# a run of blanks holding a line break or a tab, or more than four spaces: Meta refuses both
# (contract §2.2); a no-break space (inside ``R$ 1,00``) is neither and stays
_UNSENDABLE_BLANKS = re.compile(r"[ \t\r\n\v\f]*[\t\r\n\v\f][ \t\r\n\v\f]*| {5,}")
EMPTY_VALUE = "-"  # what the debtor reads where a value is missing (Meta refuses an empty one)

EXAMPLE = "{{primeiro_nome}}"
BODY_MAX = 1024
BUTTON_TEXT_MAX = 25


@dataclass(frozen=True, slots=True)
class Compiled:
    """A body ready for the provider: ``text`` with ``{{1}}``…, ``names`` in position order
    (a variable used twice holds two positions)."""

    text: str
    names: tuple[str, ...]


def variables_in(text: str) -> tuple[str, ...]:
    """The named variables of ``text`` in order of first use; unknown or malformed ones raise."""
    names: list[str] = []
    for match in _ANY_PLACEHOLDER.finditer(text):
        named = _NAMED.fullmatch(match.group(0))
        if not named:
            raise InvalidValue(f"{match.group(0)!r} is not a variable such as {EXAMPLE}")
        name = named.group(1)
        if name not in VARIABLES:
            raise InvalidValue(f"unknown variable {{{{{name}}}}}; known: {', '.join(VARIABLES)}")
        if name not in names:
            names.append(name)
    return tuple(names)


def compile_body(text: str) -> Compiled:
    """The provider's positional form of a WhatsApp body, checked against Meta's rules: at
    most 1,024 characters, no variable at the very start or end (2388299)."""
    names = variables_in(text)
    stripped = text.strip()
    if len(stripped) > BODY_MAX:
        raise InvalidValue(f"the body has {len(stripped)} characters; WhatsApp allows {BODY_MAX}")
    if stripped.startswith("{{") or stripped.endswith("}}"):
        raise InvalidValue("WhatsApp refuses a body that starts or ends with a variable")
    del names  # validated; every occurrence gets its own position (Meta numbers them 1..n)
    order: list[str] = []

    def number(match: re.Match[str]) -> str:
        order.append(match.group(1))
        return f"{{{{{len(order)}}}}}"

    positional = _NAMED.sub(number, stripped)
    return Compiled(positional, tuple(order))


def clean_parameter(value: str) -> str:
    """A value as it goes out on WhatsApp: line breaks, tabs and runs of more than four spaces
    become one space; an empty or blank value becomes ``EMPTY_VALUE``."""
    return _UNSENDABLE_BLANKS.sub(" ", value).strip() or EMPTY_VALUE


def parameters(compiled: Compiled, values: Mapping[str, str]) -> list[str]:
    """The provider's parameters of ``compiled``, in position order, cleaned."""
    missing = [n for n in compiled.names if n not in values]
    if missing:
        raise InvalidValue(f"no value for {', '.join(missing)}")
    return [clean_parameter(values[n]) for n in compiled.names]


def render(text: str, values: Mapping[str, str]) -> str:
    """A WhatsApp text as the debtor reads it (previews, the evidence of what was sent): each
    variable holds the value :func:`parameters` sends for it."""
    variables_in(text)

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        return clean_parameter(values[name]) if name in values else match.group(0)

    return _NAMED.sub(value, text)


_JINJA = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False)
_JINJA_HTML = SandboxedEnvironment(undefined=StrictUndefined, autoescape=True)


def render_jinja(source: str, values: Mapping[str, Any], *, html: bool = False) -> str:
    """An SMS or e-mail part: the same variables, in a sandbox (no access to Python internals)."""
    env = _JINJA_HTML if html else _JINJA
    try:
        return env.from_string(source).render(**values)
    except Exception as exc:  # syntax errors, undefined variables, sandbox violations
        raise InvalidValue(f"the template cannot be rendered: {exc}") from exc
