"""What catalog tells other services about events (through the outbox, in the caller's
transaction)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from catalog.models import Event, OutboxRecord
from te_shared import contracts as c
from te_shared.outbox import add_message


def publish_event(session: AsyncSession, event: Event) -> None:
    add_message(
        session,
        OutboxRecord,
        c.EventChanged(
            company_id=event.company_id,
            event_id=event.id,
            version=event.version,
            title=dict(event.title),
            state=c.EventState(event.state),
            dated=event.dated,
            requires_approval=event.requires_approval,
        ),
    )
