"""R-ZOOM-5 attendance against the simulator over HTTP (issue 11 §2): per meeting instance,
waiting rooms, registrant links, unmatched participants and an admin's match, ``meeting.ended``
before the last leave, and a participants report Zoom will not give."""

from __future__ import annotations

import datetime as dt
import uuid
from types import ModuleType
from typing import TYPE_CHECKING, Any

import pytest

from te_shared import contracts as c
from te_testing.clock import iso, minutes_after
from zoom_bridge.models import MeetingRegistrant

if TYPE_CHECKING:
    from conftest import Env

T0 = dt.datetime(2026, 11, 20, 9, 0, tzinfo=dt.UTC)
REPORTS = "/v2/report/"


async def _account(env: Env, role: str = "administrator", email: str = "att@zoom.test") -> str:
    key = f"_acct_{role}_{email}"
    if key not in env.overrides:
        env.overrides[key] = await env.connect(role, sim_user=email)
    return str(env.overrides[key])


async def _day(
    env: Env, learners: dict[str, str], *, role: str = "administrator", company: str = "acme"
) -> tuple[c.DayData, str, dict[str, c.EnrollmentChanged]]:
    """A zoom day with its meeting created, and ``learners`` (user → e-mail) approved in it."""
    day = env.day(await _account(env, role), company=company)
    enrolled = {}
    for user_id, email in learners.items():
        enrolled[user_id] = env.approved(day, user_id, email)
        await env.publish(enrolled[user_id])
    await env.publish(day)
    row = await env.created(day.day_id)
    return day, str(row.zoom_meeting_id), enrolled


async def _records(env: Env, day_id: uuid.UUID, user_id: str | None) -> list[dict[str, Any]]:
    rows = await env.outbox(c.AttendanceRecorded.routing_key, day_id)
    return [r for r in rows if r["user_id"] == user_id]


async def _attendance(env: Env, day_id: uuid.UUID, user_id: str, **match: Any) -> Any:
    """The latest AttendanceRecorded of the user once it matches ``match``."""

    async def find() -> dict[str, Any] | None:
        rows = await _records(env, day_id, user_id)
        last = rows[-1] if rows else None
        ok = last is not None and all(last.get(k) == v for k, v in match.items())
        return last if ok else None

    return await env.wait(find)


async def _participants(env: Env, day_id: uuid.UUID) -> list[dict[str, Any]]:
    async with env.client() as bridge:
        r = await bridge.get(f"/v1/days/{day_id}/participants", headers=env.admin())
    assert r.status_code == 200, r.text
    found: list[dict[str, Any]] = r.json()
    return found


def _no_live_after_final(rows: list[dict[str, Any]]) -> None:
    finals = [i for i, r in enumerate(rows) if r["final"]]
    assert finals, rows
    assert all(r["final"] for r in rows[finals[0] :]), rows


