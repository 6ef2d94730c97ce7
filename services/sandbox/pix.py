"""The Pix PSP sandbox: pays a BR Code "copia e cola" and posts the Banco Central's Pix webhook
to the URL the retailer registered, like a PSP does.

``POST /_sandbox/pix/connections`` registers a PSP account: the retailer's Pix key and its
webhook URL (``POST /v1/pix/connections`` gives it), optionally the client-certificate subject
the PSP's mutual-TLS proxy would pass.  ``POST /_sandbox/pix/pay`` decodes a static BR Code,
finds the account by the code's key, and posts ``{"pix": [{"endToEndId", "txid", "valor",
"horario", "infoPagador", ...}]}`` to ``{webhook_url}/pix`` (the BCB spec), retrying non-2xx
answers with exponential backoff; it answers once the delivery is done, with every attempt.
``deliver_twice`` posts the same body again (a PSP's duplicate); ``.../refund`` posts the Pix
again with a devolução.  ``GET /_sandbox/pix/payments`` shows what was paid and delivered.
State is in memory, per app, like the other sandboxes.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import string
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any

import httpx
import msgspec
import structlog
from litestar import Request, Router, get, post
from litestar.params import FromPath, JSONBody

from shared.brazil import InvalidValue
from shared.brazil.pix import decode, validate_pix_key
from shared.errors import FieldError, NotFound, ValidationFailed

log = structlog.get_logger("quita.sandbox.pix")

_ALNUM = string.ascii_letters + string.digits
Ispb = Annotated[str, msgspec.Meta(pattern=r"^[0-9]{8}$")]
Url = Annotated[str, msgspec.Meta(pattern=r"^https?://\S+$")]


class PspAccountIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A PSP account holding the retailer's Pix ``key``; its webhooks go to ``webhook_url``."""

    key: str
    webhook_url: Url
    client_cert_subject: str | None = None
    cert_header: str = "X-SSL-Client-S-DN"
    append_pix: bool = True  # the BCB spec: POST {webhook_url}/pix
    payer_ispb: Ispb = "12345678"
    retries: Annotated[int, msgspec.Meta(ge=0, le=10)] = 3
    retry_base_ms: Annotated[int, msgspec.Meta(ge=0, le=10_000)] = 50


class Payer(msgspec.Struct, forbid_unknown_fields=True):
    nome: str
    cpf: str | None = None


class PayIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Pay ``copia_e_cola``; ``amount`` overrides the code's (partial or over-payments)."""

    copia_e_cola: str
    amount: Decimal | None = None
    info: str | None = None
    payer: Payer | None = None
    deliver_twice: bool = False


class RefundIn(msgspec.Struct, forbid_unknown_fields=True):
    amount: Decimal | None = None


@dataclass
class SandboxPayment:
    item: dict[str, Any]
    key: str
    deliveries: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"key": self.key, "pix": self.item, "deliveries": self.deliveries}


@dataclass
class PixSandbox:
    accounts: dict[str, PspAccountIn] = field(default_factory=dict)
    payments: list[SandboxPayment] = field(default_factory=list)

    def find(self, e2e: str) -> SandboxPayment | None:
        return next((p for p in self.payments if p.item["endToEndId"] == e2e), None)


def sandbox_of(request: Request[Any, Any, Any]) -> PixSandbox:
    state: PixSandbox = request.app.state.setdefault("pix_psp", PixSandbox())
    return state


def end_to_end_id(payer_ispb: str, at: datetime) -> str:
    """``E`` + the payer PSP's ISPB + ``yyyyMMddHHmm`` (UTC) + 11 random letters or digits."""
    tail = "".join(secrets.choice(_ALNUM) for _ in range(11))
    return f"E{payer_ispb}{at:%Y%m%d%H%M}{tail}"


