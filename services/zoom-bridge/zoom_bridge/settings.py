from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from te_shared.settings import ServiceSettings

#: A Fernet key for local runs only; production sets TOKEN_ENCRYPTION_KEY.
DEV_TOKEN_KEY = "ZGV2LXRva2VuLWtleS1kby1ub3QtdXNlLWluLXByb2Q="


class ZoomBridgeSettings(ServiceSettings):
    """zoom-bridge configuration (environment variables, prefix-free names).

    Pointing the bridge at zoom.us only needs ZOOM_API_BASE_URL=https://api.zoom.us/v2,
    ZOOM_OAUTH_BASE_URL=https://zoom.us and real credentials.
    """

    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    service_name: str = "zoom-bridge"
    port: int = 8003
    database_url: str = Field(default="sqlite:///./var/zoom_bridge.db")
    zoom_api_base_url: str = Field(
        default="http://127.0.0.1:8099/v2", description="Zoom REST API base (api.zoom.us/v2)."
    )
    zoom_oauth_base_url: str = Field(
        default="http://127.0.0.1:8099", description="Zoom OAuth base (zoom.us)."
    )
    zoom_authorize_base_url: str | None = Field(
        default=None,
        description="Browser-facing base of Zoom's authorize page when it differs from "
        "ZOOM_OAUTH_BASE_URL (e.g. docker-compose: http://localhost:8099).",
    )
    zoom_client_id: str = Field(default="dev-client-id", description="OAuth app client id.")
    zoom_client_secret: SecretStr = Field(
        default=SecretStr("dev-client-secret"), description="OAuth app client secret."
    )
    zoom_redirect_url: str = Field(
        default="http://127.0.0.1:8003/v1/zoom/oauth/callback",
        description="This service's OAuth callback as registered with Zoom.",
    )
    zoom_webhook_secret: SecretStr = Field(
        default=SecretStr("dev-webhook-secret"),
        description="Webhook secret token: verifies x-zm-signature and answers URL validation.",
    )
    zoom_recording_hosts: list[str] = Field(
        default=["zoom.us", "zoom.com", "zoomgov.com"],
        description="Hosts (with their subdomains) a recording link must be an https link on "
        "to be stored and shown (R-ZOOM-7); links on the configured Zoom's own origins "
        "(ZOOM_API_BASE_URL, ZOOM_OAUTH_BASE_URL: the simulator locally) are kept too.",
    )
    zoom_return_origins: list[str] = Field(
        default=["http://127.0.0.1:5173", "http://localhost:5173"],
        description="Origins an OAuth `return_to` may point at (relative paths always may).",
    )
    token_encryption_key: SecretStr = Field(
        default=SecretStr(DEV_TOKEN_KEY), description="Fernet key encrypting tokens at rest."
    )
    zoom_http_timeout: float = Field(
        default=10.0, gt=0, description="Seconds before a Zoom API call times out."
    )
    zoom_retry_budget_seconds: float = Field(
        default=6 * 3600.0,
        gt=0,
        description="How long a day's meeting keeps being retried (5xx, timeouts, per-second "
        "429s) before it is marked failed; a wait for Zoom's daily limit does not count. A "
        "later change of the day, or POST /v1/days/{id}/meeting/retry, starts it again.",
    )
    zoom_retry_base_seconds: float = Field(
        default=1.0, gt=0, description="First retry delay; doubles per attempt, with jitter."
    )
    zoom_retry_max_seconds: float = Field(
        default=300.0, gt=0, description="Longest backoff between retries."
    )
    zoom_retry_after_max_seconds: float = Field(
        default=24 * 3600.0,
        gt=0,
        description="Longest wait Zoom may ask for that is honoured: a Retry-After, or the "
        "time Zoom's daily limit resets (the next 00:00 UTC, up to a day ahead), until which a "
        "job is parked.",
    )
    zoom_create_settle_seconds: float = Field(
        default=60.0,
        gt=0,
        description="After a create that got no answer (a timeout, a 5xx), how long after it "
        "was sent before the day's meeting is looked up by its agenda (and created again if "
        "absent): Zoom may still be making it. At least ZOOM_HTTP_TIMEOUT.",
    )
    zoom_create_verify_delay_seconds: float = Field(
        default=300.0,
        gt=0,
        description="After a day's meeting is stored (or deleted) following a create that got "
        "no answer, the account's meetings with the day's agenda are listed this long after, "
        "and every one that is not the stored meeting is deleted.",
    )
    zoom_create_verify_again_seconds: float = Field(
        default=3600.0,
        ge=0,
        description="The check of ZOOM_CREATE_VERIFY_DELAY_SECONDS runs once more this long after "
        "the first (0: only once).",
    )
    zoom_start_url_timeout: float = Field(
        default=3.0,
        gt=0,
        description="Seconds to wait for a fresh host link (GET /meetings/{id}) before the "
        "stored one is served.",
    )
    zoom_worker_poll_seconds: float = Field(
        default=0.5, gt=0, description="Seconds between job polls when idle."
    )
    zoom_job_lease_seconds: float = Field(
        default=120.0, gt=0, description="A claimed job is retried by another worker after this."
    )
    zoom_webhook_max_age_seconds: int = Field(
        default=5700,
        ge=1,
        description="Webhooks whose x-zm-request-timestamp is older are refused (401). Zoom "
        "retries a failed delivery 5, 20 and 60 minutes apart with its first timestamp and "
        "signature: the default (95 minutes) lets the last retry (85 minutes on) in. A replay "
        "within it is absorbed as a duplicate (stored webhooks are kept "
        "ZOOM_WEBHOOK_RETENTION_DAYS, longer than this).",
    )
    zoom_webhook_max_future_seconds: int = Field(
        default=300,
        ge=0,
        description="Webhooks whose timestamp is further ahead of this service's clock are "
        "refused (clock skew; Zoom never sends a timestamp from the future).",
    )
    zoom_reconcile_delay_seconds: float = Field(
        default=60.0,
        ge=0,
        description="Wait after meeting.ended before reading the participants report.",
    )
    zoom_reconcile_attempts: int = Field(
        default=6,
        ge=1,
        description="Reads of a participants report Zoom does not have yet (404), with the "
        "wait doubling from ZOOM_RECONCILE_DELAY_SECONDS, before webhook attendance is final.",
    )
    zoom_webhook_secret_cache_seconds: float = Field(
        default=30.0,
        ge=0,
        description="How long a replica keeps Server-to-Server webhook secret tokens in memory "
        "(a change made through another replica is seen within it; Zoom retries a webhook "
        "refused meanwhile). 0 reads them for every webhook.",
    )
    zoom_webhook_batch_size: int = Field(
        default=500,
        ge=1,
        le=1000,
        description="Stored webhooks processed in one transaction; the attendance they change "
        "is added up and published once per day and batch (a backlog in larger batches: fewer "
        "recomputations of the day and fewer AttendanceRecorded messages).",
    )
    zoom_webhook_lull_seconds: float = Field(
        default=2.0,
        ge=0,
        description="Longest a batch of stored webhooks waits for a pause (20 ms) in incoming "
        "ones before it is processed: in a storm the replica answers Zoom first (Zoom gives a "
        "webhook 3 s) and processes in the pauses; attendance trails a storm that never "
        "pauses by this much at most. 0 processes at once.",
    )
    zoom_webhook_max_attempts: int = Field(
        default=10,
        ge=1,
        description="Attempts at processing a stored webhook before it is given up (kept, "
        "marked failed, logged).",
    )
    zoom_webhook_retry_base_seconds: float = Field(
        default=1.0,
        gt=0,
        description="First wait before a failed webhook is processed again; doubles up to "
        "ZOOM_RETRY_MAX_SECONDS.",
    )
    zoom_webhook_retention_days: float = Field(
        default=7.0,
        gt=0,
        description="Processed webhooks are kept this long (duplicate deliveries within it are "
        "recognised), then pruned.",
    )
