"""A tenant's message templates: the defaults every retailer starts with, custom ones, edits
and previews.  WhatsApp templates wait in DRAFT until submitted to the retailer's WABA (then the
provider's review decides); SMS and e-mail need no review and are usable at once."""

from __future__ import annotations

import re
import uuid
from decimal import Decimal
from typing import Any

import msgspec
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.brazil import InvalidValue
from shared.brazil.pix import encode_static
from shared.db import flush_unique
from shared.domains.audit.service import Actor, record
from shared.domains.channels import defaults, templating
from shared.errors import Conflict, FieldError, NotFound, ValidationFailed
from shared.models import MessageTemplate, TemplateStatus

NAME = re.compile(r"^[a-z0-9_]{1,512}$")
SAMPLE = {
    "primeiro_nome": "Maria",
    "nome": "Maria Exemplo da Silva",
    "empresa": "Loja Exemplo",
    "razao_social": "Loja Exemplo Comércio Ltda.",
    "cnpj_empresa": "11.222.333/0001-81",
    "endereco_empresa": "Rua das Flores, 100, São Paulo/SP",
    "parcela": "3 de 10",
    "contrato": "K-9",
    "vencimento": "10/03/2025",
    "dias_atraso": "45",
    "valor_original": "R$\u00a0250,00",
    "multa": "R$\u00a05,00",
    "juros": "R$\u00a03,75",
    "correcao": "R$\u00a00,00",
    "desconto": "R$\u00a012,50",
    "data_desconto": "07/03/2025",
    "valor_total": "R$\u00a0258,75",
    "itens": "parcela 3 de 10 (R$\u00a0258,75)",
    "pix_copia_e_cola": encode_static(
        key="11222333000181",
        merchant_name="Loja Exemplo",
        city="Sao Paulo",
        amount=Decimal("258.75"),
        txid="EXEMPLO",
    ),
    "link_pagamento": "https://pagar.exemplo.com.br/abc123",
}


class TemplateIn(msgspec.Struct, forbid_unknown_fields=True):
    """A template.  ``body`` uses the named variables listed by ``GET /v1/templates/variables``.
    For e-mail, ``body`` is the text part and ``html`` the HTML part (sandboxed Jinja)."""

    channel_kind: str
    name: str
    body: str
    language: str = "pt_BR"
    category: str = "UTILITY"
    key: str | None = None
    header: str | None = None
    footer: str | None = None
    buttons: list[dict[str, str]] = msgspec.field(default_factory=list)
    subject: str | None = None
    html: str | None = None


class TemplateUpdate(msgspec.Struct, forbid_unknown_fields=True):
    body: str | None = None
    header: str | None = None
    footer: str | None = None
    buttons: list[dict[str, str]] | None = None
    subject: str | None = None
    html: str | None = None


class TemplateOut(msgspec.Struct):
    id: uuid.UUID
    channel_kind: str
    name: str
    language: str
    category: str
    key: str | None
    header: str | None
    body: str
    footer: str | None
    buttons: list[dict[str, Any]]
    subject: str | None
    html: str | None
    variables: list[str]
    provider_body: str | None
    status: str
    rejected_reason: str | None


class Preview(msgspec.Struct):
    subject: str | None
    header: str | None
    text: str
    html: str | None
    parameters: list[str] | None


class DuplicateTemplate(Conflict):
    code = "duplicate_template"


def _check(t: TemplateIn | MessageTemplate) -> None:
    """Field-by-field validation of what a template may say, per channel."""
    errors: list[FieldError] = []
    if t.channel_kind not in ("whatsapp", "sms", "email"):
        errors.append(FieldError("channel_kind", "must be whatsapp, sms or email"))
    if not NAME.match(t.name):
        errors.append(FieldError("name", "lowercase letters, digits and _ only"))
    if t.category not in ("UTILITY", "MARKETING", "AUTHENTICATION"):
        errors.append(FieldError("category", "must be UTILITY, MARKETING or AUTHENTICATION"))
    try:
        if t.channel_kind == "whatsapp":
            templating.compile_body(t.body)
        else:
            templating.variables_in(t.body)
            templating.render_jinja(t.body, templating.VARIABLES)
    except InvalidValue as exc:
        errors.append(FieldError("body", exc.reason))
    for field, limit in (("header", 60), ("footer", 60)):
        value = getattr(t, field)
        if value and len(value) > limit:
            errors.append(FieldError(field, f"at most {limit} characters"))
        try:
            if value and templating.variables_in(value) and field == "footer":
                errors.append(FieldError(field, "a footer cannot hold variables"))
        except InvalidValue as exc:
            errors.append(FieldError(field, exc.reason))
    buttons = list(t.buttons or [])
    if len(buttons) > 10:
        errors.append(FieldError("buttons", "at most 10 buttons"))
    for i, b in enumerate(buttons):
        if b.get("type") not in ("QUICK_REPLY", "URL"):
            errors.append(FieldError(f"buttons[{i}].type", "must be QUICK_REPLY or URL"))
        if not 1 <= len(b.get("text", "")) <= templating.BUTTON_TEXT_MAX:
            errors.append(FieldError(f"buttons[{i}].text", "1 to 25 characters"))
    if sum(b.get("type") == "URL" for b in buttons) > 2:
        errors.append(FieldError("buttons", "at most 2 URL buttons"))
    if t.channel_kind == "email":
        if not t.subject:
            errors.append(FieldError("subject", "an e-mail needs a subject"))
        for field in ("subject", "html"):
            try:
                if getattr(t, field):
                    templating.render_jinja(
                        getattr(t, field), templating.VARIABLES, html=field == "html"
                    )
            except InvalidValue as exc:
                errors.append(FieldError(field, exc.reason))
    if errors:
        raise ValidationFailed("The template is not valid.", errors=errors)


