"""Request bodies: each example of the WhatsApp contract (whatsapp-cloud-api.md §2 and §6), copied
verbatim as the expected value, equals what the builders produce; the stated limits are refused."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.integrations.whatsapp import payloads as p
from shared.integrations.whatsapp.payloads import (
    CopyCodeButton,
    Document,
    InvalidPayload,
    ListRow,
    ListSection,
    QuickReplyButton,
    QuickReplyDefinition,
    ReplyButton,
    UrlButton,
    UrlButtonDefinition,
)

TO = "5511987654321"
CALLBACK = "inv_8841:att_2"
BOLETO = Document(link="https://cdn.loja.com.br/boletos/8841.pdf", filename="boleto-8841.pdf")


def _with_callback(example: dict[str, object]) -> dict[str, object]:
    """The contract's examples without ``biz_opaque_callback_data``: we send it on every send."""
    return example | {"biz_opaque_callback_data": CALLBACK}


# --- contract examples ---------------------------------------------------------------------------


def test_template_message_matches_contract_2_2() -> None:
    expected = json.loads(
        """
{
  "messaging_product": "whatsapp",
  "recipient_type": "individual",
  "to": "5511987654321",
  "type": "template",
  "biz_opaque_callback_data": "inv_8841:att_2",
  "template": {
    "name": "lembrete_vencimento_v1",
    "language": { "policy": "deterministic", "code": "pt_BR" },
    "components": [
      { "type": "header",
        "parameters": [ { "type": "document",
                          "document": { "link": "https://cdn.loja.com.br/boletos/8841.pdf", "filename": "boleto-8841.pdf" } } ] },
      { "type": "body",
        "parameters": [
          { "type": "text", "text": "Maria" },
          { "type": "text", "text": "Loja Exemplo" },
          { "type": "text", "text": "R$ 150,00" },
          { "type": "text", "text": "10/05/2026" } ] },
      { "type": "button", "sub_type": "url", "index": "0",
        "parameters": [ { "type": "text", "text": "8841?t=Zk3q" } ] },
      { "type": "button", "sub_type": "quick_reply", "index": "1",
        "parameters": [ { "type": "payload", "payload": "PAID:8841" } ] }
    ]
  }
}
"""  # noqa: E501
    )
    body = p.template_message(
        TO,
        "lembrete_vencimento_v1",
        "pt_BR",
        callback_data=CALLBACK,
        header=BOLETO,
        body=["Maria", "Loja Exemplo", "R$ 150,00", "10/05/2026"],
        buttons=[QuickReplyButton(1, "PAID:8841"), UrlButton(0, "8841?t=Zk3q")],
    )
    assert body == expected


def test_named_body_parameters_match_contract_2_2() -> None:
    expected = json.loads(
        """
{ "type": "body", "parameters": [
  { "type": "text", "parameter_name": "nome", "text": "Maria" },
  { "type": "text", "parameter_name": "valor", "text": "R$ 150,00" } ] }
"""
    )
    components = p.template_components(body={"nome": "Maria", "valor": "R$ 150,00"})
    assert components == [expected]


def test_copy_code_button_matches_contract_2_3() -> None:
    expected = json.loads(
        """
{ "type": "button", "sub_type": "copy_code", "index": "2",
  "parameters": [ { "type": "coupon_code", "coupon_code": "SAVE20" } ] }
"""
    )
    assert p.template_components(buttons=[CopyCodeButton(2, "SAVE20")]) == [expected]


def test_text_message_matches_contract_2_4() -> None:
    expected = json.loads(
        """
{ "messaging_product": "whatsapp", "recipient_type": "individual", "to": "5511987654321",
  "type": "text", "text": { "body": "Recebemos seu comprovante, obrigado!", "preview_url": false },
  "context": { "message_id": "wamid.HBgM...inbound" } }
"""
    )
    body = p.text_message(
        TO,
        "Recebemos seu comprovante, obrigado!",
        callback_data=CALLBACK,
        reply_to="wamid.HBgM...inbound",
    )
    assert body == _with_callback(expected)


def test_document_message_matches_contract_2_5() -> None:
    expected = json.loads(
        """
{ "messaging_product": "whatsapp", "recipient_type": "individual", "to": "5511987654321",
  "type": "document",
  "document": { "link": "https://cdn.loja.com.br/boletos/8841.pdf", "filename": "boleto-8841.pdf", "caption": "2ª via do boleto" } }
"""  # noqa: E501
    )
    document = Document(
        link="https://cdn.loja.com.br/boletos/8841.pdf",
        filename="boleto-8841.pdf",
        caption="2ª via do boleto",
    )
    assert p.document_message(TO, document, callback_data=CALLBACK) == _with_callback(expected)


