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
    signup_precheck_connections: int = Field(
        default=4,
        ge=0,
        le=50,
        description="PostgreSQL only: connections of the sign-up pre-check's own pool, beside "
        "the service's. A sign-up the service refuses (the session full, registration ended, "
        "no access ...) is answered from one statement on them before the request's ORM "
        "session exists: 40% of the full path's CPU here, and nine in ten sign-ups of a "
        "storm are refused. 0 turns the pre-check off.",
    )
