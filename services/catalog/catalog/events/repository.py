"""Data access of events."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import and_, or_, select

from catalog.models import Event
from catalog.repository import TenantRepository


class EventRepository(TenantRepository[Event]):
    model = Event
    what = "event"

    async def page(
        self, company_id: str, after: tuple[dt.datetime, uuid.UUID] | None, limit: int
    ) -> list[Event]:
        """The company's events by creation, after the keyset position ``after``."""
        stmt = select(Event).where(Event.company_id == company_id)
        if after is not None:
            created, event_id = after
            stmt = stmt.where(
                or_(
                    Event.created_at > created,
                    and_(Event.created_at == created, Event.id > event_id),
                )
            )
        return list(
            await self.session.scalars(stmt.order_by(Event.created_at, Event.id).limit(limit))
        )