async def test_r_zoom_5_minutes_add_up_across_instances_and_rejoins(env: Env) -> None:
    """A meeting held twice in a day is two instances (new uuid, participant numbers counted
    again from 16778240): the same ``user_id`` in the second names someone else. Each user's
    minutes add up over rejoins and instances; what comes after the day's final figures is
    final too."""
    day, zoom_id, _ = await _day(env, {"ann": "ann@example.com"})
    base = f"/_sim/meetings/{zoom_id}"
    async with env.sim() as sim:
        first = await sim.post(
            f"{base}/join", json={"email": "ann@example.com", "at": iso(minutes_after(T0, 0))}
        )
        await sim.post(f"{base}/join", json={"name": "Visitor", "at": iso(minutes_after(T0, 1))})
        await sim.post(
            f"{base}/leave", json={"email": "ann@example.com", "at": iso(minutes_after(T0, 10))}
        )
        await sim.post(
            f"{base}/join", json={"email": "ann@example.com", "at": iso(minutes_after(T0, 20))}
        )
        await sim.post(f"{base}/end", json={"at": iso(minutes_after(T0, 30))})
        await _attendance(env, day.day_id, "ann", final=True, minutes=20)
        # held again: a guest is the first to join the new instance
        guest = (
            await sim.post(
                f"{base}/join", json={"name": "Walk-in", "at": iso(minutes_after(T0, 60))}
            )
        ).json()
        second = await sim.post(
            f"{base}/join", json={"email": "ann@example.com", "at": iso(minutes_after(T0, 61))}
        )
        assert guest["user_id"] == first.json()["user_id"] == "16778240"
        assert guest["uuid"] != first.json()["uuid"]
        await sim.post(
            f"{base}/leave", json={"email": "ann@example.com", "at": iso(minutes_after(T0, 71))}
        )
        live = await _attendance(env, day.day_id, "ann", minutes=30)
        assert live["final"] is True  # after the day's final figures, never live again
        assert second.json()["user_id"] == "16779264"
        await sim.post(f"{base}/end", json={"at": iso(minutes_after(T0, 80))})

    async def reconciled_twice() -> bool:
        rows = await _records(env, day.day_id, "ann")
        return sum(1 for r in rows if r["final"] and r["minutes"] == 30) >= 2

    await env.wait(reconciled_twice)
    rows = await _records(env, day.day_id, "ann")
    _no_live_after_final(rows)
    listed = await _participants(env, day.day_id)
    by_name = {p["name"]: p for p in listed}
    assert set(by_name) == {"ann", "Visitor", "Walk-in"}
    assert (by_name["ann"]["user_id"], by_name["ann"]["match"]) == ("ann", "email")
    assert by_name["ann"]["minutes"] == 30
    assert by_name["Walk-in"]["user_id"] is None  # user 16778240 of instance 2 is not ann
    assert by_name["Walk-in"]["minutes"] == 20


async def test_r_zoom_5_waiting_room_time_is_never_attendance(env: Env) -> None:
    day, zoom_id, _ = await _day(env, {"bea": "bea@example.com"})
    base = f"/_sim/meetings/{zoom_id}"
    async with env.sim() as sim:
        waiting = await sim.post(
            f"{base}/join",
            json={
                "email": "bea@example.com",
                "at": iso(minutes_after(T0, 0)),
                "waiting_room": True,
            },
        )
        assert waiting.json()["webhook_status"] == 200  # acknowledged, not attendance
        assert not await _records(env, day.day_id, "bea")
        admitted = await sim.post(
            f"{base}/admit",
            json={"user_id": waiting.json()["user_id"], "at": iso(minutes_after(T0, 10))},
        )
        assert [d["event"] for d in admitted.json()["deliveries"]] == [
            "meeting.participant_admitted",
            "meeting.participant_joined",
        ]
        await sim.post(
            f"{base}/leave", json={"email": "bea@example.com", "at": iso(minutes_after(T0, 25))}
        )
        await _attendance(env, day.day_id, "bea", minutes=15)
        await sim.post(f"{base}/end", json={"at": iso(minutes_after(T0, 30))})
    final = await _attendance(env, day.day_id, "bea", final=True)
    assert final["minutes"] == 15  # the report's waiting-room row (0-10) does not count


