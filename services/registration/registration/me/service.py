"""The user's views of events (R-ENR-1, R-ENR-2, R-ENR-10, R-SES-8, R-SES-10).

Two queries whatever the number of events: (1) the events the user may see with their live
enrollment, (2) those events' sessions with their days.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence

from sqlalchemy import and_, select
from sqlalchemy.ext.asyncio import AsyncSession

from registration import readmodel
from registration.me.schemas import (
    DayView,
    MyEnrollment,
    MyEventsPage,
    MyEventView,
    SessionView,
    Tab,
)
from registration.models import Access, DayReplica, Enrollment, EventReplica, SessionReplica
from te_shared import contracts as c
from te_shared import rules
from te_shared.auth import Principal
from te_shared.db import utcnow
from te_shared.errors import NotFound

S = c.EnrollmentStatus
FAR_FUTURE = dt.datetime.max.replace(tzinfo=dt.UTC)


async def _events(
    session: AsyncSession, principal: Principal, event_id: uuid.UUID | None = None
) -> list[tuple[EventReplica, Enrollment | None]]:
    live = and_(
        Enrollment.event_id == EventReplica.event_id,
        Enrollment.company_id == principal.company_id,
        Enrollment.user_id == principal.user_id,
        Enrollment.status != S.CANCELLED,
    )
    stmt = (
        select(EventReplica, Enrollment)
        .outerjoin(Enrollment, live)
        .where(EventReplica.company_id == principal.company_id, EventReplica.deleted.is_(False))
    )
    if not principal.is_admin:  # R-ENR-1
        stmt = stmt.join(
            Access,
            and_(
                Access.company_id == principal.company_id,
                Access.event_id == EventReplica.event_id,
                Access.user_id == principal.user_id,
            ),
        ).where(EventReplica.state == c.EventState.ACTIVE)
    if event_id is not None:
        stmt = stmt.where(EventReplica.event_id == event_id)
    rows = await session.execute(stmt)
    return [(event, enrollment) for event, enrollment in rows]


async def _sessions(
    session: AsyncSession, event_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[tuple[SessionReplica, readmodel.Timeline]]]:
    result: dict[uuid.UUID, list[tuple[SessionReplica, readmodel.Timeline]]] = {
        e: [] for e in event_ids
    }
    if not event_ids:
        return result
    rows = await session.execute(
        select(SessionReplica, DayReplica)
        .outerjoin(
            DayReplica,
            and_(
                DayReplica.session_id == SessionReplica.session_id,
                DayReplica.deleted.is_(False),
            ),
        )
        .where(SessionReplica.event_id.in_(event_ids), SessionReplica.deleted.is_(False))
        .order_by(SessionReplica.session_id, DayReplica.start)
    )
    seen: dict[uuid.UUID, readmodel.Timeline] = {}
    for row, day in rows:
        timeline = seen.get(row.session_id)
        if timeline is None:
            timeline = seen[row.session_id] = readmodel.Timeline()
            result[row.event_id].append((row, timeline))
        if day is not None:
            timeline.days.append(day)
    return result


def _tab(
    event: EventReplica,
    enrollment: Enrollment | None,
    sessions: list[tuple[SessionReplica, readmodel.Timeline]],
    now: dt.datetime,
) -> Tab | None:
    """R-ENR-10, with the ruling that an enrollment in a session not yet ended shows in
    participating whatever its live status but denied (the README's rulings)."""
    if enrollment is None:
        if any(readmodel.registration_open(event, s, now) for s, _ in sessions):
            return Tab.AVAILABLE
        return None
    own = next((t for s, t in sessions if s.session_id == enrollment.session_id), None)
    ended = own is not None and own.ended(now)
    status = S(enrollment.status)
    if not ended and status in rules.PARTICIPATING_TAB:
        return Tab.PARTICIPATING
    if ended and status in rules.COMPLETED_TAB:
        return Tab.COMPLETED
    return None


def _ordered(
    event: EventReplica,
    sessions: list[tuple[SessionReplica, readmodel.Timeline]],
    now: dt.datetime,
) -> list[tuple[SessionReplica, readmodel.Timeline]]:
    """R-SES-10: open sessions first by first day's start; then the rest by
    ``registration_end``, newest first."""
    open_ = [p for p in sessions if readmodel.registration_open(event, p[0], now)]
    closed = [p for p in sessions if not readmodel.registration_open(event, p[0], now)]
    open_.sort(key=lambda p: (p[1].first_start or FAR_FUTURE, str(p[0].session_id)))
    closed.sort(
        key=lambda p: (
            -(p[0].registration_end or dt.datetime.min.replace(tzinfo=dt.UTC)).timestamp(),
            str(p[0].session_id),
        )
    )
    return open_ + closed


def _view(
    event: EventReplica,
    enrollment: Enrollment | None,
    sessions: list[tuple[SessionReplica, readmodel.Timeline]],
    now: dt.datetime,
) -> MyEventView:
    views = []
    for row, timeline in _ordered(event, _visible(enrollment, sessions), now):
        limited = row.limit_enabled and row.participant_limit is not None
        views.append(
            SessionView(
                id=row.session_id,
                name=row.name,
                timezone=row.timezone,
                registration_end=row.registration_end if event.dated else None,
                registration_open=readmodel.registration_open(event, row, now),
                ended=timeline.ended(now),
                limit_enabled=row.limit_enabled,
                participant_limit=row.participant_limit if limited else None,
                taken=row.taken if limited else None,
                left=max((row.participant_limit or 0) - row.taken, 0) if limited else None,
                waitlist_enabled=row.waitlist_enabled,
                days=[
                    DayView(
                        id=d.day_id,
                        format=d.format,
                        start=d.start,
                        end=d.end,
                        address=d.address,
                        url=d.url,
                    )
                    for d in timeline.days
                ],
            )
        )
    return MyEventView(
        id=event.event_id,
        title=event.title,
        state=event.state,
        dated=event.dated,
        requires_approval=event.requires_approval,
        tab=_tab(event, enrollment, sessions, now),
        sessions=views,
        enrollment=(
            MyEnrollment(
                id=enrollment.id, session_id=enrollment.session_id, status=S(enrollment.status)
            )
            if enrollment is not None
            else None
        ),
    )


async def my_events(
    session: AsyncSession, principal: Principal, tab: Tab, limit: int, offset: int
) -> MyEventsPage:
    now = utcnow()
    events = await _events(session, principal)
    sessions = await _sessions(session, [e.event_id for e, _ in events])
    # pick and order the tab's events on the rows, then build views for one page only
    chosen = [(e, en) for e, en in events if _tab(e, en, sessions[e.event_id], now) == tab]
    chosen.sort(
        key=lambda p: (
            _first_start(_visible(p[1], sessions[p[0].event_id])) or FAR_FUTURE,
            str(p[0].event_id),
        )
    )
    page = [
        _view(event, enrollment, sessions[event.event_id], now)
        for event, enrollment in chosen[offset : offset + limit]
    ]
    more = len(chosen) > offset + limit
    return MyEventsPage(items=page, next_cursor=str(offset + limit) if more else None)


def _visible(
    enrollment: Enrollment | None, sessions: list[tuple[SessionReplica, readmodel.Timeline]]
) -> list[tuple[SessionReplica, readmodel.Timeline]]:
    """R-ENR-2: all sessions until enrolled, then only the user's own."""
    if enrollment is None:
        return sessions
    return [p for p in sessions if p[0].session_id == enrollment.session_id]


def _first_start(sessions: list[tuple[SessionReplica, readmodel.Timeline]]) -> dt.datetime | None:
    starts = [t.first_start for _, t in sessions if t.first_start is not None]
    return min(starts) if starts else None


async def my_event(session: AsyncSession, principal: Principal, event_id: uuid.UUID) -> MyEventView:
    events = await _events(session, principal, event_id)
    if not events:
        raise NotFound("No such event.", code="event_not_found")
    event, enrollment = events[0]
    sessions = await _sessions(session, [event.event_id])
    return _view(event, enrollment, sessions[event.event_id], utcnow())
