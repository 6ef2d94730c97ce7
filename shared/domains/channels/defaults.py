"""The templates every new retailer starts with: one per moment of the default régua and of the
agreement régua, and one for a broken promise to pay, on WhatsApp, SMS and e-mail.

Written for this product in the tone the collection guides recommend: friendly, concrete, no
pressure, never the word "dívida" (we say "valor em aberto"), always a way to say "já paguei",
to negotiate or to stop.  Each names the creditor and its CNPJ (CDC art. 42-A); overdue ones
itemize the original value, fine, interest and total (SP Lei 14.953/2013, RJ Lei 6.854/2014).
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.domains.inbound import intents

CREDITOR = "{{razao_social}}, CNPJ {{cnpj_empresa}}."
ITEMIZED = (
    "Valor original: {{valor_original}}\n"
    "Multa: {{multa}}\n"
    "Juros: {{juros}}\n"
    "Total hoje: {{valor_total}}"
)
PAYMENT = "Pix copia e cola: {{pix_copia_e_cola}}\nOu pague pelo link {{link_pagamento}} ."
FOOTER = "Responda SAIR para não receber lembretes"

# the payload of each quick reply is what the intent layer reads back when a debtor taps it
QUICK_REPLIES = [
    {"type": "QUICK_REPLY", "text": "Já paguei", "payload": intents.PAYLOAD_PAID},
    {"type": "QUICK_REPLY", "text": "Quero negociar", "payload": intents.PAYLOAD_NEGOTIATE},
    {"type": "QUICK_REPLY", "text": "Falar com atendente", "payload": intents.PAYLOAD_AGENT},
    {"type": "QUICK_REPLY", "text": "Não quero receber", "payload": intents.PAYLOAD_STOP},
]


@dataclass(frozen=True, slots=True)
class DefaultTemplate:
    key: str
    name: str
    header: str
    body: str
    sms: str
    subject: str


REGUA_DEFAULTS: tuple[DefaultTemplate, ...] = (
    DefaultTemplate(
        key="lembrete_d3",
        name="quita_lembrete_d3_v1",
        header="Lembrete de vencimento",
        body=(
            "Olá, {{primeiro_nome}}! Tudo bem? Aqui é da {{empresa}}.\n"
            "Passando para lembrar que a parcela {{parcela}} do seu crediário, no valor de "
            "{{valor_total}}, vence em {{vencimento}}.\n"
            f"{PAYMENT}\n"
            "Se já pagou, é só desconsiderar. Obrigado!\n"
            f"{CREDITOR}"
        ),
        sms=(
            "{{empresa}}: oi, {{primeiro_nome}}! A parcela {{parcela}} de {{valor_total}} vence "
            "em {{vencimento}}. Pague em {{link_pagamento}} . Responda SAIR para parar."
        ),
        subject="Sua parcela {{parcela}} vence em {{vencimento}}",
    ),
    DefaultTemplate(
        key="lembrete_d3_desconto",
        name="quita_lembrete_d3_desconto_v1",
        header="Lembrete com desconto",
        body=(
            "Olá, {{primeiro_nome}}! Aqui é da {{empresa}}.\n"
            "A parcela {{parcela}} do seu crediário vence em {{vencimento}}. Pagando até "
            "{{data_desconto}}, você ganha {{desconto}} de desconto e paga só {{valor_total}}.\n"
            f"{PAYMENT}\n"
            "Se já pagou, é só desconsiderar. Obrigado!\n"
            f"{CREDITOR}"
        ),
        sms=(
            "{{empresa}}: {{primeiro_nome}}, pague a parcela {{parcela}} até {{data_desconto}} "
            "e ganhe {{desconto}} de desconto: {{link_pagamento}} . SAIR para parar."
        ),
        subject="Desconto para pagar a parcela {{parcela}} até {{data_desconto}}",
    ),
    DefaultTemplate(
        key="vespera_d1",
        name="quita_vespera_d1_v1",
        header="Vence amanhã",
        body=(
            "Oi, {{primeiro_nome}}! Aqui é da {{empresa}}.\n"
            "Amanhã, {{vencimento}}, vence a parcela {{parcela}} de {{valor_total}}.\n"
            f"{PAYMENT}\n"
            "Se já pagou, obrigado e desconsidere esta mensagem.\n"
            f"{CREDITOR}"
        ),
        sms=(
            "{{empresa}}: {{primeiro_nome}}, amanhã vence a parcela {{parcela}} de "
            "{{valor_total}}. Pague em {{link_pagamento}} . SAIR para parar."
        ),
        subject="Sua parcela {{parcela}} vence amanhã",
    ),
    DefaultTemplate(
        key="vence_hoje",
        name="quita_vence_hoje_v1",
        header="Vence hoje",
        body=(
            "Bom dia, {{primeiro_nome}}! Aqui é da {{empresa}}.\n"
            "Hoje, {{vencimento}}, é o dia do vencimento da parcela {{parcela}} de "
            "{{valor_total}}. Pelo Pix, o pagamento cai na hora.\n"
            f"{PAYMENT}\n"
            "Se já pagou, é só desconsiderar. Obrigado!\n"
            f"{CREDITOR}"
        ),
        sms=(
            "{{empresa}}: {{primeiro_nome}}, hoje vence a parcela {{parcela}} de "
            "{{valor_total}}. Pix na hora: {{link_pagamento}} . SAIR para parar."
        ),
        subject="Sua parcela {{parcela}} vence hoje",
    ),
    DefaultTemplate(
        key="atraso_d1",
        name="quita_atraso_d1_v1",
        header="Parcela em aberto",
        body=(
            "Olá, {{primeiro_nome}}. Aqui é da {{empresa}}.\n"
            "A parcela {{parcela}}, que venceu em {{vencimento}}, ainda aparece em aberto para "
            "nós. Pode ter sido só um esquecimento!\n"
            f"{ITEMIZED}\n"
            f"{PAYMENT}\n"
            "Se já pagou, toque em Já paguei. Obrigado!\n"
            f"{CREDITOR}"
        ),
        sms=(
            "{{empresa}}: {{primeiro_nome}}, a parcela {{parcela}} venceu em {{vencimento}}. "
            "Valor hoje {{valor_total}}: {{link_pagamento}} . SAIR para parar."
        ),
        subject="A parcela {{parcela}} venceu em {{vencimento}}",
    ),
    DefaultTemplate(
        key="atraso_d5",
        name="quita_atraso_d5_v1",
        header="Valor em aberto",
        body=(
            "Olá, {{primeiro_nome}}. Aqui é da {{empresa}}.\n"
            "A parcela {{parcela}} venceu há {{dias_atraso}} dias e continua em aberto. Este é o "
            "valor atualizado para pagamento hoje:\n"
            f"{ITEMIZED}\n"
            f"{PAYMENT}\n"
            "Se estiver difícil pagar agora, toque em Quero negociar e conversamos.\n"
            f"{CREDITOR}"
        ),
        sms=(
            "{{empresa}}: {{primeiro_nome}}, a parcela {{parcela}} segue em aberto. Valor hoje "
            "{{valor_total}}: {{link_pagamento}} . Para negociar, responda. SAIR para parar."
        ),
        subject="Valor em aberto da parcela {{parcela}}",
    ),
    DefaultTemplate(
        key="lembrete_final_d15",
        name="quita_lembrete_final_d15_v1",
        header="Vamos resolver juntos?",
        body=(
            "Olá, {{primeiro_nome}}. Aqui é da {{empresa}}.\n"
            "A parcela {{parcela}}, vencida em {{vencimento}}, ainda está em aberto. Sabemos que "
            "imprevistos acontecem: se o valor não couber no seu orçamento agora, toque em Quero "
            "negociar e encontramos juntos uma forma de pagamento.\n"
            f"{ITEMIZED}\n"
            f"{PAYMENT}\n"
            f"{CREDITOR}"
        ),
        sms=(
            "{{empresa}}: {{primeiro_nome}}, a parcela {{parcela}} segue em aberto "
            "({{valor_total}}). Vamos encontrar uma forma de pagar? Responda esta mensagem. "
            "SAIR para parar."
        ),
        subject="Vamos resolver juntos a parcela {{parcela}}?",
    ),
)

# The agreement's own régua (acordos): gentler, no fees (the agreement's terms are fixed), the
# amount still due on that agreement installment and its Pix.  ``parcela`` reads "1 de 3" (or
# "de entrada" for the down payment).
AGREEMENT_DEFAULTS: tuple[DefaultTemplate, ...] = (
    DefaultTemplate(
        key="acordo_lembrete",
        name="quita_acordo_lembrete_v1",
        header="Lembrete do seu acordo",
        body=(
            "Olá, {{primeiro_nome}}! Aqui é da {{empresa}}.\n"
            "Passando para lembrar que a parcela {{parcela}} do seu acordo, no valor de "
            "{{valor_total}}, vence em {{vencimento}}.\n"
            "Pix copia e cola: {{pix_copia_e_cola}}\n"
            "Se já pagou, é só desconsiderar. Obrigado por manter o acordo em dia!\n"
            f"{CREDITOR}"
        ),
        sms=(
            "{{empresa}}: oi, {{primeiro_nome}}! A parcela {{parcela}} do seu acordo, de "
            "{{valor_total}}, vence em {{vencimento}}. SAIR para parar."
        ),
        subject="A parcela {{parcela}} do seu acordo vence em {{vencimento}}",
    ),
    DefaultTemplate(
        key="acordo_vence_hoje",
        name="quita_acordo_vence_hoje_v1",
        header="Seu acordo vence hoje",
        body=(
            "Olá, {{primeiro_nome}}! Aqui é da {{empresa}}.\n"
            "Hoje, {{vencimento}}, vence a parcela {{parcela}} do seu acordo, no valor de "
            "{{valor_total}}. Pelo Pix, o pagamento cai na hora.\n"
            "Pix copia e cola: {{pix_copia_e_cola}}\n"
            "Se já pagou, é só desconsiderar. Obrigado!\n"
            f"{CREDITOR}"
        ),
        sms=(
            "{{empresa}}: {{primeiro_nome}}, hoje vence a parcela {{parcela}} do seu acordo, de "
            "{{valor_total}}. SAIR para parar."
        ),
        subject="A parcela {{parcela}} do seu acordo vence hoje",
    ),
    DefaultTemplate(
        key="acordo_atraso",
        name="quita_acordo_atraso_v1",
        header="Parcela do acordo em aberto",
        body=(
            "Olá, {{primeiro_nome}}. Aqui é da {{empresa}}.\n"
            "A parcela {{parcela}} do seu acordo, de {{valor_total}}, venceu em {{vencimento}} e "
            "ainda aparece em aberto para nós. Pode ter sido só um esquecimento! Pagando, o seu "
            "acordo continua valendo.\n"
            "Pix copia e cola: {{pix_copia_e_cola}}\n"
            "Se já pagou, toque em Já paguei. Se precisar de ajuda, toque em Falar com "
            "atendente.\n"
            f"{CREDITOR}"
        ),
        sms=(
            "{{empresa}}: {{primeiro_nome}}, a parcela {{parcela}} do seu acordo ({{valor_total}}) "
            "venceu em {{vencimento}}. Pague e mantenha o acordo. SAIR para parar."
        ),
        subject="A parcela {{parcela}} do seu acordo está em aberto",
    ),
)

# A promise to pay that ran out with nothing paid: the régua resumes with this message, which
# says what was agreed, the value today and the ways out (another date, an agreement).
BROKEN_PROMISE = DefaultTemplate(
    key="promessa_quebrada",
    name="quita_promessa_quebrada_v1",
    header="Pagamento combinado",
    body=(
        "Olá, {{primeiro_nome}}. Aqui é da {{empresa}}.\n"
        "Você combinou com a gente o pagamento da parcela {{parcela}}, mas ainda não "
        "identificamos o pagamento. Este é o valor atualizado para hoje:\n"
        f"{ITEMIZED}\n"
        f"{PAYMENT}\n"
        "Se já pagou, toque em Já paguei. Se precisar de outra data ou de um acordo, toque em "
        "Quero negociar.\n"
        f"{CREDITOR}"
    ),
    sms=(
        "{{empresa}}: {{primeiro_nome}}, ainda não identificamos o pagamento combinado da "
        "parcela {{parcela}}. Valor hoje {{valor_total}}. Para negociar, responda. SAIR para parar."
    ),
    subject="O pagamento combinado da parcela {{parcela}}",
)

# An offer an operator sends outside the 24-hour window (``POST /v1/offers/{id}/send``): the
# link opens the payment page with the offer's options, each with a button to choose it.
OFFER = DefaultTemplate(
    key="oferta",
    name="quita_oferta_v1",
    header="Opções para você",
    body=(
        "Olá, {{primeiro_nome}}. Aqui é da {{empresa}}.\n"
        "Preparamos opções para você quitar {{valor_total}} em atraso, à vista ou parcelado.\n"
        "Veja as condições e escolha a sua pelo link {{link_pagamento}} .\n"
        "As condições valem por tempo limitado. Se preferir, toque em Quero negociar ou "
        "responda esta mensagem.\n"
        f"{CREDITOR}"
    ),
    sms=(
        "{{empresa}}: {{primeiro_nome}}, temos opções para quitar {{valor_total}} em atraso. "
        "Escolha a sua: {{link_pagamento}} SAIR para parar."
    ),
    subject="Opções para quitar o que está em atraso",
)

DEFAULTS: tuple[DefaultTemplate, ...] = (
    REGUA_DEFAULTS + AGREEMENT_DEFAULTS + (BROKEN_PROMISE, OFFER)
)
