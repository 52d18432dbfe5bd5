"""Queries on the read model of catalog's events, sessions and days, and time rules on them."""

from __future__ import annotations

import datetime as dt
import functools
import uuid
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import BigInteger, bindparam, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from registration.enrollments import rules as enrollment_rules
from registration.models import DayReplica, EventReplica, SessionReplica
from te_shared import rules
from te_shared.db import UTCDateTime, is_postgres
from te_shared.errors import NotFound


class DayFacts(Protocol):
    """What the user's views read of a day: a :class:`~registration.models.DayReplica`, or
    its columns read without the ORM (a page of "my events" reads hundreds of days)."""

    @property
    def day_id(self) -> uuid.UUID: ...
    @property
    def format(self) -> str: ...
    @property
    def start(self) -> dt.datetime | None: ...
    @property
    def end(self) -> dt.datetime | None: ...
    @property
    def address(self) -> str | None: ...
    @property
    def url(self) -> str | None: ...


class SessionFacts(Protocol):
    """What the user's views and the registration rule read of a session: a
    :class:`~registration.models.SessionReplica`, or its columns read without the ORM."""

    @property
    def session_id(self) -> uuid.UUID: ...
    @property
    def event_id(self) -> uuid.UUID: ...
    @property
    def name(self) -> dict[str, str]: ...
    @property
    def timezone(self) -> str: ...
    @property
    def registration_end(self) -> dt.datetime | None: ...
    @property
    def deleted(self) -> bool: ...
    @property
    def limit_enabled(self) -> bool: ...
    @property
    def participant_limit(self) -> int | None: ...
    @property
    def taken(self) -> int: ...
    @property
    def waitlist_enabled(self) -> bool: ...


@dataclass
class Timeline:
    """A session's days as the user sees them: first start and last end."""

    days: list[DayFacts] = field(default_factory=list)

    @property
    def first_start(self) -> dt.datetime | None:
        starts = [d.start for d in self.days if d.start is not None]
        return min(starts) if starts else None

    @property
    def last_end(self) -> dt.datetime | None:
        ends = [d.end for d in self.days if d.end is not None]
        return max(ends) if ends else None

    def ended(self, now: dt.datetime) -> bool:
        last = self.last_end
        return last is not None and last <= now


def registration_open(event: EventReplica, s: SessionFacts, now: dt.datetime) -> bool:
    """:func:`registration.enrollments.rules.registration_open` on replica rows."""
    return enrollment_rules.registration_open(event.dated, s.registration_end, s.deleted, now)


def visible_to_users(event: EventReplica) -> bool:
    """:func:`registration.enrollments.rules.visible_to_users` on a replica row."""
    return enrollment_rules.visible_to_users(event.state, event.deleted)


async def get_event(session: AsyncSession, company_id: str, event_id: uuid.UUID) -> EventReplica:
    event = await session.get(EventReplica, event_id)
    if event is None or event.company_id != company_id or event.deleted:
        raise NotFound("No such event.", code="event_not_found")
    return event


async def get_session(
    session: AsyncSession, company_id: str, session_id: uuid.UUID
) -> SessionReplica:
    row = await session.get(SessionReplica, session_id)
    if row is None or row.company_id != company_id or row.deleted:
        raise NotFound("No such session.", code="session_not_found")
    return row


async def session_by_name(
    session: AsyncSession, company_id: str, event_id: uuid.UUID
) -> dict[str, list[SessionReplica]]:
    """The event's sessions by every locale's name under R-SES-3's key
    (:func:`te_shared.rules.name_key`). A name may be several sessions' (one session's name in
    one locale is another's in another locale, which R-SES-3 allows): the caller must not pick
    one silently."""
    rows = await session.scalars(
        select(SessionReplica)
        .where(
            SessionReplica.company_id == company_id,
            SessionReplica.event_id == event_id,
            SessionReplica.deleted.is_(False),
        )
        .order_by(SessionReplica.session_id)
    )
    names: dict[str, list[SessionReplica]] = {}
    for row in rows:
        for text in (row.name or {}).values():
            found = names.setdefault(rules.name_key(text), [])
            if row not in found:
                found.append(row)
    return names


