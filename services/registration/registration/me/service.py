"""The user's views of events (R-ENR-1, R-ENR-2, R-ENR-10, R-SES-8, R-SES-10).

Two queries whatever the number of events: (1) the events the user may see with their live
enrollment, (2) those events' sessions with their days.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import functools
import json
import uuid
from collections.abc import Sequence
from typing import Any, NamedTuple

from sqlalchemy import Select, Uuid, and_, bindparam, func, literal, not_, null, or_, select
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
from te_shared import rules
from te_shared.auth import Principal
from te_shared.db import UTCDateTime, utcnow
from te_shared.errors import NotFound, field_error

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


class _Session(NamedTuple):
    """A session's columns as the views read them (:class:`readmodel.SessionFacts`)."""

    session_id: uuid.UUID
    event_id: uuid.UUID
    name: dict[str, str]
    timezone: str
    registration_end: dt.datetime | None
    deleted: bool
    limit_enabled: bool
    participant_limit: int | None
    taken: int
    waitlist_enabled: bool


class _Day(NamedTuple):
    """A day's columns as the views read them (:class:`readmodel.DayFacts`)."""

    day_id: uuid.UUID
    format: str
    start: dt.datetime | None
    end: dt.datetime | None
    address: str | None
    url: str | None


def _sessions_and_days() -> Select[Any]:
    """The events' sessions (not deleted) with their days (not deleted), in one statement built
    once: columns, not ORM entities. A page of 50 events is 100 sessions and 200 days; loading
    them as entities (identity map, instance state, attribute instrumentation on every read)
    took two thirds of an Available tab's CPU."""
    sessions, days = SessionReplica.__table__, DayReplica.__table__
    return (
        select(*(sessions.c[n] for n in _Session._fields), *(days.c[n] for n in _Day._fields))
        .select_from(
            sessions.outerjoin(
                days, and_(days.c.session_id == sessions.c.session_id, days.c.deleted.is_(False))
            )
        )
        .where(
            sessions.c.event_id.in_(bindparam("event_ids", expanding=True)),
            sessions.c.deleted.is_(False),
        )
        .order_by(sessions.c.session_id, days.c.start)
    )


_SESSIONS_AND_DAYS = _sessions_and_days()
_SESSION_WIDTH = len(_Session._fields)


async def _sessions(
    session: AsyncSession, event_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[me_rules.Placed]]:
    result: dict[uuid.UUID, list[me_rules.Placed]] = {e: [] for e in event_ids}
    if not event_ids:
        return result
    rows = await session.execute(_SESSIONS_AND_DAYS, {"event_ids": list(event_ids)})
    seen: dict[uuid.UUID, readmodel.Timeline] = {}
    for row in rows:
        timeline = seen.get(row[0])
        if timeline is None:
            found = _Session._make(row[:_SESSION_WIDTH])
            timeline = seen[found.session_id] = readmodel.Timeline()
            result[found.event_id].append((found, timeline))
        if row[_SESSION_WIDTH] is not None:  # a session without days has one row, no day
            timeline.days.append(_Day._make(row[_SESSION_WIDTH:]))
    return result


