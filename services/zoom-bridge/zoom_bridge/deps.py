"""Request dependencies: the Zoom client and settings the running service holds."""

from __future__ import annotations

from typing import Annotated, cast

from fastapi import Depends, Request

from te_shared.service import get_runtime
from zoom_bridge.settings import ZoomBridgeSettings
from zoom_bridge.zoom.client import ZoomClient


async def get_zoom(request: Request) -> ZoomClient:
    return cast(ZoomClient, get_runtime(request).extras["zoom"])


async def get_settings(request: Request) -> ZoomBridgeSettings:
    return cast(ZoomBridgeSettings, get_runtime(request).settings)


ZoomDep = Annotated[ZoomClient, Depends(get_zoom)]
SettingsDep = Annotated[ZoomBridgeSettings, Depends(get_settings)]
