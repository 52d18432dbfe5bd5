from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from te_shared.settings import ServiceSettings


class CatalogSettings(ServiceSettings):
    """Catalog configuration (environment variables, optional prefix-free names)."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    service_name: str = "catalog"
    port: int = 8001
    database_url: str = Field(default="sqlite:///./var/catalog.db")