def _view(
    event: EventReplica,
    enrollment: Enrollment | None,
    sessions: list[me_rules.Placed],
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


def _enrolled_tab(tab: Tab, live: Any, own: Any, now: Any) -> Any:
    """R-ENR-10 (:func:`registration.me.rules.tab_of`) for the two tabs of enrolled events, as
    SQL over the live enrollment ``live`` and its session ``own`` (``last_end`` kept from its
    days)."""
    ended = and_(own.last_end.is_not(None), own.last_end <= now)
    if tab is Tab.PARTICIPATING:
        return and_(live.status.in_(sorted(rules.PARTICIPATING_TAB)), not_(ended))
    return and_(live.status.in_(sorted(rules.COMPLETED_TAB)), ended)


def _open_for_registration(now: Any) -> Any:
    """R-ENR-10's Available tab, the event's half, as SQL over the event's
    ``registration_closes`` (the latest registration end of its sessions, far in the future
    when one has none, None when it has none): registration is open in one of its sessions
    (:func:`registration.readmodel.registration_open`: undated events never close)."""
    closes = EventReplica.registration_closes
    return or_(and_(EventReplica.dated.is_(False), closes.is_not(None)), closes > now)


def _encode_cursor(first: dt.datetime, event_id: uuid.UUID) -> str:
    raw = json.dumps([first.isoformat(), str(event_id)]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[dt.datetime, uuid.UUID]:
    """A ``next_cursor`` back; anything else is a 422 on ``query.cursor``, never a 500."""
    invalid = field_error("query.cursor", "The cursor is not valid.", code="invalid_cursor")
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        first, event_id = json.loads(base64.urlsafe_b64decode(padded.encode()))
        parsed = dt.datetime.fromisoformat(first)
        if parsed.tzinfo is None:
            raise invalid
        return parsed, uuid.UUID(event_id)
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError) as exc:
        raise invalid from exc


@functools.cache
def _tab_statement(tab: Tab, admin: bool, paged: bool) -> Any:
    """The tab's statement for an admin or a user, first page or later, built once (every value
    bound: ``company``, ``user``, ``now``, ``limit`` and, paged, ``after_first`` and
    ``after_id``): building it per request (its comparisons, coercions and cache key) took a
    tenth of a view's CPU. No aliases: each table appears once per statement, and an aliased
    entity costs an adaptation pass on every build."""
    company: Any = bindparam("company")
    user: Any = bindparam("user")
    now: Any = bindparam("now", type_=UTCDateTime())
    mine = and_(
        Enrollment.event_id == EventReplica.event_id,
        Enrollment.company_id == company,
        Enrollment.user_id == user,
        Enrollment.status != S.CANCELLED,
    )
    far = literal(rules.FAR_FUTURE, UTCDateTime())
    stmt: Select[EventReplica, Enrollment | None, dt.datetime | None]
    if tab is Tab.AVAILABLE:
        # No live enrollment, as an anti-join: an outer join filtered on a NULL id is estimated
        # at one row, so PostgreSQL scanned the company's events and probed access for each
        # (38 ms at 10k events against 6 ms). Open and ordered by the event's own columns,
        # kept from its sessions (readmodel.refresh_event_times): two subqueries per visible
        # event took 7 of the 11 ms a user seeing 2,000 events waited.
        sort_key = func.coalesce(EventReplica.first_start, far)
        stmt = select(EventReplica, null(), sort_key).where(
            ~select(Enrollment.id).where(mine).exists(), _open_for_registration(now)
        )
    else:
        sort_key = func.coalesce(SessionReplica.first_start, far)
        stmt = (
            select(EventReplica, Enrollment, sort_key)
            .join(Enrollment, mine)
            .outerjoin(SessionReplica, SessionReplica.session_id == Enrollment.session_id)
            .where(_enrolled_tab(tab, Enrollment, SessionReplica, now))
        )
    stmt = stmt.where(EventReplica.company_id == company, EventReplica.deleted.is_(False))
    if not admin:  # R-ENR-1
        stmt = stmt.join(
            Access,
            and_(
                Access.company_id == company,
                Access.event_id == EventReplica.event_id,
                Access.user_id == user,
            ),
        ).where(EventReplica.state == c.EventState.ACTIVE)
    if paged:
        first: Any = bindparam("after_first", type_=UTCDateTime())
        after: Any = bindparam("after_id", type_=Uuid())
        stmt = stmt.where(
            or_(sort_key > first, and_(sort_key == first, EventReplica.event_id > after))
        )
    return stmt.order_by(sort_key, EventReplica.event_id).limit(bindparam("limit"))


async def my_events(
    session: AsyncSession,
    principal: Principal,
    tab: Tab,
    limit: int,
    cursor: tuple[dt.datetime, uuid.UUID] | None,
) -> MyEventsPage:
    """The tab's events, picked and ordered in SQL (R-ENR-10's tab, by the first start of the
    sessions the user sees, then id), one keyset page at a time; sessions and days are read
    for the page only. Three queries however many events the user sees."""
    now = utcnow()
    params: dict[str, Any] = {
        "company": principal.company_id,
        "user": principal.user_id,
        "now": now,
        "limit": limit + 1,
    }
    if cursor is not None:
        params["after_first"], params["after_id"] = cursor
    stmt = _tab_statement(tab, principal.is_admin, cursor is not None)
    rows = (await session.execute(stmt, params)).all()
    more = len(rows) > limit
    rows = rows[:limit]
    sessions = await _sessions(session, [event.event_id for event, _, _ in rows])
    items = [_view(event, mine, sessions[event.event_id], now) for event, mine, _ in rows]
    next_cursor = None
    if more and rows:
        last_event, _, last_key = rows[-1]
        next_cursor = _encode_cursor(_aware(last_key), last_event.event_id)
    return MyEventsPage(items=items, next_cursor=next_cursor)


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


async def my_event(session: AsyncSession, principal: Principal, event_id: uuid.UUID) -> MyEventView:
    events = await _events(session, principal, event_id)
    if not events:
        raise NotFound("No such event.", code="event_not_found")
    event, enrollment = events[0]
    sessions = await _sessions(session, [event.event_id])
    return _view(event, enrollment, sessions[event.event_id], utcnow())
