"""registration.me.calendar's pure parts: what a day shows, and valid RFC 5545 out."""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from zoneinfo import ZoneInfo

import icalendar
from icalendar import Timezone

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


def test_each_zone_is_described_before_its_days_across_their_years() -> None:
    """One VTIMEZONE per zone the days use (none for UTC), ahead of the VEVENTs, spanning
    their years: a calendar app places each day at the same instant, across DST."""

    def day(start: dt.datetime, zone: str) -> calendar.Entry:
        return calendar.Entry(
            day_id=uuid.uuid4(),
            start=start,
            end=start + dt.timedelta(hours=2),
            timezone=zone,
            summary="Day",
            location=None,
            tentative=False,
            sequence=1,
        )

    entries = [
        day(dt.datetime(2030, 7, 1, 7, tzinfo=dt.UTC), "Europe/Berlin"),  # summer time
        day(dt.datetime(2032, 1, 15, 15, tzinfo=dt.UTC), "America/New_York"),
        day(dt.datetime(2031, 5, 2, 9, tzinfo=dt.UTC), "UTC"),
    ]
    body = calendar.render(entries, dt.datetime(2030, 1, 1, tzinfo=dt.UTC))
    assert body.index(b"BEGIN:VTIMEZONE") < body.index(b"BEGIN:VEVENT")
    assert body.rindex(b"END:VTIMEZONE") < body.index(b"BEGIN:VEVENT")
    parsed = icalendar.Calendar.from_ical(body)
    zones = [str(t["TZID"]) for t in parsed.walk("VTIMEZONE")]
    assert zones == ["America/New_York", "Europe/Berlin"]
    assert sorted(e.decoded("DTSTART") for e in parsed.walk("VEVENT")) == sorted(
        e.start for e in entries
    )
    described = {
        str(t["TZID"]): t.to_tz() for t in parsed.walk("VTIMEZONE") if isinstance(t, Timezone)
    }
    assert sorted(described) == zones
    for entry in entries:
        if entry.timezone in described:  # the zone as the calendar itself describes it
            there = entry.start.astimezone(ZoneInfo(entry.timezone))
            offset = described[entry.timezone].utcoffset(there.replace(tzinfo=None))
            assert offset == there.utcoffset()
    assert calendar.render(entries, dt.datetime(2030, 1, 1, tzinfo=dt.UTC)) == body


def test_the_entity_tag_follows_the_days_contents_only() -> None:
    start = dt.datetime(2030, 3, 31, 8, tzinfo=dt.UTC)
    day = calendar.Entry(
        day_id=uuid.uuid4(),
        start=start,
        end=start + dt.timedelta(hours=1),
        timezone="Europe/Berlin",
        summary="Day",
        location=None,
        tentative=False,
        sequence=1,
    )
    other = dataclasses.replace(day, day_id=uuid.uuid4(), start=start + dt.timedelta(days=1))
    tag = calendar.entity_tag([day, other])
    assert tag.startswith('W/"')
    assert calendar.entity_tag([other, day]) == tag  # the order they were read in is no part
    assert calendar.entity_tag([day]) != tag
    assert calendar.entity_tag([dataclasses.replace(day, sequence=2), other]) != tag
    assert calendar.entity_tag([dataclasses.replace(day, location="Room 5"), other]) != tag
