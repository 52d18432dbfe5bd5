"""The calendar's zoom days (issue "Calendars and integrations" §1, R-ZOOM-3): the join link
from the bridge's meeting messages, to seat holders only, in any order of messages."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import httpx
import icalendar

from te_shared import contracts as c

if TYPE_CHECKING:
    from conftest import Reg


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


async def locations(reg: Reg, user: str) -> dict[str, str | None]:
    r = await reg.client.get("/v1/me/calendar.ics", headers=reg.user(user))
    assert r.status_code == 200, r.text
    found = icalendar.Calendar.from_ical(r.content).walk("VEVENT")
    return {
        str(e["UID"]).split("@")[0]: (str(e["LOCATION"]) if "LOCATION" in e else None)
        for e in found
    }


async def test_zoom_day_join_link_for_seat_holders_whatever_the_order(reg: Reg) -> None:
    event_id = await reg.event(requires_approval=True)
    created = reg.session_msg(event_id)
    day = reg.day_msg(event_id, created.session_id, zoom_organizer="org")
    newer = c.MeetingUpdated(
        company_id="acme", day_id=day.day_id, version=2, join_url="https://zoom.us/j/2"
    )
    older = c.MeetingCreated(
        company_id="acme", day_id=day.day_id, version=1, join_url="https://zoom.us/j/1"
    )
    await reg.apply(newer, created, day, older)  # the meeting overtook its day; stale last
    r = await reg.client.put(
        f"/v1/events/{event_id}/access",
        json={"user_ids": ["zc-1", "zc-2"]},
        headers=reg.admin(),
    )
    assert r.status_code == 200
    first = (await reg.sign_up(created.session_id, "zc-1")).json()
    assert first["status"] == "pending"
    await reg.sign_up(created.session_id, "zc-2")
    r = await reg.client.patch(
        f"/v1/enrollments/{first['id']}", json={"status": "approved"}, headers=reg.admin()
    )
    assert r.status_code == 200
    day_key = str(day.day_id)
    assert (await locations(reg, "zc-1"))[day_key] == "https://zoom.us/j/2"
    assert (await locations(reg, "zc-2"))[day_key] is None  # pending: no join link
    await reg.apply(
        c.MeetingDeleted(company_id="acme", day_id=day.day_id, version=3),
        c.MeetingCreated(company_id="other", day_id=day.day_id, version=9, join_url="x"),
    )
    assert (await locations(reg, "zc-1"))[day_key] is None
    # the meeting deleted at Zoom (seq 1) and made again (seq 2), one day version, consumed
    # from their two queues in the wrong order: the later announcement's link stays
    await reg.apply(
        c.MeetingCreated(
            company_id="acme", day_id=day.day_id, version=4, seq=2, join_url="https://zoom.us/j/4"
        ),
        c.MeetingDeleted(company_id="acme", day_id=day.day_id, version=4, seq=1),
    )
    assert (await locations(reg, "zc-1"))[day_key] == "https://zoom.us/j/4"
    # R-ZOOM-8: Zoom refused the day's next change: the meeting stands, and so does its link
    # (catalog's day shows it too)
    await reg.apply(
        c.MeetingFailed(
            company_id="acme",
            day_id=day.day_id,
            version=5,
            zoom_meeting_id="4",
            join_url="https://zoom.us/j/4",
            error="Zoom refused the change",
        )
    )
    assert (await locations(reg, "zc-1"))[day_key] == "https://zoom.us/j/4"
    # R-ZOOM-8: deleted at Zoom again, the new one held back by Zoom's daily limit
    await reg.apply(
        c.MeetingPending(company_id="acme", day_id=day.day_id, version=5, seq=4, reason="limit")
    )
    assert (await locations(reg, "zc-1"))[day_key] is None


async def test_the_calendar_leaves_out_days_ended_longer_ago_than_its_window(reg: Reg) -> None:
    """A user with years of trainings: the download and the subscription feed carry the days
    that ended no longer ago than CALENDAR_PAST_DAYS (365 by default), and every later one."""
    built = await reg.build(access=["cw-1"])
    event_id, session_id = built.event_id, built.session_ids[0]
    assert (await reg.sign_up(session_id, "cw-1")).status_code == 201
    long_ago = reg.day_msg(event_id, session_id, start=now() - dt.timedelta(days=400))
    this_year = reg.day_msg(event_id, session_id, start=now() - dt.timedelta(days=300))
    await reg.apply(long_ago, this_year)
    shown = {str(this_year.day_id), str(built.day_ids[0])}
    assert set(await locations(reg, "cw-1")) == shown
    feed = await reg.client.post("/v1/me/calendar/feed", headers=reg.user("cw-1"))
    assert feed.status_code == 201, feed.text
    r = await reg.client.get(httpx.URL(feed.json()["url"]).path)
    assert r.status_code == 200, r.text
    days = icalendar.Calendar.from_ical(r.content).walk("VEVENT")
    assert {str(e["UID"]).split("@")[0] for e in days} == shown


async def test_an_unchanged_calendar_is_answered_304_to_its_etag(reg: Reg) -> None:
    """Calendar apps fetch a subscription every hour: one that sends the calendar's ETag back
    (If-None-Match) gets 304 without a body while its days are unchanged, the calendar again
    once one changed; the download and the feed alike."""
    built = await reg.build(access=["ce-1"])
    assert (await reg.sign_up(built.session_ids[0], "ce-1")).status_code == 201
    url = "/v1/me/calendar.ics"
    first = await reg.client.get(url, headers=reg.user("ce-1"))
    assert first.status_code == 200, first.text
    tag = first.headers["ETag"]
    assert tag.startswith('W/"')
    same = await reg.client.get(url, headers={**reg.user("ce-1"), "If-None-Match": tag})
    assert (same.status_code, same.content, same.headers["ETag"]) == (304, b"", tag)
    listed = {**reg.user("ce-1"), "If-None-Match": f'W/"other", {tag.removeprefix("W/")}'}
    assert (await reg.client.get(url, headers=listed)).status_code == 304
    other = {**reg.user("ce-1"), "If-None-Match": 'W/"other"'}
    assert (await reg.client.get(url, headers=other)).status_code == 200
    feed = await reg.client.post("/v1/me/calendar/feed", headers=reg.user("ce-1"))
    path = httpx.URL(feed.json()["url"]).path
    fed = await reg.client.get(path, headers={"If-None-Match": tag})
    assert (fed.status_code, fed.headers["Cache-Control"]) == (304, "private, max-age=300")
    # the day moves: the calendar is sent again, under a new tag
    moved = reg.day_msg(built.event_id, built.session_ids[0], day_id=built.day_ids[0], start=now())
    await reg.apply(moved)
    again = await reg.client.get(url, headers={**reg.user("ce-1"), "If-None-Match": tag})
    assert again.status_code == 200
    assert again.headers["ETag"] != tag
    assert b"BEGIN:VEVENT" in again.content
    assert (await reg.client.get(path, headers={"If-None-Match": tag})).status_code == 200
