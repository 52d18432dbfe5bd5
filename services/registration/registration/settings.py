from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from te_shared.settings import ServiceSettings


class RegistrationSettings(ServiceSettings):
    """registration configuration (environment variables, optional prefix-free names)."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    service_name: str = "registration"
    port: int = 8002
    database_url: str = Field(default="sqlite:///./var/registration.db")
    public_base_url: str = Field(
        default="http://127.0.0.1:8002",
        description="Where clients reach this service (through the gateway in production): "
        "calendar feed URLs are built on it.",
    )
    import_read_timeout: float = Field(
        default=10.0,
        gt=0,
        le=300,
        description="Seconds an enrollment import file may take to read (CSV or XLSX, read in a "
        "process of its own, off the event loop); a file still being read then is refused "
        "(422) and its process killed.",
    )
    signup_fast_path_connections: int = Field(
        default=10,
        ge=0,
        le=50,
        description="PostgreSQL only: connections of the sign-up fast path's own pool, beside "
        "the service's (as many as the service's pool keeps open). A sign-up is refused or "
        "takes its seat on them, with the route's own statements and rules but without its "
        "dependency solving and ORM session; what the fast path does not handle (replays, a "
        "waitlist, an e-mail with enrollments waiting for it, database errors) goes on to the "
        "route. An Idempotency-Key's claim and kept answer run on them too. 0 turns the fast "
        "path off (the keys' statements then go through the service's pool). Connections "
        "open as sign-ups need them and close "
        "after five idle minutes. A connection stays taken while its request waits for its "
        "turn on the event loop, so a storm is served faster with more: on the benchmarks' "
        "2-core host, 100 sign-ups in flight ran at 1,370-1,470/s with 10 and 1,620-1,670/s "
        "with 20 (no change at 64 in flight). Count them in PostgreSQL's max_connections.",
    )
    calendar_past_days: int = Field(
        default=365,
        ge=0,
        le=3650,
        description="How far back the user's calendar (the download and the subscription "
        "feed) goes: days that ended longer ago than this many days are left out, every later "
        "one is in. Calendar apps fetch a subscribed feed every hour, and a user with years "
        "of trainings made each fetch render all of them (about 0.2 ms of CPU a day). A "
        "subscribed calendar shows what the feed holds, so older days leave it; the user's "
        "history stays in the Completed tab.",
    )
