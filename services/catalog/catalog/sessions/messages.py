"""What catalog tells other services about sessions (through the outbox, in the caller's
transaction)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from catalog.models import OutboxRecord, TrainingSession
from te_shared import contracts as c
from te_shared.outbox import add_message


def publish_session(
    session: AsyncSession,
    row: TrainingSession,
    names: dict[str, str],
    cls: type[c.SessionCreated] | type[c.SessionUpdated],
) -> None:
    add_message(
        session,
        OutboxRecord,
        cls(
            company_id=row.company_id,
            session_id=row.id,
            event_id=row.event_id,
            version=row.version,
            name=names,
            timezone=row.timezone,
            registration_end=row.registration_end,
            limit_enabled=row.limit_enabled,
            participant_limit=row.participant_limit if row.limit_enabled else None,
            waitlist_enabled=row.waitlist_enabled,
        ),
    )