def _initial_status(channel_kind: str) -> TemplateStatus:
    return TemplateStatus.DRAFT if channel_kind == "whatsapp" else TemplateStatus.APPROVED


async def create(
    session: AsyncSession, tenant_id: uuid.UUID, data: TemplateIn, actor: Actor
) -> MessageTemplate:
    _check(data)
    row = MessageTemplate(
        tenant_id=tenant_id,
        channel_kind=data.channel_kind,
        name=data.name,
        language=data.language,
        category=data.category,
        key=data.key,
        header=data.header,
        body=data.body,
        footer=data.footer,
        buttons=data.buttons,
        subject=data.subject,
        html=data.html,
        status=_initial_status(data.channel_kind),
    )
    session.add(row)
    await flush_unique(
        session,
        DuplicateTemplate("A template with this channel, name and language already exists."),
    )
    await record(
        session,
        "template.created",
        tenant_id=tenant_id,
        actor_type=actor.type,
        actor_id=actor.id,
        subject_type="template",
        subject_id=str(row.id),
        data={"name": row.name, "channel_kind": row.channel_kind},
    )
    await session.refresh(row)
    return row


async def update(
    session: AsyncSession, row: MessageTemplate, data: TemplateUpdate, actor: Actor
) -> MessageTemplate:
    changed = [
        f
        for f in data.__struct_fields__
        if getattr(data, f) is not None and getattr(data, f) != getattr(row, f)
    ]
    if not changed:
        return row
    for f in changed:
        setattr(row, f, getattr(data, f))
    _check(row)
    if row.channel_kind == "whatsapp":
        # an edited text is a new text for the provider: it must be reviewed again
        row.status, row.rejected_reason = TemplateStatus.DRAFT, None
    await session.flush()
    await record(
        session,
        "template.updated",
        tenant_id=row.tenant_id,
        actor_type=actor.type,
        actor_id=actor.id,
        subject_type="template",
        subject_id=str(row.id),
        data={"fields": changed},
    )
    await session.refresh(row)
    return row


async def ensure_defaults(session: AsyncSession, tenant_id: uuid.UUID) -> int:
    """Create the default templates the tenant does not have yet; how many were created."""
    existing = set(
        (
            await session.execute(
                select(MessageTemplate.channel_kind, MessageTemplate.name).where(
                    MessageTemplate.tenant_id == tenant_id
                )
            )
        ).all()
    )
    created = 0
    for d in defaults.DEFAULTS:
        variants: dict[str, dict[str, Any]] = {
            "whatsapp": {
                "header": d.header,
                "body": d.body,
                "footer": defaults.FOOTER,
                "buttons": defaults.QUICK_REPLIES,
            },
            "sms": {"body": d.sms},
            "email": {
                "body": d.body,
                "subject": d.subject,
                "html": _html_of(d.body),
            },
        }
        for kind, fields in variants.items():
            if (kind, d.name) in existing:
                continue
            session.add(
                MessageTemplate(
                    tenant_id=tenant_id,
                    channel_kind=kind,
                    name=d.name,
                    key=d.key,
                    status=_initial_status(kind),
                    **fields,
                )
            )
            created += 1
    await session.flush()
    return created


def _html_of(text: str) -> str:
    """An HTML part for a default e-mail: the text's lines as paragraphs (values autoescaped)."""
    paragraphs = "".join(f"<p>{line}</p>" for line in text.split("\n"))
    return f'<div style="font-family: sans-serif; font-size: 15px">{paragraphs}</div>'


async def get(session: AsyncSession, tenant_id: uuid.UUID, ident: uuid.UUID) -> MessageTemplate:
    row = await session.scalar(
        select(MessageTemplate).where(
            MessageTemplate.id == ident, MessageTemplate.tenant_id == tenant_id
        )
    )
    if row is None:
        raise NotFound("The template was not found.")
    return row


async def list_for(
    session: AsyncSession, tenant_id: uuid.UUID, channel_kind: str | None, key: str | None
) -> list[MessageTemplate]:
    stmt = select(MessageTemplate).where(MessageTemplate.tenant_id == tenant_id)
    if channel_kind:
        stmt = stmt.where(MessageTemplate.channel_kind == channel_kind)
    if key:
        stmt = stmt.where(MessageTemplate.key == key)
    return list(
        await session.scalars(stmt.order_by(MessageTemplate.key, MessageTemplate.channel_kind))
    )


def out(row: MessageTemplate) -> TemplateOut:
    provider = None
    if row.channel_kind == "whatsapp":
        provider = templating.compile_body(row.body).text
    return TemplateOut(
        id=row.id,
        channel_kind=row.channel_kind,
        name=row.name,
        language=row.language,
        category=row.category,
        key=row.key,
        header=row.header,
        body=row.body,
        footer=row.footer,
        buttons=row.buttons,
        subject=row.subject,
        html=row.html,
        variables=list(templating.variables_in(row.body)),
        provider_body=provider,
        status=row.status,
        rejected_reason=row.rejected_reason,
    )


def preview(row: MessageTemplate, values: dict[str, str] | None = None) -> Preview:
    """What the debtor would read, with the given values (sample ones where missing)."""
    merged = {**SAMPLE, **(values or {})}
    if row.channel_kind == "whatsapp":
        compiled = templating.compile_body(row.body)
        return Preview(
            subject=None,
            header=row.header,
            text=templating.render(row.body, merged),
            html=None,
            parameters=templating.parameters(compiled, merged),
        )
    return Preview(
        subject=templating.render_jinja(row.subject, merged) if row.subject else None,
        header=None,
        text=templating.render_jinja(row.body, merged),
        html=templating.render_jinja(row.html, merged, html=True) if row.html else None,
        parameters=None,
    )