async def test_r_zoom_5_time_in_breakout_rooms_is_attendance(env: Env) -> None:
    """Trainings split into breakout rooms. Zoom says who went into a room and left it
    (``meeting.participant_joined_breakout_room`` / ``_left_breakout_room``, a ``user_id`` of
    the room's own): that time counts, once, whether or not Zoom also says they left the main
    room when they went (Eva: told; Finn: not, his main-room stay runs on)."""
    day, zoom_id, _ = await _day(env, {"eva": "eva@example.com", "finn": "finn@example.com"})
    base = f"/_sim/meetings/{zoom_id}"
    async with env.sim() as sim:
        ids = {}
        for email in ("eva@example.com", "finn@example.com"):
            joined = await sim.post(
                f"{base}/join", json={"email": email, "at": iso(minutes_after(T0, 0))}
            )
            ids[email] = joined.json()["user_id"]
        eva, finn = ids["eva@example.com"], ids["finn@example.com"]
        await sim.post(
            f"{base}/leave",
            json={"user_id": eva, "at": iso(minutes_after(T0, 20)), "reason": "breakout"},
        )
        for user_id in (eva, finn):
            went = await sim.post(
                f"{base}/breakout",
                json={"user_id": user_id, "room": "Group A", "at": iso(minutes_after(T0, 20))},
            )
            assert went.status_code == 200, went.text
            assert went.json()["webhook_status"] == 200
            assert went.json()["user_id"] != user_id  # the room numbers its own stays
        for user_id in (eva, finn):
            back = await sim.post(
                f"{base}/breakout",
                json={"user_id": user_id, "leave": True, "at": iso(minutes_after(T0, 40))},
            )
            assert back.status_code == 200, back.text
        await sim.post(
            f"{base}/join", json={"email": "eva@example.com", "at": iso(minutes_after(T0, 40))}
        )
        for email in ("eva@example.com", "finn@example.com"):
            await sim.post(f"{base}/leave", json={"email": email, "at": iso(minutes_after(T0, 60))})
        for user_id in ("eva", "finn"):
            await _attendance(env, day.day_id, user_id, minutes=60)
        await sim.post(f"{base}/end", json={"at": iso(minutes_after(T0, 61))})
    # the final figures come from Zoom's report of the meeting (the simulator's holds the main
    # room only): the rooms' stays stay beside it
    for user_id in ("eva", "finn"):
        final = await _attendance(env, day.day_id, user_id, final=True)
        assert final["minutes"] == 60


async def test_r_zoom_5_a_registrant_is_matched_by_their_link_whatever_email(env: Env) -> None:
    """A seat holder registered for the meeting joins with their personal link under a private
    e-mail: Zoom's ``registrant_id`` names them."""
    await _account(env)
    day, zoom_id, enrolled = await _day(env, {"reg": "reg@work.example"})
    zoom = env.app.state.runtime.extras["zoom"]
    factory = env.app.state.runtime.session_factory()

    async def registration() -> MeetingRegistrant | None:  # the bridge registers seat holders
        async with factory() as session:
            found: MeetingRegistrant | None = await session.get(
                MeetingRegistrant, (day.day_id, enrolled["reg"].enrollment_id)
            )
            return found

    row: MeetingRegistrant = await env.wait(registration)
    registered = {
        "registrant_id": row.zoom_registrant_id,
        "join_url": zoom.cipher.decrypt(row.join_url_enc),
    }
    base = f"/_sim/meetings/{zoom_id}"
    async with env.sim() as sim:
        joined = await sim.post(
            f"{base}/join",
            json={"email": "reg.private@gmail.example", "join_url": registered["join_url"]},
        )
        assert joined.json()["participant"]["registrant_id"] == registered["registrant_id"]
    record = await _attendance(env, day.day_id, "reg")
    assert record["email"] == "reg@work.example"  # the enrollment's, not Zoom's
    (listed,) = await _participants(env, day.day_id)
    assert (listed["email"], listed["user_id"], listed["match"]) == (
        "reg.private@gmail.example",
        "reg",
        "registrant",
    )


