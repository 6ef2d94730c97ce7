"""Message templates: a new retailer's defaults, custom templates, edits and previews."""

from __future__ import annotations

import httpx

from shared.domains.channels import templating
from shared.domains.channels.defaults import DEFAULTS
from tests.support.identity import Identities, bearer


async def _owner(api: httpx.AsyncClient, ids: Identities) -> dict[str, str]:
    return bearer(await ids.token(await ids.party("Loja Modelos")))


async def test_a_new_retailer_starts_with_friendly_default_templates(
    api: httpx.AsyncClient, ids: Identities
) -> None:
    headers = await _owner(api, ids)
    rows = (await api.get("/v1/templates/", headers=headers)).json()
    assert len(rows) == 3 * len(DEFAULTS)
    whatsapp = [r for r in rows if r["channel_kind"] == "whatsapp"]
    assert {r["key"] for r in whatsapp} == {
        "lembrete_d3",
        "lembrete_d3_desconto",
        "vespera_d1",
        "vence_hoje",
        "atraso_d1",
        "atraso_d5",
        "lembrete_final_d15",
        "acordo_lembrete",  # the agreement régua's
        "acordo_vence_hoje",
        "acordo_atraso",
        "promessa_quebrada",  # a broken promise's reminder
        "oferta",  # an offer sent outside the window
    }
    for r in rows:
        text = " ".join(filter(None, [r["body"], r["subject"], r["header"]])).lower()
        assert "dívida" not in text and "divida" not in text
        assert "{{cnpj_empresa}}" in r["body"] or r["channel_kind"] == "sms"
    for r in whatsapp:
        assert r["status"] == "DRAFT"
        assert [b["text"] for b in r["buttons"]] == [
            "Já paguei",
            "Quero negociar",
            "Falar com atendente",
            "Não quero receber",
        ]
        assert "{{1}}" in r["provider_body"] and "{{primeiro_nome}}" not in r["provider_body"]
    overdue = next(r for r in whatsapp if r["key"] == "atraso_d5")
    for item in ("{{valor_original}}", "{{multa}}", "{{juros}}", "{{valor_total}}"):
        assert item in overdue["body"]  # itemized, as SP and RJ require


async def test_a_preview_reads_in_portuguese_with_brazilian_formats(
    api: httpx.AsyncClient, ids: Identities
) -> None:
    headers = await _owner(api, ids)
    rows = (await api.get("/v1/templates/", params={"key": "atraso_d5"}, headers=headers)).json()
    wa = next(r for r in rows if r["channel_kind"] == "whatsapp")
    r = await api.post(
        f"/v1/templates/{wa['id']}/preview",
        json={"values": {"primeiro_nome": "Ana", "valor_total": "R$\u00a01.234,56"}},
        headers=headers,
    )
    assert r.status_code == 200, r.text
    preview = r.json()
    assert preview["text"].startswith("Olá, Ana.")
    assert "Total hoje: R$\u00a01.234,56" in preview["text"]
    assert all("\n" not in p for p in preview["parameters"])
    assert preview["parameters"][0] == "Ana"

    mail = next(r for r in rows if r["channel_kind"] == "email")
    html = (
        await api.post(
            f"/v1/templates/{mail['id']}/preview",
            json={"values": {"primeiro_nome": "<script>x</script>"}},
            headers=headers,
        )
    ).json()
    assert "<script>" not in html["html"] and "&lt;script&gt;" in html["html"]
    assert html["subject"] == "Valor em aberto da parcela 3 de 10"


async def test_bad_templates_are_refused_field_by_field(
    api: httpx.AsyncClient, ids: Identities
) -> None:
    headers = await _owner(api, ids)
    r = await api.post(
        "/v1/templates/",
        json={
            "channel_kind": "whatsapp",
            "name": "Meu Modelo",
            "body": "{{primeiro_nome}}, pague {{saldo_devedor}}",
            "buttons": [{"type": "QUICK_REPLY", "text": "x" * 30}],
        },
        headers=headers,
    )
    assert r.status_code == 422
    fields = {e["field"] for e in r.json()["errors"]}
    assert fields == {"name", "body", "buttons[0].text"}


async def test_editing_a_whatsapp_template_sends_it_back_to_review(
    api: httpx.AsyncClient, ids: Identities
) -> None:
    headers = await _owner(api, ids)
    created = await api.post(
        "/v1/templates/",
        json={
            "channel_kind": "whatsapp",
            "name": "aviso_simples",
            "body": "Oi, {{primeiro_nome}}! Sua parcela vence em {{vencimento}}.",
        },
        headers=headers,
    )
    assert created.status_code == 201, created.text
    assert created.json()["provider_body"] == "Oi, {{1}}! Sua parcela vence em {{2}}."
    again = await api.post(
        "/v1/templates/",
        json={
            "channel_kind": "whatsapp",
            "name": "aviso_simples",
            "body": "Oi, {{primeiro_nome}}! Vence em {{vencimento}}.",
        },
        headers=headers,
    )
    assert again.status_code == 409
    edited = await api.patch(
        f"/v1/templates/{created.json()['id']}",
        json={"body": "Olá, {{primeiro_nome}}! Vence em {{vencimento}}."},
        headers=headers,
    )
    assert edited.status_code == 200 and edited.json()["status"] == "DRAFT"


def test_every_default_compiles_to_what_meta_accepts() -> None:
    for d in DEFAULTS:
        compiled = templating.compile_body(d.body)
        assert len(compiled.text) <= templating.BODY_MAX
        assert compiled.text.count("{{") == len(compiled.names)
        assert len(d.sms) <= 200


async def test_a_malformed_placeholder_in_the_footer_is_a_field_error(
    api: httpx.AsyncClient, ids: Identities
) -> None:
    headers = await _owner(api, ids)
    r = await api.post(
        "/v1/templates/",
        json={
            "channel_kind": "whatsapp",
            "name": "rodape_ruim",
            "body": "Oi, {{primeiro_nome}}.",
            "footer": "Responda {{sair agora}}",
        },
        headers=headers,
    )
    assert r.status_code == 422
    assert [e["field"] for e in r.json()["errors"]] == ["footer"]
