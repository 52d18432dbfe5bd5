"""Settings common to every service, read from the environment (pydantic-settings)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def normalise_database_url(url: str) -> str:
    """Force the async driver: ``postgresql://`` → asyncpg, ``sqlite://`` → aiosqlite."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url.removeprefix("postgres://")
    if url.startswith("postgresql://"):
        return "postgresql+asyncpg://" + url.removeprefix("postgresql://")
    if url.startswith("sqlite://"):
        return "sqlite+aiosqlite://" + url.removeprefix("sqlite://")
    return url


class ServiceSettings(BaseSettings):
    """Configuration every service shares. Each service subclasses it with its own defaults."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    service_name: str = Field(default="service", description="Name used in logs and metrics.")
    host: str = Field(default="127.0.0.1", description="Interface the HTTP server binds to.")
    port: int = Field(default=8000, description="HTTP port.")
    workers: int = Field(
        default=1,
        ge=1,
        le=64,
        description="Server processes (each with its consumers and outbox relay; all are safe "
        "side by side). Migrations run once, before they start.",
    )
    database_url: str = Field(
        default="sqlite:///./var/service.db",
        description="SQLAlchemy URL; SQLite file by default, PostgreSQL in production.",
    )
    amqp_url: SecretStr = Field(
        default=SecretStr("amqp://guest:guest@127.0.0.1:5672/"),
        description="RabbitMQ URL (credentials are never logged).",
    )
    amqp_exchange: str = Field(default="training-events", description="The topic exchange.")
    amqp_queue_prefix: str = Field(
        default="", description="Prefix of every queue name (isolates test runs)."
    )
    amqp_delivery_limit: int = Field(
        default=5, ge=1, description="Deliveries before a message is dead-lettered."
    )
    amqp_prefetch: int = Field(default=32, ge=1, description="Unacked messages per consumer.")
    jwt_secret: SecretStr = Field(default=SecretStr("dev-secret"), description="HS256 secret.")
    jwt_audience: str = Field(default="training-events", description="Required `aud` claim.")
    jwt_algorithm: Literal["HS256", "RS256"] = Field(default="HS256", description="JWT algorithm.")
    jwt_jwks_url: str | None = Field(default=None, description="JWKS URL when RS256 is used.")
    log_level: str = Field(
        default="INFO",
        description="Log level; DEBUG adds two lines for every message consumed.",
    )
    log_json: bool = Field(default=True, description="JSON log lines (false: console format).")
    run_migrations: bool = Field(default=True, description="Apply Alembic migrations at start-up.")
    outbox_poll_interval: float = Field(
        default=0.5, gt=0, description="Seconds between outbox polls when idle."
    )
    outbox_batch_size: int = Field(default=200, ge=1, description="Rows per outbox batch.")
    outbox_max_backoff: float = Field(
        default=60.0, gt=0, description="Longest wait between publish retries (seconds)."
    )
    idempotency_ttl_hours: float = Field(
        default=24.0,
        gt=0,
        description="How long an Idempotency-Key's first answer is replayed to the same request "
        "(then the key is forgotten and may be used afresh).",
    )
    idempotency_lease_seconds: float = Field(
        default=60.0,
        gt=0,
        description="A request with an Idempotency-Key that has not finished after this long "
        "(its process died) no longer blocks a retry with the same key (409 until then).",
    )
    inbox_retention_days: float = Field(
        default=14.0,
        ge=1,
        description="Days a processed message's id stays in the inbox (duplicates of it are "
        "recognised meanwhile) before housekeeping prunes it; keep it well past any redelivery.",
    )
    database_pool_timeout: float = Field(
        default=10.0,
        gt=0,
        description="Seconds work waits for one of the service's database connections while "
        "all are in use. A request that waited this long is answered 503 with Retry-After "
        "(`database_busy`), so a storm beyond what the pool serves is told to come back while "
        "its clients still wait, rather than queueing past their timeouts.",
    )
    graceful_timeout: float = Field(
        default=15.0, gt=0, description="Seconds to finish in-flight work on shutdown."
    )
    max_body_bytes: int = Field(
        default=5 * 1024 * 1024, ge=1024, description="Largest accepted request body."
    )

    @field_validator("database_url")
    @classmethod
    def _async_driver(cls, value: str) -> str:
        return normalise_database_url(value)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")
