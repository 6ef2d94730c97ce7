"""A reminder e-mail built by ``build_message`` reads right in a mail client: accents in the
sender's name and the subject, both bodies, our Message-ID and the opt-out headers."""

from __future__ import annotations

from email import policy
from email.message import EmailMessage
from email.parser import BytesParser

import pytest

from shared.integrations.email import InvalidEmail, build_message, message_id_of

SUBJECT = "Lembrete: sua parcela vence amanhã"
TEXT = "Olá, Maria! Sua parcela de R$\u00a01.234,56 vence amanhã.\n"
HTML = "<p>Olá, <b>Maria</b>! Sua parcela de R$\u00a01.234,56 vence amanhã.</p>\n"


def reminder(**changes: object) -> EmailMessage:
    fields: dict[str, object] = {
        "from_addr": "cobranca@lojasaojoao.com.br",
        "from_name": "Loja São João",
        "to": "maria.silva@exemplo.com.br",
        "subject": SUBJECT,
        "text": TEXT,
        "html": HTML,
        "message_id_domain": "mail.quita.dev",
        **changes,
    }
    return build_message(**fields)  # type: ignore[arg-type]


def as_received(message: EmailMessage) -> EmailMessage:
    """What a mail client sees after the message went over the wire as bytes."""
    parsed = BytesParser(policy=policy.default).parsebytes(message.as_bytes())
    assert isinstance(parsed, EmailMessage)
    return parsed


def body(message: EmailMessage, subtype: str) -> str:
    part = message.get_body(preferencelist=(subtype,))
    assert part is not None
    content = part.get_content()
    assert isinstance(content, str)
    return content.replace("\r\n", "\n")  # lines, as a reader sees them


def test_portuguese_subject_and_sender_name_survive_the_wire() -> None:
    received = as_received(reminder())

    assert str(received["Subject"]) == SUBJECT
    assert received["From"].addresses[0].display_name == "Loja São João"
    assert received["From"].addresses[0].addr_spec == "cobranca@lojasaojoao.com.br"
    assert str(received["To"]) == "maria.silva@exemplo.com.br"


def test_headers_on_the_wire_are_ascii() -> None:
    wire = reminder().as_bytes()

    head = wire.split(b"\r\n\r\n", 1)[0]
    assert head.isascii()
    assert b"\r\n" in wire  # SMTP line endings


def test_text_and_html_are_alternatives_in_that_order() -> None:
    message = reminder()

    assert message.get_content_type() == "multipart/alternative"
    parts = [p.get_content_type() for p in message.iter_parts()]
    assert parts == ["text/plain", "text/html"]
    received = as_received(message)
    assert body(received, "plain") == TEXT
    assert body(received, "html") == HTML


def test_amount_keeps_its_non_breaking_space() -> None:
    assert "R$\u00a01.234,56" in body(as_received(reminder()), "plain")


def test_text_only_message_is_a_single_utf8_part() -> None:
    message = reminder(html=None)

    assert message.get_content_type() == "text/plain"
    assert message.get_content_charset() == "utf-8"
    assert body(as_received(message), "plain") == TEXT


def test_message_id_is_new_each_time_and_on_our_domain() -> None:
    first, second = message_id_of(reminder()), message_id_of(reminder())

    assert first != second
    assert first.startswith("<") and first.endswith("@mail.quita.dev>")


def test_attempt_id_travels_as_a_header() -> None:
    assert as_received(reminder(attempt_id="att_8841"))["X-Quita-Attempt"] == "att_8841"


def test_one_click_unsubscribe_headers() -> None:
    received = as_received(
        reminder(
            unsubscribe_url="https://quita.dev/sair/tok123",
            unsubscribe_mailto="sair@quita.dev",
        )
    )

    assert str(received["List-Unsubscribe"]) == (
        "<mailto:sair@quita.dev>, <https://quita.dev/sair/tok123>"
    )
    assert received["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_mailto_only_unsubscribe_has_no_one_click_header() -> None:
    received = as_received(reminder(unsubscribe_mailto="sair@quita.dev"))

    assert str(received["List-Unsubscribe"]) == "<mailto:sair@quita.dev>"
    assert received["List-Unsubscribe-Post"] is None


def test_no_unsubscribe_headers_unless_asked() -> None:
    received = as_received(reminder())

    assert received["List-Unsubscribe"] is None
    assert received["List-Unsubscribe-Post"] is None


def test_one_click_unsubscribe_must_be_https() -> None:
    with pytest.raises(InvalidEmail):
        reminder(unsubscribe_url="http://quita.dev/sair")


def test_reply_to_and_extra_headers() -> None:
    received = as_received(
        reminder(reply_to="atendimento@lojasaojoao.com.br", headers={"X-Tenant": "loja-sj"})
    )

    assert str(received["Reply-To"]) == "atendimento@lojasaojoao.com.br"
    assert received["X-Tenant"] == "loja-sj"


def test_reminder_is_marked_automatic_so_robots_do_not_answer() -> None:
    assert as_received(reminder())["Auto-Submitted"] == "auto-generated"


@pytest.mark.parametrize(
    "to",
    [
        "maria",
        "maria@",
        "@exemplo.com.br",
        "maria silva@exemplo.com.br",
        "maria@exemplo.com.br\r\nBcc: todos@exemplo.com.br",
        "a@exemplo.com.br, b@exemplo.com.br",
    ],
)
def test_bad_recipient_is_refused_before_sending(to: str) -> None:
    with pytest.raises(InvalidEmail):
        reminder(to=to)


def test_line_breaks_in_a_subject_cannot_inject_headers() -> None:
    with pytest.raises(InvalidEmail):
        reminder(subject="Oi\r\nBcc: todos@exemplo.com.br")


@pytest.mark.parametrize("name", ["From", "message-id", "Content-Type", "X-Quita-Attempt", "A:B"])
def test_caller_cannot_replace_headers_the_builder_owns(name: str) -> None:
    with pytest.raises(InvalidEmail):
        reminder(headers={name: "x"})


def test_message_id_domain_must_be_a_domain() -> None:
    with pytest.raises(InvalidEmail):
        reminder(message_id_domain="bad domain>")


def test_several_recipients() -> None:
    received = as_received(reminder(to=["a@exemplo.com.br", "b@exemplo.com.br"]))

    assert [a.addr_spec for a in received["To"].addresses] == [
        "a@exemplo.com.br",
        "b@exemplo.com.br",
    ]
