from __future__ import annotations

from pydantic import ConfigDict, Field, field_validator

from catalog.validation import TimeZoneName
from te_shared import rules
from te_shared.body import Body
from te_shared.text import LocaleCode
from te_shared.timezones import validate_timezone


class CompanySettingsIn(Body):
    """R-CO-1: the company's settings (replaced as a whole)."""

    timezone: TimeZoneName = Field(default="Europe/Moscow", examples=["Europe/Moscow"])
    locales: list[LocaleCode] = Field(
        default_factory=lambda: ["en"],
        min_length=1,
        max_length=50,
        json_schema_extra={"uniqueItems": True},
    )
    zoom_enabled: bool = rules.DEFAULT_ZOOM_ENABLED
    training_module_enabled: bool = rules.DEFAULT_TRAINING_MODULE_ENABLED

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        return validate_timezone(value)

    @field_validator("locales")
    @classmethod
    def _locales(cls, value: list[str]) -> list[str]:
        cleaned: list[str] = []
        for code in value:
            if code.lower() in (c.lower() for c in cleaned):
                raise ValueError(f"locale {code!r} is listed twice")
            cleaned.append(code)
        return cleaned


class CompanySettingsOut(CompanySettingsIn):
    model_config = ConfigDict(from_attributes=True)
