from __future__ import annotations

import pytest

from shared.config import Environment, LogFormat, Settings


def test_settings_come_from_quita_prefixed_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QUITA_API_PORT", "9100")
    monkeypatch.setenv("QUITA_REDIS_URL", "redis://cache.internal:6380/2")

    settings = Settings()

    assert settings.api_port == 9100
    assert settings.redis_url == "redis://cache.internal:6380/2"


def test_secrets_never_show_in_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QUITA_DATABASE_APP_PASSWORD", "s3cr3t-value")

    settings = Settings()

    assert "s3cr3t-value" not in repr(settings)
    assert "s3cr3t-value" not in str(settings.model_dump())


def test_services_connect_as_the_application_role_not_the_owner() -> None:
    settings = Settings(database_url="postgresql://owner:pw@db.internal:5432/quita")

    assert settings.admin_dsn.username == "owner"
    assert settings.app_dsn.username == "quita_app"
    assert settings.app_dsn.host == "db.internal"
    assert settings.app_dsn.database == "quita"
    assert settings.app_dsn.drivername == "postgresql+asyncpg"


def test_explicit_application_dsn_wins() -> None:
    settings = Settings(database_app_url="postgresql://svc:pw@replica:5432/quita")

    assert settings.app_dsn.username == "svc"
    assert settings.app_dsn.host == "replica"


@pytest.mark.parametrize(
    ("env", "expected"), [(Environment.PROD, LogFormat.JSON), (Environment.DEV, LogFormat.CONSOLE)]
)
def test_logs_are_json_in_production_and_console_in_development(
    env: Environment, expected: LogFormat
) -> None:
    assert Settings(env=env).log_format is expected
