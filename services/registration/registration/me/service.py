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
from registration.me import rules as me_rules
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
from te_shared.auth import Principal
from te_shared.db import utcnow
from te_shared.errors import NotFound

S = c.EnrollmentStatus


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


def _view(
    event: EventReplica,
    enrollment: Enrollment | None,
    sessions: list[tuple[SessionReplica, readmodel.Timeline]],
    now: dt.datetime,
) -> MyEventView:
    views = []
    for row, timeline in me_rules.ordered(event, me_rules.visible(enrollment, sessions), now):
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
        tab=me_rules.tab_of(event, enrollment, sessions, now),
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
    chosen = [
        (e, en) for e, en in events if me_rules.tab_of(e, en, sessions[e.event_id], now) == tab
    ]
    chosen.sort(
        key=lambda p: (
            me_rules.first_start(me_rules.visible(p[1], sessions[p[0].event_id]))
            or me_rules.FAR_FUTURE,
            str(p[0].event_id),
        )
    )
    page = [
        _view(event, enrollment, sessions[event.event_id], now)
        for event, enrollment in chosen[offset : offset + limit]
    ]
    more = len(chosen) > offset + limit
    return MyEventsPage(items=page, next_cursor=str(offset + limit) if more else None)


async def my_event(session: AsyncSession, principal: Principal, event_id: uuid.UUID) -> MyEventView:
    events = await _events(session, principal, event_id)
    if not events:
        raise NotFound("No such event.", code="event_not_found")
    event, enrollment = events[0]
    sessions = await _sessions(session, [event.event_id])
    return _view(event, enrollment, sessions[event.event_id], utcnow())
