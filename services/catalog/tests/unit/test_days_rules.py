"""catalog.days.rules, tested directly (no database, no HTTP)."""

from __future__ import annotations

import datetime as dt

import pytest

from catalog.days import rules
from te_shared.errors import ProblemError


@pytest.mark.parametrize(
    ("after", "timezone", "expected"),
    [
        # an ordinary day: 24 hours
        ("2030-01-10T08:59:00+00:00", "UTC", "2030-01-11T08:59:00+00:00"),
        # into summer time (Berlin, 2030-03-31): the same wall clock is 23 hours on
        ("2030-03-30T10:00:00+01:00", "Europe/Berlin", "2030-03-31T10:00:00+02:00"),
        # out of summer time (Berlin, 2030-10-27): 25 hours on
        ("2030-10-26T10:00:00+02:00", "Europe/Berlin", "2030-10-27T10:00:00+01:00"),
        # the local date counts, not the UTC one: 23:30 in Moscow is 20:30 UTC
        ("2030-01-10T20:30:00+00:00", "Europe/Moscow", "2030-01-11T20:30:00+00:00"),
        # a wall time the clocks skip that day (02:30 on the spring-forward night)
        ("2030-03-30T02:30:00+01:00", "Europe/Berlin", "2030-03-31T03:30:00+02:00"),
    ],
)
def test_r_day_4_next_day_same_local_time(after: str, timezone: str, expected: str) -> None:
    got = rules.next_day_same_local_time(dt.datetime.fromisoformat(after), timezone)
    assert got == dt.datetime.fromisoformat(expected)
    assert got.tzinfo == dt.UTC


def test_r_zoom_2_people_warning() -> None:
    assert rules.people_warning(True, 100) is None
    assert rules.people_warning(True, 50) is None
    assert "101" in str(rules.people_warning(True, 101))
    assert "any number" in str(rules.people_warning(False, 50))


def test_r_zoom_2_day_warnings() -> None:
    start = dt.datetime(2030, 1, 1, 9, tzinfo=dt.UTC)
    long = start + dt.timedelta(minutes=41)
    assert rules.zoom_role_warnings("zoom", "administrator", start, long, False, None) == []
    assert rules.zoom_role_warnings("online", "participant", start, long, False, None) == []
    both = rules.zoom_role_warnings("zoom", "participant", start, long, False, None)
    assert len(both) == 2
    fits = start + dt.timedelta(minutes=40)
    assert rules.zoom_role_warnings("zoom", "participant", start, fits, True, 100) == []


def test_r_day_8_needs_confirmation() -> None:
    now = dt.datetime(2030, 1, 10, 12, tzinfo=dt.UTC)
    past, future = now - dt.timedelta(days=1), now + dt.timedelta(days=1)
    assert rules.needs_confirmation([past], future, now)
    assert not rules.needs_confirmation([], future, now)  # a first day
    assert not rules.needs_confirmation([future], future, now)  # the session has not ended
    assert not rules.needs_confirmation([past], past, now)  # a day in the past


def code_of(problem: ProblemError) -> str | None:
    assert problem.errors
    return problem.errors[0].code


def test_r_day_5_6_check_schedule() -> None:
    t = dt.datetime(2030, 1, 10, 9, tzinfo=dt.UTC)
    hour = dt.timedelta(hours=1)
    rules.check_schedule(t, t + hour, [(t + hour, t + 2 * hour)], None)  # touching is fine
    with pytest.raises(ProblemError) as caught:
        rules.check_schedule(t, t, [], None)
    assert code_of(caught.value) == "end_before_start"
    with pytest.raises(ProblemError) as caught:
        rules.check_schedule(t, t + 2 * hour, [(t + hour, t + 3 * hour)], None)
    assert code_of(caught.value) == "days_overlap"
    with pytest.raises(ProblemError) as caught:  # R-SES-7 from the day's side
        rules.check_schedule(t, t + hour, [], t)
    assert code_of(caught.value) == "registration_end_after_first_day"
