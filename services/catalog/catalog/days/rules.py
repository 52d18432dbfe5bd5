"""Pure rules of days (SPEC section 4): no session, no HTTP, no clock read."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from catalog.sessions.rules import check_registration_end
from te_shared import contracts as c
from te_shared.errors import field_error

R_DAY_8 = (
    "The last day of the session has already arrived. If the user has already set the session "
    'status to "Participated", then after activating the event, they will switch back to the '
    '"Approved" status and see it in the "Participating" tab.'
)

PARTICIPANT_MAX_MINUTES = 40
PARTICIPANT_MAX_PEOPLE = 100


def next_day_same_local_time(instant: dt.datetime, timezone: str) -> dt.datetime:
    """R-DAY-4: the next calendar day at the same local time in ``timezone``, across DST
    changes (so not ``instant + 24 h``). A local time the clocks skip that day (02:30 on a
    spring-forward night) is read as the wall clock would show it an hour on; the result is
    in UTC."""
    tz = ZoneInfo(timezone)
    local = instant.astimezone(tz)
    wall = dt.datetime.combine(local.date() + dt.timedelta(days=1), local.time(), tzinfo=tz)
    return wall.astimezone(dt.UTC)


def needs_confirmation(ends: list[dt.datetime], start: dt.datetime, now: dt.datetime) -> bool:
    """R-DAY-8: a day starting in the future, added to a session whose last day has already
    ended (the latest of ``ends`` is not after ``now``), needs the admin's confirmation."""
    return bool(ends) and max(ends) <= now and start > now


def check_schedule(
    start: dt.datetime,
    end: dt.datetime,
    others: list[tuple[dt.datetime, dt.datetime]],
    registration_end: dt.datetime | None,
) -> None:
    """R-DAY-5: the end is after the start. R-DAY-6: days of a session never overlap
    (``[start, end)`` may touch). R-SES-7: the registration end is before the first day."""
    if end <= start:
        raise field_error("body.end", "The end must be after the start.", code="end_before_start")
    for other_start, other_end in others:
        if start < other_end and other_start < end:
            raise field_error(
                "body.start",
                f"The day overlaps another day of the session "
                f"({other_start.isoformat()} - {other_end.isoformat()}).",
                code="days_overlap",
            )
    first = min([start, *(s for s, _ in others)])
    check_registration_end(registration_end, first, "body.start")


def people_warning(limit_enabled: bool, participant_limit: int | None) -> str | None:
    """R-ZOOM-2 ruling: a participant-role account's meetings take at most 100 people; a
    session that allows more (or any number) gets this warning."""
    limit = participant_limit if limit_enabled else None
    if limit is not None and limit <= PARTICIPANT_MAX_PEOPLE:
        return None
    return (
        f"The Zoom account has the participant role: at most {PARTICIPANT_MAX_PEOPLE} people "
        "can join its meetings, and the session allows "
        + (f"{limit}." if limit is not None else "any number.")
    )


def zoom_role_warnings(
    day_format: str,
    account_role: str | None,
    start: dt.datetime,
    end: dt.datetime,
    limit_enabled: bool,
    participant_limit: int | None,
) -> list[str]:
    """R-ZOOM-2 ruling: a participant-role account limits meetings to 40 minutes and 100
    people; such a day is accepted, with a warning."""
    if day_format != c.DayFormat.ZOOM or account_role != c.ZoomAccountRole.PARTICIPANT:
        return []
    warnings = []
    minutes = int((end - start).total_seconds() // 60)
    if minutes > PARTICIPANT_MAX_MINUTES:
        warnings.append(
            f"The Zoom account has the participant role: its meetings end after "
            f"{PARTICIPANT_MAX_MINUTES} minutes, and this day lasts {minutes}."
        )
    people = people_warning(limit_enabled, participant_limit)
    if people is not None:
        warnings.append(people)
    return warnings