async def hold_timeline(session: AsyncSession, event_id: uuid.UUID) -> None:
    """Serialise, until this transaction ends, the handlers that write an event, its sessions
    or their days. Called first in each of them, before any row is written.

    Two of them running at once (a session's message and its first day's, consumed from two
    queues; two days of one session; two sessions of one event) would each compute a
    session's ``first_start`` and ``last_end``, or the event's ``first_start`` and
    ``registration_closes``, without the other's uncommitted row: the day's ``UPDATE`` of a
    session not committed yet touches nothing, the session's read of its days misses the day,
    and the session is left with no end, never in anyone's Completed tab (a clean-clone CI run
    caught it). With this transaction-scoped advisory lock, one per event, the second waits
    for the first's commit and then reads it. Taken before any row lock, and only by these
    handlers, it closes no cycle with the seat counter's lock order. SQLite runs one writer at
    a time anyway."""
    if is_postgres(session):
        key = int.from_bytes(event_id.bytes[:8], "big", signed=True)
        await session.execute(_HOLD_TIMELINE, {"timeline_lock": key})


#: built once: every message of an event, a session or a day takes the lock
_HOLD_TIMELINE = select(func.pg_advisory_xact_lock(bindparam("timeline_lock", type_=BigInteger())))


@functools.cache
def _timeline_statements() -> tuple[Any, Any]:
    """:func:`refresh_timeline`'s and :func:`refresh_event_times`'s ``UPDATE``s, built once
    (``timeline_session``, ``timeline_event`` and ``timeline_far`` bound): every message of an
    event, a session or a day runs them, and building an ``UPDATE`` with subqueries cost more
    CPU than running it."""
    days = select(DayReplica).where(
        DayReplica.session_id == bindparam("timeline_session"),
        DayReplica.deleted.is_(False),
    )
    session_times = (
        update(SessionReplica)
        .where(SessionReplica.session_id == bindparam("timeline_session"))
        .values(
            first_start=days.with_only_columns(func.min(DayReplica.start)).scalar_subquery(),
            last_end=days.with_only_columns(func.max(DayReplica.end)).scalar_subquery(),
        )
        .execution_options(synchronize_session=False)
    )
    sessions = select(SessionReplica).where(
        SessionReplica.event_id == bindparam("timeline_event"), SessionReplica.deleted.is_(False)
    )
    far = bindparam("timeline_far", type_=UTCDateTime())
    closes = func.max(func.coalesce(SessionReplica.registration_end, far))
    event_times = (
        update(EventReplica)
        .where(EventReplica.event_id == bindparam("timeline_event"))
        .values(
            first_start=sessions.with_only_columns(
                func.min(SessionReplica.first_start)
            ).scalar_subquery(),
            registration_closes=sessions.with_only_columns(closes).scalar_subquery(),
        )
        .execution_options(synchronize_session=False)
    )
    return session_times, event_times


async def refresh_timeline(
    session: AsyncSession, session_id: uuid.UUID, event_id: uuid.UUID
) -> None:
    """Keep the session's ``first_start`` and ``last_end`` equal to its days' (not deleted),
    after a day or the session itself changed, then its event's times
    (:func:`refresh_event_times`). Called last in a handler: it locks the seat counter's row,
    which comes after enrollments in the lock order (and the event's row after it)."""
    await session.execute(_timeline_statements()[0], {"timeline_session": session_id})
    await refresh_event_times(session, event_id)


async def refresh_event_times(session: AsyncSession, event_id: uuid.UUID) -> None:
    """Keep the event's ``first_start`` (its sessions' first) and ``registration_closes`` (the
    latest registration end of its sessions, :data:`te_shared.rules.FAR_FUTURE` when one has
    none; None when it has no session) equal to its sessions' (not deleted): the Available
    tab's order and whether registration is open in one of its sessions (R-SES-5, R-ENR-3:
    :func:`registration.enrollments.rules.registration_open` for any of them)."""
    await session.execute(
        _timeline_statements()[1], {"timeline_event": event_id, "timeline_far": rules.FAR_FUTURE}
    )


async def timelines(
    session: AsyncSession, session_ids: list[uuid.UUID]
) -> dict[uuid.UUID, Timeline]:
    result: dict[uuid.UUID, Timeline] = {sid: Timeline() for sid in session_ids}
    if not session_ids:
        return result
    days = await session.scalars(
        select(DayReplica)
        .where(DayReplica.session_id.in_(session_ids), DayReplica.deleted.is_(False))
        .order_by(DayReplica.start)
    )
    for day in days:
        result[day.session_id].days.append(day)
    return result
