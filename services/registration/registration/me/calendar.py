"""The user's calendar (RFC 5545): one VEVENT per day of every session they hold a place in.

- Which days: those of the sessions of the user's live enrollments but denied ones (a
  withdrawn enrollment, a deleted day, session or event drop out), ended no longer ago than
  ``CALENDAR_PAST_DAYS`` (:func:`window_start`). ``pending`` and ``waitlisted`` are
  ``STATUS:TENTATIVE``, the rest ``CONFIRMED``.
- ``UID`` ``<day id>@training-events``, stable per day; ``SEQUENCE`` grows with every change of
  the day (its version), of its meeting link, and of the user's enrollment, so calendar apps
  replace the entry.
- ``DTSTART``/``DTEND`` in the session's time zone (``TZID``) with its ``VTIMEZONE``.
- ``SUMMARY``: the event title in the wanted locale (else the title's first); ``LOCATION``: the
  address, or the online link, or, for a zoom day, the join link when the user may have it
  (R-ZOOM-3: seat holders), else nothing.

Feeds for calendar apps (which cannot send headers) are reached by an unguessable token in the
URL; only its SHA-256 is stored, so a database leak reveals no feed.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import secrets
import uuid
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from icalendar import Calendar, Event, Timezone, vDuration
from sqlalchemy import and_, delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from registration.models import (
    CalendarFeed,
    DayReplica,
    Enrollment,
    EventReplica,
    MeetingLink,
    SessionReplica,
)
from te_shared import contracts as c
from te_shared import rules
from te_shared.db import is_postgres

S = c.EnrollmentStatus
UID_DOMAIN = "training-events"
PRODID = "-//training-events//registration//EN"
#: every live status but denied places the user in the session's days
IN_CALENDAR = frozenset(rules.LIVE - {S.DENIED})
TENTATIVE = frozenset({S.PENDING, S.WAITLISTED})


@dataclass(frozen=True)
class Entry:
    """One day as the calendar shows it (pure data, built from the rows)."""

    day_id: uuid.UUID
    start: dt.datetime
    end: dt.datetime
    timezone: str
    summary: str
    location: str | None
    tentative: bool
    sequence: int


def title_in(title: object, locale: str | None) -> str:
    """The event title in ``locale``, else its first locale's (the company's first)."""
    if isinstance(title, dict) and title:
        if locale and isinstance(title.get(locale), str):
            return str(title[locale])
        return str(next(iter(title.values())))
    return str(title or "")


def location(
    day_format: str,
    address: str | None,
    url: str | None,
    join_url: str | None,
    status: S,
) -> str | None:
    """R-DAY-2's place of a day, or, for a zoom day, the join link for seat holders only."""
    if day_format == c.DayFormat.OFFLINE:
        return address
    if day_format == c.DayFormat.ONLINE:
        return url
    return join_url if status in rules.JOIN_LINK else None


def window_start(now: dt.datetime, past_days: int) -> dt.datetime:
    """The calendar's first moment: a day that ended before it is left out (a user with years
    of trainings would have every fetch of a subscribed feed render all of them)."""
    return now - dt.timedelta(days=past_days)


#: part of every calendar's entity tag: change it when the rendering changes, so that calendar
#: apps holding a calendar rendered before fetch it again
RENDERING = "2026-12-05"


def _in_order(entries: list[Entry]) -> list[Entry]:
    """The calendar's order of its days (and of what its tag is made of)."""
    return sorted(entries, key=lambda e: (e.start, str(e.day_id)))


def entity_tag(entries: list[Entry]) -> str:
    """The weak ``ETag`` of the calendar rendered from ``entries``: the same days with the same
    contents have the same tag (``DTSTAMP``, the time of rendering, is no part of it), so a
    calendar app's hourly fetch of an unchanged feed is answered 304 without rendering it."""
    digest = hashlib.sha256(RENDERING.encode())
    for e in _in_order(entries):
        parts = (e.day_id, e.start, e.end, e.timezone, e.summary, e.location, e.tentative)
        digest.update(repr((*parts, e.sequence)).encode())
    return f'W/"{digest.hexdigest()[:32]}"'


#: how often a calendar app subscribed to the feed is asked to fetch it again
REFRESH = dt.timedelta(hours=1)


