"""Configuration of the Zoom simulator, read from the environment (no prefix).

Besides where it listens and whom it plays, the settings shape how rough it is: the webhook
answer deadline (``ZOOM_SIM_WEBHOOK_TIMEOUT``, Zoom's 3 s), the retry schedule
(``ZOOM_SIM_WEBHOOK_RETRY_SCALE``, 1 = Zoom's 5/20/60 minutes), the daily meeting quota
(``ZOOM_SIM_MEETING_DAILY_LIMIT``, Zoom's 100) and where recording links point
(``ZOOM_SIM_RECORDING_HOST``). Each is described on its field and in the README.
"""

from __future__ import annotations

from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class ServerToServerApp(BaseModel):
    """A Server-to-Server OAuth app of one Zoom account: its credentials mint account tokens, and
    its own secret token signs the webhooks of that account's meetings."""

    client_id: str = Field(min_length=1)
    client_secret: SecretStr
    account_id: str = Field(min_length=1)
    webhook_secret: SecretStr | None = None


class Settings(BaseSettings):
    """Simulator settings.

    Each field reads the environment variable named in its ``validation_alias``; fields can also
    be passed by name (``Settings(token_ttl=5)``) in tests.
    """

    model_config = SettingsConfigDict(
        env_prefix="",
        extra="ignore",
        populate_by_name=True,
        case_sensitive=False,
    )

    host: str = Field(
        default="127.0.0.1",
        validation_alias="ZOOM_SIM_HOST",
        description="Interface the simulator binds to.",
    )
    port: int = Field(default=8099, validation_alias="ZOOM_SIM_PORT", description="HTTP port.")
    public_url: str = Field(
        default="http://127.0.0.1:8099",
        validation_alias="ZOOM_SIM_PUBLIC_URL",
        description="Base of join, start and recording URLs it hands out.",
    )
    recording_host: str | None = Field(
        default=None,
        validation_alias="ZOOM_SIM_RECORDING_HOST",
        description="Base of the recording links (play_url, download_url, share_url), e.g. "
        "https://us06web.zoom.us as Zoom's; default: ZOOM_SIM_PUBLIC_URL, which serves them.",
    )
    webhook_url: str = Field(
        default="http://127.0.0.1:8003/v1/zoom/webhooks",
        validation_alias="ZOOM_SIM_WEBHOOK_URL",
        description="Where signed webhooks are sent (the bridge's receiver).",
    )
    webhook_secret: SecretStr = Field(
        default=SecretStr("dev-webhook-secret"),
        validation_alias="ZOOM_WEBHOOK_SECRET",
        description="Secret token signing the webhooks.",
    )
    client_id: str = Field(
        default="dev-client-id",
        validation_alias="ZOOM_CLIENT_ID",
        description="The only OAuth client id accepted.",
    )
    client_secret: SecretStr = Field(
        default=SecretStr("dev-client-secret"),
        validation_alias="ZOOM_CLIENT_SECRET",
        description="The only OAuth client secret accepted.",
    )
    user_email: str = Field(
        default="host@zoom-sim.local",
        validation_alias="ZOOM_SIM_USER_EMAIL",
        description="Email of the default Zoom user.",
    )
    account_id: str = Field(
        default="zoomSimAccount00000001",
        validation_alias="ZOOM_SIM_ACCOUNT_ID",
        description="Zoom account id of the default user.",
    )
    # Zoom user type of the default host: 1 = Basic (free), 2 = Licensed (paid).
    user_type: int = Field(
        default=2,
        validation_alias="ZOOM_SIM_USER_TYPE",
        description="Zoom user type of the default user: 1 basic (free), 2 licensed.",
    )
    # Zoom role of the default host: "Owner", "Admin" or "Member".
    user_role_name: str = Field(
        default="Owner",
        validation_alias="ZOOM_SIM_USER_ROLE",
        description="Role of the default user: Owner, Admin or Member.",
    )
    s2s_apps: list[ServerToServerApp] = Field(
        default_factory=list,
        validation_alias="ZOOM_SIM_S2S_APPS",
        description='Server-to-Server apps, a JSON list of {"client_id", "client_secret", '
        '"account_id", "webhook_secret"?} (more can be added with POST /_sim/s2s-apps).',
    )
    start_url_ttl: int = Field(
        default=7200,
        ge=1,
        validation_alias="ZOOM_SIM_START_URL_TTL",
        description="Seconds a start_url (its zak) stays valid, as Zoom's 2 hours.",
    )
    token_ttl: int = Field(
        default=3600,
        ge=0,
        validation_alias="ZOOM_SIM_TOKEN_TTL",
        description="Access token lifetime in seconds.",
    )
    webhook_timeout_s: float = Field(
        default=3.0,
        gt=0,
        validation_alias="ZOOM_SIM_WEBHOOK_TIMEOUT",
        description="Seconds a webhook receiver has to answer (Zoom's 3 seconds); a slower "
        "answer is a failed delivery, retried.",
    )
    webhook_retry_scale: float = Field(
        default=1.0,
        ge=0,
        validation_alias="ZOOM_SIM_WEBHOOK_RETRY_SCALE",
        description="Multiplies Zoom's retry schedule for failed webhook deliveries (5, 20 and "
        "60 minutes): 0.0001 makes it 0.03, 0.12 and 0.36 seconds for tests.",
    )
    meeting_daily_limit: int = Field(
        default=100,
        ge=0,
        validation_alias="ZOOM_SIM_MEETING_DAILY_LIMIT",
        description="Meeting creates, and separately meeting updates, each user may make per "
        "UTC day before Zoom answers 429 (X-RateLimit-Type: Daily-limit); Zoom's is 100.",
    )
    log_level: str = Field(
        default="info", validation_alias="ZOOM_SIM_LOG_LEVEL", description="uvicorn log level."
    )

    @property
    def base_url(self) -> str:
        return self.public_url.rstrip("/")

    @property
    def recording_url(self) -> str:
        return (self.recording_host or self.public_url).rstrip("/")
