from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator

from te_shared.timezones import validate_timezone

_LOCALE = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8}){0,3}$")


class CompanySettingsIn(BaseModel):
    """R-CO-1: the company's settings (replaced as a whole)."""

    model_config = ConfigDict(extra="forbid")

    timezone: str = Field(default="Europe/Moscow", examples=["Europe/Moscow"])
    locales: list[str] = Field(default_factory=lambda: ["en"], min_length=1, max_length=50)
    zoom_enabled: bool = False
    training_module_enabled: bool = True

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        return validate_timezone(value)

    @field_validator("locales")
    @classmethod
    def _locales(cls, value: list[str]) -> list[str]:
        cleaned: list[str] = []
        for locale in value:
            code = locale.strip()
            if not _LOCALE.match(code):
                raise ValueError(f"{locale!r} is not a locale code like 'en' or 'pt-BR'")
            if code.lower() in (c.lower() for c in cleaned):
                raise ValueError(f"locale {code!r} is listed twice")
            cleaned.append(code)
        return cleaned


class CompanySettingsOut(CompanySettingsIn):
    model_config = ConfigDict(from_attributes=True)
