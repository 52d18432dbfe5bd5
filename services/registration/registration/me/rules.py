"""Pure rules of the user's views (R-ENR-2, R-ENR-10, R-SES-10): which tab an event is in,
which sessions a user sees and in what order. No session, no HTTP; time is passed in. They read
replica rows as plain data."""

from __future__ import annotations

import datetime as dt

from registration.me.schemas import Tab
from registration.models import Enrollment, EventReplica
from registration.readmodel import SessionFacts, Timeline, registration_open
from te_shared import contracts as c
from te_shared import rules
from te_shared.rules import FAR_FUTURE

S = c.EnrollmentStatus

#: a session with its days
Placed = tuple[SessionFacts, Timeline]


def tab_of(
    event: EventReplica,
    enrollment: Enrollment | None,
    sessions: list[Placed],
    now: dt.datetime,
) -> Tab | None:
    """R-ENR-10, with the ruling that an enrollment in a session not yet ended shows in
    participating whatever its live status but denied (the README's rulings)."""
    if enrollment is None:
        if any(registration_open(event, s, now) for s, _ in sessions):
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


def ordered(
    event: EventReplica,
    sessions: list[Placed],
    now: dt.datetime,
) -> list[Placed]:
    """R-SES-10 (:func:`te_shared.rules.sessions_in_user_order`) on replica rows."""
    return rules.sessions_in_user_order(
        sessions,
        is_open=lambda p: registration_open(event, p[0], now),
        first_start=lambda p: p[1].first_start,
        registration_end=lambda p: p[0].registration_end,
        key=lambda p: str(p[0].session_id),
    )


def visible(enrollment: Enrollment | None, sessions: list[Placed]) -> list[Placed]:
    """R-ENR-2: all sessions until enrolled, then only the user's own."""
    if enrollment is None:
        return sessions
    return [p for p in sessions if p[0].session_id == enrollment.session_id]


def first_start(sessions: list[Placed]) -> dt.datetime | None:
    starts = [t.first_start for _, t in sessions if t.first_start is not None]
    return min(starts) if starts else None


def event_order(
    event: EventReplica, enrollment: Enrollment | None, sessions: list[Placed]
) -> tuple[dt.datetime, str]:
    """The order of a tab's events: by the first start of the sessions the user sees, then
    by id (a stable order for paging)."""
    return first_start(visible(enrollment, sessions)) or FAR_FUTURE, str(event.event_id)
