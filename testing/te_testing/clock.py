"""Instants for test data, each named by what it is relative to (the tests used to call all of
them ``at``): days from now, minutes after a fixed instant, a day of January 2030. They return
``datetime``; :func:`iso` spells one for a JSON body, :func:`zoom_time` as Zoom writes times."""

from __future__ import annotations

import datetime as dt


def days_from_now(days: float, hour: int = 10, minute: int = 0) -> dt.datetime:
    """Today (UTC) at ``hour:minute``, ``days`` later (earlier when negative): a date the rules
    judge against the real clock (registration ends, days ahead or already past)."""
    today = dt.datetime.now(dt.UTC).replace(hour=hour, minute=minute, second=0, microsecond=0)
    return today + dt.timedelta(days=days)


def minutes_after(t0: dt.datetime, minutes: float) -> dt.datetime:
    """``minutes`` after the fixed instant ``t0`` (a meeting's timeline in Zoom's payloads)."""
    return t0 + dt.timedelta(minutes=minutes)


def january_2030(day: int, hour: int = 9, minute: int = 0) -> dt.datetime:
    """``day`` of January 2030 at ``hour:minute`` UTC: far ahead, and the same on every run, for
    tests of schedules that compare days with each other, not with the clock."""
    return dt.datetime(2030, 1, day, hour, minute, tzinfo=dt.UTC)


def iso(value: dt.datetime) -> str:
    """ISO 8601 with the offset, as the APIs take and give times."""
    return value.isoformat()


def zoom_time(value: dt.datetime) -> str:
    """As Zoom writes times in its API and webhooks: UTC, to the second, with a ``Z``."""
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
