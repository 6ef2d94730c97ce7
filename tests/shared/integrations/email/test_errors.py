"""SMTP replies sorted into the classes the reminder worker acts on, and addresses as logs
show them."""

from __future__ import annotations

import pytest

from shared.integrations.email import EmailError, class_of_reply, mask_email
from shared.integrations.whatsapp import ErrorClass


@pytest.mark.parametrize("code", [550, 551, 553, 554])
def test_mailbox_refused_for_good_is_undeliverable(code: int) -> None:
    assert class_of_reply(code, recipient=True) is ErrorClass.UNDELIVERABLE


@pytest.mark.parametrize("code", [421, 450, 451, 452])
def test_try_again_later_is_transient(code: int) -> None:
    assert class_of_reply(code, recipient=True) is ErrorClass.TRANSIENT
    assert class_of_reply(code, recipient=False) is ErrorClass.TRANSIENT


@pytest.mark.parametrize("code", [530, 534, 535, 538])
def test_login_problems_are_auth(code: int) -> None:
    assert class_of_reply(code, recipient=False) is ErrorClass.AUTH
    assert class_of_reply(code, recipient=True) is ErrorClass.AUTH


def test_sender_or_content_refused_is_policy() -> None:
    assert class_of_reply(550, recipient=False) is ErrorClass.POLICY
    assert class_of_reply(554, recipient=False) is ErrorClass.POLICY


def test_message_too_big_is_our_bug() -> None:
    assert class_of_reply(552, recipient=False) is ErrorClass.INVALID_REQUEST


def test_advice_is_the_same_as_for_whatsapp() -> None:
    undeliverable = EmailError(ErrorClass.UNDELIVERABLE, "no such user", smtp_code=550)
    transient = EmailError(ErrorClass.TRANSIENT, "greylisted", smtp_code=451)
    auth = EmailError(ErrorClass.AUTH, "bad login", smtp_code=535)

    assert undeliverable.advice(0).fallback and not undeliverable.advice(0).retry
    assert transient.advice(0).retry and transient.advice(0).delay_s == 2.0
    assert auth.advice(0).stop_channel


@pytest.mark.parametrize(
    ("address", "masked"),
    [
        ("maria.silva@exemplo.com.br", "m***@exemplo.com.br"),
        ("M@Exemplo.COM.BR", "M***@exemplo.com.br"),
        ("sem-arroba", "***"),
    ],
)
def test_addresses_are_masked_for_logs(address: str, masked: str) -> None:
    assert mask_email(address) == masked