def rfc3339(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _key(raw: str, name: str) -> str:
    try:
        return validate_pix_key(raw)[1]
    except InvalidValue as exc:
        raise ValidationFailed(
            "The Pix key is not valid.", errors=[FieldError(name, exc.reason)]
        ) from None


async def deliver(account: PspAccountIn, payment: SandboxPayment, body: dict[str, Any]) -> None:
    """POST ``body`` to the account's webhook, retried with backoff while it is not 2xx."""
    url = account.webhook_url.rstrip("/") + ("/pix" if account.append_pix else "")
    content = json.dumps(body, separators=(",", ":")).encode()
    headers = {"Content-Type": "application/json", "User-Agent": "sandbox-psp/1.0"}
    if account.client_cert_subject:
        headers[account.cert_header] = account.client_cert_subject
    async with httpx.AsyncClient(timeout=5.0) as client:
        for attempt in range(account.retries + 1):
            outcome: int | str
            try:
                outcome = (await client.post(url, content=content, headers=headers)).status_code
            except httpx.HTTPError as exc:
                outcome = type(exc).__name__
            payment.deliveries.append({"url": url, "attempt": attempt + 1, "outcome": outcome})
            if isinstance(outcome, int) and 200 <= outcome < 300:
                return
            if attempt < account.retries:
                log.info("sandbox.pix_webhook_retry", attempt=attempt + 1, outcome=outcome)
                await asyncio.sleep(account.retry_base_ms * 2**attempt / 1000)
    log.warning("sandbox.pix_webhook_abandoned", attempts=account.retries + 1)


@post("/connections", status_code=201)
async def register(request: Request[Any, Any, Any], data: JSONBody[PspAccountIn]) -> dict[str, Any]:
    """Register (or replace) the PSP account of a Pix key and where its webhooks go."""
    key = _key(data.key, "key")
    account = msgspec.structs.replace(data, key=key)
    sandbox_of(request).accounts[key] = account
    return msgspec.to_builtins(account)  # type: ignore[no-any-return]


@get("/connections/{key:str}")
async def connection(request: Request[Any, Any, Any], key: FromPath[str]) -> dict[str, Any]:
    """The PSP account of a Pix key, 404 when none is registered (after a sandbox restart)."""
    account = sandbox_of(request).accounts.get(_key(key, "key"))
    if account is None:
        raise NotFound(f"No sandbox PSP account holds the key {key}.")
    return msgspec.to_builtins(account)  # type: ignore[no-any-return]


def _code(data: PayIn) -> tuple[str, str | None, Decimal]:
    try:
        code = decode(data.copia_e_cola.strip())
    except InvalidValue as exc:
        raise ValidationFailed(
            "The BR Code is not valid.", errors=[FieldError("copia_e_cola", exc.reason)]
        ) from None
    if code.key is None:
        raise ValidationFailed(
            "The sandbox pays static codes only.",
            errors=[FieldError("copia_e_cola", "a dynamic code (26.25) has no key to pay")],
        )
    amount = data.amount if data.amount is not None else code.amount
    if amount is None or not amount.is_finite() or amount <= 0:
        raise ValidationFailed(
            "Nothing to pay.", errors=[FieldError("amount", "the code has no amount; give one")]
        )
    txid = None if code.txid in (None, "***") else code.txid
    return _key(code.key, "copia_e_cola"), txid, amount.quantize(Decimal("0.01"))


@post("/pay", status_code=201)
async def pay(request: Request[Any, Any, Any], data: JSONBody[PayIn]) -> dict[str, Any]:
    """Pay a BR Code: its PSP account posts the Pix webhook (answers once delivered)."""
    key, txid, amount = _code(data)
    sandbox = sandbox_of(request)
    account = sandbox.accounts.get(key)
    if account is None:
        raise NotFound(f"No sandbox PSP account holds the key of this code ({key[:4]}...).")
    at = datetime.now(UTC)
    item: dict[str, Any] = {
        "endToEndId": end_to_end_id(account.payer_ispb, at),
        "txid": txid,
        "valor": f"{amount:.2f}",
        "chave": key,
        "horario": rfc3339(at),
        "infoPagador": data.info or "Pagamento via sandbox",
    }
    if txid is None:
        del item["txid"]
    if data.payer is not None:
        payer = {"nome": data.payer.nome}
        if data.payer.cpf:
            payer["cpf"] = data.payer.cpf
        item["pagador"] = payer
    payment = SandboxPayment(item=item, key=key)
    sandbox.payments.append(payment)
    await deliver(account, payment, {"pix": [item]})
    if data.deliver_twice:
        await deliver(account, payment, {"pix": [item]})
    return payment.as_dict()


@post("/payments/{end_to_end_id:str}/refund", status_code=201)
async def refund(
    request: Request[Any, Any, Any], end_to_end_id: FromPath[str], data: JSONBody[RefundIn]
) -> dict[str, Any]:
    """Refund (devolução) a paid Pix: the PSP posts the Pix again with ``devolucoes``."""
    sandbox = sandbox_of(request)
    payment = sandbox.find(end_to_end_id)
    if payment is None:
        raise NotFound(f"No sandbox Pix {end_to_end_id}.")
    account = sandbox.accounts[payment.key]
    at = datetime.now(UTC)
    amount = data.amount if data.amount is not None else Decimal(payment.item["valor"])
    refunds = list(payment.item.get("devolucoes", []))
    refunds.append(
        {
            "id": f"D{len(refunds) + 1}{secrets.token_hex(4)}",
            "rtrId": "D" + end_to_end_id[1:],
            "valor": f"{amount:.2f}",
            "horario": {"solicitacao": rfc3339(at), "liquidacao": rfc3339(at)},
            "status": "DEVOLVIDO",
        }
    )
    payment.item = {**payment.item, "devolucoes": refunds}
    await deliver(account, payment, {"pix": [payment.item]})
    return payment.as_dict()


@get("/payments")
async def payments(request: Request[Any, Any, Any]) -> list[dict[str, Any]]:
    """Every Pix paid in the sandbox, with each webhook delivery attempt."""
    return [p.as_dict() for p in sandbox_of(request).payments]


@post("/reset", status_code=200)
async def reset(request: Request[Any, Any, Any]) -> dict[str, str]:
    """Forget every PSP account and payment."""
    request.app.state.pix_psp = PixSandbox()
    return {"status": "reset"}


pix_psp_router = Router(
    path="/_sandbox/pix",
    route_handlers=[register, connection, pay, refund, payments, reset],
    tags=["sandbox control"],
)
