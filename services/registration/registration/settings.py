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
