"""What catalog tells other services about days (through the outbox, in the caller's
transaction): every message carries the day as it is, so a consumer that sees a later one first
still has it whole."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from catalog.events.rules import topic
from catalog.models import Day, Event, OutboxRecord, TrainingSession
from te_shared import contracts as c
from te_shared.outbox import add_message


def zoom_settings(day: Day) -> c.ZoomDaySettings | None:
    if day.format != c.DayFormat.ZOOM or day.zoom_account_id is None:
        return None
    return c.ZoomDaySettings(
        account_id=day.zoom_account_id,
        organizer_user_id=day.zoom_organizer_user_id or "",
        auto_recording=day.zoom_auto_recording,
    )


def publish_day(
    session: AsyncSession,
    day: Day,
    sess: TrainingSession,
    event: Event,
    names: dict[str, str],
    cls: type[c.DayScheduled] | type[c.DayRescheduled],
    **extra: Any,
) -> None:
    add_message(
        session,
        OutboxRecord,
        cls(
            company_id=day.company_id,
            day_id=day.id,
            session_id=sess.id,
            event_id=event.id,
            version=day.version,
            format=c.DayFormat(day.format),
            start=day.start,
            end=day.end,
            timezone=sess.timezone,
            topic=topic(event.title, names),
            zoom=zoom_settings(day),
            address=day.address,
            url=day.url,
            confirmed_after_session_end=day.reopens_session,
            **extra,
        ),
    )


def publish_day_cancelled(
    session: AsyncSession,
    day: Day,
    sess: TrainingSession,
    event: Event,
    names: dict[str, str],
) -> None:
    """The day went away (alone or with its session); the message carries it as it last was."""
    add_message(
        session,
        OutboxRecord,
        c.DayCancelled(
            company_id=day.company_id,
            day_id=day.id,
            session_id=sess.id,
            event_id=event.id,
            version=day.version,
            format=c.DayFormat(day.format),
            start=day.start,
            end=day.end,
            timezone=sess.timezone,
            topic=topic(event.title, names),
            zoom=zoom_settings(day),
        ),
    )
