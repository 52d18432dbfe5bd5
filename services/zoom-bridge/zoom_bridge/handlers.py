"""Messages zoom-bridge consumes."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from te_shared import contracts as c
from te_shared.inbox import Consumers
from te_shared.replica import upsert_if_newer
from te_shared.topology import ZOOM_BRIDGE
from zoom_bridge.models import CompanyReplica

consumers = Consumers(ZOOM_BRIDGE)


@consumers.handler(c.CompanySettingsChanged)
async def on_company_settings(session: AsyncSession, msg: c.CompanySettingsChanged) -> None:
    await upsert_if_newer(
        session,
        CompanyReplica,
        key={"company_id": msg.company_id},
        version=msg.version,
        values={
            "zoom_enabled": msg.zoom_enabled,
            "training_module_enabled": msg.training_module_enabled,
        },
    )
