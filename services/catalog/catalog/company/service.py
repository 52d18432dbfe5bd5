from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from catalog.company.schemas import CompanySettingsIn
from catalog.models import CompanySettings, OutboxRecord
from te_shared import contracts as c
from te_shared.db import utcnow
from te_shared.outbox import add_message

DEFAULTS = CompanySettingsIn()


async def get_settings(session: AsyncSession, company_id: str) -> CompanySettingsIn:
    row = await session.get(CompanySettings, company_id)
    if row is None:
        return DEFAULTS
    return CompanySettingsIn(
        timezone=row.timezone,
        locales=row.locales,
        zoom_enabled=row.zoom_enabled,
        training_module_enabled=row.training_module_enabled,
    )


async def replace_settings(
    session: AsyncSession, company_id: str, data: CompanySettingsIn
) -> CompanySettingsIn:
    """Replace the settings and announce them (R-CO-1)."""
    row = (
        await session.scalars(
            select(CompanySettings)
            .where(CompanySettings.company_id == company_id)
            .with_for_update()
        )
    ).one_or_none()
    if row is None:
        row = CompanySettings(company_id=company_id, version=0)
        session.add(row)
    row.timezone = data.timezone
    row.locales = list(data.locales)
    row.zoom_enabled = data.zoom_enabled
    row.training_module_enabled = data.training_module_enabled
    row.version = (row.version or 0) + 1
    row.updated_at = utcnow()
    add_message(
        session,
        OutboxRecord,
        c.CompanySettingsChanged(
            company_id=company_id,
            version=row.version,
            timezone=row.timezone,
            locales=row.locales,
            zoom_enabled=row.zoom_enabled,
            training_module_enabled=row.training_module_enabled,
        ),
    )
    return data
