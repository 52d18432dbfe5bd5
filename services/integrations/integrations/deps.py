"""Request dependencies: the settings and the cipher the running service holds."""

from __future__ import annotations

from typing import Annotated, cast

from fastapi import Depends, Request

from integrations.crypto import SecretCipher
from integrations.settings import IntegrationsSettings
from te_shared.service import get_runtime


async def get_settings(request: Request) -> IntegrationsSettings:
    return cast(IntegrationsSettings, get_runtime(request).settings)


async def get_cipher(request: Request) -> SecretCipher:
    return cast(SecretCipher, get_runtime(request).extras["cipher"])


SettingsDep = Annotated[IntegrationsSettings, Depends(get_settings)]
CipherDep = Annotated[SecretCipher, Depends(get_cipher)]
