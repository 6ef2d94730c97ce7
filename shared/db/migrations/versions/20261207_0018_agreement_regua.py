"""agreement régua: cadences get a kind (``regua`` or ``agreement``, one default per tenant and
kind); contact attempt items may name an agreement installment instead of an installment (a
step fires once per agreement installment); attempts of kind ``agreement``; every existing
retailer gets the agreement templates and the default agreement régua

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07
"""

import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ATTEMPT_KINDS = ("regua", "manual", "campaign")

# The agreement templates as they were when this migration was written (later edits of the
# defaults are not this migration's business).  WhatsApp ones start as DRAFT: the retailer
# submits them for review like any other; SMS and e-mail are usable at once.
_CREDITOR = "{{razao_social}}, CNPJ {{cnpj_empresa}}."
_FOOTER = "Responda SAIR para não receber lembretes"
_BUTTONS = [
    {"type": "QUICK_REPLY", "text": "Já paguei", "payload": "QUITA_PAID"},
    {"type": "QUICK_REPLY", "text": "Quero negociar", "payload": "QUITA_NEGOTIATE"},
    {"type": "QUICK_REPLY", "text": "Falar com atendente", "payload": "QUITA_AGENT"},
    {"type": "QUICK_REPLY", "text": "Não quero receber", "payload": "QUITA_STOP"},
]
_TEMPLATES = (
    {
        "key": "acordo_lembrete",
        "name": "quita_acordo_lembrete_v1",
        "header": "Lembrete do seu acordo",
        "body": (
            "Olá, {{primeiro_nome}}! Aqui é da {{empresa}}.\n"
            "Passando para lembrar que a parcela {{parcela}} do seu acordo, no valor de "
            "{{valor_total}}, vence em {{vencimento}}.\n"
            "Pix copia e cola: {{pix_copia_e_cola}}\n"
            "Se já pagou, é só desconsiderar. Obrigado por manter o acordo em dia!\n"
            f"{_CREDITOR}"
        ),
        "sms": (
            "{{empresa}}: oi, {{primeiro_nome}}! A parcela {{parcela}} do seu acordo, de "
            "{{valor_total}}, vence em {{vencimento}}. SAIR para parar."
        ),
        "subject": "A parcela {{parcela}} do seu acordo vence em {{vencimento}}",
    },
    {
        "key": "acordo_vence_hoje",
        "name": "quita_acordo_vence_hoje_v1",
        "header": "Seu acordo vence hoje",
        "body": (
            "Olá, {{primeiro_nome}}! Aqui é da {{empresa}}.\n"
            "Hoje, {{vencimento}}, vence a parcela {{parcela}} do seu acordo, no valor de "
            "{{valor_total}}. Pelo Pix, o pagamento cai na hora.\n"
            "Pix copia e cola: {{pix_copia_e_cola}}\n"
            "Se já pagou, é só desconsiderar. Obrigado!\n"
            f"{_CREDITOR}"
        ),
        "sms": (
            "{{empresa}}: {{primeiro_nome}}, hoje vence a parcela {{parcela}} do seu acordo, de "
            "{{valor_total}}. SAIR para parar."
        ),
        "subject": "A parcela {{parcela}} do seu acordo vence hoje",
    },
    {
        "key": "acordo_atraso",
        "name": "quita_acordo_atraso_v1",
        "header": "Parcela do acordo em aberto",
        "body": (
            "Olá, {{primeiro_nome}}. Aqui é da {{empresa}}.\n"
            "A parcela {{parcela}} do seu acordo, de {{valor_total}}, venceu em {{vencimento}} e "
            "ainda aparece em aberto para nós. Pode ter sido só um esquecimento! Pagando, o seu "
            "acordo continua valendo.\n"
            "Pix copia e cola: {{pix_copia_e_cola}}\n"
            "Se já pagou, toque em Já paguei. Se precisar de ajuda, toque em Falar com "
            "atendente.\n"
            f"{_CREDITOR}"
        ),
        "sms": (
            "{{empresa}}: {{primeiro_nome}}, a parcela {{parcela}} do seu acordo ({{valor_total}}) "
            "venceu em {{vencimento}}. Pague e mantenha o acordo. SAIR para parar."
        ),
        "subject": "A parcela {{parcela}} do seu acordo está em aberto",
    },
)
_STEPS = (
    (-2, "quita_acordo_lembrete_v1"),
    (0, "quita_acordo_vence_hoje_v1"),
    (3, "quita_acordo_atraso_v1"),
)


def _html(text: str) -> str:
    paragraphs = "".join(f"<p>{line}</p>" for line in text.split("\n"))
    return f'<div style="font-family: sans-serif; font-size: 15px">{paragraphs}</div>'


