"""offers sent as a message: ``contact_attempts.offer_id`` (the link in the message opens that
offer's options) and the template ``quita_oferta_v1`` for every existing retailer (WhatsApp as
DRAFT for review, SMS and e-mail usable at once)

Revision ID: 0021
Revises: 0020
"""

import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The template as it was when this migration was written (later edits of the defaults are not
# this migration's business).
_NAME, _KEY = "quita_oferta_v1", "oferta"
_BODY = (
    "Olá, {{primeiro_nome}}. Aqui é da {{empresa}}.\n"
    "Preparamos opções para você quitar {{valor_total}} em atraso, à vista ou parcelado.\n"
    "Veja as condições e escolha a sua pelo link {{link_pagamento}} .\n"
    "As condições valem por tempo limitado. Se preferir, toque em Quero negociar ou "
    "responda esta mensagem.\n"
    "{{razao_social}}, CNPJ {{cnpj_empresa}}."
)
_SMS = (
    "{{empresa}}: {{primeiro_nome}}, temos opções para quitar {{valor_total}} em atraso. "
    "Escolha a sua: {{link_pagamento}} SAIR para parar."
)
_SUBJECT = "Opções para quitar o que está em atraso"
_HEADER = "Opções para você"
_FOOTER = "Responda SAIR para não receber lembretes"
_BUTTONS = [
    {"type": "QUICK_REPLY", "text": "Já paguei", "payload": "QUITA_PAID"},
    {"type": "QUICK_REPLY", "text": "Quero negociar", "payload": "QUITA_NEGOTIATE"},
    {"type": "QUICK_REPLY", "text": "Falar com atendente", "payload": "QUITA_AGENT"},
    {"type": "QUICK_REPLY", "text": "Não quero receber", "payload": "QUITA_STOP"},
]


def upgrade() -> None:
    op.add_column("contact_attempts", sa.Column("offer_id", sa.Uuid(), nullable=True))
    op.create_foreign_key(
        op.f("fk_contact_attempts_offer_id_offers"),
        "contact_attempts",
        "offers",
        ["offer_id"],
        ["id"],
        ondelete="SET NULL",
    )
    op.create_index(
        "ix_contact_attempts_offer",
        "contact_attempts",
        ["offer_id"],
        postgresql_where=sa.text("offer_id IS NOT NULL"),
    )
    paragraphs = "".join(f"<p>{line}</p>" for line in _BODY.split("\n"))
    html = f'<div style="font-family: sans-serif; font-size: 15px">{paragraphs}</div>'
    variants: tuple[tuple[Any, ...], ...] = (
        ("whatsapp", "DRAFT", _HEADER, _BODY, _FOOTER, _BUTTONS, None, None),
        ("sms", "APPROVED", None, _SMS, None, [], None, None),
        ("email", "APPROVED", None, _BODY, None, [], _SUBJECT, html),
    )
    for kind, status, header, body, footer, buttons, subject, html_body in variants:
        op.get_bind().execute(
            sa.text(
                """INSERT INTO message_templates (id, tenant_id, channel_kind, name, key, status,
                                                  header, body, footer, buttons, subject, html)
                   SELECT gen_random_uuid(), t.id, CAST(:kind AS text), CAST(:name AS text),
                          CAST(:key AS text), CAST(:status AS text), CAST(:header AS text),
                          CAST(:body AS text), CAST(:footer AS text), CAST(:buttons AS jsonb),
                          CAST(:subject AS text), CAST(:html AS text)
                   FROM tenants t
                   WHERE t.kind = 'retailer'
                     AND NOT EXISTS (SELECT 1 FROM message_templates m
                                     WHERE m.tenant_id = t.id AND m.channel_kind = :kind
                                       AND m.name = :name)"""
            ),
            {
                "kind": kind,
                "name": _NAME,
                "key": _KEY,
                "status": status,
                "header": header,
                "body": body,
                "footer": footer,
                "buttons": json.dumps(buttons),
                "subject": subject,
                "html": html_body,
            },
        )


def downgrade() -> None:
    op.execute(f"DELETE FROM message_templates WHERE name = '{_NAME}'")
    op.drop_index("ix_contact_attempts_offer", table_name="contact_attempts")
    op.drop_column("contact_attempts", "offer_id")
