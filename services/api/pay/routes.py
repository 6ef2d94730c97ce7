"""``/pagar/<token>``: the payment page (no sign-in: the signed link and the debtor's check).

``GET`` shows the check, or the page once the check passed (a cookie for this link, 30 min);
``POST`` answers the check; ``POST .../escolha`` accepts an offer's option — the agreement is
made as if the debtor had tapped it in the chat, under the retailer's policy.  Ten wrong
answers block a link for good (a new message brings a new one).  The token itself cannot be
guessed, so the guesses that matter are those on one link; there is no per-address limit
(mobile carriers put thousands of debtors behind one address).  Pages are never cached,
never framed and never leak the link as a referrer.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import structlog
from litestar import MediaType, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.response import Redirect
from sqlalchemy.ext.asyncio import AsyncSession

from services.api.pay import pages
from services.common.http import resources
from shared import clock
from shared.brazil.calendar import timezone_for
from shared.brazil.documents import format_document
from shared.crypto import mac_keys
from shared.domains.audit.service import record
from shared.domains.negotiation import agreements, chat
from shared.domains.paypage import links, service
from shared.domains.paypage.service import Found
from shared.errors import ValidationFailed

log = structlog.get_logger("quita.paypage")

MAX_FAILURES = 10
OPEN_FOR_S = 1800
COOKIE = "quita_pagar"
_HEADERS = {
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "form-action 'self'; frame-ancestors 'none'",
}
NOT_FOUND = pages.message(
    "Link não encontrado",
    "Este link de pagamento não existe. Confira se ele foi copiado inteiro da mensagem.",
)
EXPIRED = pages.message(
    "Link expirado",
    "Este link de pagamento expirou. Responda a mensagem no WhatsApp para receber um novo.",
)
STALE = pages.message(
    "Opções desatualizadas",
    "Os valores mudaram desde que estas opções foram feitas. Responda a mensagem no WhatsApp "
    "para receber novas opções.",
)
BLOCKED = pages.message(
    "Link bloqueado",
    "Este link foi bloqueado depois de muitas tentativas. Responda a mensagem no WhatsApp "
    "para receber um novo.",
)


def _html(body: str, status: int = 200, **extra: Any) -> Response[str]:
    return Response(
        content=body, status_code=status, media_type=MediaType.HTML, headers=_HEADERS, **extra
    )


async def _open(db: AsyncSession, token: str) -> Found | Response[str]:
    link = links.read(token)
    if link is None:
        return _html(NOT_FOUND, 404)
    if link.expired(clock.now()):
        return _html(EXPIRED, 410)
    found = await service.find(db, link)
    return found if found is not None else _html(NOT_FOUND, 404)


# --- the check ---------------------------------------------------------------------------------


def _pass_for(token: str, until: int, key: bytes) -> str:
    mac = hmac.new(key, f"{token}|{until}".encode(), hashlib.sha256).digest()[:16]
    return f"{until}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"


def _passed(request: Request[Any, Any, Any], token: str, found: Found) -> bool:
    if found.check is None:
        return True
    value = request.cookies.get(COOKIE, "")
    until, _, _ = value.partition(".")
    if not until.isdigit() or int(until) < time.time():
        return False
    return any(
        hmac.compare_digest(value, _pass_for(token, int(until), key))
        for key in mac_keys("paylink-pass")
    )


def _document_kind(found: Found) -> str:
    return "CNPJ" if len(found.customer.document or "") == 14 else "CPF"


def _failures_key(token: str) -> str:
    return f"quita:paylink:fail:{hashlib.sha256(token.encode()).hexdigest()[:32]}"


async def _shown(db: AsyncSession, token: str, found: Found) -> Response[str]:
    """The page itself: the bill of a message, or the offer (or the agreement made of it)."""
    creditor = (
        found.tenant.legal_name or found.tenant.name,
        format_document(found.tenant.document) if found.tenant.document else "",
    )
    now = clock.now()
    if found.attempt is not None:
        return _html(pages.bill(await service.bill(db, found, now)))
    offer = found.offer
    assert offer is not None
    made = await service.chosen(db, offer)
    if made is not None:
        return _html(pages.agreement(made, creditor))
    until = offer.expires_at.astimezone(
        ZoneInfo(timezone_for(found.customer.state, found.customer.city))
    )
    if now >= offer.expires_at:
        return _html(pages.offer_expired(until))
    total = sum((Decimal(b["total"]) for b in offer.basis), Decimal(0))
    first_name = found.customer.name.split()[0].title() if found.customer.name.strip() else ""
    return _html(pages.offer(token, first_name, offer.options, total, until, creditor))


@get("/pagar/{token:str}", exclude_from_auth=True, include_in_schema=False)
async def pay_page(
    request: Request[Any, Any, Any], db: NamedDependency[AsyncSession], token: FromPath[str]
) -> Response[str]:
    found = await _open(db, token)
    if isinstance(found, Response):
        return found
    if not _passed(request, token, found):
        if int(await resources(request.app.state).redis.get(_failures_key(token)) or 0) >= (
            MAX_FAILURES
        ):
            return _html(BLOCKED, 429)
        return _html(pages.check(token, _document_kind(found)))
    return await _shown(db, token, found)


@post("/pagar/{token:str}", exclude_from_auth=True, include_in_schema=False, status_code=200)
async def pay_check(
    request: Request[Any, Any, Any], db: NamedDependency[AsyncSession], token: FromPath[str]
) -> Response[Any]:
    found = await _open(db, token)
    if isinstance(found, Response):
        return found
    res = resources(request.app.state)
    key = _failures_key(token)
    if int(await res.redis.get(key) or 0) >= MAX_FAILURES:
        return _html(BLOCKED, 429)
    typed = str((await request.form()).get("documento") or "")
    if not found.passes(typed):
        failures = int(await res.redis.incr(key))
        left = max(int((found.link.expires_at - clock.now()).total_seconds()), 60)
        await res.redis.expire(key, left)
        if failures >= MAX_FAILURES:
            return _html(BLOCKED, 429)
        error = f"Os dígitos não conferem. Restam {MAX_FAILURES - failures} tentativas."
        return _html(pages.check(token, _document_kind(found), error), 401)
    subject = ("contact_attempt", found.attempt.id) if found.attempt else None
    subject = subject or ("offer", found.link.ident)
    await record(
        db,
        "paylink.opened",
        tenant_id=found.tenant.id,
        actor_type="debtor",
        actor_id=str(found.customer.id),
        subject_type=subject[0],
        subject_id=str(subject[1]),
    )
    until = int(time.time()) + OPEN_FOR_S
    redirect = Redirect(path=f"/pagar/{token}", status_code=303, headers=_HEADERS)
    redirect.set_cookie(
        COOKIE,
        _pass_for(token, until, mac_keys("paylink-pass")[0]),
        max_age=OPEN_FOR_S,
        path=f"/pagar/{token}",
        httponly=True,
        samesite="lax",
        secure=res.settings.pay_base_url.startswith("https://"),
    )
    return redirect


@post(
    "/pagar/{token:str}/escolha",
    exclude_from_auth=True,
    include_in_schema=False,
    status_code=200,
)
async def pay_choose(
    request: Request[Any, Any, Any], db: NamedDependency[AsyncSession], token: FromPath[str]
) -> Response[Any]:
    """The debtor chose an option of the offer: the agreement is made (once; choosing again
    shows it) and the page shows its terms and the Pix of what is due first."""
    found = await _open(db, token)
    if isinstance(found, Response):
        return found
    if found.offer is None or not _passed(request, token, found):
        return Redirect(path=f"/pagar/{token}", status_code=303, headers=_HEADERS)
    option_id = str((await request.form()).get("opcao") or "")
    try:
        async with db.begin_nested():
            await agreements.accept(
                db,
                chat.retailer(found.tenant.id),
                found.offer.id,
                option_id,
                service.debtor(found.customer),
                idempotency_key=f"paylink:{found.offer.id}",
            )
    except agreements.OfferExpired:
        until = found.offer.expires_at.astimezone(
            ZoneInfo(timezone_for(found.customer.state, found.customer.city))
        )
        return _html(pages.offer_expired(until), 409)
    except agreements.OfferStale:
        return _html(STALE, 409)
    except agreements.OfferAccepted:
        pass  # the page shows the agreement made before
    except ValidationFailed:
        return _html(pages.message("Opção inválida", "Escolha uma das opções da lista."), 400)
    log.info("paypage.chosen", offer_id=str(found.offer.id))
    return Redirect(path=f"/pagar/{token}", status_code=303, headers=_HEADERS)


PAY_ROUTES = [pay_page, pay_check, pay_choose]
