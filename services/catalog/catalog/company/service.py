from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from catalog.company.schemas import CompanySettingsIn
from catalog.models import CompanySettings, OutboxRecord
from te_shared import contracts as c
from te_shared.db import is_postgres, utcnow
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
    """Replace the settings and announce them (R-CO-1).

    A company's first settings: ``SELECT ... FOR UPDATE`` on a missing row locks nothing, so two
    first PUTs would both insert. The row is first created if missing (``ON CONFLICT DO NOTHING``,
    which waits for a concurrent insert of the same key), then locked and replaced.
    """
    insert = pg_insert if is_postgres(session) else sqlite_insert
    await session.execute(
        insert(CompanySettings)
        .values(
            company_id=company_id,
            timezone=DEFAULTS.timezone,
            locales=list(DEFAULTS.locales),
            zoom_enabled=DEFAULTS.zoom_enabled,
            training_module_enabled=DEFAULTS.training_module_enabled,
            version=0,
            updated_at=utcnow(),
        )
        .on_conflict_do_nothing(index_elements=["company_id"])
    )
    row = (
        await session.scalars(
            select(CompanySettings)
            .where(CompanySettings.company_id == company_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    ).one()
    row.timezone = data.timezone
    row.locales = list(data.locales)
    row.zoom_enabled = data.zoom_enabled
    row.training_module_enabled = data.training_module_enabled
    row.version += 1
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
