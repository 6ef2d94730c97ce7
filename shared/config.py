"""One typed settings object for every Quita process.

Every value comes from the environment with the ``QUITA_`` prefix (or a ``.env`` file), e.g.
``QUITA_DATABASE_URL``.  Secrets are ``SecretStr`` so they never show up in a repr or a log.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from functools import lru_cache
from pathlib import Path

from pydantic import SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import URL, make_url


class Environment(StrEnum):
    DEV = "dev"
    TEST = "test"
    PROD = "prod"


class LogFormat(StrEnum):
    CONSOLE = "console"
    JSON = "json"


QUEUES = ("send", "inbound", "default", "webhooks_out")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="QUITA_",
        env_file=".env",
        extra="ignore",
        validate_default=True,
        # A rejected value may be a secret (e.g. a mistyped key): never echo it in the error.
        hide_input_in_errors=True,
    )

    env: Environment = Environment.DEV
    # Tests only: the instant every process takes as "now" (``shared.clock``), so a test of
    # the contact window does not depend on the hour CI runs at.
    fixed_now: datetime | None = None
    # benchmarks only (QUITA_ENV=test): write no audit events, to measure what they cost
    bench_without_audit: bool = False

    # Postgres.  ``database_url`` is the owner's DSN (migrations, role setup).  The services
    # connect as ``database_app_role``, a role without SUPERUSER or BYPASSRLS, so row-level
    # security applies to them; its DSN is derived from the owner's unless given explicitly.
    database_url: str = "postgresql://postgres@127.0.0.1:5432/quita"
    database_app_url: str | None = None
    database_app_role: str = "quita_app"
    database_app_password: SecretStr = SecretStr("quita_app")
    database_pool_size: int = 10
    database_max_overflow: int = 10

    redis_url: str = "redis://127.0.0.1:6379/0"
    queue_namespace: str = "quita"

    # Where `make run` keeps the embedded servers' data (git-ignored).
    data_dir: Path = Path(".quita")
    # Force the embedded Postgres/Redis even when the URLs above are set or reachable.
    embedded: bool = False
    embedded_redis_port: int = 6390

    host: str = "127.0.0.1"
    api_port: int = 8000
    webhooks_port: int = 8001
    sandbox_port: int = 8002
    # The sandbox's SMTP sink.  Port 0 picks a free port; unset: 8025, or 0 under env=test so
    # parallel test runs never fight over one port.
    sandbox_smtp_host: str = "127.0.0.1"
    sandbox_smtp_port: int | None = None
    public_base_url: str | None = None
    # The payment page debtors open from a message (``/pagar/<token>``, served by the api):
    # its public origin (default: public_base_url, else the api's), and how long a message's
    # link stays open.
    pay_url: str | None = None
    pay_link_days: int = 7
    # Pix PSP webhooks behind a mutual-TLS proxy: the header carrying the client certificate's
    # subject, read only when the proxy is trusted to set it (and strip it from clients)
    pix_client_cert_header: str = "X-SSL-Client-S-DN"
    pix_client_cert_header_trusted: bool = False

    log_level: str = "INFO"
    log_format: LogFormat | None = None  # default: json in prod, console elsewhere

    webhooks_max_body_bytes: int = 1_048_576
    api_max_body_bytes: int = 10_485_760

    # Outbox relay
    relay_batch_size: int = 500
    relay_poll_seconds: float = 1.0
    relay_sweep_seconds: float = 30.0
    relay_sweep_grace_seconds: float = 15.0
    outbox_retention_days: int = 7

    # Scheduler
    scheduler_tick_seconds: float = 60.0

    # Worker
    worker_processes: int = 1
    worker_threads: int = 16
    job_time_limit_ms: int = 60_000
    # Dramatiq's Redis broker: a worker that stops heartbeating this long is presumed dead and
    # its unacknowledged messages go back to the queue (checked on ``maintenance_chance`` out of
    # a million broker calls).
    queue_heartbeat_timeout_ms: int = 60_000
    queue_maintenance_chance: int = 1000

    # Key-encryption keys for secrets at rest (shared/crypto.py): comma-separated
    # ``id:base64(32 bytes)``; the first encrypts, all decrypt (rotation).  The default is a
    # fixed, public dev-only key: production must set its own.
    # OAuth 2.0 / access tokens
    oauth_issuer: str | None = None  # default: the api's base URL
    oauth_audience: str = "quita-api"
    access_token_ttl_s: int = 900
    refresh_token_ttl_s: int = 30 * 24 * 3600
    auth_code_ttl_s: int = 300
    client_secret_overlap_s: int = 24 * 3600
    # token endpoint and sign-in: per client and per IP (token bucket)
    token_rate_per_s: float = 5.0
    token_burst: int = 30
    signin_rate_per_s: float = 0.5
    signin_burst: int = 10

    # WhatsApp Cloud API (Graph): the version is pinned, Meta retires each one after ~2 years.
    whatsapp_graph_url: str = "https://graph.facebook.com"
    whatsapp_api_version: str = "v24.0"
    whatsapp_timeout_s: float = 15.0  # a send not answered by then may or may not have left
    # SMS fallback: Twilio Programmable Messaging (the sandbox in demo and tests).
    sms_api_url: str = "https://api.twilio.com"

    secret_keys: SecretStr = SecretStr("dev-only:ZGV2LW9ubHktcXVpdGEta2V5LW5ldmVyLWluLXByb2Q=")

    @field_validator("secret_keys")
    @classmethod
    def _valid_secret_keys(cls, value: SecretStr) -> SecretStr:
        # Imported here: shared.crypto imports this module.
        from shared.crypto import parse_keys

        parse_keys(value.get_secret_value())
        return value

    @model_validator(mode="after")
    def _default_log_format(self) -> Settings:
        if self.log_format is None:
            self.log_format = LogFormat.JSON if self.env is Environment.PROD else LogFormat.CONSOLE
        return self

    @model_validator(mode="after")
    def _fixed_now_only_in_tests(self) -> Settings:
        if self.fixed_now is not None and self.env is not Environment.TEST:
            raise ValueError("fixed_now is for tests only (QUITA_ENV=test)")
        if self.bench_without_audit and self.env is not Environment.TEST:
            raise ValueError("bench_without_audit is for benchmarks only (QUITA_ENV=test)")
        return self

    @model_validator(mode="after")
    def _default_sandbox_smtp_port(self) -> Settings:
        if self.sandbox_smtp_port is None:
            self.sandbox_smtp_port = 0 if self.env is Environment.TEST else 8025
        return self

    @property
    def admin_dsn(self) -> URL:
        """The owner's DSN for SQLAlchemy on asyncpg."""
        return _with_driver(make_url(self.database_url), "postgresql+asyncpg")

    @property
    def app_dsn(self) -> URL:
        """The application role's DSN for SQLAlchemy on asyncpg."""
        if self.database_app_url:
            return _with_driver(make_url(self.database_app_url), "postgresql+asyncpg")
        return self.admin_dsn.set(
            username=self.database_app_role,
            password=self.database_app_password.get_secret_value(),
        )

    @property
    def oauth_issuer_url(self) -> str:
        return self.oauth_issuer or self.public_base_url or self.base_url("api")

    def webhooks_url(self) -> str:
        """Where providers reach the webhooks service (the public URL in production)."""
        return (self.public_base_url or self.base_url("webhooks")).rstrip("/")

    @property
    def pay_base_url(self) -> str:
        return (self.pay_url or self.public_base_url or self.base_url("api")).rstrip("/")

    def base_url(self, service: str) -> str:
        port = {"api": self.api_port, "webhooks": self.webhooks_port, "sandbox": self.sandbox_port}
        return f"http://{self.host}:{port[service]}"


def _with_driver(url: URL, driver: str) -> URL:
    return url.set(drivername=driver)


def libpq_dsn(url: URL) -> str:
    """A DSN that plain asyncpg/libpq understand (no SQLAlchemy driver suffix)."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def redis_url_with_db(url: str, db: int) -> str:
    """``url`` pointing at Redis logical database ``db`` (TCP or unix-socket URLs)."""
    if url.startswith("unix://"):
        return f"{url.split('?')[0]}?db={db}"
    return f"{url.rsplit('/', 1)[0]}/{db}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()


def reset_settings() -> None:
    """Forget the cached settings (tests and the dev launcher change the environment)."""
    get_settings.cache_clear()


__all__ = ["QUEUES", "Environment", "LogFormat", "Settings", "get_settings", "libpq_dsn"]