def render(entries: list[Entry], now: dt.datetime, name: str = "Trainings") -> bytes:
    """The calendar as RFC 5545 text (CRLF lines, folded), with the ``VTIMEZONE`` of every
    time zone it uses."""
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", "PUBLISH")
    calendar.add("name", name)  # RFC 7986
    calendar.add("x-wr-calname", name)  # what Apple, Google and Outlook read
    # how often a subscribed client should fetch it again (RFC 7986; Outlook and Apple read
    # X-PUBLISHED-TTL): without it they choose, Outlook.com every few hours and Google up to a
    # day, so a moved day or a new join link reached the calendar that late
    calendar.add("refresh-interval", REFRESH, parameters={"VALUE": "DURATION"})
    calendar.add("x-published-ttl", vDuration(REFRESH))
    for entry in _in_order(entries):
        tz = ZoneInfo(entry.timezone)
        event = Event()
        event.add("uid", f"{entry.day_id}@{UID_DOMAIN}")
        event.add("dtstamp", now.astimezone(dt.UTC))
        event.add("sequence", entry.sequence)
        event.add("dtstart", entry.start.astimezone(tz))
        event.add("dtend", entry.end.astimezone(tz))
        event.add("summary", entry.summary)
        event.add("status", "TENTATIVE" if entry.tentative else "CONFIRMED")
        if entry.location:
            event.add("location", entry.location)
        calendar.add_component(event)
    if entries:
        # each time zone's VTIMEZONE from the year before the first day to the year after the
        # last, before the events that name it, as Calendar.add_missing_timezones puts them;
        # made once per zone and span of years (icalendar asks for it: making one took a
        # third of a calendar's rendering)
        first = min(e.start for e in entries).year - 1
        last = max(e.end for e in entries).year + 1
        zones = [_vtimezone(tzid, first, last) for tzid in sorted(calendar.get_missing_tzids())]
        calendar.subcomponents[:0] = [zone for zone in zones if zone is not None]
    data: bytes = calendar.to_ical()
    return data


@functools.lru_cache(maxsize=512)
def _vtimezone(tzid: str, first_year: int, last_year: int) -> Timezone | None:
    """The VTIMEZONE of ``tzid`` from January of ``first_year`` to December of ``last_year``
    (None for a zone icalendar does not know, which it leaves out too). Shared by the
    calendars that name it: they only render it."""
    try:
        return Timezone.from_tzid(
            tzid, first_date=dt.date(first_year, 1, 1), last_date=dt.date(last_year, 12, 31)
        )
    except ValueError:
        return None


async def entries_for(
    session: AsyncSession,
    company_id: str,
    user_id: str,
    locale: str | None,
    *,
    since: dt.datetime,
) -> list[Entry]:
    """The user's days that end at or after ``since`` (:func:`window_start`), in one query."""
    stmt = (
        select(Enrollment, SessionReplica, EventReplica, DayReplica, MeetingLink)
        .join(
            SessionReplica,
            and_(
                SessionReplica.session_id == Enrollment.session_id,
                SessionReplica.deleted.is_(False),
            ),
        )
        .join(
            EventReplica,
            and_(EventReplica.event_id == Enrollment.event_id, EventReplica.deleted.is_(False)),
        )
        .join(
            DayReplica,
            and_(
                DayReplica.session_id == Enrollment.session_id,
                DayReplica.deleted.is_(False),
                DayReplica.start.is_not(None),
                DayReplica.end >= since,
            ),
        )
        .outerjoin(
            MeetingLink,
            and_(MeetingLink.day_id == DayReplica.day_id, MeetingLink.company_id == company_id),
        )
        .where(
            Enrollment.company_id == company_id,
            Enrollment.user_id == user_id,
            Enrollment.status.in_(sorted(IN_CALENDAR)),
        )
    )
    found: list[Entry] = []
    for enrollment, sess, event, day, link in (await session.execute(stmt)).all():
        status = S(enrollment.status)
        if day.start is None or day.end is None:  # excluded by the query; for the type checker
            continue
        found.append(
            Entry(
                day_id=day.day_id,
                start=day.start,
                end=day.end,
                timezone=sess.timezone,
                summary=title_in(event.title, locale),
                location=location(
                    day.format, day.address, day.url, link.join_url if link else None, status
                ),
                tentative=status in TENTATIVE,
                sequence=day.version + (link.changes if link else 0) + enrollment.version,
            )
        )
    return found


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def new_feed(session: AsyncSession, company_id: str, user_id: str, now: dt.datetime) -> str:
    """A new feed token for the user (one feed per user: a new one replaces the old, which
    stops working). Returned once; only its hash is kept."""
    token = secrets.token_urlsafe(32)
    insert = pg_insert if is_postgres(session) else sqlite_insert
    stmt = insert(CalendarFeed).values(
        company_id=company_id, user_id=user_id, token_hash=_digest(token), created_at=now
    )
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=["company_id", "user_id"],
            set_={"token_hash": stmt.excluded.token_hash, "created_at": now},
        )
    )
    return token


async def revoke_feed(session: AsyncSession, company_id: str, user_id: str) -> bool:
    result = await session.execute(
        delete(CalendarFeed).where(
            CalendarFeed.company_id == company_id, CalendarFeed.user_id == user_id
        )
    )
    return bool(getattr(result, "rowcount", 0))


async def feed_owner(session: AsyncSession, token: str) -> tuple[str, str] | None:
    """The (company, user) a feed token belongs to."""
    row = (
        await session.execute(
            select(CalendarFeed.company_id, CalendarFeed.user_id).where(
                CalendarFeed.token_hash == _digest(token)
            )
        )
    ).first()
    return (str(row[0]), str(row[1])) if row is not None else None
