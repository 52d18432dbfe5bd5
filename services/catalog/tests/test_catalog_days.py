"""Days: R-DAY-1..9, R-SES-7 from the day's side, day messages, meeting state, concurrency."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import uuid
from collections.abc import Sequence
from typing import Any

from te_shared import contracts as c
from te_testing.clock import iso, january_2030
from te_testing.polling import eventually

Cat = Any
UTC = dt.UTC
R_SES_7 = (
    'The value of "Registration end" should be less than the value of "Start of the first day"'
)
R_DAY_8 = (
    "The last day of the session has already arrived. If the user has already set the session "
    'status to "Participated", then after activating the event, they will switch back to the '
    '"Approved" status and see it in the "Participating" tab.'
)
REG_END = "2030-01-01T09:00:00+00:00"


def parse(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


async def setup(cat: Cat, **settings: Any) -> tuple[str, dict[str, Any], dict[str, Any]]:
    company = await cat.company(**settings)
    event = await cat.event(company, title="Python")
    sess = await cat.session(company, event["id"], name="Daytime", registration_end=REG_END)
    return company, event, sess


async def test_r_day_1_formats_offline_online_zoom_mixed_in_one_session(cat: Cat) -> None:
    company, _, sess = await setup(cat, zoom_enabled=True)
    a = await cat.day(
        company, sess["id"], format="offline", address="Room 5", start=iso(january_2030(2))
    )
    b = await cat.day(
        company,
        sess["id"],
        format="online",
        url="https://meet.example/x",
        start=iso(january_2030(3)),
    )
    z = await cat.day(
        company, sess["id"], format="zoom", zoom=await cat.zoom(company), start=iso(january_2030(4))
    )
    assert [a["format"], b["format"], z["format"]] == ["offline", "online", "zoom"]
    assert z["zoom"]["meeting"] == {"status": "pending", "join_url": None, "error": None}
    r = await cat.post_day(company, sess["id"], format="teleport")
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "body.format"


async def test_r_day_2_online_url_must_be_http_and_address_links_safe(cat: Cat) -> None:
    company, _, sess = await setup(cat)
    for bad in ["ftp://x.org/a", "javascript:alert(1)", "/relative", "example.com", ""]:
        r = await cat.post_day(
            company, sess["id"], format="online", url=bad, start=iso(january_2030(2))
        )
        assert r.status_code == 422, bad
        assert r.json()["errors"][0]["field"] == "body.url"
    for bad in ["Click javascript:alert(1)", "see JavaScript :alert(1)", "data:text/html,x"]:
        r = await cat.post_day(
            company, sess["id"], format="offline", address=bad, start=iso(january_2030(2))
        )
        assert r.status_code == 422, bad
        assert r.json()["errors"][0]["field"] == "body.address"
    day = await cat.day(
        company,
        sess["id"],
        format="offline",
        address="Main st. 1, map: https://maps.example/x, mailto:desk@example.com",
        start=iso(january_2030(2)),
    )
    assert "https://maps.example/x" in day["address"]
    assert day["url"] is None


async def test_r_day_3_zoom_refused_when_company_zoom_disabled_or_event_undated(cat: Cat) -> None:
    company, _, sess = await setup(cat, zoom_enabled=False)
    r = await cat.post_day(
        company, sess["id"], format="zoom", zoom=await cat.zoom(company), start=iso(january_2030(2))
    )
    assert r.status_code == 422
    assert r.json()["errors"][0]["code"] == "zoom_disabled"
    zoomco = await cat.company(zoom_enabled=True)
    undated = await cat.event(zoomco, dated=False)
    s2 = await cat.session(zoomco, undated["id"])
    r = await cat.post_day(zoomco, s2["id"], format="zoom", zoom=await cat.zoom(zoomco))
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "body.format"
    # an existing day may not be turned into a zoom day either
    d = await cat.day(company, sess["id"], start=iso(january_2030(2)))
    r = await cat.client.patch(
        f"/v1/days/{d['id']}",
        json={"format": "zoom", "zoom": await cat.zoom(company)},
        headers=cat.admin(company),
    )
    assert r.status_code == 422


async def test_r_day_4_default_start_is_registration_end_plus_a_day_end_an_hour_later(
    cat: Cat,
) -> None:
    company, _, sess = await setup(cat)
    day = await cat.day(company, sess["id"])
    assert parse(day["start"]) == parse(REG_END) + dt.timedelta(days=1)
    assert parse(day["end"]) == parse(day["start"]) + dt.timedelta(hours=1)
    assert day["duration_minutes"] == 60
    # both may be changed
    r = await cat.client.patch(
        f"/v1/days/{day['id']}",
        json={"start": iso(january_2030(3, 10)), "end": iso(january_2030(3, 13))},
        headers=cat.admin(company),
    )
    assert r.status_code == 200
    assert r.json()["duration_minutes"] == 180


async def test_r_day_5_end_after_start_and_duration_derived(cat: Cat) -> None:
    company, _, sess = await setup(cat)
    for end in [iso(january_2030(2, 9)), iso(january_2030(2, 8))]:
        r = await cat.post_day(company, sess["id"], start=iso(january_2030(2, 9)), end=end)
        assert r.status_code == 422
        assert r.json()["errors"][0]["field"] == "body.end"
    day = await cat.day(
        company, sess["id"], start=iso(january_2030(2, 9)), end="2030-01-02T10:30:00+01:00"
    )
    assert day["duration_minutes"] == 30
    r = await cat.post_day(company, sess["id"], start="2030-01-05T09:00:00")  # no offset
    assert r.status_code == 422


async def test_r_day_6_days_of_one_session_never_overlap_but_may_touch(cat: Cat) -> None:
    company, event, sess = await setup(cat)
    await cat.day(company, sess["id"], start=iso(january_2030(2, 9)), end=iso(january_2030(2, 11)))
    r = await cat.post_day(
        company, sess["id"], start=iso(january_2030(2, 10)), end=iso(january_2030(2, 12))
    )
    assert r.status_code == 422
    assert r.json()["errors"][0]["code"] == "days_overlap"
    assert r.json()["errors"][0]["field"] == "body.start"
    touching = await cat.day(
        company, sess["id"], start=iso(january_2030(2, 11)), end=iso(january_2030(2, 12))
    )
    # moving a day onto another is refused too
    r = await cat.client.patch(
        f"/v1/days/{touching['id']}",
        json={"start": iso(january_2030(2, 10))},
        headers=cat.admin(company),
    )
    assert r.status_code == 422
    # another session of the same event may overlap
    other = await cat.session(company, event["id"], name="Evening", registration_end=REG_END)
    await cat.day(company, other["id"], start=iso(january_2030(2, 9)), end=iso(january_2030(2, 11)))


async def test_r_day_6_r_ses_7_concurrent_edits_cannot_break_the_rules(cat: Cat) -> None:
    """R-DAY-6 / R-SES-7 under concurrency: every day change locks the session row first
    (PostgreSQL: SELECT ... FOR UPDATE; SQLite serialises writers with BEGIN IMMEDIATE)."""
    company, _, sess = await setup(cat)
    results: Sequence[Any] = await asyncio.gather(
        *(
            cat.post_day(
                company, sess["id"], start=iso(january_2030(5, 9)), end=iso(january_2030(5, 10 + i))
            )
            for i in range(4)
        )
    )
    assert sorted(r.status_code for r in results) == [201, 422, 422, 422]
    # one admin moves the registration end later while another adds an earlier first day
    results = await asyncio.gather(
        cat.client.patch(
            f"/v1/sessions/{sess['id']}",
            json={"registration_end": iso(january_2030(3, 12))},
            headers=cat.admin(company),
        ),
        cat.post_day(
            company, sess["id"], start=iso(january_2030(3, 9)), end=iso(january_2030(3, 10))
        ),
    )
    codes = sorted(r.status_code for r in results)
    assert codes in ([200, 422], [201, 422]), codes  # whichever commits first wins
    got = (await cat.client.get(f"/v1/sessions/{sess['id']}", headers=cat.admin(company))).json()
    first = min(parse(d["start"]) for d in got["days"])
    assert parse(got["registration_end"]) < first
    days = sorted((parse(d["start"]), parse(d["end"])) for d in got["days"])
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(days))


async def test_r_ses_7_adding_or_moving_a_day_before_registration_end_is_refused(cat: Cat) -> None:
    company, _, sess = await setup(cat)
    for start in [REG_END, "2029-12-31T09:00:00+00:00"]:
        r = await cat.post_day(company, sess["id"], start=start, end=iso(january_2030(2)))
        assert r.status_code == 422
        assert r.json()["errors"] == [
            {
                "field": "body.start",
                "message": R_SES_7,
                "code": "registration_end_after_first_day",
            }
        ]
    day = await cat.day(company, sess["id"], start=iso(january_2030(2)))
    r = await cat.client.patch(
        f"/v1/days/{day['id']}",
        json={"start": "2030-01-01T08:00:00+00:00", "end": iso(january_2030(2))},
        headers=cat.admin(company),
    )
    assert r.status_code == 422
    assert r.json()["errors"][0]["message"] == R_SES_7


async def test_r_day_7_address_and_link_editable_whatever_the_state(cat: Cat) -> None:
    company, event, sess = await setup(cat)
    off = await cat.day(company, sess["id"], start=iso(january_2030(2)), address="Old")
    onl = await cat.day(
        company, sess["id"], format="online", url="https://a.example", start=iso(january_2030(3))
    )
    for state in ["active", "hidden", "active"]:
        await cat.client.patch(
            f"/v1/events/{event['id']}", json={"state": state}, headers=cat.admin(company)
        )
        r = await cat.client.patch(
            f"/v1/days/{off['id']}", json={"address": f"New {state}"}, headers=cat.admin(company)
        )
        assert r.status_code == 200
        assert r.json()["address"] == f"New {state}"
        r = await cat.client.patch(
            f"/v1/days/{onl['id']}",
            json={"url": f"https://{state}.example"},
            headers=cat.admin(company),
        )
        assert r.status_code == 200
    # each edit is announced (DayRescheduled is any change of the day), carrying the new value
    msgs = await cat.outbox("catalog.day.rescheduled", day_id=off["id"])
    assert [(m["version"], m["address"], m["url"]) for m in msgs] == [
        (2, "New active", None),
        (3, "New hidden", None),
        (4, "New active", None),
    ]
    msgs = await cat.outbox("catalog.day.rescheduled", day_id=onl["id"])
    assert [(m["version"], m["url"], m["address"]) for m in msgs] == [
        (2, "https://active.example", None),
        (3, "https://hidden.example", None),
        (4, "https://active.example", None),
    ]
    # the day as scheduled carried its place and link too
    assert (await cat.outbox("catalog.day.scheduled", day_id=off["id"]))[0]["address"] == "Old"
    assert (await cat.outbox("catalog.day.scheduled", day_id=onl["id"]))[0]["url"] == (
        "https://a.example"
    )
    # an edit that changes nothing announces nothing
    before = len(await cat.outbox("catalog.day.rescheduled", day_id=off["id"]))
    r = await cat.client.patch(
        f"/v1/days/{off['id']}", json={"address": "New active"}, headers=cat.admin(company)
    )
    assert r.status_code == 200
    assert len(await cat.outbox("catalog.day.rescheduled", day_id=off["id"])) == before


async def test_r_day_8_future_day_on_ended_session_needs_confirmation(
    cat: Cat, pin_now: Any
) -> None:
    company, _, sess = await setup(cat)
    await cat.day(company, sess["id"], start=iso(january_2030(2)), end=iso(january_2030(2, 10)))
    pin_now(dt.datetime(2030, 1, 10, tzinfo=UTC))  # the last day has ended
    r = await cat.post_day(company, sess["id"], start=iso(january_2030(20)))
    assert r.status_code == 409
    body = r.json()
    assert body["detail"] == R_DAY_8
    assert body["code"] == "confirmation_required"
    assert body["errors"][0]["field"] == "query.confirm"
    assert r.headers["content-type"].startswith("application/problem+json")
    day = await cat.day(company, sess["id"], start=iso(january_2030(20)), confirm=True)
    assert day["warnings"] == [R_DAY_8]
    msg = (await cat.outbox("catalog.day.scheduled", day_id=day["id"]))[0]
    assert msg["confirmed_after_session_end"] is True
    # a past day needs no confirmation; nor does a session whose last day is still ahead
    past = await cat.day(company, sess["id"], start=iso(january_2030(5)))
    assert (await cat.outbox("catalog.day.scheduled", day_id=past["id"]))[0][
        "confirmed_after_session_end"
    ] is False
    await cat.day(company, sess["id"], start=iso(january_2030(22)))


async def test_r_day_9_zoom_settings_and_auto_recording_rules(cat: Cat) -> None:
    company, event, sess = await setup(cat, zoom_enabled=True, training_module_enabled=True)
    r = await cat.post_day(company, sess["id"], format="zoom", start=iso(january_2030(2)))
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "body.zoom"
    r = await cat.post_day(
        company,
        sess["id"],
        format="zoom",
        start=iso(january_2030(2)),
        zoom=await cat.zoom(company, "participant", auto_recording=True),
    )
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "body.zoom.auto_recording"
    zoom = await cat.zoom(company, auto_recording=True)
    day = await cat.day(company, sess["id"], format="zoom", start=iso(january_2030(2)), zoom=zoom)
    assert day["zoom"]["account_role"] == "administrator"
    assert day["zoom"]["auto_recording"] is True
    assert day["zoom"]["organizer_user_id"] == "org-1"
    msg = (await cat.outbox("catalog.day.scheduled", day_id=day["id"]))[0]
    assert msg["zoom"] == {
        "account_id": zoom["account_id"],
        "organizer_user_id": "org-1",
        "auto_recording": True,
    }
    assert msg["topic"] == "Python — Daytime"
    assert msg["timezone"] == "Europe/Moscow"
    assert (msg["event_id"], msg["session_id"], msg["version"]) == (event["id"], sess["id"], 1)
    # with the training module off, auto recording is not offered
    await cat.client.put(
        "/v1/company/settings",
        json={"zoom_enabled": True, "training_module_enabled": False},
        headers=cat.admin(company),
    )
    r = await cat.post_day(
        company,
        sess["id"],
        format="zoom",
        start=iso(january_2030(3)),
        zoom=await cat.zoom(company, auto_recording=True),
    )
    assert r.status_code == 422


async def test_r_zoom_2_participant_role_days_are_accepted_with_warnings(cat: Cat) -> None:
    """R-ZOOM-2 ruling: over 40 minutes, or a session open to more than 100 people, warns."""
    company, _, sess = await setup(cat, zoom_enabled=True)
    participant = await cat.zoom(company, "participant")
    short = await cat.day(
        company,
        sess["id"],
        format="zoom",
        start=iso(january_2030(2)),
        end=iso(january_2030(2, 9)).replace("09:00", "09:30"),
        zoom=participant,
    )
    assert len(short["warnings"]) == 1  # 30 minutes is fine; no limit means anyone may come
    assert "100 people" in short["warnings"][0]
    long = await cat.day(
        company, sess["id"], format="zoom", start=iso(january_2030(3)), zoom=participant
    )
    assert any("40 minutes" in w and "lasts 60" in w for w in long["warnings"])
    r = await cat.client.patch(
        f"/v1/sessions/{sess['id']}",
        json={"limit_enabled": True, "participant_limit": 50},
        headers=cat.admin(company),
    )
    assert r.status_code == 200
    assert r.json()["warnings"] == []  # 50 people fit
    # raising the limit above 100 (or dropping it) while the session has such days warns
    for change in ({"participant_limit": 150}, {"limit_enabled": False}):
        r = await cat.client.patch(
            f"/v1/sessions/{sess['id']}", json=change, headers=cat.admin(company)
        )
        assert r.status_code == 200
        assert any("100 people" in w for w in r.json()["warnings"]), change
    r = await cat.client.patch(
        f"/v1/sessions/{sess['id']}",
        json={"limit_enabled": True, "participant_limit": 50},
        headers=cat.admin(company),
    )
    assert r.json()["warnings"] == []
    renamed = await cat.client.patch(
        f"/v1/sessions/{sess['id']}", json={"name": "Renamed"}, headers=cat.admin(company)
    )
    assert renamed.json()["warnings"] == []  # only a change of the limit is warned about
    moved = await cat.client.patch(
        f"/v1/days/{long['id']}", json={"start": iso(january_2030(4))}, headers=cat.admin(company)
    )
    assert [w for w in moved.json()["warnings"] if "100 people" in w] == []
    assert any("40 minutes" in w for w in moved.json()["warnings"])
    admin_role = await cat.day(
        company, sess["id"], format="zoom", start=iso(january_2030(5)), zoom=await cat.zoom(company)
    )
    assert admin_role["warnings"] == []


async def test_day_messages_versions_reschedule_and_cancel(cat: Cat) -> None:
    company, event, sess = await setup(cat, zoom_enabled=True)
    day = await cat.day(
        company, sess["id"], format="zoom", zoom=await cat.zoom(company), start=iso(january_2030(2))
    )
    r = await cat.client.patch(
        f"/v1/days/{day['id']}", json={"start": iso(january_2030(3))}, headers=cat.admin(company)
    )
    assert r.status_code == 200
    assert r.json()["duration_minutes"] == 60
    resched = await cat.outbox("catalog.day.rescheduled", day_id=day["id"])
    assert resched[-1]["version"] == 2
    assert parse(resched[-1]["start"]) == parse(iso(january_2030(3)))
    # renaming the session changes the meeting topic
    await cat.client.patch(
        f"/v1/sessions/{sess['id']}", json={"name": "Evening"}, headers=cat.admin(company)
    )
    resched = await cat.outbox("catalog.day.rescheduled", day_id=day["id"])
    assert resched[-1]["topic"] == "Python — Evening"
    assert resched[-1]["version"] == 3
    await cat.client.patch(
        f"/v1/events/{event['id']}", json={"title": "Rust"}, headers=cat.admin(company)
    )
    resched = await cat.outbox("catalog.day.rescheduled", day_id=day["id"])
    assert (resched[-1]["topic"], resched[-1]["version"]) == ("Rust — Evening", 4)
    r = await cat.client.delete(f"/v1/days/{day['id']}", headers=cat.admin(company))
    assert r.status_code == 204
    cancelled = await cat.outbox("catalog.day.cancelled", day_id=day["id"])
    assert (cancelled[0]["version"], cancelled[0]["format"]) == (5, "zoom")
    # the day as it last was, for a consumer that never saw it scheduled
    assert parse(cancelled[0]["start"]) == parse(iso(january_2030(3)))
    assert parse(cancelled[0]["end"]) == parse(iso(january_2030(3, 10)))
    assert cancelled[0]["timezone"] == "Europe/Moscow"
    assert cancelled[0]["topic"] == "Rust — Evening"
    assert cancelled[0]["zoom"] == {
        "account_id": day["zoom"]["account_id"],
        "organizer_user_id": "org-1",
        "auto_recording": False,
    }


async def test_event_detail_orders_sessions_by_first_day_and_days_by_start(cat: Cat) -> None:
    company, event, late = await setup(cat)
    early = await cat.session(company, event["id"], name="Early", registration_end=REG_END)
    await cat.day(company, late["id"], start=iso(january_2030(9)))
    await cat.day(company, late["id"], start=iso(january_2030(4)))
    await cat.day(company, early["id"], start=iso(january_2030(6)))
    await cat.day(company, early["id"], start=iso(january_2030(3)))
    empty = await cat.session(company, event["id"], name="Empty", registration_end=REG_END)
    got = (await cat.client.get(f"/v1/events/{event['id']}", headers=cat.admin(company))).json()
    assert [s["id"] for s in got["sessions"]] == [early["id"], late["id"], empty["id"]]
    assert [parse(d["start"]).day for d in got["sessions"][1]["days"]] == [4, 9]


async def test_meeting_state_shown_on_zoom_day_idempotent_and_stale_ignored(cat: Cat) -> None:
    """Bridge messages: created/failed/updated shown as zoom.meeting; stale versions ignored."""
    company, _, sess = await setup(cat, zoom_enabled=True)
    day = await cat.day(
        company, sess["id"], format="zoom", zoom=await cat.zoom(company), start=iso(january_2030(2))
    )
    day_id = uuid.UUID(day["id"])

    async def meeting() -> dict[str, Any]:
        r = await cat.client.get(f"/v1/days/{day_id}", headers=cat.admin(company))
        return dict(r.json()["zoom"])

    failed = c.MeetingFailed(company_id=company, day_id=day_id, version=1, error="quota")
    await cat.apply(failed, failed)
    assert (await meeting())["meeting"] == {"status": "failed", "join_url": None, "error": "quota"}
    created = c.MeetingCreated(
        company_id=company,
        day_id=day_id,
        version=2,
        zoom_meeting_id="77",
        join_url="https://z/j/77",
    )
    await cat.apply(created)
    stale = c.MeetingFailed(company_id=company, day_id=day_id, version=1, error="late")
    await cat.apply(stale)
    assert (await meeting())["meeting"] == {
        "status": "created",
        "join_url": "https://z/j/77",
        "error": None,
    }
    # another company's message for this day is ignored
    await cat.apply(c.MeetingDeleted(company_id="intruder", day_id=day_id, version=9))
    assert (await meeting())["meeting"]["status"] == "created"
    # one day version, two announcements on two queues, consumed in the wrong order: the
    # meeting deleted at Zoom (seq 2) and made again (seq 3); the later one stays shown
    again = c.MeetingCreated(
        company_id=company,
        day_id=day_id,
        version=2,
        seq=3,
        zoom_meeting_id="78",
        join_url="https://z/j/78",
    )
    await cat.apply(again, c.MeetingDeleted(company_id=company, day_id=day_id, version=2, seq=2))
    assert (await meeting())["meeting"] == {
        "status": "created",
        "join_url": "https://z/j/78",
        "error": None,
    }
    # R-ZOOM-8: deleted at Zoom and held back by Zoom's daily limit: no link, and why
    held = c.MeetingPending(
        company_id=company, day_id=day_id, version=2, seq=5, reason="daily limit; at 00:00Z"
    )
    await cat.apply(held, c.MeetingDeleted(company_id=company, day_id=day_id, version=2, seq=4))
    assert (await meeting())["meeting"] == {
        "status": "pending",
        "join_url": None,
        "error": "daily limit; at 00:00Z",
    }
    await cat.apply(again.model_copy(update={"seq": 6}))
    assert (await meeting())["meeting"] == {
        "status": "created",
        "join_url": "https://z/j/78",
        "error": None,
    }
    # R-ZOOM-8: Zoom refused a change of the meeting: it stands at Zoom, its link still works
    refused = c.MeetingFailed(
        company_id=company,
        day_id=day_id,
        version=2,
        seq=7,
        zoom_meeting_id="78",
        join_url="https://z/j/78",
        error="Zoom refused the change",
    )
    await cat.apply(refused)
    assert (await meeting())["meeting"] == {
        "status": "failed",
        "join_url": "https://z/j/78",
        "error": "Zoom refused the change",
    }
    rec = c.RecordingAvailable(
        company_id=company,
        day_id=day_id,
        zoom_meeting_id="77",
        recordings=[
            c.RecordingFile(file_type="MP4", play_url="https://z/rec/1", kind="video"),
            c.RecordingFile(file_type="M4A", play_url="https://z/rec/2", kind="audio"),
        ],
    )
    await cat.apply(rec, rec)
    assert (await meeting())["recordings"] == [
        {
            "file_type": "MP4",
            "kind": "video",
            "play_url": "https://z/rec/1",
            "recording_start": None,
            "recording_end": None,
        },
        {
            "file_type": "M4A",
            "kind": "audio",
            "play_url": "https://z/rec/2",
            "recording_start": None,
            "recording_end": None,
        },
    ]
    # a message for an unknown day is dropped without error
    await cat.apply(c.MeetingCreated(company_id=company, day_id=uuid.uuid4(), version=1))
    # a day that is no zoom day (any more) shows no meeting, whatever the bridge says late
    offline = await cat.day(company, sess["id"], start=iso(january_2030(5)))
    late = c.MeetingCreated(
        company_id=company, day_id=uuid.UUID(offline["id"]), version=5, join_url="https://z/j/5"
    )
    await cat.apply(late)
    r = await cat.client.get(f"/v1/days/{offline['id']}", headers=cat.admin(company))
    assert r.status_code == 200
    assert r.json().get("zoom") is None


async def test_r_zoom_7_catalog_owns_the_training_module_and_decides_attachment(
    cat: Cat,
) -> None:
    """R-ZOOM-7: catalog owns the training module, so it decides whether a recording is
    attached to an administrator-role day: with the settings never saved (R-CO-1's default,
    enabled) it is; once the module is disabled, new recordings are not (those attached stay);
    a participant-role day never gets any; a link that is not a plain http(s) link is never
    kept (F1's second line)."""
    company, _, sess = await setup(cat, zoom_enabled=True)
    admin_day = await cat.day(
        company, sess["id"], format="zoom", zoom=await cat.zoom(company), start=iso(january_2030(2))
    )
    free_day = await cat.day(
        company,
        sess["id"],
        format="zoom",
        zoom=await cat.zoom(company, "participant"),
        start=iso(january_2030(3)),
        end=iso(january_2030(3)).replace("09:00", "09:30"),
    )

    def recording(day: dict[str, Any], url: str) -> c.RecordingAvailable:
        return c.RecordingAvailable(
            company_id=company,
            day_id=uuid.UUID(day["id"]),
            zoom_meeting_id="1",
            recordings=[c.RecordingFile(file_type="MP4", play_url=url)],
        )

    async def urls(day: dict[str, Any]) -> list[str]:
        r = await cat.client.get(f"/v1/days/{day['id']}", headers=cat.admin(company))
        return [f["play_url"] for f in r.json()["zoom"]["recordings"]]

    await cat.apply(
        recording(admin_day, "https://zoom.us/rec/play/a"),
        recording(admin_day, "javascript:alert(1)//"),
        recording(free_day, "https://zoom.us/rec/play/b"),
    )
    assert await urls(admin_day) == ["https://zoom.us/rec/play/a"]
    assert await urls(free_day) == []
    r = await cat.client.put(
        "/v1/company/settings",
        json={"zoom_enabled": True, "training_module_enabled": False},
        headers=cat.admin(company),
    )
    assert r.status_code == 200
    await cat.apply(recording(admin_day, "https://zoom.us/rec/play/c"))
    assert await urls(admin_day) == ["https://zoom.us/rec/play/a"]


async def test_r_zoom_7_recordings_gone_at_zoom_leave_the_day(cat: Cat) -> None:
    """R-ZOOM-7: ``RecordingsChanged`` lists a day's files at Zoom whole. A file trashed or
    deleted at Zoom (its link leads nowhere) leaves the day; the newest version wins, an older
    one delivered late changes nothing; once the module is disabled, listed files that were
    attached stay and new ones are not attached; a ``RecordingAvailable`` queued by an older
    bridge no longer adds to a day that had a ``RecordingsChanged``."""
    company, _, sess = await setup(cat, zoom_enabled=True)
    day = await cat.day(
        company, sess["id"], format="zoom", zoom=await cat.zoom(company), start=iso(january_2030(4))
    )
    day_id = uuid.UUID(day["id"])
    video, audio, chat = (f"https://zoom.us/rec/play/{n}" for n in ("v", "a", "c"))

    def changed(version: int, *urls: str) -> c.RecordingsChanged:
        return c.RecordingsChanged(
            company_id=company,
            day_id=day_id,
            zoom_meeting_id="1",
            version=version,
            recordings=[c.RecordingFile(file_type="MP4", play_url=u) for u in urls],
        )

    async def urls() -> list[str]:
        r = await cat.client.get(f"/v1/days/{day['id']}", headers=cat.admin(company))
        return [f["play_url"] for f in r.json()["zoom"]["recordings"]]

    await cat.apply(changed(1, video, audio))
    assert await urls() == [video, audio]
    await cat.apply(changed(2, audio))  # the video was trashed at Zoom
    assert await urls() == [audio]
    await cat.apply(changed(1, video, audio))  # a late delivery of the first
    assert await urls() == [audio]
    late = c.RecordingAvailable(
        company_id=company,
        day_id=day_id,
        zoom_meeting_id="1",
        recordings=[c.RecordingFile(file_type="MP4", play_url=video)],
    )
    await cat.apply(late)
    assert await urls() == [audio]
    r = await cat.client.put(
        "/v1/company/settings",
        json={"zoom_enabled": True, "training_module_enabled": False},
        headers=cat.admin(company),
    )
    assert r.status_code == 200
    await cat.apply(changed(3, audio, chat))  # the chat is new: not attached any more
    assert await urls() == [audio]
    await cat.apply(changed(4))  # everything deleted at Zoom
    assert await urls() == []
    await cat.apply(  # another company's message for this day is ignored
        c.RecordingsChanged(
            company_id="intruder",
            day_id=day_id,
            zoom_meeting_id="1",
            version=9,
            recordings=[c.RecordingFile(file_type="MP4", play_url=video)],
        )
    )
    assert await urls() == []


async def test_meeting_messages_are_consumed_through_the_broker(cat: Cat) -> None:
    """The real path: a MeetingCreated published to the broker reaches the day (inbox, handler)."""
    company, _, sess = await setup(cat, zoom_enabled=True)
    day = await cat.day(
        company, sess["id"], format="zoom", zoom=await cat.zoom(company), start=iso(january_2030(2))
    )
    runtime = cat.app.state.runtime
    factory = runtime.session_factory()
    from catalog.models import OutboxRecord
    from te_shared.db import unit_of_work
    from te_shared.outbox import add_message

    async with unit_of_work(factory) as session:
        add_message(
            session,
            OutboxRecord,
            c.MeetingCreated(
                company_id=company, day_id=uuid.UUID(day["id"]), version=1, join_url="https://z/j/1"
            ),
        )
    runtime.after_commit(session)
    r = await eventually(
        lambda: cat.client.get(f"/v1/days/{day['id']}", headers=cat.admin(company)),
        lambda r: r.json()["zoom"]["meeting"]["status"] == "created",
        timeout=10,
        interval=0.1,
        what="the meeting created",
    )
    assert r.json()["zoom"]["meeting"]["join_url"] == "https://z/j/1"


async def test_concurrent_edits_of_one_day_get_distinct_versions(cat: Cat) -> None:
    """Per-aggregate versions stay strictly increasing under concurrent edits of one day."""
    company, _, sess = await setup(cat)
    day = await cat.day(company, sess["id"], start=iso(january_2030(2)))
    results = await asyncio.gather(
        *(
            cat.client.patch(
                f"/v1/days/{day['id']}",
                json={"start": iso(january_2030(3 + i))},
                headers=cat.admin(company),
            )
            for i in range(4)
        )
    )
    assert all(r.status_code == 200 for r in results)
    versions = sorted(r.json()["version"] for r in results)
    assert versions == [2, 3, 4, 5]
    msgs = await cat.outbox("catalog.day.rescheduled", day_id=day["id"])
    assert sorted(m["version"] for m in msgs) == [2, 3, 4, 5]


async def test_r_day_2_a_malformed_link_is_a_field_error(cat: Cat) -> None:
    """R-DAY-2 / R-ERR-1: links the URL parser itself rejects are a 422 on `body.url`, on create
    and on edit."""
    company, _, sess = await setup(cat)
    for bad in ["http://[x", "https://[::1", "http://:80/x", "https://@/x"]:
        r = await cat.post_day(
            company, sess["id"], format="online", url=bad, start=iso(january_2030(2))
        )
        assert r.status_code == 422, (bad, r.text)
        assert r.json()["errors"][0] == {
            "field": "body.url",
            "message": "An online day needs an absolute http or https URL.",
            "code": "invalid_url",
        }
    day = await cat.day(
        company, sess["id"], format="online", url="https://ok.example", start=iso(january_2030(2))
    )
    r = await cat.client.patch(
        f"/v1/days/{day['id']}", json={"url": "http://[x"}, headers=cat.admin(company)
    )
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "body.url"
    r = await cat.client.patch(
        f"/v1/days/{day['id']}", json={"url": "https://[::1]:8443/room"}, headers=cat.admin(company)
    )
    assert r.status_code == 200  # a bracketed IPv6 host is a host
    assert r.json()["url"] == "https://[::1]:8443/room"


async def test_r_day_2_harmless_texts_that_look_like_schemes_are_kept(cat: Cat) -> None:
    """R-DAY-2 ruling: only links that run script or reach files are refused; words such as
    "Data:" or "File:" in an address are text."""
    company, _, sess = await setup(cat)
    harmless = [
        "Data: room 5",
        "File: B2",
        "DATA : floor 3, data center",
        "Metadata: wing A/B",
        "Profile: visitors desk; file:B2",
        "Data: A/B building",
    ]
    for i, text in enumerate(harmless):
        day = await cat.day(
            company, sess["id"], format="offline", address=text, start=iso(january_2030(2 + i))
        )
        assert day["address"] == text
    r = await cat.client.patch(
        f"/v1/days/{day['id']}", json={"address": "File: B3"}, headers=cat.admin(company)
    )
    assert r.status_code == 200
    assert r.json()["address"] == "File: B3"
    dangerous = [
        "vbscript:msgbox(1)",
        "java\tscript:alert(1)",  # URL parsers drop tabs and newlines
        "Room 5 java\nscript:alert(1)",
        "data:image/svg+xml;base64,PHN2Zz4=",
        "see DATA: text/html,<script>alert(1)</script>",
        "file:///etc/passwd",
        "File:\\\\server\\share",
    ]
    for text in dangerous:
        r = await cat.post_day(
            company, sess["id"], format="offline", address=text, start=iso(january_2030(20))
        )
        assert r.status_code == 422, text
        assert r.json()["errors"][0] == {
            "field": "body.address",
            "message": "The address may only contain http, https or mailto links.",
            "code": "unsafe_link",
        }
    r = await cat.client.patch(
        f"/v1/days/{day['id']}", json={"address": "file:/etc/hosts"}, headers=cat.admin(company)
    )
    assert r.status_code == 422


async def test_r_day_4_default_start_keeps_the_local_time_across_a_dst_change(cat: Cat) -> None:
    """R-DAY-4: the registration end's next calendar day at the same local time in the
    session's time zone: across Berlin's switch to summer time (2030-03-31) that is 23 hours
    later, not 24."""
    company = await cat.company()
    event = await cat.event(company)
    sess = await cat.session(
        company,
        event["id"],
        name="Spring",
        timezone="Europe/Berlin",
        registration_end="2030-03-30T10:00:00+01:00",
    )
    day = await cat.day(company, sess["id"])
    assert parse(day["start"]) == dt.datetime.fromisoformat("2030-03-31T10:00:00+02:00")
    assert parse(day["start"]) - parse(sess["registration_end"]) == dt.timedelta(hours=23)


async def test_r_day_4_a_later_day_defaults_to_the_latest_day_plus_one(cat: Cat) -> None:
    """R-DAY-4 ruling: a later day (the session already has days) starts one day after the
    latest day's start, whatever order the days were added in; it ends an hour later."""
    company, _, sess = await setup(cat)
    await cat.day(company, sess["id"], start=iso(january_2030(7, 14)), end=iso(january_2030(7, 16)))
    await cat.day(company, sess["id"], start=iso(january_2030(3)))  # earlier, added later
    day = await cat.day(company, sess["id"])
    assert parse(day["start"]) == parse(iso(january_2030(8, 14)))
    assert parse(day["end"]) == parse(iso(january_2030(8, 15)))
    again = await cat.day(company, sess["id"])
    assert parse(again["start"]) == parse(iso(january_2030(9, 14)))


async def test_r_day_9_zoom_day_edits_recheck_only_what_changes(cat: Cat) -> None:
    """R-DAY-3/R-DAY-9 are checked on what a PATCH changes: after the training module (needed
    for automatic recording) or Zoom itself is turned off, an existing zoom day can still be
    moved; new Zoom settings, or turning a day into a zoom day, are checked as on create."""
    company, _, sess = await setup(cat, zoom_enabled=True, training_module_enabled=True)
    zoom = await cat.zoom(company, auto_recording=True)
    day = await cat.day(company, sess["id"], format="zoom", start=iso(january_2030(2)), zoom=zoom)
    url = f"/v1/days/{day['id']}"
    admin = cat.admin(company)

    async def settings(**body: Any) -> None:
        r = await cat.client.put("/v1/company/settings", json=body, headers=admin)
        assert r.status_code == 200

    await settings(zoom_enabled=True, training_module_enabled=False)
    r = await cat.client.patch(url, json={"start": iso(january_2030(3))}, headers=admin)
    assert r.status_code == 200, r.text
    assert r.json()["zoom"]["auto_recording"] is True  # kept, not re-judged
    # sending the stored settings unchanged is no change either
    r = await cat.client.patch(
        url, json={"end": iso(january_2030(3, 11)), "zoom": zoom}, headers=admin
    )
    assert r.status_code == 200, r.text
    # new settings are checked: automatic recording is not offered without the training module
    r = await cat.client.patch(
        url, json={"zoom": {**zoom, "organizer_user_id": "org-2"}}, headers=admin
    )
    assert r.status_code == 422
    assert r.json()["errors"][0]["code"] == "auto_recording_unavailable"
    r = await cat.client.patch(
        url,
        json={"zoom": {**zoom, "organizer_user_id": "org-2", "auto_recording": False}},
        headers=admin,
    )
    assert r.status_code == 200
    await settings(zoom_enabled=False)
    r = await cat.client.patch(url, json={"start": iso(january_2030(4))}, headers=admin)
    assert r.status_code == 200, r.text
    assert r.json()["zoom"]["organizer_user_id"] == "org-2"
    msgs = await cat.outbox("catalog.day.rescheduled", day_id=day["id"])
    assert parse(msgs[-1]["start"]) == parse(iso(january_2030(4)))
    assert msgs[-1]["zoom"]["organizer_user_id"] == "org-2"
    r = await cat.client.patch(url, json={"zoom": await cat.zoom(company)}, headers=admin)
    assert r.status_code == 422
    assert r.json()["errors"][0]["code"] == "zoom_disabled"
    offline = await cat.day(company, sess["id"], start=iso(january_2030(6)))
    r = await cat.client.patch(
        f"/v1/days/{offline['id']}",
        json={"format": "zoom", "zoom": await cat.zoom(company)},
        headers=admin,
    )
    assert r.status_code == 422
    assert r.json()["errors"][0]["code"] == "zoom_disabled"
    # and leaving the zoom format needs no Zoom at all
    r = await cat.client.patch(url, json={"format": "offline", "address": "Room 5"}, headers=admin)
    assert r.status_code == 200
    assert r.json()["zoom"] is None


async def test_event_title_change_and_day_edits_keep_day_versions_strictly_increasing(
    cat: Cat,
) -> None:
    """Per-aggregate versions: a title change re-publishes every day under the same locks day
    edits take, so concurrent edits never publish one day version twice."""
    company, event, sess = await setup(cat)
    other = await cat.session(company, event["id"], name="Evening", registration_end=REG_END)
    days = [
        await cat.day(company, sess["id"], start=iso(january_2030(2))),
        await cat.day(company, sess["id"], start=iso(january_2030(3))),
        await cat.day(company, other["id"], start=iso(january_2030(2))),
    ]
    admin = cat.admin(company)
    rounds = 6
    for i in range(rounds):
        results = await asyncio.gather(
            cat.client.patch(f"/v1/events/{event['id']}", json={"title": f"T{i}"}, headers=admin),
            *(
                cat.client.patch(
                    f"/v1/days/{d['id']}", json={"address": f"Room {i}"}, headers=admin
                )
                for d in days
            ),
            cat.client.patch(f"/v1/events/{event['id']}", json={"title": f"U{i}"}, headers=admin),
        )
        assert all(r.status_code == 200 for r in results), [r.text for r in results]
    final_title = (await cat.client.get(f"/v1/events/{event['id']}", headers=admin)).json()[
        "title"
    ]["en"]
    for d, name in zip(days, ["Daytime", "Daytime", "Evening"], strict=True):
        msgs = await cat.outbox("catalog.day.rescheduled", day_id=d["id"])
        versions = [m["version"] for m in msgs]
        assert len(versions) == len(set(versions)), sorted(versions)  # no version twice
        got = (await cat.client.get(f"/v1/days/{d['id']}", headers=admin)).json()
        newest = max(msgs, key=lambda m: m["version"])
        assert newest["version"] == got["version"]
        assert (newest["topic"], newest["address"]) == (f"{final_title} — {name}", got["address"])
