"""Pix for installments: the tenant's receiving key, and a static BR Code for a balance.

The txid is the installment's id written in base 36 (25 characters, the static txid's limit), so
a payment that carries it is matched back to its installment without a lookup table.
"""

from __future__ import annotations

import string
import uuid
from datetime import date
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.brazil import InvalidValue
from shared.brazil.pix import ascii_text, encode_static, validate_pix_key
from shared.domains.audit.service import Actor, record
from shared.domains.money.fees import Balance
from shared.domains.portfolio import schemas
from shared.errors import Conflict, FieldError, ValidationFailed
from shared.models import Installment, PixSettings

ALPHABET = string.digits + string.ascii_uppercase
TXID_LENGTH = 25  # 36**25 > 2**128: every UUID fits


class PixNotConfigured(Conflict):
    code = "pix_not_configured"


class NothingToPay(Conflict):
    code = "nothing_to_pay"


def txid_for(ident: uuid.UUID) -> str:
    n = ident.int
    out = []
    while n:
        n, r = divmod(n, 36)
        out.append(ALPHABET[r])
    return "".join(reversed(out)).rjust(TXID_LENGTH, "0")


def id_for_txid(txid: str) -> uuid.UUID | None:
    """The installment id a txid of ours names, or None for someone else's txid."""
    if len(txid) != TXID_LENGTH:
        return None
    n = 0
    for ch in txid.upper():
        digit = ALPHABET.find(ch)
        if digit < 0:
            return None
        n = n * 36 + digit
    return uuid.UUID(int=n) if n < 2**128 else None


async def save_settings(
    session: AsyncSession, tenant_id: uuid.UUID, data: schemas.PixSettingsIn, actor: Actor
) -> PixSettings:
    errors: list[FieldError] = []
    kind, key = "", ""
    try:
        kind, key = validate_pix_key(data.key)
    except InvalidValue as exc:
        errors.append(FieldError("key", exc.reason))
    name, city = ascii_text(data.merchant_name), ascii_text(data.city)
    if not name or len(name) > 25:
        errors.append(FieldError("merchant_name", "must have 1 to 25 letters (BR Code field 59)"))
    if not city or len(city) > 15:
        errors.append(FieldError("city", "must have 1 to 15 letters (BR Code field 60)"))
    if errors:
        raise ValidationFailed("The Pix settings are not valid.", errors=errors)
    row = await session.get(PixSettings, tenant_id, with_for_update=True)
    if row is None:
        row = PixSettings(
            tenant_id=tenant_id, key=key, key_type=kind, merchant_name=name, city=city
        )
        session.add(row)
    else:
        row.key, row.key_type, row.merchant_name, row.city = key, kind, name, city
    await session.flush()
    await record(
        session,
        "pix_settings.updated",
        tenant_id=tenant_id,
        actor_type=actor.type,
        actor_id=actor.id,
        subject_type="pix_settings",
        subject_id=str(tenant_id),
        data={"key_type": kind, "merchant_name": name, "city": city},
    )
    return row


async def settings_of(session: AsyncSession, tenant_id: uuid.UUID) -> PixSettings:
    row = await session.scalar(select(PixSettings).where(PixSettings.tenant_id == tenant_id))
    if row is None:
        raise PixNotConfigured(
            "This retailer has no Pix key yet; set it with PUT /v1/settings/pix."
        )
    return row


def settings_out(row: PixSettings) -> schemas.PixSettingsOut:
    return schemas.PixSettingsOut(
        key=row.key,
        key_type=row.key_type,
        merchant_name=row.merchant_name,
        city=row.city,
        updated_at=row.updated_at,
    )


COLLECT_BY_PIX = frozenset({"open", "partially_paid", "disputed", "written_off"})


def copia_e_cola(settings: PixSettings, amount: Decimal, txid: str) -> str:
    """The static BR Code paying ``amount`` to the tenant's key, carrying ``txid``."""
    return encode_static(
        key=settings.key,
        merchant_name=settings.merchant_name,
        city=settings.city,
        amount=amount,
        txid=txid,
    )


def pix_for(
    settings: PixSettings, inst: Installment, balance: Balance, as_of: date
) -> schemas.PixOut:
    if inst.status not in COLLECT_BY_PIX:
        raise NothingToPay(f"The installment is {inst.status}; there is nothing to pay.")
    if balance.total <= 0:
        raise NothingToPay("The installment's balance is zero; there is nothing to pay.")
    txid = txid_for(inst.id)
    payload = copia_e_cola(settings, balance.total, txid)
    base = f"/v1/installments/{inst.id}/pix"
    return schemas.PixOut(
        installment_id=inst.id,
        as_of=as_of,
        payload=payload,
        txid=txid,
        amount=balance.total,
        key_type=settings.key_type,
        merchant_name=settings.merchant_name,
        city=settings.city,
        qr_svg_url=f"{base}/qr.svg?as_of={as_of.isoformat()}",
        qr_png_url=f"{base}/qr.png?as_of={as_of.isoformat()}",
    )
