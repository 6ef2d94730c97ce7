"""The dossier as a printable document (HTML with print styles: the browser's "print to PDF"
makes the PDF).  Written in Portuguese: the retailer hands it to Procon, a court or the debtor.
Everything shown comes from the JSON export, whose digest is printed on every page's footer."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import Environment, StrictUndefined, select_autoescape

from shared.brazil.numbers import format_brl

_STATE = {
    "planned": "planejada",
    "queued": "na fila",
    "sending": "enviando",
    "sent": "enviada",
    "delivered": "entregue",
    "read": "lida",
    "failed": "falhou",
    "unknown": "resultado desconhecido",
    "cancelled": "cancelada",
    "skipped": "não enviada",
}


def _money(value: Any) -> str:
    try:
        return format_brl(Decimal(str(value)))
    except (InvalidOperation, ValueError):
        return str(value)


def _when(value: Any, zone: str = "America/Sao_Paulo") -> str:
    """An instant of the export as the retailer reads it: ``05/12/2026 10:00`` in its zone."""
    if not value:
        return "—"
    try:
        instant = datetime.fromisoformat(str(value))
    except ValueError:
        return str(value)
    if instant.tzinfo is None:
        return instant.strftime("%d/%m/%Y")
    return instant.astimezone(ZoneInfo(zone)).strftime("%d/%m/%Y %H:%M:%S")


_TEMPLATE = Path(__file__).with_name("dossier.html").read_text(encoding="utf-8")


def _rule(decision: Any) -> str:
    """One governance decision as a line: ``contact_window: held, until 2026-12-05 13:00``."""
    if not isinstance(decision, dict):
        return str(decision)
    rest = {k: v for k, v in decision.items() if k not in ("rule", "held")}
    verdict = "segurou" if decision.get("held") else "aplicada"
    details = ", ".join(
        f"{k} {_when(v) if k in ('until', 'at') else v}" for k, v in sorted(rest.items())
    )
    return f"{decision.get('rule', '?')}: {verdict}" + (f" ({details})" if details else "")


_ENV = Environment(autoescape=select_autoescape(default=True), undefined=StrictUndefined)
_ENV.globals.update(money=_money, rule=_rule, state=lambda s: _STATE.get(s, s))
_COMPILED = _ENV.from_string(_TEMPLATE)


def render(document: dict[str, Any]) -> str:
    """The printable dossier of a :func:`~shared.domains.evidence.dossier.build` export."""
    verification = document.get("verification")
    zone = document["retailer"].get("time_zone") or "America/Sao_Paulo"
    return _COMPILED.render(
        d=document,
        zone=zone,
        when=lambda v: _when(v, zone),
        verification=json.dumps(verification, indent=2, ensure_ascii=False) if verification else "",
    )
