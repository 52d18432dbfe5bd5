"""Calendar feeds (issue "Calendars and integrations" §1) over the real processes: the user's
days as RFC 5545, checked by parsing with the icalendar library."""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx
import icalendar
import pytest

from te_testing.api import ok
from te_testing.clock import days_from_now, iso
from te_testing.polling import eventually
from te_testing.system import System, active_event, offline_day, online_day

pytestmark = pytest.mark.e2e

COMPANY = "cal-co"


def events_of(body: bytes) -> dict[str, Any]:
    calendar = icalendar.Calendar.from_ical(body)
    return {str(e["UID"]).split("@")[0]: e for e in calendar.walk("VEVENT")}


async def test_calendar_of_a_user_follows_their_enrollments_and_the_days(system: System) -> None:
    admin = system.admin(COMPANY)
    async with (
        system.client(system.catalog, admin) as cat,
        system.client(system.registration, admin) as reg,
        system.client(system.registration, system.user(COMPANY, "cal-ann")) as ann,
        system.client(system.registration, system.user(COMPANY, "cal-bob")) as bob,
        httpx.AsyncClient() as calendar_app,
    ):
        await ok(await cat.put("/v1/company/settings", json={"locales": ["en", "de"]}))
        event = await active_event(
            system,
            COMPANY,
            title={"en": "Negotiation", "de": "Verhandeln"},
            requires_approval=True,
            sessions=[
                {
                    "name": "Berlin run",
                    "timezone": "Europe/Berlin",
                    "registration_end": iso(days_from_now(2, 9)),
                    "days": [
                        offline_day(days_from_now(4, 8), days_from_now(4, 10), "Room 5, HQ"),
                        online_day(
                            days_from_now(5, 8), days_from_now(5, 9), "https://meet.example.com/neg"
                        ),
                    ],
                }
            ],
            access=["cal-ann", "cal-bob"],
        )
        offline, online = event.days["Berlin run"]
        await eventually(
            lambda: ann.post(f"/v1/sessions/{event.session_id}/enrollments"),
            lambda r: r.status_code in (200, 201),
            what="the session open in registration",
        )
        await ok(await bob.post(f"/v1/sessions/{event.session_id}/enrollments"), 201)
        listed = await ok(await reg.get(f"/v1/events/{event.id}/enrollments"))
        ann_enrollment = next(e for e in listed["items"] if e["user_id"] == "cal-ann")
        await ok(
            await reg.patch(f"/v1/enrollments/{ann_enrollment['id']}", json={"status": "approved"})
        )

        # with the bearer token, in German
        r = await ann.get("/v1/me/calendar.ics", params={"locale": "de"})
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == "text/calendar; charset=utf-8"
        calendar = icalendar.Calendar.from_ical(r.content)
        assert [str(t["TZID"]) for t in calendar.walk("VTIMEZONE")] == ["Europe/Berlin"]
        days = events_of(r.content)
        assert set(days) == {offline["id"], online["id"]}
        first = days[offline["id"]]
        assert str(first["SUMMARY"]) == "Verhandeln"
        assert str(first["LOCATION"]) == "Room 5, HQ"
        assert str(first["STATUS"]) == "CONFIRMED"
        start = first.decoded("DTSTART")
        assert str(start.tzinfo) == "Europe/Berlin"
        assert start == dt.datetime.fromisoformat(offline["start"])
        assert str(days[online["id"]]["LOCATION"]) == "https://meet.example.com/neg"
        # pending is tentative; the default locale is the title's first
        bobs = events_of((await bob.get("/v1/me/calendar.ics")).content)
        assert str(bobs[offline["id"]]["STATUS"]) == "TENTATIVE"
        assert str(bobs[offline["id"]]["SUMMARY"]) == "Negotiation"

        # a subscription URL for calendar apps: no bearer token; shown once, stored hashed
        feed = await ok(await ann.post("/v1/me/calendar/feed"), 201)
        token = feed["url"].rsplit("/", 1)[1].removesuffix(".ics")
        assert len(token) >= 32
        fetched = await calendar_app.get(
            feed["url"].replace("http://127.0.0.1:8002", system.registration.url)
        )
        assert fetched.status_code == 200
        assert set(events_of(fetched.content)) == {offline["id"], online["id"]}
        sequence = int(str(events_of(fetched.content)[offline["id"]]["SEQUENCE"]))

        # the day moves: SEQUENCE grows, the times follow
        await ok(
            await cat.patch(
                f"/v1/days/{offline['id']}",
                json={"start": iso(days_from_now(4, 12)), "end": iso(days_from_now(4, 14))},
            )
        )
        moved = await eventually(
            lambda: ann.get("/v1/me/calendar.ics"),
            lambda r: (
                events_of(r.content)[offline["id"]].decoded("DTSTART") == days_from_now(4, 12)
            ),
            what="the moved day in the feed",
        )
        assert int(str(events_of(moved.content)[offline["id"]]["SEQUENCE"])) > sequence

        # a deleted day drops out; a withdrawn enrollment takes every day out
        await ok(await cat.delete(f"/v1/days/{online['id']}"), 204)
        await eventually(
            lambda: ann.get("/v1/me/calendar.ics"),
            lambda r: set(events_of(r.content)) == {offline["id"]},
            what="the deleted day gone",
        )
        bob_enrollment = next(e for e in listed["items"] if e["user_id"] == "cal-bob")
        await ok(await bob.post(f"/v1/enrollments/{bob_enrollment['id']}/cancel"))
        assert events_of((await bob.get("/v1/me/calendar.ics")).content) == {}

        # revoked: the URL answers 404, and an unknown or malformed token too
        await ok(await ann.delete("/v1/me/calendar/feed"), 204)
        base = f"{system.registration.url}/v1/calendar"
        for url in (f"{base}/{token}.ics", f"{base}/{'x' * 43}.ics", f"{base}/short.ics"):
            gone = await calendar_app.get(url)
            assert gone.status_code == 404, url
            assert gone.headers["content-type"].startswith("application/problem+json")
        assert (
            await calendar_app.get(f"{system.registration.url}/v1/me/calendar.ics")
        ).status_code == 401
