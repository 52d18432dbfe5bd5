"""Request dependencies: the settings the running service holds."""

from __future__ import annotations

from typing import Annotated, cast

from fastapi import Depends, Request

from registration.settings import RegistrationSettings
from te_shared.service import get_runtime


async def get_settings(request: Request) -> RegistrationSettings:
    return cast(RegistrationSettings, get_runtime(request).settings)


SettingsDep = Annotated[RegistrationSettings, Depends(get_settings)]