async def test_r_zoom_5_unmatched_participants_are_listed_and_an_admin_credits_one(
    env: Env, zoom_payloads: ModuleType
) -> None:
    day, zoom_id, _ = await _day(env, {"ann": "ann@example.com", "gus": "gus@example.com"})
    base = f"/_sim/meetings/{zoom_id}"
    async with env.sim() as sim:
        await sim.post(
            f"{base}/join", json={"email": "ann@example.com", "at": iso(minutes_after(T0, 0))}
        )
        phone = (
            await sim.post(
                f"{base}/join", json={"name": "Gus (phone)", "at": iso(minutes_after(T0, 2))}
            )
        ).json()
        await sim.post(
            f"{base}/join", json={"email": "someone@else.example", "at": iso(minutes_after(T0, 3))}
        )
        await sim.post(
            f"{base}/leave", json={"user_id": phone["user_id"], "at": iso(minutes_after(T0, 32))}
        )
    assert phone["participant"]["email"] == ""  # a guest, as Zoom sends one

    async def guest_left() -> list[dict[str, Any]] | None:
        listed = await _participants(env, day.day_id)
        done = len(listed) == 3 and any(p["left_at"] for p in listed)
        return listed if done else None

    listed = await env.wait(guest_left)
    by_name = {p["name"]: p for p in listed}
    guest = by_name["Gus (phone)"]
    assert guest == {
        "id": guest["id"],
        "name": "Gus (phone)",
        "email": None,
        "user_id": None,
        "match": None,
        "matched_by": None,
        "minutes": 30,
        "joined_at": "2026-11-20T09:02:00Z",
        "left_at": "2026-11-20T09:32:00Z",
    }
    assert by_name["someone"]["email"] == "someone@else.example"
    assert by_name["someone"]["user_id"] is None
    assert by_name["ann"]["match"] == "email"
    assert not await _records(env, day.day_id, "gus")

    url = f"/v1/days/{day.day_id}/participants/{guest['id']}/match"
    async with env.client() as bridge:
        refusals = [
            (await bridge.post(url, json={"user_id": "gus"}, headers=env.user("gus")), 403),
            (await bridge.post(url, json={"user_id": "gus"}, headers=env.admin("globex")), 404),
            (
                await bridge.get(
                    f"/v1/days/{day.day_id}/participants", headers=env.admin("globex")
                ),
                404,
            ),
            (
                await bridge.post(
                    f"/v1/days/{uuid.uuid4()}/participants/{guest['id']}/match",
                    json={"user_id": "gus"},
                    headers=env.admin(),
                ),
                404,
            ),
            (
                await bridge.post(
                    f"/v1/days/{day.day_id}/participants/{'0' * 20}/match",
                    json={"user_id": "gus"},
                    headers=env.admin(),
                ),
                404,
            ),
            (await bridge.post(url, json={"user_id": "zed"}, headers=env.admin()), 422),
            (await bridge.post(url, json={"user": "gus"}, headers=env.admin()), 422),
            (
                await bridge.post(
                    f"/v1/days/{day.day_id}/participants/{by_name['ann']['id']}/match",
                    json={"user_id": "gus"},
                    headers=env.admin(),
                ),
                409,
            ),
        ]
        for response, status in refusals:
            assert response.status_code == status, response.text
            assert response.headers["content-type"].startswith("application/problem+json")
        not_enrolled = refusals[5][0].json()
        assert not_enrolled["errors"][0]["field"] == "body.user_id"
        assert not_enrolled["code"] == "validation_error"
        assert refusals[7][0].json()["code"] == "participant_already_matched"

        r = await bridge.post(url, json={"user_id": "gus"}, headers=env.admin(user="boss"))
        assert r.status_code == 200, r.text
        assert (r.json()["user_id"], r.json()["match"], r.json()["matched_by"]) == (
            "gus",
            "admin",
            "boss",
        )
        again = await bridge.post(url, json={"user_id": "gus"}, headers=env.admin())
        assert again.status_code == 200  # the same match again changes nothing
        other = await bridge.post(url, json={"user_id": "ann"}, headers=env.admin())
        assert other.status_code == 409
        openapi = (await bridge.get("/openapi.json")).json()
    responses = openapi["paths"]["/v1/days/{day_id}/participants/{participant_id}/match"]["post"]
    assert {"401", "403", "404", "409", "422"} <= set(responses["responses"])
    (credited,) = await _records(env, day.day_id, "gus")
    assert (credited["minutes"], credited["matched_by"], credited["email"]) == (
        30,
        "boss",
        "gus@example.com",
    )
    assert credited["final"] is False
    # a later stay of the same guest (their participant_uuid) is theirs too
    later = zoom_payloads.Participant("Gus (phone)", phone["participant"]["participant_uuid"])
    for body in (
        zoom_payloads.participant_joined(
            zoom_id, phone["uuid"], later, user_id="99", at=iso(minutes_after(T0, 40))
        ),
        zoom_payloads.participant_left(
            zoom_id, phone["uuid"], later, user_id="99", at=iso(minutes_after(T0, 45))
        ),
    ):
        async with env.sim() as sim:
            r = await sim.post(
                "/_sim/webhook/send", json={"event": body["event"], "payload": body["payload"]}
            )
            assert r.json()["webhook_status"] == 200
    await _attendance(env, day.day_id, "gus", minutes=35, matched_by="boss")


