"""E-mail over real SMTP: ``SmtpSender`` (aiosmtplib) talks TCP to the sandbox's SMTP sink,
started by the sandbox app's lifespan, and the sink's control API shows what arrived."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from dataclasses import replace
from email.message import EmailMessage
from typing import Any

import httpx
import pytest
import pytest_asyncio
from structlog.testing import capture_logs

from services.sandbox.app import create_app
from shared.integrations.email import (
    EmailError,
    SmtpConfig,
    SmtpSender,
    build_message,
    message_id_of,
)
from shared.integrations.whatsapp import ErrorClass

Client = Callable[..., Awaitable[httpx.AsyncClient]]

DEBTOR = "maria.silva@exemplo.com.br"
SUBJECT = "Lembrete: sua parcela vence amanhã"
TEXT = (
    "Olá, Maria!\n\n"
    "Sua parcela de R$\u00a01.234,56 na Loja São João vence amanhã, 24/11.\n"
    "Pague pelo Pix: https://quita.dev/p/abc123\n"
)
HTML = (
    "<p>Olá, <b>Maria</b>!</p>\n"
    "<p>Sua parcela de R$\u00a01.234,56 na Loja São João vence <b>amanhã</b>, 24/11.</p>\n"
)
sender = SmtpSender(local_hostname="worker.quita.test")


@pytest_asyncio.fixture
async def sink(http_client: Client) -> httpx.AsyncClient:
    """The sandbox app, its SMTP sink listening on a free port of 127.0.0.1."""
    return await http_client(create_app)


async def smtp_config(sink: httpx.AsyncClient, **changes: Any) -> SmtpConfig:
    address = (await sink.get("/_sandbox/email/")).json()
    config = SmtpConfig(host=address["host"], port=address["port"], security="none", timeout=5)
    return replace(config, **changes)


async def configure(sink: httpx.AsyncClient, **settings: Any) -> dict[str, Any]:
    response = await sink.post("/_sandbox/email/config", json=settings)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def inbox(sink: httpx.AsyncClient, **params: Any) -> list[dict[str, Any]]:
    response = await sink.get("/_sandbox/email/messages", params=params)
    assert response.status_code == 200, response.text
    messages: list[dict[str, Any]] = response.json()["messages"]
    return messages


def reminder(to: str | list[str] = DEBTOR, **changes: Any) -> EmailMessage:
    fields: dict[str, Any] = {
        "from_addr": "cobranca@lojasaojoao.com.br",
        "from_name": "Loja São João",
        "to": to,
        "subject": SUBJECT,
        "text": TEXT,
        "html": HTML,
        "message_id_domain": "mail.quita.dev",
        "attempt_id": "att_8841",
        "unsubscribe_url": "https://quita.dev/sair/tok123",
        **changes,
    }
    return build_message(**fields)


async def failed_send(config: SmtpConfig, message: EmailMessage) -> EmailError:
    with pytest.raises(EmailError) as caught:
        await sender.send(config, message)
    return caught.value


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


async def test_sink_listens_on_the_port_it_reports(sink: httpx.AsyncClient) -> None:
    address = (await sink.get("/_sandbox/email/")).json()

    assert address["host"] == "127.0.0.1"
    assert address["port"] > 0
    reader, writer = await asyncio.open_connection(address["host"], address["port"])
    try:
        greeting = await asyncio.wait_for(reader.readline(), timeout=2)
    finally:
        writer.close()
        await writer.wait_closed()
    assert greeting.startswith(b"220 ")


async def test_portuguese_reminder_arrives_intact_and_is_listed(sink: httpx.AsyncClient) -> None:
    await sender.send(await smtp_config(sink), reminder())

    [received] = await inbox(sink, to=DEBTOR)
    assert received["subject"] == SUBJECT
    assert received["text"] == TEXT
    assert received["html"] == HTML
    assert "R$\u00a01.234,56" in received["text"]
    assert received["headers"]["From"] == "Loja São João <cobranca@lojasaojoao.com.br>"
    assert received["mail_from"] == "cobranca@lojasaojoao.com.br"
    assert received["rcpt_tos"] == [DEBTOR]
    assert received["size"] > len(TEXT)


async def test_message_id_returned_is_the_one_the_mailbox_got(sink: httpx.AsyncClient) -> None:
    message = reminder()

    result = await sender.send(await smtp_config(sink), message)

    [received] = await inbox(sink)
    assert result.message_id == message_id_of(message)
    assert received["headers"]["Message-ID"] == result.message_id
    assert received["headers"]["X-Quita-Attempt"] == "att_8841"
    assert result.accepted == [DEBTOR]
    assert result.refused == {}
    assert received["id"] in result.server_reply


async def test_unsubscribe_headers_reach_the_mailbox(sink: httpx.AsyncClient) -> None:
    await sender.send(
        await smtp_config(sink), reminder(unsubscribe_mailto="sair@lojasaojoao.com.br")
    )

    [received] = await inbox(sink)
    assert received["headers"]["List-Unsubscribe"] == (
        "<mailto:sair@lojasaojoao.com.br>, <https://quita.dev/sair/tok123>"
    )
    assert received["headers"]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


async def test_raw_message_is_downloadable_as_eml(sink: httpx.AsyncClient) -> None:
    message = reminder()
    await sender.send(await smtp_config(sink), message)
    [received] = await inbox(sink)

    response = await sink.get(f"/_sandbox/email/messages/{received['id']}.eml")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("message/rfc822")
    assert f"Message-ID: {message_id_of(message)}".encode() in response.content


async def test_one_message_in_detail(sink: httpx.AsyncClient) -> None:
    await sender.send(await smtp_config(sink), reminder())
    [received] = await inbox(sink)

    response = await sink.get(f"/_sandbox/email/messages/{received['id']}")

    assert response.status_code == 200
    detail = response.json()
    assert detail["subject"] == SUBJECT
    assert ["Auto-Submitted", "auto-generated"] in detail["all_headers"]


async def test_unknown_message_is_a_problem_404(sink: httpx.AsyncClient) -> None:
    response = await sink.get("/_sandbox/email/messages/nope")

    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_refused_recipient_is_undeliverable_and_nothing_is_stored(
    sink: httpx.AsyncClient,
) -> None:
    await configure(sink, rejected=["*@invalido.com.br"])

    error = await failed_send(await smtp_config(sink), reminder(to="joao@invalido.com.br"))

    assert error.error_class is ErrorClass.UNDELIVERABLE
    assert error.smtp_code == 550
    assert error.maybe_sent is False
    assert error.refused["joao@invalido.com.br"][0] == 550
    assert error.advice(0).fallback is True
    assert await inbox(sink) == []


async def test_one_refused_recipient_of_two_does_not_stop_the_other(
    sink: httpx.AsyncClient,
) -> None:
    await configure(sink, rejected=["joao@*"])

    result = await sender.send(
        await smtp_config(sink), reminder(to=[DEBTOR, "joao@exemplo.com.br"])
    )

    assert result.accepted == [DEBTOR]
    assert result.refused["joao@exemplo.com.br"][0] == 550
    [received] = await inbox(sink)
    assert received["rcpt_tos"] == [DEBTOR]


async def test_mailbox_that_answers_later_is_transient(sink: httpx.AsyncClient) -> None:
    await configure(sink, temporary_failures=[DEBTOR])

    error = await failed_send(await smtp_config(sink), reminder())

    assert error.error_class is ErrorClass.TRANSIENT
    assert error.smtp_code == 451
    assert error.maybe_sent is False
    assert error.advice(0).retry is True
    assert await inbox(sink) == []


async def test_wrong_password_is_an_auth_error(sink: httpx.AsyncClient) -> None:
    await configure(sink, password="senha-certa")
    config = await smtp_config(sink, username="loja-sj", password="senha-errada")

    with capture_logs() as logs:
        error = await failed_send(config, reminder())

    assert error.error_class is ErrorClass.AUTH
    assert error.smtp_code == 535
    assert error.advice(0).stop_channel is True
    assert await inbox(sink) == []
    [failed] = [e for e in logs if e["event"] == "email.send_failed"]
    assert failed["to"] == ["m***@exemplo.com.br"]
    assert "senha-errada" not in repr(logs)
    assert DEBTOR not in repr(logs)


async def test_right_password_is_let_in(sink: httpx.AsyncClient) -> None:
    await configure(sink, password="senha-certa")
    config = await smtp_config(sink, username="loja-sj", password="senha-certa")

    await sender.send(config, reminder())

    assert len(await inbox(sink)) == 1


async def test_sending_without_login_when_required_is_an_auth_error(
    sink: httpx.AsyncClient,
) -> None:
    await configure(sink, password="senha-certa")

    error = await failed_send(await smtp_config(sink), reminder())

    assert error.error_class is ErrorClass.AUTH
    assert error.smtp_code == 530


async def test_closed_port_is_transient_and_never_sent(sink: httpx.AsyncClient) -> None:
    config = SmtpConfig(host="127.0.0.1", port=closed_port(), security="none", timeout=5)

    error = await failed_send(config, reminder())

    assert error.error_class is ErrorClass.TRANSIENT
    assert error.maybe_sent is False
    assert error.smtp_code is None


async def test_listing_is_newest_first_filtered_and_limited(sink: httpx.AsyncClient) -> None:
    config = await smtp_config(sink)
    for subject in ("primeiro", "segundo", "terceiro"):
        await sender.send(config, reminder(subject=subject))
    await sender.send(config, reminder(to="outra@exemplo.com.br", subject="outra"))

    assert [m["subject"] for m in await inbox(sink, to=DEBTOR.upper(), limit=2)] == [
        "terceiro",
        "segundo",
    ]
    assert [m["subject"] for m in await inbox(sink)] == ["outra", "terceiro", "segundo", "primeiro"]


async def test_reset_forgets_messages_and_configuration(sink: httpx.AsyncClient) -> None:
    config = await smtp_config(sink)
    await sender.send(config, reminder())
    await configure(sink, rejected=[DEBTOR], password="x")

    response = await sink.post("/_sandbox/email/reset")

    assert response.status_code == 200
    assert await inbox(sink) == []
    await sender.send(config, reminder())
    assert len(await inbox(sink)) == 1


async def test_configuration_is_changed_piece_by_piece(sink: httpx.AsyncClient) -> None:
    await configure(sink, rejected=["*@invalido.com.br"])

    result = await configure(sink, temporary_failures=["*@lento.com.br"])

    assert result["rejected"] == ["*@invalido.com.br"]
    assert result["temporary_failures"] == ["*@lento.com.br"]
    assert result["auth_required"] is False
    assert "password" not in result


async def test_unknown_setting_is_refused(sink: httpx.AsyncClient) -> None:
    response = await sink.post("/_sandbox/email/config", json={"rejectd": ["x"]})

    assert response.status_code == 422
    assert "rejectd" in response.json()["detail"]


async def test_bad_limit_is_refused(sink: httpx.AsyncClient) -> None:
    response = await sink.get("/_sandbox/email/messages", params={"limit": 0})

    assert response.status_code == 422


async def test_a_taken_smtp_port_leaves_the_rest_of_the_sandbox_serving(
    http_client: Any, settings: Any
) -> None:
    taken = socket.socket()
    taken.bind((settings.sandbox_smtp_host, 0))
    taken.listen()
    try:
        client = await http_client(_app_on_port(taken.getsockname()[1]))
        assert (await client.get("/ready")).status_code == 200
        refused = await client.get("/_sandbox/email/messages")
        assert refused.status_code == 503
        assert "QUITA_SANDBOX_SMTP_PORT" in refused.json()["detail"]
    finally:
        taken.close()


def _app_on_port(port: int) -> Any:
    from services.sandbox.app import create_app

    def factory(settings: Any, **kwargs: Any) -> Any:
        return create_app(settings.model_copy(update={"sandbox_smtp_port": port}), **kwargs)

    return factory
