"""Data access of days."""

from __future__ import annotations

import uuid

from sqlalchemy import select

from catalog.models import Day
from catalog.repository import TenantRepository


class DayRepository(TenantRepository[Day]):
    model = Day
    what = "day"

    async def of_session(self, session_id: uuid.UUID) -> list[Day]:
        """The session's days, in order of their start."""
        rows = await self.session.scalars(
            select(Day).where(Day.session_id == session_id).order_by(Day.start, Day.id)
        )
        return list(rows)
