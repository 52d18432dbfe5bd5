"""Data access of sessions: the session, its names per locale, the seats registration reports."""

from __future__ import annotations

import uuid

from sqlalchemy import delete, func, select

from catalog.models import Day, EnrollmentSeat, SessionName, TrainingSession
from catalog.repository import TenantRepository
from te_shared import rules


class SessionRepository(TenantRepository[TrainingSession]):
    model = TrainingSession
    what = "session"

    async def of_event(
        self, company_id: str, event_id: uuid.UUID, *, lock: bool = False
    ) -> list[TrainingSession]:
        """The event's sessions, by creation; with ``lock``, by id and ``FOR UPDATE`` (the
        order day edits take them in)."""
        stmt = select(TrainingSession).where(
            TrainingSession.event_id == event_id, TrainingSession.company_id == company_id
        )
        if lock:
            stmt = (
                stmt.order_by(TrainingSession.id)
                .with_for_update()
                .execution_options(populate_existing=True)
            )
        else:
            stmt = stmt.order_by(TrainingSession.created_at, TrainingSession.id)
        return list(await self.session.scalars(stmt))

    async def delete(self, session_id: uuid.UUID) -> None:
        """The session with its days and names."""
        await self.session.execute(delete(Day).where(Day.session_id == session_id))
        await self.session.execute(delete(SessionName).where(SessionName.session_id == session_id))
        await self.session.execute(delete(TrainingSession).where(TrainingSession.id == session_id))

    async def names(self, session_id: uuid.UUID) -> dict[str, str]:
        """The session's name per locale."""
        rows = await self.session.scalars(
            select(SessionName)
            .where(SessionName.session_id == session_id)
            .order_by(SessionName.locale)
        )
        return {r.locale: r.name for r in rows}

    async def name_owner(
        self, event_id: uuid.UUID, locale: str, key: str, *, besides: uuid.UUID
    ) -> uuid.UUID | None:
        """Another session of the event whose name in ``locale`` has the key ``key``."""
        owner: uuid.UUID | None = await self.session.scalar(
            select(SessionName.session_id).where(
                SessionName.event_id == event_id,
                SessionName.locale == locale,
                SessionName.name_key == key,
                SessionName.session_id != besides,
            )
        )
        return owner

    async def name_in(self, session_id: uuid.UUID, locale: str) -> SessionName | None:
        return await self.session.get(SessionName, (session_id, locale))

    async def seats_taken(self, session_id: uuid.UUID) -> int:
        """Seats taken in the session, as registration last told us (R-SES-8, R-SES-9)."""
        count = await self.session.scalar(
            select(func.count())
            .select_from(EnrollmentSeat)
            .where(
                EnrollmentSeat.session_id == session_id,
                EnrollmentSeat.status.in_(sorted(rules.SEAT_TAKING)),
            )
        )
        return int(count or 0)