async def test_r_zoom_5_a_leave_after_meeting_ended_corrects_the_final_figures(env: Env) -> None:
    """``meeting.ended`` may come before the last ``participant_left``: the final figures
    count a stay still open until the end, and the late leave re-publishes them, final. Here
    the report is refused (4711, a missing scope): the webhooks' attendance is final, and the
    day says why."""
    day, zoom_id, _ = await _day(env, {"cid": "cid@example.com", "dan": "dan@example.com"})
    base = f"/_sim/meetings/{zoom_id}"
    async with env.sim() as sim:
        await sim.post(
            "/_sim/faults",
            json={"status": 400, "zoom_code": 4711, "count": 5, "path_prefix": REPORTS},
        )
        await sim.post(
            f"{base}/join", json={"email": "cid@example.com", "at": iso(minutes_after(T0, 0))}
        )
        await sim.post(
            f"{base}/join", json={"email": "dan@example.com", "at": iso(minutes_after(T0, 0))}
        )
        late = await sim.post(
            f"{base}/leave",
            json={"email": "cid@example.com", "at": iso(minutes_after(T0, 25)), "delay_ms": 2500},
        )
        assert late.json()["webhook"]["state"] == "scheduled"
        await sim.post(f"{base}/end", json={"at": iso(minutes_after(T0, 40))})
        first_final = await _attendance(env, day.day_id, "cid", final=True)
        assert first_final["minutes"] == 40  # still in when the meeting ended
        corrected = await _attendance(env, day.day_id, "cid", final=True, minutes=25)
        await sim.delete("/_sim/faults")
    assert corrected["joined"] is True
    _no_live_after_final(await _records(env, day.day_id, "cid"))
    assert (await _attendance(env, day.day_id, "dan", final=True))["minutes"] == 40
    async with env.client() as bridge:
        meeting = (await bridge.get(f"/v1/days/{day.day_id}/meeting", headers=env.admin())).json()
        learner = (
            await bridge.get(f"/v1/days/{day.day_id}/meeting", headers=env.user("dan"))
        ).json()
    assert meeting["attendance_source"] == "webhooks"
    assert "report:read:admin" in meeting["report_unavailable_reason"]
    assert "attendance_source" not in learner


