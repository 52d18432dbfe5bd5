from __future__ import annotations

import ipaddress

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from te_shared.settings import ServiceSettings

#: A Fernet key for local runs only; production sets WEBHOOK_SECRET_KEY.
DEV_SECRET_KEY = "ZGV2LXdlYmhvb2sta2V5LWRvLW5vdC11c2UtaW4tcHI="


class IntegrationsSettings(ServiceSettings):
    """integrations configuration (environment variables, prefix-free names)."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    service_name: str = "integrations"
    port: int = 8004
    database_url: str = Field(default="sqlite:///./var/integrations.db")
    webhook_secret_key: SecretStr = Field(
        default=SecretStr(DEV_SECRET_KEY),
        description="Fernet key encrypting the endpoints' signing secrets at rest (they must "
        "be recovered to sign, so they are encrypted, never hashed). Several keys separated "
        "by commas rotate it: the first encrypts, any of them decrypts.",
    )
    webhook_allow_http: bool = Field(
        default=False,
        description="Accept plain `http://` endpoint URLs (local runs only; production "
        "endpoints must be `https://`).",
    )
    webhook_allow_private_networks: list[str] = Field(
        default=[],
        description="Networks (CIDR) a target may resolve into although they are not public "
        "(private, loopback, link-local, ...): `make run` allows "
        '`["127.0.0.0/8", "::1/128"]` for the local demo. Everything else that is not a '
        "public address is refused, at registration and at every delivery.",
    )
    webhook_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        le=60,
        description="Seconds one delivery may take (connect, send, answer); then it failed.",
    )
    webhook_concurrency: int = Field(
        default=16, ge=1, le=256, description="Deliveries in flight at once per process."
    )
    webhook_endpoint_concurrency: int = Field(
        default=4,
        ge=1,
        le=64,
        description="Deliveries in flight at once to one endpoint per process, so a slow "
        "receiver never takes every slot.",
    )
    webhook_retry_scale: float = Field(
        default=1.0,
        gt=0,
        description="Multiplies the retry schedule and its window (tests shrink it, e.g. 0.001).",
    )
    webhook_retry_window_hours: float = Field(
        default=72.0,
        gt=0,
        description="How long a failing delivery is retried (from its first attempt) before it "
        "is given up; the last attempt is the first one at or past the window.",
    )
    webhook_rotation_overlap_hours: float = Field(
        default=24.0,
        ge=0,
        description="After a secret rotation the old secret keeps signing, beside the new one, "
        "for this long.",
    )
    webhook_lease_seconds: float = Field(
        default=60.0,
        gt=0,
        description="A claimed delivery whose process died is taken up again after this "
        "(more than WEBHOOK_TIMEOUT_SECONDS).",
    )
    webhook_worker_poll_seconds: float = Field(
        default=1.0, gt=0, description="Longest wait between looks at the delivery queue."
    )
    webhook_response_excerpt_bytes: int = Field(
        default=512,
        ge=0,
        le=4096,
        description="Bytes of a receiver's answer kept in the deliveries log (the rest is "
        "never read).",
    )
    webhook_retention_days: float = Field(
        default=30.0,
        gt=0,
        description="Finished deliveries (delivered, given up, discarded) and their attempts "
        "are kept this long, then pruned.",
    )

    @field_validator("webhook_allow_private_networks")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        return [str(ipaddress.ip_network(item.strip(), strict=False)) for item in value]

    @model_validator(mode="after")
    def _lease_outlasts_a_delivery(self) -> IntegrationsSettings:
        if self.webhook_lease_seconds <= self.webhook_timeout_seconds:
            raise ValueError("WEBHOOK_LEASE_SECONDS must exceed WEBHOOK_TIMEOUT_SECONDS")
        return self
