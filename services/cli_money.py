"""``quita index-rates``: the monthly rates of monetary-correction indexes (IPCA, BCB SGS series
433), which fee rules with ``correction_index`` use.  Platform data, kept by operators."""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.cli_identity import Out, _run
from shared.config import Settings
from shared.domains.audit.service import record
from shared.domains.money.fees import CORRECTION_INDEXES
from shared.models import CorrectionIndexRate


def _month(text: str) -> date:
    match = re.fullmatch(r"(\d{4})-(\d{2})", text)
    if not match or not 1 <= int(match.group(2)) <= 12:
        print(f"error: month {text!r} must be YYYY-MM", file=sys.stderr)
        raise SystemExit(2)
    return date(int(match.group(1)), int(match.group(2)), 1)


def _percent(text: str) -> Decimal:
    try:
        value = Decimal(text.replace(",", "."))
    except InvalidOperation:
        value = Decimal("NaN")
    if not value.is_finite() or abs(value) > 20:
        print(f"error: {text!r} is not a monthly change in % (e.g. 0.50)", file=sys.stderr)
        raise SystemExit(2)
    return value


def register(sub: Any, add: Callable[..., argparse.ArgumentParser], out: Out) -> None:
    def rates_set(args: argparse.Namespace, settings: Settings) -> None:
        month, percent = _month(args.month), _percent(args.percent)

        async def go(s: AsyncSession) -> None:
            await s.execute(
                insert(CorrectionIndexRate)
                .values(index=args.index, month=month, percent=percent)
                .on_conflict_do_update(index_elements=["index", "month"], set_={"percent": percent})
            )
            await record(
                s,
                "index_rate.set",
                tenant_id=None,
                actor_type="cli",
                actor_id=None,
                subject_type="index_rate",
                subject_id=f"{args.index}:{args.month}",
                data={"percent": str(percent)},
            )

        _run(settings, go)
        out(
            args,
            {"index": args.index, "month": args.month, "percent": str(percent)},
            f"{args.index} {args.month}: {percent} %",
        )

    def rates_list(args: argparse.Namespace, settings: Settings) -> None:
        async def go(s: AsyncSession) -> list[CorrectionIndexRate]:
            return list(
                await s.scalars(
                    select(CorrectionIndexRate)
                    .where(CorrectionIndexRate.index == args.index)
                    .order_by(CorrectionIndexRate.month)
                )
            )

        rows = _run(settings, go)
        data = [{"month": r.month.strftime("%Y-%m"), "percent": str(r.percent)} for r in rows]
        human = "\n".join(f"{d['month']}  {d['percent']:>8} %" for d in data)
        out(args, {"index": args.index, "rates": data}, human or f"no {args.index} rates")

    rates = sub.add_parser("index-rates", help="monetary-correction index rates").add_subparsers(
        dest="index_rates", required=True
    )
    p = add("set", rates_set, "set one month's change, in %", rates)
    p.add_argument("index", choices=sorted(CORRECTION_INDEXES))
    p.add_argument("month", help="YYYY-MM")
    p.add_argument("percent", help="the month's change in %, e.g. 0.50")
    p = add("list", rates_list, "the stored months", rates)
    p.add_argument("index", choices=sorted(CORRECTION_INDEXES))
