"""the broken-promise template: every existing retailer gets ``quita_promessa_quebrada_v1``
(WhatsApp as DRAFT for review, SMS and e-mail usable at once), which the reminder sent when a
promise to pay runs out unpaid uses

Revision ID: 0020
Revises: 0019
"""

import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The template as it was when this migration was written (later edits of the defaults are not
# this migration's business).
_NAME, _KEY = "quita_promessa_quebrada_v1", "promessa_quebrada"
_BODY = (
    "Olá, {{primeiro_nome}}. Aqui é da {{empresa}}.\n"
    "Você combinou com a gente o pagamento da parcela {{parcela}}, mas ainda não "
    "identificamos o pagamento. Este é o valor atualizado para hoje:\n"
    "Valor original: {{valor_original}}\n"
    "Multa: {{multa}}\n"
    "Juros: {{juros}}\n"
    "Total hoje: {{valor_total}}\n"
    "Pix copia e cola: {{pix_copia_e_cola}}\n"
    "Ou pague pelo link {{link_pagamento}} .\n"
    "Se já pagou, toque em Já paguei. Se precisar de outra data ou de um acordo, toque em "
    "Quero negociar.\n"
    "{{razao_social}}, CNPJ {{cnpj_empresa}}."
)
_SMS = (
    "{{empresa}}: {{primeiro_nome}}, ainda não identificamos o pagamento combinado da "
    "parcela {{parcela}}. Valor hoje {{valor_total}}. Para negociar, responda. SAIR para parar."
)
_SUBJECT = "O pagamento combinado da parcela {{parcela}}"
_FOOTER = "Responda SAIR para não receber lembretes"
_BUTTONS = [
    {"type": "QUICK_REPLY", "text": "Já paguei", "payload": "QUITA_PAID"},
    {"type": "QUICK_REPLY", "text": "Quero negociar", "payload": "QUITA_NEGOTIATE"},
    {"type": "QUICK_REPLY", "text": "Falar com atendente", "payload": "QUITA_AGENT"},
    {"type": "QUICK_REPLY", "text": "Não quero receber", "payload": "QUITA_STOP"},
]


def upgrade() -> None:
    paragraphs = "".join(f"<p>{line}</p>" for line in _BODY.split("\n"))
    html = f'<div style="font-family: sans-serif; font-size: 15px">{paragraphs}</div>'
    variants: tuple[tuple[Any, ...], ...] = (
        ("whatsapp", "DRAFT", "Pagamento combinado", _BODY, _FOOTER, _BUTTONS, None, None),
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