def upgrade() -> None:
    op.add_column(
        "cadences",
        sa.Column("kind", sa.String(length=16), server_default="regua", nullable=False),
    )
    op.create_check_constraint("kind", "cadences", "kind IN ('regua', 'agreement')")
    op.drop_index(
        "uq_cadences_default", table_name="cadences", postgresql_where=sa.text("is_default")
    )
    op.create_index(
        "uq_cadences_default",
        "cadences",
        ["tenant_id", "kind"],
        unique=True,
        postgresql_where=sa.text("is_default"),
    )
    op.drop_constraint(op.f("ck_contact_attempts_kind"), "contact_attempts", type_="check")
    op.create_check_constraint(
        "kind", "contact_attempts", "kind IN ('regua', 'manual', 'campaign', 'agreement')"
    )
    op.alter_column("contact_attempt_items", "installment_id", nullable=True)
    op.add_column(
        "contact_attempt_items", sa.Column("agreement_installment_id", sa.Uuid(), nullable=True)
    )
    op.create_foreign_key(
        op.f("fk_contact_attempt_items_agreement_installment_id_agreement_installments"),
        "contact_attempt_items",
        "agreement_installments",
        ["agreement_installment_id"],
        ["id"],
        ondelete="CASCADE",
    )
    # one step fires once per agreement installment; the unique index also finds an agreement
    # installment's reminders when it is paid
    op.create_unique_constraint(
        op.f("uq_contact_attempt_items_agreement_installment_id_step_id"),
        "contact_attempt_items",
        ["agreement_installment_id", "step_id"],
    )
    op.create_check_constraint(
        "one_installment",
        "contact_attempt_items",
        "num_nonnulls(installment_id, agreement_installment_id) = 1",
    )
    _backfill()


def _backfill() -> None:
    """Retailers that exist already get what new ones get: the agreement templates and the
    default agreement régua (WhatsApp, falling back to SMS)."""
    for t in _TEMPLATES:
        variants: tuple[tuple[Any, ...], ...] = (
            ("whatsapp", "DRAFT", t["header"], t["body"], _FOOTER, _BUTTONS, None, None),
            ("sms", "APPROVED", None, t["sms"], None, [], None, None),
            ("email", "APPROVED", None, t["body"], None, [], t["subject"], _html(t["body"])),
        )
        for kind, status, header, body, footer, buttons, subject, html in variants:
            op.get_bind().execute(
                sa.text(
                    """INSERT INTO message_templates (id, tenant_id, channel_kind, name, key,
                                                      status, header, body, footer, buttons,
                                                      subject, html)
                       SELECT gen_random_uuid(), t.id, v.kind, v.name, CAST(:key AS text),
                              CAST(:status AS text), CAST(:header AS text), CAST(:body AS text),
                              CAST(:footer AS text), CAST(:buttons AS jsonb),
                              CAST(:subject AS text), CAST(:html AS text)
                       FROM tenants t
                       CROSS JOIN (SELECT CAST(:kind AS text) AS kind,
                                          CAST(:name AS text) AS name) v
                       WHERE t.kind = 'retailer'
                         AND NOT EXISTS (SELECT 1 FROM message_templates m
                                         WHERE m.tenant_id = t.id
                                           AND m.channel_kind = v.kind AND m.name = v.name)"""
                ),
                {
                    "kind": kind,
                    "name": t["name"],
                    "key": t["key"],
                    "status": status,
                    "header": header,
                    "body": body,
                    "footer": footer,
                    "buttons": json.dumps(buttons),
                    "subject": subject,
                    "html": html,
                },
            )
    op.execute(
        """INSERT INTO cadences (id, tenant_id, name, kind, is_default)
           SELECT gen_random_uuid(), t.id, 'Régua de acordos', 'agreement', true FROM tenants t
           WHERE t.kind = 'retailer'
             AND NOT EXISTS (SELECT 1 FROM cadences c
                             WHERE c.tenant_id = t.id AND c.kind = 'agreement' AND c.is_default)"""
    )
    values = ", ".join(f"({offset}, '{name}')" for offset, name in _STEPS)
    op.execute(
        f"""INSERT INTO cadence_steps (id, tenant_id, cadence_id, offset_days, channel,
                                       fallback_channel, variants)
            SELECT gen_random_uuid(), c.tenant_id, c.id, s.offset_days, 'whatsapp', 'sms',
                   jsonb_build_array(jsonb_build_object('template', s.template, 'weight', 1))
            FROM cadences c CROSS JOIN (VALUES {values}) AS s (offset_days, template)
            WHERE c.kind = 'agreement' AND c.is_default
              AND NOT EXISTS (SELECT 1 FROM cadence_steps x WHERE x.cadence_id = c.id)"""
    )


def downgrade() -> None:
    op.execute("DELETE FROM contact_attempt_items WHERE installment_id IS NULL")
    op.execute("DELETE FROM contact_attempts WHERE kind = 'agreement'")
    op.drop_constraint(op.f("ck_contact_attempt_items_one_installment"), "contact_attempt_items")
    op.drop_constraint(
        op.f("uq_contact_attempt_items_agreement_installment_id_step_id"),
        "contact_attempt_items",
        type_="unique",
    )
    op.drop_constraint(
        op.f("fk_contact_attempt_items_agreement_installment_id_agreement_installments"),
        "contact_attempt_items",
        type_="foreignkey",
    )
    op.drop_column("contact_attempt_items", "agreement_installment_id")
    op.alter_column("contact_attempt_items", "installment_id", nullable=False)
    op.drop_constraint(op.f("ck_contact_attempts_kind"), "contact_attempts", type_="check")
    kinds = ", ".join(f"'{k}'" for k in _ATTEMPT_KINDS)
    op.create_check_constraint("kind", "contact_attempts", f"kind IN ({kinds})")
    op.execute("DELETE FROM cadences WHERE kind = 'agreement'")
    op.drop_index(
        "uq_cadences_default", table_name="cadences", postgresql_where=sa.text("is_default")
    )
    op.create_index(
        "uq_cadences_default",
        "cadences",
        ["tenant_id"],
        unique=True,
        postgresql_where=sa.text("is_default"),
    )
    op.drop_constraint(op.f("ck_cadences_kind"), "cadences", type_="check")
    op.drop_column("cadences", "kind")