def test_reply_buttons_match_contract_2_6() -> None:
    expected = json.loads(
        """
{ "messaging_product": "whatsapp", "recipient_type": "individual", "to": "5511987654321",
  "type": "interactive",
  "interactive": { "type": "button",
    "body": { "text": "Como prefere pagar a parcela de R$ 150,00?" },
    "action": { "buttons": [
      { "type": "reply", "reply": { "id": "PAY_PIX:8841",  "title": "PIX" } },
      { "type": "reply", "reply": { "id": "PAY_BOL:8841",  "title": "Boleto" } },
      { "type": "reply", "reply": { "id": "HUMAN:8841",    "title": "Falar c/ atendente" } } ] } } }
"""
    )
    body = p.buttons_message(
        TO,
        "Como prefere pagar a parcela de R$ 150,00?",
        [
            ReplyButton("PAY_PIX:8841", "PIX"),
            ReplyButton("PAY_BOL:8841", "Boleto"),
            ReplyButton("HUMAN:8841", "Falar c/ atendente"),
        ],
        callback_data=CALLBACK,
    )
    assert body == _with_callback(expected)


def test_cta_url_matches_contract_2_6() -> None:
    # The contract shows only the message type and the interactive object.
    expected = json.loads(
        """
{ "type": "interactive", "interactive": { "type": "cta_url",
  "body": { "text": "Pague com PIX pelo link seguro:" },
  "action": { "name": "cta_url", "parameters": { "display_text": "Pagar agora", "url": "https://pag.exemplo.com.br/8841" } } } }
"""  # noqa: E501
    )
    body = p.cta_url_message(
        TO,
        "Pague com PIX pelo link seguro:",
        "Pagar agora",
        "https://pag.exemplo.com.br/8841",
        callback_data=CALLBACK,
    )
    assert {key: body[key] for key in expected} == expected


def test_list_message_has_the_fields_of_contract_2_6() -> None:
    body = p.list_message(
        TO,
        "Escolha a parcela",
        "Ver parcelas",
        [ListSection(rows=[ListRow("INST:1", "Parcela 1", "R$ 150 em 10/05")])],
        callback_data=CALLBACK,
    )
    assert body["interactive"] == {
        "type": "list",
        "body": {"text": "Escolha a parcela"},
        "action": {
            "button": "Ver parcelas",
            "sections": [
                {"rows": [{"id": "INST:1", "title": "Parcela 1", "description": "R$ 150 em 10/05"}]}
            ],
        },
    }


def test_mark_read_matches_contract_2_7() -> None:
    expected = json.loads(
        """
{ "messaging_product": "whatsapp", "status": "read", "message_id": "wamid.HBgL...", "typing_indicator": { "type": "text" } }
"""  # noqa: E501
    )
    assert p.mark_read("wamid.HBgL...", typing_indicator=True) == expected


def test_mark_read_without_typing_indicator() -> None:
    assert p.mark_read("wamid.X") == {
        "messaging_product": "whatsapp",
        "status": "read",
        "message_id": "wamid.X",
    }


def test_template_definition_matches_contract_6() -> None:
    expected = json.loads(
        """
{ "name": "lembrete_vencimento_v1", "language": "pt_BR", "category": "UTILITY",
  "components": [
    { "type": "HEADER", "format": "TEXT", "text": "Lembrete de vencimento" },
    { "type": "BODY",
      "text": "Olá {{1}}, sua compra na {{2}} no valor de {{3}} vence em {{4}}. Use o botão abaixo para ver a 2ª via.",
      "example": { "body_text": [ [ "Maria", "Loja Exemplo", "R$ 150,00", "10/05/2026" ] ] } },
    { "type": "FOOTER", "text": "Responda SAIR para não receber lembretes" },
    { "type": "BUTTONS", "buttons": [
      { "type": "URL", "text": "Ver 2ª via", "url": "https://pag.exemplo.com.br/{{1}}", "example": [ "https://pag.exemplo.com.br/8841?t=Zk3q" ] },
      { "type": "QUICK_REPLY", "text": "Já paguei" } ] } ] }
"""  # noqa: E501
    )
    body = p.template_definition(
        "lembrete_vencimento_v1",
        "pt_BR",
        "UTILITY",
        [
            p.header_text_component("Lembrete de vencimento"),
            p.body_component(
                "Olá {{1}}, sua compra na {{2}} no valor de {{3}} vence em {{4}}. "
                "Use o botão abaixo para ver a 2ª via.",
                ["Maria", "Loja Exemplo", "R$ 150,00", "10/05/2026"],
            ),
            p.footer_component("Responda SAIR para não receber lembretes"),
            p.buttons_component(
                [
                    UrlButtonDefinition(
                        "Ver 2ª via",
                        "https://pag.exemplo.com.br/{{1}}",
                        "https://pag.exemplo.com.br/8841?t=Zk3q",
                    ),
                    QuickReplyDefinition("Já paguei"),
                ]
            ),
        ],
    )
    assert body == expected


