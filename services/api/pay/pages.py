"""The payment page's HTML, in Portuguese (debtors read it), small and without scripts: it
must open on any phone, over a slow connection, from a WhatsApp or SMS link."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from html import escape
from typing import Any

import segno

from shared.brazil.numbers import format_brl, format_date_br
from shared.domains.negotiation import chat
from shared.domains.paypage.service import Bill, Chosen

_STYLE = """
body{font-family:system-ui,sans-serif;background:#f5f6f8;margin:0;color:#1d2433}
main{max-width:480px;margin:4vh auto;background:#fff;border-radius:12px;padding:24px;
box-shadow:0 2px 12px rgba(0,0,0,.08)}
h1{font-size:1.25rem;margin:0 0 8px}p{color:#4a5468;line-height:1.45}
table{width:100%;border-collapse:collapse;margin:12px 0;font-size:.95rem}
td,th{padding:6px 4px;border-bottom:1px solid #e6e9ef;text-align:left}
td.n,th.n{text-align:right;white-space:nowrap}
.total{font-size:1.2rem;font-weight:700;margin:12px 0}
.qr{text-align:center;margin:16px 0}.qr svg{max-width:240px;height:auto}
textarea{width:100%;box-sizing:border-box;font-family:monospace;font-size:.8rem;padding:8px;
border:1px solid #c9cfdb;border-radius:8px;height:96px}
label{display:block;margin:16px 0 4px;font-weight:600}
input[type=text]{width:100%;padding:10px;border:1px solid #c9cfdb;border-radius:8px;
box-sizing:border-box;font-size:1.1rem;letter-spacing:.2em}
button{margin-top:12px;padding:10px 18px;border:0;border-radius:8px;font-size:1rem;
cursor:pointer;background:#0b6b4f;color:#fff}
.option{border:1px solid #e6e9ef;border-radius:10px;padding:12px;margin:12px 0}
.option h2{font-size:1.05rem;margin:0 0 4px}
.error{background:#fdecec;color:#8a1f1f;padding:10px;border-radius:8px}
.ok{background:#e8f6ef;color:#0b6b4f;padding:10px;border-radius:8px}
.small{font-size:.85rem;color:#6b7487}
"""

# What a page with a reason to be empty says (``Bill.settled``).
SETTLED = {
    "paid": "Não há nada a pagar nesta cobrança. Obrigado!",
    "renegotiated": "Estas parcelas entraram em um acordo. Os lembretes do acordo trazem o valor "
    "e o Pix de cada parcela dele.",
    "agreement_void": "Este acordo foi desfeito. Para pagar, fale com a loja.",
    "agreement_broken": "Este acordo foi encerrado. Para pagar, fale com a loja.",
    "agreement_cancelled": "Este acordo foi cancelado. Para pagar, fale com a loja.",
    "agreement_completed": "Este acordo está quitado. Obrigado!",
}


def page(title: str, body: str) -> str:
    return (
        "<!doctype html><html lang='pt-BR'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width,initial-scale=1'>"
        "<meta name='robots' content='noindex'>"
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body><main>{body}</main></body></html>"
    )


def message(title: str, text: str) -> str:
    return page(title, f"<h1>{escape(title)}</h1><p>{escape(text)}</p>")


def check(token: str, kind_of_document: str, error: str | None = None) -> str:
    """The question before anything about the debt is shown."""
    alert = f"<p class='error'>{escape(error)}</p>" if error else ""
    return page(
        "Confirme seus dados",
        "<h1>Confirme seus dados</h1>"
        "<p>Para sua segurança, antes de mostrar os valores, confirme que é você.</p>"
        f"{alert}<form method='post' action='/pagar/{escape(token)}'>"
        f"<label for='documento'>Os 3 primeiros dígitos do seu {escape(kind_of_document)}</label>"
        "<input id='documento' name='documento' type='text' maxlength='3' "
        "autocomplete='off' autocapitalize='characters' required>"
        "<button type='submit'>Continuar</button></form>",
    )


def _pix(payload: str | None, what: str) -> str:
    if payload is None:
        return "<p>Para pagar, fale com a loja: ela não tem Pix cadastrado no Quita.</p>"
    qr = segno.make(payload, error="m").svg_inline(scale=4, border=2)
    return (
        f"<p><strong>Pague {escape(what)} com Pix</strong>: leia o QR Code no app do seu banco "
        "ou copie o código abaixo (Pix copia e cola).</p>"
        f"<div class='qr'>{qr}</div>"
        f"<textarea readonly aria-label='Pix copia e cola'>{escape(payload)}</textarea>"
    )


def _creditor(name: str, document: str) -> str:
    who = escape(name) + (f", CNPJ {escape(document)}" if document else "")
    return f"<p class='small'>Credor: {who}</p>"


def bill(found_bill: Bill) -> str:
    b = found_bill
    hello = f"Olá, {escape(b.first_name)}!" if b.first_name else "Olá!"
    if b.settled is not None:
        text = SETTLED.get(b.settled, SETTLED["paid"])
        return page(
            "Pagamento",
            f"<h1>{hello}</h1><p class='ok'>{escape(text)}</p>"
            + _creditor(b.creditor, b.creditor_document),
        )
    rows = "".join(
        "<tr>"
        f"<td>{escape(line.label)}<br><span class='small'>venc. "
        f"{format_date_br(line.due_date)}</span></td>"
        f"<td class='n'>{format_brl(line.principal)}</td>"
        f"<td class='n'>{_charges(line.charges, line.discount)}</td>"
        f"<td class='n'><strong>{format_brl(line.total)}</strong></td>"
        "</tr>"
        for line in b.lines
    )
    table = (
        "<table><thead><tr><th>Parcela</th><th class='n'>Valor</th>"
        "<th class='n'>Encargos</th><th class='n'>Hoje</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>"
    )
    what = "este valor"
    if b.of_agreement and len(b.lines) > 1:
        what = f"a {b.lines[0].label.lower()}"
    return page(
        "Pagamento",
        f"<h1>{hello}</h1><p>Valores atualizados em {format_date_br(b.as_of)}.</p>{table}"
        f"<p class='total'>Total a pagar hoje: {format_brl(b.total)}</p>"
        + _pix(b.pix, what)
        + _creditor(b.creditor, b.creditor_document),
    )


def _charges(charges: Decimal, discount: Decimal) -> str:
    if discount > 0:
        return f"-{format_brl(discount)}"
    return format_brl(charges) if charges > 0 else "—"


def offer(
    token: str,
    first_name: str,
    options: Iterable[dict[str, Any]],
    total: Decimal,
    until: datetime,
    creditor: tuple[str, str],
) -> str:
    """The options of an offer, each with a button to choose it."""
    cards = "".join(
        "<div class='option'>"
        f"<h2>{escape(chat.row_title(o))}</h2><p>{escape(chat.row_description(o))}</p>"
        f"<form method='post' action='/pagar/{escape(token)}/escolha'>"
        f"<input type='hidden' name='opcao' value='{escape(str(o['id']))}'>"
        "<button type='submit'>Escolher esta opção</button></form></div>"
        for o in options
    )
    hello = f"Olá, {escape(first_name)}!" if first_name else "Olá!"
    return page(
        "Opções de pagamento",
        f"<h1>{hello}</h1><p>Preparamos opções para você quitar {format_brl(total)} em atraso. "
        f"Elas valem até {format_date_br(until.date())} às {until:%H:%M}.</p>{cards}"
        + _creditor(*creditor),
    )


def offer_expired(until: datetime) -> str:
    return message(
        "Opções expiradas",
        f"Estas condições valeram até {format_date_br(until.date())} às {until:%H:%M}. "
        "Responda a mensagem no WhatsApp para receber novas opções.",
    )


def agreement(made: Chosen, creditor: tuple[str, str], note: str | None = None) -> str:
    """The terms of the agreement made from the offer, and the Pix of what it asks for next."""
    alert = f"<p class='error'>{escape(note)}</p>" if note else ""
    terms = chat.confirmation_text(made.option, None).splitlines()
    items = "".join(f"<p>{escape(line)}</p>" for line in terms[1:])
    status = str(made.agreement.status)
    if status != "active":
        state = SETTLED.get(f"agreement_{status}", SETTLED["paid"])
        return page("Acordo", f"<h1>Acordo</h1>{alert}<p class='ok'>{escape(state)}</p>")
    pay = ""
    if made.next_due is not None:
        number = made.next_due.number
        what = "a entrada" if number == 0 else f"a parcela {number}"
        due = made.next_due.amount - made.next_due.amount_paid
        pay = (
            f"<p class='total'>Agora: {escape(what)}, {format_brl(due)}, "
            f"até {format_date_br(made.next_due.due_date)}</p>" + _pix(made.pix, what)
        )
    return page(
        "Acordo fechado",
        f"<h1>Acordo fechado!</h1>{alert}{items}{pay}" + _creditor(*creditor),
    )
