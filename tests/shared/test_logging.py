from __future__ import annotations

import json
import logging

import pytest
import structlog
from hypothesis import given
from hypothesis import strategies as st

from shared.config import Environment, LogFormat, Settings
from shared.logging import configure_logging, mask_text


@pytest.mark.parametrize(
    "personal",
    [
        "123.456.789-09",  # CPF
        "12345678909",  # bare CPF
        "11.222.333/0001-81",  # CNPJ
        "12.ABC.345/01DE-35",  # alphanumeric CNPJ (2026)
        "12ABC34501DE35",  # bare alphanumeric CNPJ
        "+5511987654321",  # E.164
        "(11) 98765-4321",  # Brazilian national format
        "maria.silva+cobranca@example.com.br",
    ],
)
def test_personal_data_is_masked(personal: str) -> None:
    masked = mask_text(f"contato {personal} falhou")

    assert personal not in masked
    assert masked == "contato *** falhou"


@pytest.mark.parametrize(
    "harmless",
    [
        "0b9f5a3e-6d2c-4d7e-9f1a-2b3c4d5e6f70",  # uuid
        "1234.56",  # an amount
        "2026-11-23T10:00:00Z",
        "attempt 42 of 100",
    ],
)
def test_ids_amounts_and_dates_are_left_alone(harmless: str) -> None:
    assert mask_text(harmless) == harmless


@given(st.lists(st.integers(0, 9), min_size=11, max_size=11))
def test_any_formatted_cpf_is_masked(digits: list[int]) -> None:
    d = "".join(map(str, digits))
    cpf = f"{d[:3]}.{d[3:6]}.{d[6:9]}-{d[9:]}"

    assert cpf not in mask_text(f"cpf={cpf}")


def test_json_log_line_carries_context_and_hides_personal_data(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging(
        Settings(env=Environment.PROD, log_format=LogFormat.JSON, log_level="INFO"), "test"
    )
    try:
        with structlog.contextvars.bound_contextvars(request_id="req-1", tenant_id="t-1"):
            structlog.get_logger("t").info(
                "customer.updated",
                phone="+5511987654321",
                payload={"email": "ana@example.com", "nested": ["cpf 123.456.789-09"]},
                client_secret="never-print-me",
            )
        line = capsys.readouterr().err.strip().splitlines()[-1]
    finally:
        structlog.reset_defaults()
        logging.getLogger().handlers.clear()

    event = json.loads(line)
    assert event["event"] == "customer.updated"
    assert event["request_id"] == "req-1"
    assert event["tenant_id"] == "t-1"
    assert "+5511987654321" not in line
    assert "ana@example.com" not in line
    assert "123.456.789-09" not in line
    assert "never-print-me" not in line