def test_named_template_definition_matches_contract_6() -> None:
    expected_example = json.loads(
        """{"body_text_named_params":[{"param_name":"nome","example":"Maria"}]}"""
    )
    body = p.template_definition(
        "lembrete_nomeado",
        "pt_BR",
        "UTILITY",
        [p.body_component("Olá {{nome}}", {"nome": "Maria"})],
        parameter_format="NAMED",
    )
    assert body["parameter_format"] == "NAMED"
    assert body["components"][0]["example"] == expected_example


def test_list_templates_params_match_contract_6() -> None:
    params = p.list_templates_params(limit=50, name="lembrete_vencimento_v1", after="QVFIU")
    assert params == {
        "fields": "name,language,status,category,quality_score,rejected_reason,components",
        "limit": "50",
        "name": "lembrete_vencimento_v1",
        "after": "QVFIU",
    }


def test_delete_template_params_match_contract_6() -> None:
    assert p.delete_template_params("lembrete_vencimento_v1") == {"name": "lembrete_vencimento_v1"}


# --- envelope ------------------------------------------------------------------------------------


def test_every_send_carries_the_callback_data() -> None:
    sends = [
        p.text_message(TO, "oi", callback_data=CALLBACK),
        p.template_message(TO, "t", "pt_BR", callback_data=CALLBACK),
        p.document_message(TO, Document(media_id="123"), callback_data=CALLBACK),
        p.buttons_message(TO, "oi", [ReplyButton("a", "A")], callback_data=CALLBACK),
        p.list_message(TO, "oi", "Ver", [ListSection([ListRow("a", "A")])], callback_data=CALLBACK),
        p.cta_url_message(TO, "oi", "Pagar", "https://x.com.br", callback_data=CALLBACK),
    ]
    assert all(send["biz_opaque_callback_data"] == CALLBACK for send in sends)


def test_document_by_media_id_sends_id() -> None:
    body = p.document_message(TO, Document(media_id="1013859600285441"), callback_data=CALLBACK)
    assert body["document"] == {"id": "1013859600285441"}


def test_text_preview_url_is_passed_through() -> None:
    assert p.text_message(TO, "oi", callback_data=CALLBACK, preview_url=True)["text"] == {
        "body": "oi",
        "preview_url": True,
    }


def test_text_header_parameters() -> None:
    components = p.template_components(header=["Loja Exemplo"])
    assert components == [
        {"type": "header", "parameters": [{"type": "text", "text": "Loja Exemplo"}]}
    ]


# --- limits --------------------------------------------------------------------------------------


def _reply_buttons(count: int) -> list[ReplyButton]:
    return [ReplyButton(f"id{i}", f"Botão {i}") for i in range(count)]


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda: p.text_message(TO, "oi", callback_data="x" * 513), "biz_opaque_callback_data"),
        (lambda: p.text_message(TO, "oi", callback_data=""), "biz_opaque_callback_data"),
        (lambda: p.text_message("+55 11 9876", "oi", callback_data=CALLBACK), "to"),
        (lambda: p.text_message(TO, "", callback_data=CALLBACK), "text.body"),
        (lambda: p.text_message(TO, "x" * 4097, callback_data=CALLBACK), "text.body"),
        (lambda: p.buttons_message(TO, "oi", _reply_buttons(4), callback_data=CALLBACK), "buttons"),
        (lambda: p.buttons_message(TO, "oi", [], callback_data=CALLBACK), "buttons"),
        (
            lambda: p.buttons_message(TO, "oi", [ReplyButton("a", "x" * 21)], callback_data="c"),
            "buttons[0].title",
        ),
        (
            lambda: p.buttons_message(TO, "oi", [ReplyButton("a" * 257, "A")], callback_data="c"),
            "buttons[0].id",
        ),
        (
            lambda: p.buttons_message(
                TO, "oi", [ReplyButton("a", "A"), ReplyButton("a", "B")], callback_data="c"
            ),
            "buttons",
        ),
        (
            lambda: p.template_message(TO, "t", "pt_BR", callback_data="c", body=["a\nb"]),
            "body[0]",
        ),
        (
            lambda: p.template_message(TO, "t", "pt_BR", callback_data="c", body=["a\tb"]),
            "body[0]",
        ),
        (
            lambda: p.template_message(TO, "t", "pt_BR", callback_data="c", body=["a     b"]),
            "body[0]",
        ),
        (
            lambda: p.template_message(TO, "t", "pt_BR", callback_data="c", body=["a\r b"]),
            "body[0]",
        ),
        (
            lambda: p.template_message(TO, "t", "pt_BR", callback_data="c", body=["a", "  "]),
            "body[1]",
        ),
        (
            lambda: p.template_message(TO, "t", "pt_BR", callback_data="c", header=[""]),
            "header[0]",
        ),
        (
            lambda: p.template_message(
                TO, "t", "pt_BR", callback_data="c", buttons=[CopyCodeButton(0, "A" * 16)]
            ),
            "buttons[0]",
        ),
        (
            lambda: p.template_message(
                TO, "t", "pt_BR", callback_data="c", buttons=[CopyCodeButton(0, "PIX-1")]
            ),
            "buttons[0]",
        ),
        (
            lambda: p.template_message(
                TO, "t", "pt_BR", callback_data="c", header=Document(link="x", caption="c")
            ),
            "header.caption",
        ),
        (lambda: p.document_message(TO, Document(), callback_data="c"), "document"),
        (
            lambda: p.template_message(TO, "t", "pt_BR", callback_data="c", body="Maria"),
            "parameters",
        ),
        (lambda: p.header_text_component("x" * 61), "HEADER.text"),
        (lambda: p.footer_component("x" * 61), "FOOTER.text"),
        (lambda: p.body_component("x" * 1025), "BODY.text"),
        (lambda: p.buttons_component([QuickReplyDefinition("x" * 26)]), "BUTTONS[0].text"),
        (lambda: p.buttons_component([QuickReplyDefinition("x")] * 11), "BUTTONS"),
        (lambda: p.buttons_component([UrlButtonDefinition("x", "https://x")] * 3), "BUTTONS"),
        (lambda: p.template_definition("Lembrete", "pt_BR", "UTILITY", []), "name"),
    ],
)
def test_limits_of_the_contract_are_refused(build: object, field: str) -> None:
    with pytest.raises(InvalidPayload) as caught:
        build()  # type: ignore[operator]
    assert caught.value.field == field


