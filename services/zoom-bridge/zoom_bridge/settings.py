from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from te_shared.settings import ServiceSettings


class ZoomBridgeSettings(ServiceSettings):
    """zoom-bridge configuration (environment variables, optional prefix-free names)."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    service_name: str = "zoom-bridge"
    port: int = 8003
    database_url: str = Field(default="sqlite:///./var/zoom_bridge.db")
