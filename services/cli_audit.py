"""``quita audit verify|seal``: check the audit trail's hash chains; seal what is ready now."""

from __future__ import annotations

import argparse
import sys
import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.cli_identity import Out, _run
from shared.config import Settings
from shared.domains.audit.tasks import seal_until_done
from shared.domains.audit.verify import VerifyResult, verify
from shared.logging import configure_logging


def _tenant(text: str) -> uuid.UUID | None:
    """A tenant id, or ``platform`` for the platform's own chain."""
    if text == "platform":
        return None
    try:
        return uuid.UUID(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not a tenant id (a uuid) nor 'platform': {text!r}"
        ) from None


def register(sub: Any, add: Callable[..., argparse.ArgumentParser], out: Out) -> None:
    """Add the audit commands to the ``quita`` parser."""

    def cmd_verify(args: argparse.Namespace, settings: Settings) -> None:
        async def go(s: AsyncSession) -> VerifyResult:
            if args.tenant is _EVERY:
                return await verify(s)
            return await verify(s, tenant_id=args.tenant)

        result: VerifyResult = _run(settings, go)
        breaks = [
            f"{'tenant ' + str(c.tenant_id) if c.tenant_id else 'platform'}: "
            f"first broken seal #{c.first_break}"
            for c in result.chains
            if c.first_break is not None
        ]
        human = "\n".join([*(p.describe() for p in result.problems), *breaks, result.summary()])
        out(args, result.as_dict(), human)
        if not result.ok:
            raise SystemExit(1)

    def cmd_seal(args: argparse.Namespace, settings: Settings) -> None:
        configure_logging(settings, "cli")  # logs to stderr: stdout stays the command's answer

        async def go(s: AsyncSession) -> dict[str, int]:
            rounds = await seal_until_done(s, budget_s=args.budget)
            if not any(r.locked for r in rounds):
                print("another sealer is running; nothing done", file=sys.stderr)
            return {
                "seals": sum(r.seals for r in rounds),
                "events": sum(r.events for r in rounds),
            }

        done = _run(settings, go)
        out(args, done, f"{done['seals']} seal(s) over {done['events']} event(s)")

    audit = sub.add_parser("audit", help="the tamper-evident audit trail")
    asub = audit.add_subparsers(dest="audit", required=True)
    check = add(
        "verify",
        cmd_verify,
        "recompute every seal and chain link; exit 1 naming what was edited, deleted or inserted",
        asub,
    )
    check.add_argument(
        "--tenant",
        type=_tenant,
        default=_EVERY,
        help="only this tenant's chain (a uuid, or 'platform'); default: every chain",
    )
    seal = add("seal", cmd_seal, "seal the events whose transactions have ended, now", asub)
    seal.add_argument("--budget", type=float, default=60.0, help="seconds to spend at most")


_EVERY: Any = object()