def test_invalid_payload_is_a_value_error() -> None:
    assert issubclass(InvalidPayload, ValueError)


def test_exactly_three_buttons_of_twenty_characters_are_accepted() -> None:
    buttons = [ReplyButton(f"{i}" * 256, f"{i}" * 20) for i in range(3)]
    body = p.buttons_message(TO, "oi", buttons, callback_data=CALLBACK)
    assert len(body["interactive"]["action"]["buttons"]) == 3


def test_list_refuses_more_than_ten_rows() -> None:
    rows = [ListRow(f"r{i}", f"Linha {i}") for i in range(11)]
    with pytest.raises(InvalidPayload, match="rows"):
        p.list_message(TO, "oi", "Ver", [ListSection(rows)], callback_data=CALLBACK)


def test_list_with_several_sections_needs_titles() -> None:
    sections = [ListSection([ListRow("a", "A")]), ListSection([ListRow("b", "B")])]
    with pytest.raises(InvalidPayload) as caught:
        p.list_message(TO, "oi", "Ver", sections, callback_data=CALLBACK)
    assert caught.value.field == "sections[0].title"


def test_list_row_description_limit() -> None:
    section = ListSection([ListRow("a", "A", "d" * 73)])
    with pytest.raises(InvalidPayload) as caught:
        p.list_message(TO, "oi", "Ver", [section], callback_data=CALLBACK)
    assert caught.value.field == "sections[0].rows[0].description"


# --- properties ----------------------------------------------------------------------------------

_texts = st.text(st.characters(codec="utf-8"), min_size=1, max_size=p.MAX_TEXT_BODY)
_callbacks = st.text(st.characters(codec="utf-8"), min_size=1, max_size=512)
_parameters = st.text(
    st.characters(exclude_categories=("Cs", "Cc")), min_size=1, max_size=200
).filter(lambda s: "     " not in s and s.strip())  # Meta refuses blank ones (131008)


@given(text=_texts, callback=_callbacks)
def test_any_text_within_limits_round_trips_through_json(text: str, callback: str) -> None:
    body = p.text_message(TO, text, callback_data=callback)
    decoded = json.loads(json.dumps(body, ensure_ascii=False))
    assert decoded == body
    assert decoded["biz_opaque_callback_data"] == callback
    assert decoded["text"]["body"] == text


@given(parameters=st.lists(_parameters, min_size=1, max_size=10), callback=_callbacks)
def test_any_template_parameters_within_limits_round_trip(
    parameters: list[str], callback: str
) -> None:
    body = p.template_message(TO, "lembrete", "pt_BR", callback_data=callback, body=parameters)
    decoded = json.loads(json.dumps(body))
    assert decoded == body
    assert decoded["biz_opaque_callback_data"] == callback
    sent = [param["text"] for param in decoded["template"]["components"][0]["parameters"]]
    assert sent == parameters
