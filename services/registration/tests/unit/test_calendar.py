"""registration.me.calendar's pure parts: what a day shows, and valid RFC 5545 out."""

from __future__ import annotations

import datetime as dt
import uuid

import icalendar

from registration.me import calendar
from te_shared.contracts import EnrollmentStatus as S


def test_title_in_a_locale_or_the_first() -> None:
    title = {"en": "Negotiation", "de": "Verhandeln"}
    assert calendar.title_in(title, "de") == "Verhandeln"
    assert calendar.title_in(title, "fr") == "Negotiation"
    assert calendar.title_in(title, None) == "Negotiation"


def test_r_zoom_3_the_join_link_only_for_seat_holders() -> None:
    link = "https://zoom.us/j/1"
    assert calendar.location("zoom", None, None, link, S.APPROVED) == link
    assert calendar.location("zoom", None, None, link, S.PENDING) is None
    assert calendar.location("zoom", None, None, link, S.WAITLISTED) is None
    assert calendar.location("offline", "Room 5", None, link, S.PENDING) == "Room 5"
    assert calendar.location("online", None, "https://x.example", None, S.WAITLISTED) == (
        "https://x.example"
    )


def test_render_is_rfc_5545_with_its_time_zones() -> None:
    start = dt.datetime(2030, 3, 31, 8, tzinfo=dt.UTC)
    entries = [
        calendar.Entry(
            day_id=uuid.uuid4(),
            start=start,
            end=start + dt.timedelta(hours=1),
            timezone="Europe/Berlin",
            summary="Ö, ümlauts; commas",
            location="Room 5, HQ",
            tentative=True,
            sequence=3,
        )
    ]
    body = calendar.render(entries, dt.datetime(2030, 1, 1, tzinfo=dt.UTC))
    assert all(len(line) <= 75 for line in body.split(b"\r\n"))  # folded, CRLF
    parsed = icalendar.Calendar.from_ical(body)
    (event,) = parsed.walk("VEVENT")
    assert event.decoded("DTSTART") == start
    assert str(event.decoded("DTSTART").tzinfo) == "Europe/Berlin"
    assert str(event["SUMMARY"]) == "Ö, ümlauts; commas"
    assert (str(event["STATUS"]), int(str(event["SEQUENCE"]))) == ("TENTATIVE", 3)
    assert [str(t["TZID"]) for t in parsed.walk("VTIMEZONE")] == ["Europe/Berlin"]
    # subscribed clients are asked to fetch it hourly (RFC 7986, and what Outlook reads)
    assert b"\r\nREFRESH-INTERVAL;VALUE=DURATION:PT1H\r\n" in body
    assert b"\r\nX-PUBLISHED-TTL:PT1H\r\n" in body
    assert (str(parsed["NAME"]), str(parsed["X-WR-CALNAME"])) == ("Trainings", "Trainings")
    assert icalendar.Calendar.from_ical(calendar.render([], start)).walk("VEVENT") == []


def test_the_window_starts_past_days_before_now() -> None:
    now = dt.datetime(2030, 3, 31, 12, tzinfo=dt.UTC)
    assert calendar.window_start(now, 365) == dt.datetime(2029, 3, 31, 12, tzinfo=dt.UTC)
    assert calendar.window_start(now, 0) == now
