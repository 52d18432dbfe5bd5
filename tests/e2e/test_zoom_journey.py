"""The Zoom journey across the real processes and the Zoom simulator (R-ZOOM-1..7, R-ENR-11)."""

from __future__ import annotations

import datetime as dt
import functools
import re
from typing import Any

import pytest

from te_testing.api import ok
from te_testing.clock import days_from_now, iso
from te_testing.polling import eventually
from te_testing.system import System, active_event, zoom_company, zoom_day

pytestmark = pytest.mark.e2e


POSTED = re.compile(
    r'zoom_api_calls_total\{operation="POST /users/[^"]+/meetings",status="201"\} ([0-9.e+]+)'
)


async def meetings_posted(system: System) -> float:
    """Meetings the bridge created at Zoom so far (its metric; the process is shared)."""
    async with system.client(system.bridge) as bridge:
        metrics = (await bridge.get("/metrics")).text
    return sum(float(n) for n in POSTED.findall(metrics))


async def test_zoom_day_meeting_attendance_recording_move_and_delete(system: System) -> None:
    company = "journey-zoom"
    admin = system.admin(company)
    start = days_from_now(4, 9)
    users = ["gina", "hugo"]
    async with (
        system.client(system.catalog, admin) as cat,
        system.client(system.registration, admin) as reg,
        system.client(system.sim) as sim,
    ):
        account_id = await zoom_company(
            system,
            company,
            timezone="Europe/Moscow",
            locales=["en"],
            training_module_enabled=True,
        )
        async with system.client(system.bridge, admin) as bridge:
            accounts = await ok(await bridge.get("/v1/zoom/accounts"))
        assert [a["id"] for a in accounts] == [account_id]
        assert "token" not in str(accounts).lower()  # never returned (R-ZOOM-1)
        posted_before = await meetings_posted(system)
        event = await active_event(
            system,
            company,
            title="Remote facilitation",
            dated=True,
            requires_approval=False,
            sessions=[
                {
                    "name": "Online run",
                    "registration_end": iso(days_from_now(2)),
                    "days": [
                        zoom_day(
                            start, start + dt.timedelta(hours=2), account_id, auto_recording=True
                        )
                    ],
                }
            ],
            access=users,
        )
        [day] = event.days["Online run"]

        async def days_meetings() -> list[dict[str, Any]]:
            """The simulator's meetings for this day (the simulator is shared by the session's
            system tests; the bridge marks each meeting with its day in the agenda)."""
            every = await ok(await sim.get("/_sim/meetings"))
            return [m for m in every if m.get("agenda") == f"day:{day['id']}"]

        # R-ZOOM-3: the meeting is created and its join link appears on the day in catalog
        async def zoom_of_day() -> dict[str, Any]:
            full = await ok(await cat.get(f"/v1/events/{event.id}"))
            days = [d for s in full["sessions"] for d in s["days"] if d["id"] == day["id"]]
            return dict(days[0]["zoom"]) if days else {}

        zoom = await eventually(
            zoom_of_day,
            lambda z: (z.get("meeting") or {}).get("status") == "created",
            what="join link on the day",
        )
        assert zoom["meeting"]["join_url"].startswith("http")
        meetings = await days_meetings()
        assert len(meetings) == 1
        meeting_id = meetings[0]["id"]
        assert meetings[0]["settings"]["auto_recording"] == "cloud"  # R-DAY-9
        assert await meetings_posted(system) == posted_before + 1  # one POST to Zoom for the day

        for user in users:
            async with system.client(system.registration, system.user(company, user)) as me:
                # the access grant and the activation reach registration asynchronously
                await eventually(
                    functools.partial(me.get, f"/v1/me/events/{event.id}"),
                    lambda r: r.status_code == 200,
                    what=f"the event visible to {user}",
                )
                await ok(await me.post(f"/v1/sessions/{event.session_id}/enrollments"), 201)

        async def enrollments() -> list[dict[str, Any]]:
            page = await ok(await reg.get(f"/v1/events/{event.id}/enrollments"))
            return list(page["items"])

        # R-ZOOM-4/5: signed webhooks for joins and leaves (a rejoin adds up), then the end;
        # the bridge must accept every one of them (the simulator reports its answer)
        def t(minutes: int) -> str:
            return (start + dt.timedelta(minutes=minutes)).isoformat()

        async def webhook(path: str, body: dict[str, Any]) -> dict[str, Any]:
            answer = await ok(await sim.post(f"/_sim/meetings/{meeting_id}/{path}", json=body))
            assert answer["webhook_status"] in range(200, 300), answer
            return dict(answer)

        await webhook("join", {"email": "gina@journey-zoom.io", "name": "Gina", "at": t(0)})
        await webhook("join", {"email": "hugo@journey-zoom.io", "name": "Hugo", "at": t(5)})
        await webhook("leave", {"email": "gina@journey-zoom.io", "at": t(30)})
        await webhook("join", {"email": "gina@journey-zoom.io", "name": "Gina", "at": t(40)})

        # before the meeting ends, attendance comes from the webhooks alone (the participants
        # report is read only after the end): both joined; Gina's first stay (30 min) counts,
        # the open stays do not yet
        def live(items: list[dict[str, Any]]) -> dict[str, Any]:
            return {
                e["user_id"]: [(a["joined"], a["minutes"], a["final"]) for a in e["attendance"]]
                for e in items
            }

        during = await eventually(
            enrollments,
            lambda items: live(items) == {"gina": [(True, 30, False)], "hugo": [(True, 0, False)]},
            what="attendance from the join and leave webhooks (R-ZOOM-5)",
        )
        assert {e["user_id"]: e["status"] for e in during} == {
            "gina": "participated",
            "hugo": "participated",
        }  # R-ENR-11: a reported join moves approved to participated

        ended = await webhook("end", {"at": t(100)})
        statuses = [d["status"] for d in ended["deliveries"]]
        assert len(statuses) == 3, ended  # two open stays closed, then meeting.ended
        assert all(s in range(200, 300) for s in statuses), ended

        def all_participated_with_final_minutes(items: list[dict[str, Any]]) -> bool:
            return len(items) == 2 and all(
                e["status"] == "participated"
                and any(a["final"] and a["minutes"] for a in e["attendance"])
                for e in items
            )

        items = await eventually(
            enrollments,
            all_participated_with_final_minutes,
            timeout=60,
            what="participated with minutes (R-ENR-11)",
        )
        minutes = {e["user_id"]: e["attendance"][0]["minutes"] for e in items}
        assert minutes == {"gina": 90, "hugo": 95}  # 30 + 60 after the rejoin; 5 -> 100

        # R-ZOOM-7: the recording appears on the day
        await webhook("recording", {})
        zoom = await eventually(
            zoom_of_day, lambda z: bool(z.get("recordings")), what="recording on the day"
        )
        assert zoom["recordings"][0]["play_url"].startswith("http")

        # the day moves, the meeting follows; the day goes, the meeting goes
        moved = start + dt.timedelta(days=1)
        await ok(
            await cat.patch(
                f"/v1/days/{day['id']}",
                json={
                    "start": moved.isoformat(),
                    "end": (moved + dt.timedelta(hours=2)).isoformat(),
                },
            )
        )

        async def sim_meeting() -> dict[str, Any]:
            [meeting] = await days_meetings()
            return dict(meeting)

        def starts_at_moved_time(m: dict[str, Any]) -> bool:
            started = dt.datetime.fromisoformat(m["start_time"].replace("Z", "+00:00"))
            return started == moved

        await eventually(sim_meeting, starts_at_moved_time, what="meeting moved")
        deleted = await cat.delete(f"/v1/days/{day['id']}")
        assert deleted.status_code in (200, 204)
        await eventually(sim_meeting, lambda m: m["deleted"] is True, what="meeting deleted")
        assert len(await days_meetings()) == 1  # never a second meeting
