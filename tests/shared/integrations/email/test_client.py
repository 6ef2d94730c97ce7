"""How ``SmtpSender`` reads a server that misbehaves: a scripted SMTP server on 127.0.0.1
answers each command as a real one might, or drops the line, or goes silent.  Whether the
message may have left (``maybe_sent``) decides if the worker may resend it blindly."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from email.message import EmailMessage

import pytest
import pytest_asyncio
from structlog.testing import capture_logs

from shared.integrations.email import EmailError, SmtpConfig, SmtpSender, build_message
from shared.integrations.whatsapp import ErrorClass

DROP, HANG = "drop", "hang"
ANSWERS = {
    "GREETING": "220 fake.example ESMTP",
    "EHLO": "250-fake.example\r\n250 8BITMIME",
    "MAIL": "250 OK",
    "RCPT": "250 OK",
    "DATA": "354 go ahead",
    "BODY": "250 2.0.0 queued as 1",
    "RSET": "250 OK",
    "QUIT": "221 bye",
}
sender = SmtpSender(local_hostname="worker.quita.test")


class ScriptedSmtp:
    """Answers each command from ``ANSWERS`` overridden by ``script`` (``BODY``: the reply to
    the message body); ``drop`` closes the connection, ``hang`` never answers."""

    def __init__(self, **script: str) -> None:
        self.answers = {**ANSWERS, **script}
        self.tasks: set[asyncio.Task[None]] = set()
        self.server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._connected, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.server.wait_closed()

    def _connected(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.tasks.add(asyncio.ensure_future(self._session(reader, writer)))

    async def _answer(self, writer: asyncio.StreamWriter, step: str) -> bool:
        answer = self.answers[step]
        if answer == HANG:
            await asyncio.sleep(3600)
        if answer == DROP:
            writer.close()
            return False
        writer.write(answer.encode() + b"\r\n")
        await writer.drain()
        return step != "QUIT"

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            if not await self._answer(writer, "GREETING"):
                return
            while line := await reader.readline():
                step = line.split(b" ", 1)[0].strip().upper().decode()
                if not await self._answer(writer, step):
                    return
                if step == "DATA" and self.answers["DATA"].startswith("354"):
                    while await reader.readline() not in (b".\r\n", b""):
                        pass
                    if not await self._answer(writer, "BODY"):
                        return
        finally:
            writer.close()


@pytest_asyncio.fixture
async def smtp_server() -> AsyncIterator[list[ScriptedSmtp]]:
    servers: list[ScriptedSmtp] = []
    yield servers
    for server in servers:
        await server.stop()


async def scripted(servers: list[ScriptedSmtp], **script: str) -> SmtpConfig:
    server = ScriptedSmtp(**script)
    await server.start()
    servers.append(server)
    return SmtpConfig(host="127.0.0.1", port=server.port, security="none", timeout=0.5)


def reminder() -> EmailMessage:
    return build_message(
        from_addr="cobranca@lojasaojoao.com.br",
        from_name="Loja São João",
        to="maria.silva@exemplo.com.br",
        subject="Lembrete: sua parcela vence amanhã",
        text="Olá, Maria!\n",
        message_id_domain="mail.quita.dev",
    )


async def failed_send(config: SmtpConfig) -> EmailError:
    with pytest.raises(EmailError) as caught:
        await sender.send(config, reminder())
    return caught.value


async def test_a_scripted_server_that_behaves_takes_the_message(
    smtp_server: list[ScriptedSmtp],
) -> None:
    result = await sender.send(await scripted(smtp_server), reminder())

    assert result.accepted == ["maria.silva@exemplo.com.br"]
    assert result.server_reply == "2.0.0 queued as 1"


async def test_line_dropped_after_the_body_may_have_sent_it(
    smtp_server: list[ScriptedSmtp],
) -> None:
    error = await failed_send(await scripted(smtp_server, BODY=DROP))

    assert error.error_class is ErrorClass.TRANSIENT
    assert error.maybe_sent is True


async def test_silence_after_the_body_may_have_sent_it(smtp_server: list[ScriptedSmtp]) -> None:
    error = await failed_send(await scripted(smtp_server, BODY=HANG))

    assert error.error_class is ErrorClass.TRANSIENT
    assert error.maybe_sent is True


async def test_line_dropped_before_the_body_never_sent_it(
    smtp_server: list[ScriptedSmtp],
) -> None:
    error = await failed_send(await scripted(smtp_server, RCPT=DROP))

    assert error.error_class is ErrorClass.TRANSIENT
    assert error.maybe_sent is False


async def test_silent_server_at_connect_is_transient_and_never_sent(
    smtp_server: list[ScriptedSmtp],
) -> None:
    error = await failed_send(await scripted(smtp_server, GREETING=HANG))

    assert error.error_class is ErrorClass.TRANSIENT
    assert error.maybe_sent is False


async def test_busy_server_at_greeting_is_transient(smtp_server: list[ScriptedSmtp]) -> None:
    error = await failed_send(await scripted(smtp_server, GREETING="421 4.3.2 busy"))

    assert error.error_class is ErrorClass.TRANSIENT
    assert error.smtp_code == 421


async def test_body_refused_as_spam_is_policy_and_not_sent(
    smtp_server: list[ScriptedSmtp],
) -> None:
    error = await failed_send(await scripted(smtp_server, BODY="554 5.7.1 looks like spam"))

    assert error.error_class is ErrorClass.POLICY
    assert error.smtp_code == 554
    assert error.maybe_sent is False


async def test_body_deferred_is_transient(smtp_server: list[ScriptedSmtp]) -> None:
    error = await failed_send(await scripted(smtp_server, BODY="451 4.7.1 try later"))

    assert error.error_class is ErrorClass.TRANSIENT
    assert error.maybe_sent is False


async def test_sender_refused_is_policy(smtp_server: list[ScriptedSmtp]) -> None:
    error = await failed_send(await scripted(smtp_server, MAIL="550 5.7.1 relay denied"))

    assert error.error_class is ErrorClass.POLICY


async def test_login_asked_of_a_server_without_auth_is_a_setup_error(
    smtp_server: list[ScriptedSmtp],
) -> None:
    config = await scripted(smtp_server)
    config = SmtpConfig(
        host=config.host, port=config.port, username="loja", password="segredo", security="none"
    )

    with capture_logs() as logs:
        error = await failed_send(config)

    assert error.error_class is ErrorClass.AUTH
    assert "segredo" not in repr(logs)


async def test_starttls_required_but_not_offered_is_a_setup_error(
    smtp_server: list[ScriptedSmtp],
) -> None:
    config = await scripted(smtp_server)
    config = SmtpConfig(host=config.host, port=config.port, security="starttls", timeout=0.5)

    error = await failed_send(config)

    assert error.error_class is ErrorClass.AUTH
    assert error.maybe_sent is False


async def test_failure_log_does_not_quote_the_address_the_server_echoed(
    smtp_server: list[ScriptedSmtp],
) -> None:
    reply = "550 5.1.1 <maria.silva@exemplo.com.br>: Recipient address rejected"

    with capture_logs() as logs:
        error = await failed_send(await scripted(smtp_server, RCPT=reply))

    assert error.error_class is ErrorClass.UNDELIVERABLE
    [failed] = [e for e in logs if e["event"] == "email.send_failed"]
    assert failed["to"] == ["m***@exemplo.com.br"]
    assert "maria.silva" not in repr(logs)