async def test_r_zoom_5_a_report_zoom_will_not_give_does_not_stop_final_attendance(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The free plan's answer under a 200 (no participants), and a report still missing (404)
    after the last attempt: the webhooks' attendance is published as final either way."""
    free, free_id, _ = await _day(env, {"eva": "eva@example.com"})
    slow, slow_id, _ = await _day(env, {"fay": "fay@example.com"})
    monkeypatch.setattr(env.app.state.runtime.settings, "zoom_reconcile_attempts", 2)
    async with env.sim() as sim:
        await sim.delete("/_sim/calls")
        await sim.post(
            "/_sim/faults",
            json={"status": 200, "zoom_code": 200, "count": 1, "path_prefix": REPORTS},
        )
        for zoom_id, email in ((free_id, "eva@example.com"), (slow_id, "fay@example.com")):
            base = f"/_sim/meetings/{zoom_id}"
            await sim.post(f"{base}/join", json={"email": email, "at": iso(minutes_after(T0, 0))})
            await sim.post(f"{base}/leave", json={"email": email, "at": iso(minutes_after(T0, 12))})
        await sim.post(f"/_sim/meetings/{free_id}/end", json={"at": iso(minutes_after(T0, 20))})
        await _attendance(env, free.day_id, "eva", final=True, minutes=12)
        await sim.post(
            "/_sim/faults",
            json={"status": 404, "count": 2, "path_prefix": f"{REPORTS}meetings/"},
        )
        await sim.post(f"/_sim/meetings/{slow_id}/end", json={"at": iso(minutes_after(T0, 20))})
        await _attendance(env, slow.day_id, "fay", final=True, minutes=12)
        calls = (await sim.get("/_sim/calls")).json()
    reports = [x["status"] for x in calls if str(x["path"]).startswith(REPORTS)]
    assert reports == [200, 404, 404]
    async with env.client() as bridge:
        for day_id, said in (
            (free.day_id, "without participants: Only available for Paid or ZMP account"),
            (slow.day_id, "no participants report after 2 attempts"),
        ):
            meeting = (await bridge.get(f"/v1/days/{day_id}/meeting", headers=env.admin())).json()
            assert meeting["attendance_source"] == "webhooks"
            assert said in meeting["report_unavailable_reason"]


async def test_r_zoom_5_a_participant_role_day_gets_its_final_attendance_from_the_webhooks(
    env: Env,
) -> None:
    """R-ZOOM-5 with the participant role (who joined, no time spent, R-ZOOM-2): once the
    meeting ended, the joins the webhooks brought are published as the day's final attendance,
    and Zoom's report (which needs the administrator role) is never asked for."""
    day = env.day(await _account(env, "participant", "part@zoom.test"))
    await env.publish(env.approved(day, "gus", "gus@example.com"))
    await env.publish(day)
    zoom_id = str((await env.created(day.day_id)).zoom_meeting_id)
    async with env.sim() as sim:
        await sim.delete("/_sim/calls")
        base = f"/_sim/meetings/{zoom_id}"
        await sim.post(f"{base}/join", json={"email": "gus@example.com", "at": iso(T0)})
        await sim.post(
            f"{base}/leave",
            json={"email": "gus@example.com", "at": iso(minutes_after(T0, 30))},
        )
        await _attendance(env, day.day_id, "gus", final=False, joined=True)
        await sim.post(f"{base}/end", json={"at": iso(minutes_after(T0, 45))})
        final = await _attendance(env, day.day_id, "gus", final=True)
        calls = (await sim.get("/_sim/calls")).json()
    assert (final["joined"], final["minutes"]) == (True, None)
    assert [x for x in calls if str(x["path"]).startswith(REPORTS)] == []
    async with env.client() as bridge:
        meeting = (await bridge.get(f"/v1/days/{day.day_id}/meeting", headers=env.admin())).json()
    assert meeting["attendance_source"] == "webhooks"
    assert "participant role" in meeting["report_unavailable_reason"]


async def test_r_zoom_5_the_report_of_an_instance_with_slashes_in_its_uuid(env: Env) -> None:
    """Zoom requires a uuid that begins with ``/`` or contains ``//`` double-encoded in a
    path; the report of such an instance is read and replaces its webhooks (here a lost
    leave: only the report knows she stayed 12 minutes)."""
    day, zoom_id, _ = await _day(env, {"ida": "ida@example.com"})
    instance = "/ab//cdEFGHijklMNOPqrst=="
    base = f"/_sim/meetings/{zoom_id}"
    async with env.sim() as sim:
        await sim.delete("/_sim/calls")
        joined = await sim.post(
            f"{base}/join",
            json={
                "email": "ida@example.com",
                "at": iso(minutes_after(T0, 0)),
                "instance_uuid": instance,
            },
        )
        assert joined.json()["uuid"] == instance
        await _attendance(env, day.day_id, "ida", minutes=0)
        await sim.patch("/_sim/config", json={"webhook_url": "http://127.0.0.1:9/lost"})
        try:
            await sim.post(
                f"{base}/leave", json={"email": "ida@example.com", "at": iso(minutes_after(T0, 12))}
            )
        finally:
            await sim.patch(
                "/_sim/config", json={"webhook_url": f"{env.bridge_url}/v1/zoom/webhooks"}
            )
        await sim.post(f"{base}/end", json={"at": iso(minutes_after(T0, 15))})
        final = await _attendance(env, day.day_id, "ida", final=True)
        calls = (await sim.get("/_sim/calls")).json()
    assert final["minutes"] == 12
    (report,) = [x for x in calls if str(x["path"]).startswith(REPORTS)]
    assert report["status"] == 200
    async with env.client() as bridge:
        meeting = (await bridge.get(f"/v1/days/{day.day_id}/meeting", headers=env.admin())).json()
    assert meeting["attendance_source"] == "report"
    assert "report_unavailable_reason" not in meeting
