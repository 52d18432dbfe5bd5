"""Shared domain helpers: tenant-scoped loading, locking and the messages other services need."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from catalog.models import (
    Base,
    Day,
    EnrollmentSeat,
    Event,
    OutboxRecord,
    SessionName,
    TrainingSession,
)
from te_shared import contracts as c
from te_shared import rules
from te_shared.errors import NotFound, field_error
from te_shared.outbox import add_message

M = TypeVar("M", bound=Base)

R_SES_7 = (
    'The value of "Registration end" should be less than the value of "Start of the first day"'
)
R_DAY_8 = (
    "The last day of the session has already arrived. If the user has already set the session "
    'status to "Participated", then after activating the event, they will switch back to the '
    '"Approved" status and see it in the "Participating" tab.'
)


async def load(
    session: AsyncSession,
    model: type[M],
    obj_id: uuid.UUID,
    company_id: str,
    *,
    lock: bool = False,
    what: str = "resource",
) -> M:
    """The row ``obj_id`` of ``company_id``; another company's id is a 404 (tenant isolation)."""
    stmt = select(model).where(
        model.id == obj_id,  # type: ignore[attr-defined]
        model.company_id == company_id,  # type: ignore[attr-defined]
    )
    if lock:  # re-read under the lock: the identity map may hold values read before it
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    row = (await session.scalars(stmt)).one_or_none()
    if row is None:
        raise NotFound(f"The {what} {obj_id} does not exist.")
    return row


async def session_names(session: AsyncSession, session_id: uuid.UUID) -> dict[str, str]:
    rows = await session.scalars(
        select(SessionName).where(SessionName.session_id == session_id).order_by(SessionName.locale)
    )
    return {r.locale: r.name for r in rows}


async def session_days(session: AsyncSession, session_id: uuid.UUID) -> list[Day]:
    rows = await session.scalars(
        select(Day).where(Day.session_id == session_id).order_by(Day.start, Day.id)
    )
    return list(rows)


def first_text(texts: dict[str, str]) -> str:
    return next(iter(texts.values()), "") if texts else ""


def topic(event: Event, names: dict[str, str]) -> str:
    """The Zoom meeting topic: event title and session name (first locale of each)."""
    title, name = first_text(event.title), first_text(names)
    return f"{title} — {name}"[:200] if name else title[:200]


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
            topic=topic(event, names),
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
            topic=topic(event, names),
            zoom=zoom_settings(day),
        ),
    )


def check_registration_end(
    registration_end: dt.datetime | None, days: list[Day], field: str
) -> None:
    """R-SES-7: the registration end is earlier than the start of the session's first day."""
    if registration_end is None or not days:
        return
    first = min(d.start for d in days)
    if registration_end >= first:
        raise field_error(field, R_SES_7, code="registration_end_after_first_day")


def default_registration_end(now: dt.datetime, tz_name: str) -> dt.datetime:
    """R-SES-6: the next calendar day at 11:59 in the session's timezone."""
    tz = ZoneInfo(tz_name)
    tomorrow = now.astimezone(tz).date() + dt.timedelta(days=1)
    return dt.datetime.combine(tomorrow, dt.time(11, 59), tzinfo=tz).astimezone(dt.UTC)


async def seats_taken(session: AsyncSession, session_id: uuid.UUID) -> int:
    """Seats taken in a session, as registration last told us (R-SES-8, R-SES-9)."""
    count = await session.scalar(
        select(func.count())
        .select_from(EnrollmentSeat)
        .where(
            EnrollmentSeat.session_id == session_id,
            EnrollmentSeat.status.in_(sorted(rules.SEAT_TAKING)),
        )
    )
    return int(count or 0)
