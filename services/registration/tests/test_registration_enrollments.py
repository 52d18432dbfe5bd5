"""Sign-up, access, statuses, seats and the user's views through the HTTP API (SPEC section 5)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import TYPE_CHECKING, Any

import pytest

from te_shared import contracts as c
from te_testing import messages

if TYPE_CHECKING:
    from conftest import Reg


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


async def test_r_enr_1_user_sees_event_only_with_access_and_active(reg: Reg) -> None:
    """R-ENR-1: access and `active` are needed; admins see hidden events of their company."""
    built = await reg.build(access=["seer"])
    eid = built.event_id
    assert (
        await reg.client.get(f"/v1/me/events/{eid}", headers=reg.user("seer"))
    ).status_code == 200
    r = await reg.client.get(f"/v1/me/events/{eid}", headers=reg.user("stranger"))
    assert r.status_code == 404
    assert r.json()["code"] == "event_not_found"
    await reg.event(event_id=eid, state=c.EventState.HIDDEN)
    assert (
        await reg.client.get(f"/v1/me/events/{eid}", headers=reg.user("seer"))
    ).status_code == 404
    assert (await reg.client.get(f"/v1/me/events/{eid}", headers=reg.admin())).status_code == 200
    # another company's admin and users never see it
    other = reg.admin(company="globex")
    assert (await reg.client.get(f"/v1/me/events/{eid}", headers=other)).status_code == 404
    r = await reg.client.get("/v1/me/events?tab=available", headers=reg.user("seer"))
    assert eid not in {e["id"] for e in r.json()["items"]}


async def test_r_enr_2_and_r_enr_8_sessions_visible_until_enrolled(reg: Reg) -> None:
    """R-ENR-2: all sessions until enrolled, then only one's own; R-ENR-8: withdrawing frees the
    seat and shows the other sessions again."""
    built = await reg.build(sessions=3, access=["v1"], limit=5)
    url = f"/v1/me/events/{built.event_id}"
    view = (await reg.client.get(url, headers=reg.user("v1"))).json()
    assert {s["id"] for s in view["sessions"]} == {str(s) for s in built.session_ids}
    assert view["enrollment"] is None
    r = await reg.sign_up(built.session_ids[1], "v1")
    assert r.status_code == 201, r.text
    view = (await reg.client.get(url, headers=reg.user("v1"))).json()
    assert [s["id"] for s in view["sessions"]] == [str(built.session_ids[1])]
    assert view["enrollment"]["status"] == "approved"
    assert view["sessions"][0]["taken"] == 1
    r = await reg.client.post(f"/v1/enrollments/{r.json()['id']}/cancel", headers=reg.user("v1"))
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "cancelled"
    view = (await reg.client.get(url, headers=reg.user("v1"))).json()
    assert len(view["sessions"]) == 3
    assert view["enrollment"] is None
    assert all(s["taken"] == 0 for s in view["sessions"])
    # after withdrawing, the user may sign up again, in another session
    r = await reg.sign_up(built.session_ids[2], "v1")
    assert (r.status_code, r.json()["status"]) == (201, "approved")


async def test_r_enr_3_sign_up_rules(reg: Reg) -> None:
    """R-ENR-3: access, active, registration open, one live enrollment per event, a free seat;
    starts approved, or pending when the event requires approval."""
    built = await reg.build(sessions=2, access=["a1", "a2"], limit=1)
    s1, s2 = built.session_ids
    r = await reg.sign_up(s1, "a1", email="a1@x.io")
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["status"] == "approved"
    assert body["user_id"] == "a1"
    assert body["event_id"] == str(built.event_id)
    # a retried sign-up (the first answer was lost) answers the same enrollment, no second seat
    again = await reg.sign_up(s1, "a1")
    assert (again.status_code, again.json()["id"]) == (200, body["id"])
    seats = (await reg.client.get(f"/v1/sessions/{s1}/seats", headers=reg.user("a1"))).json()
    assert seats["taken"] == 1
    r = await reg.sign_up(s2, "a1")
    assert (r.status_code, r.json()["code"]) == (409, "already_enrolled")
    r = await reg.sign_up(s1, "a2")
    assert (r.status_code, r.json()["code"]) == (409, "session_full")
    r = await reg.sign_up(s1, "nobody")
    assert r.status_code == 404  # no access: the user cannot see the event
    # registration ended
    ended = await reg.build(access=["a1"], registration_end=now() - dt.timedelta(minutes=1))
    r = await reg.sign_up(ended.session_ids[0], "a1")
    assert (r.status_code, r.json()["code"]) == (409, "registration_ended")
    # undated events have no registration end
    undated = await reg.build(dated=False, access=["a1"])
    assert (await reg.sign_up(undated.session_ids[0], "a1")).status_code == 201
    # approval required → pending
    approval = await reg.build(requires_approval=True, access=["a1"])
    r = await reg.sign_up(approval.session_ids[0], "a1")
    assert r.json()["status"] == "pending"
    # hidden event
    hidden = await reg.build(access=["a1"])
    await reg.event(event_id=hidden.event_id, state=c.EventState.HIDDEN)
    assert (await reg.sign_up(hidden.session_ids[0], "a1")).status_code == 404
    # another company's session
    r = await reg.sign_up(s2, "a1", company="globex")
    assert r.status_code == 404


async def test_r_enr_1_access_for_a_whole_audience_names_each_new_user_once(reg: Reg) -> None:
    """R-ENR-1: an admin grants access to as many users as one request takes (5,000, more
    than one page of the INSERT's rows); the answer and ``AccessGranted`` name exactly those
    who lacked it, and granting again adds only the new ones."""
    built = await reg.build()
    url = f"/v1/events/{built.event_id}/access"
    everyone = [f"u{n:05d}" for n in range(5000)]
    r = await reg.client.put(url, json={"user_ids": everyone}, headers=reg.admin())
    assert r.status_code == 200, r.text
    assert r.json()["granted"] == everyone
    again = [*everyone[2500:], "u05000", "u05001"]
    r = await reg.client.put(url, json={"user_ids": again}, headers=reg.admin())
    assert r.status_code == 200, r.text
    assert r.json()["granted"] == ["u05000", "u05001"]
    grants = [
        g["user_ids"]
        for g in await reg.outbox(c.AccessGranted.routing_key)
        if g["event_id"] == str(built.event_id)
    ]
    assert grants == [everyone, ["u05000", "u05001"]]


async def test_r_enr_4_admin_enrollment_approves_and_grants_access(reg: Reg) -> None:
    """R-ENR-4: admin enrollment puts the user straight into approved and grants access."""
    built = await reg.build(requires_approval=True, limit=1)
    eid, sid = built.event_id, built.session_ids[0]
    r = await reg.client.post(
        f"/v1/events/{eid}/enrollments",
        json={"user_id": "adm-u", "email": "adm@x.io", "session_id": str(sid)},
        headers=reg.admin(),
    )
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "approved"
    view = await reg.client.get(f"/v1/me/events/{eid}", headers=reg.user("adm-u"))
    assert view.status_code == 200
    assert view.json()["enrollment"]["status"] == "approved"
    grants = await reg.outbox(c.AccessGranted.routing_key)
    assert any(g["event_id"] == str(eid) and g["user_ids"] == ["adm-u"] for g in grants)
    # the limit holds for admins too
    r = await reg.client.post(
        f"/v1/events/{eid}/enrollments",
        json={"user_id": "adm-v", "session_id": str(sid)},
        headers=reg.admin(),
    )
    assert (r.status_code, r.json()["code"]) == (409, "session_full")
    # users cannot use it; other companies get 404
    r = await reg.client.post(
        f"/v1/events/{eid}/enrollments",
        json={"user_id": "adm-v", "session_id": str(sid)},
        headers=reg.user("adm-v"),
    )
    assert r.status_code == 403
    r = await reg.client.post(
        f"/v1/events/{eid}/enrollments",
        json={"user_id": "adm-v", "session_id": str(sid)},
        headers=reg.admin(company="globex"),
    )
    assert r.status_code == 404


async def test_r_enr_6_seats_taken_by_holding_statuses(reg: Reg) -> None:
    """R-ENR-6 / R-SES-8: pending and approved hold seats, denied and cancelled free them;
    the seats endpoint and every session read carry the limit only when enabled."""
    built = await reg.build(requires_approval=True, limit=2, access=["p1", "p2", "p3"])
    sid = built.session_ids[0]
    e1 = (await reg.sign_up(sid, "p1")).json()
    assert e1["status"] == "pending"
    assert (await reg.sign_up(sid, "p2")).status_code == 201
    r = await reg.sign_up(sid, "p3")
    assert r.status_code == 409
    seats = (await reg.client.get(f"/v1/sessions/{sid}/seats", headers=reg.user("p3"))).json()
    assert seats == {
        "limit_enabled": True,
        "participant_limit": 2,
        "taken": 2,
        "left": 0,
        "waitlisted": 0,
    }
    r = await reg.client.patch(
        f"/v1/enrollments/{e1['id']}", json={"status": "denied"}, headers=reg.admin()
    )
    assert r.json()["status"] == "denied"
    assert (await reg.sign_up(sid, "p3")).status_code == 201
    # re-approving the denied user needs a free seat
    r = await reg.client.patch(
        f"/v1/enrollments/{e1['id']}", json={"status": "approved"}, headers=reg.admin()
    )
    assert (r.status_code, r.json()["code"]) == (409, "session_full")
    # R-SES-8 hidden event: the admin still sees the limit; unlimited sessions carry none
    free = await reg.build(access=["p1"])
    view = (await reg.client.get(f"/v1/me/events/{free.event_id}", headers=reg.user("p1"))).json()
    assert view["sessions"][0]["limit_enabled"] is False
    assert view["sessions"][0]["participant_limit"] is None
    assert view["sessions"][0]["left"] is None
    await reg.event(event_id=built.event_id, state=c.EventState.HIDDEN, requires_approval=True)
    admin_view = await reg.client.get(f"/v1/me/events/{built.event_id}", headers=reg.admin())
    assert admin_view.json()["sessions"][0]["participant_limit"] == 2
    assert admin_view.json()["sessions"][0]["left"] == 0


async def test_r_enr_7_waitlist_promotes_earliest(reg: Reg) -> None:
    """R-ENR-7: a full session with a waitlist waitlists; a freed seat promotes the earliest."""
    built = await reg.build(limit=1, waitlist=True, access=["w1", "w2", "w3"])
    sid = built.session_ids[0]
    first = (await reg.sign_up(sid, "w1")).json()
    w2 = (await reg.sign_up(sid, "w2")).json()
    w3 = (await reg.sign_up(sid, "w3")).json()
    assert (first["status"], w2["status"], w3["status"]) == ("approved", "waitlisted", "waitlisted")
    seats = (await reg.client.get(f"/v1/sessions/{sid}/seats", headers=reg.admin())).json()
    assert (seats["taken"], seats["waitlisted"]) == (1, 2)
    r = await reg.client.post(f"/v1/enrollments/{first['id']}/cancel", headers=reg.user("w1"))
    assert r.status_code == 200
    listing = (
        await reg.client.get(f"/v1/events/{built.event_id}/enrollments", headers=reg.admin())
    ).json()["items"]
    status = {e["user_id"]: e["status"] for e in listing}
    assert status == {"w1": "cancelled", "w2": "approved", "w3": "waitlisted"}
    promoted = next(e for e in listing if e["user_id"] == "w2")
    assert promoted["history"][-1]["by"] == "system"
    assert promoted["history"][-1]["from_status"] == "waitlisted"


async def test_r_enr_8_no_withdrawal_after_registration_end(reg: Reg) -> None:
    """R-ENR-8: withdrawal only before registration ends; only one's own enrollment."""
    built = await reg.build(access=["c1"])
    sid = built.session_ids[0]
    enrollment = (await reg.sign_up(sid, "c1")).json()
    r = await reg.client.post(f"/v1/enrollments/{enrollment['id']}/cancel", headers=reg.user("c2"))
    assert r.status_code == 404  # someone else's
    await reg.apply(
        reg.session_msg(
            built.event_id,
            session_id=sid,
            registration_end=now() - dt.timedelta(seconds=1),
            cls=c.SessionUpdated,
        )
    )
    r = await reg.client.post(f"/v1/enrollments/{enrollment['id']}/cancel", headers=reg.user("c1"))
    assert (r.status_code, r.json()["code"]) == (409, "registration_ended")


async def _ended_session(reg: Reg, users: list[str]) -> tuple[uuid.UUID, uuid.UUID, list[str]]:
    """A session whose only day ended an hour ago, with ``users`` approved."""
    start = now() - dt.timedelta(hours=3)
    built = await reg.build(
        access=users, registration_end=start - dt.timedelta(days=1), day_start=start
    )
    ids = []
    for user in users:
        r = await reg.client.post(
            f"/v1/events/{built.event_id}/enrollments",
            json={
                "user_id": user,
                "email": f"{user}@x.io",
                "session_id": str(built.session_ids[0]),
            },
            headers=reg.admin(),
        )
        ids.append(r.json()["id"])
    return built.event_id, built.session_ids[0], ids


async def test_r_enr_9_future_day_reopens_ended_session(reg: Reg) -> None:
    """R-ENR-9: a confirmed future day added to an ended session sends awaiting_confirmation,
    participated and missed (ruling) back to approved; denied is unchanged."""
    eid, sid, ids = await _ended_session(reg, ["r1", "r2", "r3", "r4"])
    r = await reg.client.post(
        f"/v1/enrollments/{ids[0]}/confirm-participation", headers=reg.user("r1")
    )
    assert r.json()["status"] == "awaiting_confirmation", r.text
    for eid_, target in ((ids[1], "participated"), (ids[2], "missed"), (ids[3], "denied")):
        r = await reg.client.patch(
            f"/v1/enrollments/{eid_}", json={"status": target}, headers=reg.admin()
        )
        assert r.json()["status"] == target
    completed = await reg.client.get("/v1/me/events?tab=completed", headers=reg.user("r1"))
    assert str(eid) in {e["id"] for e in completed.json()["items"]}
    await reg.apply(reg.day_msg(eid, sid, start=now() + dt.timedelta(days=2), confirmed=True))
    listing = (await reg.client.get(f"/v1/events/{eid}/enrollments", headers=reg.admin())).json()
    status = {e["user_id"]: e["status"] for e in listing["items"]}
    assert status == {"r1": "approved", "r2": "approved", "r3": "approved", "r4": "denied"}
    participating = await reg.client.get("/v1/me/events?tab=participating", headers=reg.user("r3"))
    assert str(eid) in {e["id"] for e in participating.json()["items"]}


async def test_r_enr_9_does_not_depend_on_the_order_of_the_days_messages(reg: Reg) -> None:
    """R-ENR-9: the confirmed day's first edit may reach registration before the day itself
    (its DayScheduled then is stale): the session still reopens, once; a later edit of the
    day, after users took part again, does not send them back to approved."""
    eid, sid, ids = await _ended_session(reg, ["o1", "o2"])
    for enrollment in ids:
        r = await reg.client.patch(
            f"/v1/enrollments/{enrollment}", json={"status": "participated"}, headers=reg.admin()
        )
        assert r.json()["status"] == "participated"
    day_id = uuid.uuid4()
    start = now() + dt.timedelta(days=2)
    scheduled = reg.day_msg(eid, sid, day_id=day_id, start=start, confirmed=True)
    edited = reg.day_msg(
        eid,
        sid,
        day_id=day_id,
        start=start,
        confirmed=True,
        address="Room 2",
        cls=c.DayRescheduled,
    )
    await reg.apply(edited, scheduled)  # the edit overtook the day

    async def statuses() -> dict[str, str]:
        r = await reg.client.get(f"/v1/events/{eid}/enrollments", headers=reg.admin())
        return {e["user_id"]: e["status"] for e in r.json()["items"]}

    assert await statuses() == {"o1": "approved", "o2": "approved"}
    r = await reg.client.patch(
        f"/v1/enrollments/{ids[0]}", json={"status": "participated"}, headers=reg.admin()
    )
    assert r.json()["status"] == "participated"
    await reg.apply(
        reg.day_msg(
            eid,
            sid,
            day_id=day_id,
            start=start,
            confirmed=True,
            address="Room 3",
            cls=c.DayRescheduled,
        )
    )
    assert await statuses() == {"o1": "participated", "o2": "approved"}


async def test_r_enr_10_tabs(reg: Reg) -> None:
    """R-ENR-10: available, participating and completed tabs."""
    user = "tab-user"
    open_ = await reg.build(access=[user])
    joined = await reg.build(access=[user], requires_approval=True)
    eid_done, _, _ = await _ended_session(reg, [user])
    closed = await reg.build(access=[user], registration_end=now() - dt.timedelta(minutes=5))
    assert (await reg.sign_up(joined.session_ids[0], user)).json()["status"] == "pending"

    async def tab(name: str) -> set[str]:
        r = await reg.client.get(f"/v1/me/events?tab={name}", headers=reg.user(user))
        assert r.status_code == 200, r.text
        return {e["id"] for e in r.json()["items"]}

    assert await tab("available") == {str(open_.event_id)}
    assert await tab("participating") == {str(joined.event_id)}
    assert await tab("completed") == {str(eid_done)}
    assert str(closed.event_id) not in await tab("available")
    # pagination: a second open event makes two pages of one; next_cursor leads to the second
    other = await reg.build(access=[user])
    page = (
        await reg.client.get("/v1/me/events?tab=available&limit=1", headers=reg.user(user))
    ).json()
    assert len(page["items"]) == 1
    assert page["next_cursor"]
    second = (
        await reg.client.get(
            "/v1/me/events",
            params={"tab": "available", "limit": 1, "cursor": page["next_cursor"]},
            headers=reg.user(user),
        )
    ).json()
    assert len(second["items"]) == 1
    assert second["next_cursor"] is None
    assert {page["items"][0]["id"], second["items"][0]["id"]} == {
        str(open_.event_id),
        str(other.event_id),
    }
    assert (
        await reg.client.get("/v1/me/events?tab=bogus", headers=reg.user(user))
    ).status_code == 422
    for cursor in ("3", "not-base64!", "W10", "WyJ4IiwgInkiXQ"):  # an old offset, junk, [], [x,y]
        r = await reg.client.get(
            "/v1/me/events", params={"tab": "available", "cursor": cursor}, headers=reg.user(user)
        )
        assert r.status_code == 422, cursor
        assert r.json()["errors"][0]["field"] == "query.cursor"


async def test_r_enr_10_available_follows_the_sessions_of_an_event(reg: Reg) -> None:
    """R-ENR-10, R-SES-5: an event is Available while registration is open in one of its
    sessions (not deleted; an undated event's never closes), in the order of its sessions'
    first start, as its sessions' messages change them."""
    user = "follow-user"

    async def available() -> list[str]:
        r = await reg.client.get("/v1/me/events?tab=available", headers=reg.user(user))
        assert r.status_code == 200, r.text
        return [e["id"] for e in r.json()["items"]]

    later = await reg.build(access=[user], day_start=now() + dt.timedelta(days=20))
    sooner = await reg.build(access=[user], day_start=now() + dt.timedelta(days=10))
    undated = await reg.build(access=[user], dated=False, day_start=now() + dt.timedelta(days=30))
    assert await available() == [str(sooner.event_id), str(later.event_id), str(undated.event_id)]
    # the later event's only session closes: gone; a second session open again: back
    closing = reg.session_msg(
        later.event_id,
        session_id=later.session_ids[0],
        registration_end=now() - dt.timedelta(minutes=1),
        cls=c.SessionUpdated,
    )
    await reg.apply(closing)
    assert str(later.event_id) not in await available()
    second = reg.session_msg(later.event_id, registration_end=None)  # no end: never closes
    await reg.apply(
        second, reg.day_msg(later.event_id, second.session_id, start=now() + dt.timedelta(days=5))
    )
    assert await available() == [str(later.event_id), str(sooner.event_id), str(undated.event_id)]
    # its session deleted, the event orders by the one left, and without any it is gone
    await reg.apply(
        c.SessionDeleted(
            company_id="acme",
            session_id=second.session_id,
            event_id=later.event_id,
            version=second.version + 1,
        )
    )
    assert str(later.event_id) not in await available()
    only = undated.session_ids[0]
    await reg.apply(
        c.SessionDeleted(company_id="acme", session_id=only, event_id=undated.event_id, version=100)
    )
    assert await available() == [str(sooner.event_id)]


async def test_r_enr_11_attendance_moves_to_participated(reg: Reg) -> None:
    """R-ENR-11: attendance per user and day with minutes; joined moves approved to participated."""
    built = await reg.build(access=["z1", "z2"])
    sid, day = built.session_ids[0], built.day_ids[0]
    await reg.sign_up(sid, "z1")
    await reg.sign_up(sid, "z2")
    await reg.apply(
        c.AttendanceRecorded(
            company_id="acme", day_id=day, user_id="z1", email=None, joined=True, minutes=42
        ),
        c.AttendanceRecorded(
            company_id="acme", day_id=day, user_id="z2", email=None, joined=False, minutes=None
        ),
    )
    listing = (
        await reg.client.get(f"/v1/events/{built.event_id}/enrollments", headers=reg.admin())
    ).json()["items"]
    by_user = {e["user_id"]: e for e in listing}
    assert by_user["z1"]["status"] == "participated"
    assert by_user["z1"]["attendance"] == [
        {"day_id": str(day), "joined": True, "minutes": 42, "final": False}
    ]
    assert by_user["z2"]["status"] == "approved"
    assert by_user["z2"]["attendance"][0]["joined"] is False


async def test_r_enr_12_attendance_an_admin_matched_names_the_admin_in_the_history(
    reg: Reg,
) -> None:
    """R-ENR-11 with R-ENR-12: attendance the zoom bridge credits because an admin matched a
    Zoom participant (a guest) to the user carries ``matched_by``; the status change's history
    says that admin did it, and why. Reported attendance stays the bridge's."""
    built = await reg.build(access=["m1", "m2"])
    sid, day = built.session_ids[0], built.day_ids[0]
    await reg.sign_up(sid, "m1")
    await reg.sign_up(sid, "m2")
    await reg.apply(
        c.AttendanceRecorded(
            company_id="acme",
            day_id=day,
            user_id="m1",
            email=None,
            joined=True,
            minutes=30,
            matched_by="boss",
        ),
        c.AttendanceRecorded(
            company_id="acme", day_id=day, user_id="m2", email=None, joined=True, minutes=5
        ),
    )
    listing = (
        await reg.client.get(f"/v1/events/{built.event_id}/enrollments", headers=reg.admin())
    ).json()["items"]
    last = {e["user_id"]: e["history"][-1] for e in listing}
    assert (last["m1"]["to_status"], last["m1"]["by"]) == ("participated", "boss")
    assert "an admin matched a Zoom participant" in last["m1"]["reason"]
    assert (last["m2"]["to_status"], last["m2"]["by"]) == ("participated", "zoom-bridge")
    assert last["m2"]["reason"] == "R-ENR-11 attendance reported"


async def test_r_enr_12_history_and_forbidden_transitions(reg: Reg) -> None:
    """R-ENR-12: every change writes history (who, when, from, to, why) and is published with the
    user's email; a forbidden transition is a 409 naming from and to."""
    built = await reg.build(access=["h1"], requires_approval=True)
    e = (await reg.sign_up(built.session_ids[0], "h1", email="h1@x.io")).json()
    r = await reg.client.patch(
        f"/v1/enrollments/{e['id']}",
        json={"status": "approved", "reason": "looks good"},
        headers=reg.admin(user="boss"),
    )
    assert r.json()["status"] == "approved"
    r = await reg.client.post(f"/v1/enrollments/{e['id']}/cancel", headers=reg.user("h1"))
    assert r.json()["status"] == "cancelled"
    r = await reg.client.patch(
        f"/v1/enrollments/{e['id']}", json={"status": "approved"}, headers=reg.admin()
    )
    assert r.status_code == 409
    problem = r.json()
    assert (problem["code"], problem["from"], problem["to"]) == (
        "transition_not_allowed",
        "cancelled",
        "approved",
    )
    listing = (
        await reg.client.get(f"/v1/events/{built.event_id}/enrollments", headers=reg.admin())
    ).json()["items"]
    history = listing[0]["history"]
    assert [(h["from_status"], h["to_status"], h["by"]) for h in history] == [
        (None, "pending", "h1"),
        ("pending", "approved", "boss"),
        ("approved", "cancelled", "h1"),
    ]
    assert history[1]["reason"] == "looks good"
    assert all(h["at"] for h in history)
    changes = [
        m
        for m in await reg.outbox(c.EnrollmentChanged.routing_key)
        if m["enrollment_id"] == e["id"]
    ]
    assert [(m["previous_status"], m["status"], m["version"]) for m in changes] == [
        (None, "pending", 1),
        ("pending", "approved", 2),
        ("approved", "cancelled", 3),
    ]
    assert {m["email"] for m in changes} == {"h1@x.io"}
    # and who and why, as the history keeps them (integrators hear it in enrollment.changed)
    assert [(m["by"], m["reason"]) for m in changes] == [(h["by"], h["reason"]) for h in history]
    assert changes[1]["by"] == "boss"
    assert changes[1]["reason"] == "looks good"
    # an admin may not set waitlisted (or pending) by hand, users may not PATCH
    live = (await reg.sign_up((await reg.build(access=["h2"])).session_ids[0], "h2")).json()
    for target in ("waitlisted", "pending"):
        r = await reg.client.patch(
            f"/v1/enrollments/{live['id']}", json={"status": target}, headers=reg.admin()
        )
        assert r.status_code == 409, r.text
        assert (r.json()["code"], r.json()["from"], r.json()["to"]) == (
            "transition_not_allowed",
            "approved",
            target,
        )
    r = await reg.client.patch(
        f"/v1/enrollments/{live['id']}", json={"status": "denied"}, headers=reg.user("h2")
    )
    assert r.status_code == 403
    view = (await reg.client.get("/v1/me/events?tab=participating", headers=reg.user("h2"))).json()
    assert [e["enrollment"]["status"] for e in view["items"]] == ["approved"]


async def test_r_ses_10_session_ordering(reg: Reg) -> None:
    """R-SES-10: open sessions first by first day's start; passed ones by registration_end,
    newest first."""
    eid = await reg.event()
    base = now()
    specs = [  # (name, registration_end offset hours, first day offset hours)
        ("late-open", 10, 100),
        ("early-open", 10, 50),
        ("closed-old", -20, 1),
        ("closed-new", -2, 2),
    ]
    for name, reg_end, first in specs:
        msg = reg.session_msg(
            eid, name={"en": name}, registration_end=base + dt.timedelta(hours=reg_end)
        )
        await reg.apply(
            msg, reg.day_msg(eid, msg.session_id, start=base + dt.timedelta(hours=first))
        )
    view = (await reg.client.get(f"/v1/me/events/{eid}", headers=reg.admin())).json()
    assert [s["name"]["en"] for s in view["sessions"]] == [
        "early-open",
        "late-open",
        "closed-new",
        "closed-old",
    ]


async def test_r_zoom_6_organizer_gets_access(reg: Reg) -> None:
    """R-ZOOM-6: the organizer named by a zoom day gets access (and AccessGranted is published)."""
    built = await reg.build()
    eid, sid = built.event_id, built.session_ids[0]
    assert (
        await reg.client.get(f"/v1/me/events/{eid}", headers=reg.user("org"))
    ).status_code == 404
    await reg.apply(reg.day_msg(eid, sid, zoom_organizer="org"))
    assert (
        await reg.client.get(f"/v1/me/events/{eid}", headers=reg.user("org"))
    ).status_code == 200
    grants = [g for g in await reg.outbox(c.AccessGranted.routing_key) if g["event_id"] == str(eid)]
    assert [g["user_ids"] for g in grants] == [["org"]]
    # a reschedule of the same organizer grants nothing new
    await reg.apply(reg.day_msg(eid, sid, zoom_organizer="org", cls=c.DayRescheduled))
    grants = [g for g in await reg.outbox(c.AccessGranted.routing_key) if g["event_id"] == str(eid)]
    assert len(grants) == 1


async def test_read_model_is_order_tolerant(reg: Reg) -> None:
    """Read model: stale versions are ignored; a day rescheduled before it was scheduled and a
    session deleted before it was created converge on the newest state."""
    eid = await reg.event()
    created = reg.session_msg(eid, limit=3)
    newer = reg.session_msg(eid, session_id=created.session_id, limit=7, cls=c.SessionUpdated)
    await reg.apply(newer, created)  # out of order
    seats = (
        await reg.client.get(f"/v1/sessions/{created.session_id}/seats", headers=reg.admin())
    ).json()
    assert seats["participant_limit"] == 7
    day_id = uuid.uuid4()
    scheduled = reg.day_msg(
        eid, created.session_id, day_id=day_id, start=now() + dt.timedelta(days=5)
    )
    moved = reg.day_msg(
        eid,
        created.session_id,
        day_id=day_id,
        start=now() + dt.timedelta(days=9),
        cls=c.DayRescheduled,
    )
    await reg.apply(moved, scheduled)
    view = (await reg.client.get(f"/v1/me/events/{eid}", headers=reg.admin())).json()
    start = dt.datetime.fromisoformat(view["sessions"][0]["days"][0]["start"])
    assert start > now() + dt.timedelta(days=8)
    gone = reg.session_msg(eid)
    deleted = c.SessionDeleted(
        company_id="acme", session_id=gone.session_id, event_id=eid, version=gone.version + 1
    )
    await reg.apply(deleted, gone)
    view = (await reg.client.get(f"/v1/me/events/{eid}", headers=reg.admin())).json()
    assert str(gone.session_id) not in {s["id"] for s in view["sessions"]}
    # a day cancelled before it was scheduled stays cancelled; a stale cancel deletes nothing
    early = reg.day_msg(eid, created.session_id, start=now() + dt.timedelta(days=6))
    cancel = messages.day_cancelled(early, early.version + 1)
    stale = messages.day_cancelled(moved, 1)  # older than the DayRescheduled already applied
    await reg.apply(cancel, early, stale)
    view = (await reg.client.get(f"/v1/me/events/{eid}", headers=reg.admin())).json()
    day_ids = {d["id"] for s in view["sessions"] for d in s["days"]}
    assert str(early.day_id) not in day_ids
    assert str(day_id) in day_ids


async def test_r_enr_11_attendance_before_its_day_and_final_figures(reg: Reg) -> None:
    """R-ENR-11: attendance that arrives before its DayScheduled is kept and applied when the day
    arrives; a reconciled (final) figure is not overwritten by a later live one."""
    built = await reg.build(access=["late-z"])
    eid, sid = built.event_id, built.session_ids[0]
    await reg.sign_up(sid, "late-z")
    day = reg.day_msg(eid, sid)
    await reg.apply(
        c.AttendanceRecorded(
            company_id="acme",
            day_id=day.day_id,
            user_id="late-z",
            email=None,
            joined=True,
            minutes=50,
            final=True,
        )
    )
    await reg.apply(day)
    await reg.apply(
        c.AttendanceRecorded(
            company_id="acme",
            day_id=day.day_id,
            user_id="late-z",
            email=None,
            joined=True,
            minutes=3,
        )
    )
    listing = (await reg.client.get(f"/v1/events/{eid}/enrollments", headers=reg.admin())).json()
    enrollment = listing["items"][0]
    assert enrollment["status"] == "participated"
    assert enrollment["attendance"] == [
        {"day_id": str(day.day_id), "joined": True, "minutes": 50, "final": True}
    ]


async def test_r_enr_11_live_attendance_delivered_out_of_order_keeps_the_newest(reg: Reg) -> None:
    """R-ENR-11 with R-ERR-3: live figures carry when they were computed; a late older one loses."""
    built = await reg.build(access=["ooo"])
    eid, sid = built.event_id, built.session_ids[0]
    await reg.sign_up(sid, "ooo")
    day = reg.day_msg(eid, sid)
    await reg.apply(day)
    now = dt.datetime.now(dt.UTC)

    def live(minutes: int, seconds_ago: int) -> c.AttendanceRecorded:
        return c.AttendanceRecorded(
            company_id="acme",
            day_id=day.day_id,
            user_id="ooo",
            email=None,
            joined=True,
            minutes=minutes,
            occurred_at=now - dt.timedelta(seconds=seconds_ago),
        )

    await reg.apply(live(30, seconds_ago=1))  # the newer figure arrives first
    await reg.apply(live(5, seconds_ago=60))  # then an older one, late
    listing = (await reg.client.get(f"/v1/events/{eid}/enrollments", headers=reg.admin())).json()
    assert listing["items"][0]["attendance"][0]["minutes"] == 30


async def test_tenant_isolation_and_own_enrollments_only(reg: Reg) -> None:
    """Tenant isolation: another company's ids are 404 everywhere; a user acts only on their own
    enrollments; user endpoints refuse admins' actions to users (403)."""
    built = await reg.build(access=["t1", "t2"])
    eid, sid = built.event_id, built.session_ids[0]
    e = (await reg.sign_up(sid, "t1")).json()
    globex_admin = reg.admin(company="globex")
    globex_user = reg.user("t1", company="globex")
    checks = [
        ("get", f"/v1/events/{eid}/enrollments", globex_admin, None),
        ("put", f"/v1/events/{eid}/access", globex_admin, {"user_ids": ["x"]}),
        ("patch", f"/v1/enrollments/{e['id']}", globex_admin, {"status": "denied"}),
        ("get", f"/v1/sessions/{sid}/seats", globex_admin, None),
        ("post", f"/v1/enrollments/{e['id']}/cancel", globex_user, None),
        ("post", f"/v1/enrollments/{e['id']}/cancel", reg.user("t2"), None),
        ("post", f"/v1/enrollments/{e['id']}/confirm-participation", reg.user("t2"), None),
        ("get", f"/v1/sessions/{sid}/seats", reg.user("no-access"), None),
        ("get", f"/v1/me/events/{eid}", globex_user, None),
    ]
    for method, url, headers, body in checks:
        r = await reg.client.request(method, url, headers=headers, json=body)
        assert r.status_code == 404, (method, url, r.status_code, r.text)
    for method, url, body in [
        ("get", f"/v1/events/{eid}/enrollments", None),
        ("put", f"/v1/events/{eid}/access", {"user_ids": ["x"]}),
        ("patch", f"/v1/enrollments/{e['id']}", {"status": "denied"}),
    ]:
        r = await reg.client.request(method, url, headers=reg.user("t1"), json=body)
        assert r.status_code == 403
    assert (await reg.client.get("/v1/me/events")).status_code == 401
    # nothing changed
    listing = (await reg.client.get(f"/v1/events/{eid}/enrollments", headers=reg.admin())).json()
    assert [x["status"] for x in listing["items"]] == ["approved"]


async def test_openapi_documents_the_registration_table(reg: Reg) -> None:
    """API.md's registration table is served in the OpenAPI document."""
    paths = (await reg.client.get("/openapi.json")).json()["paths"]
    for path in (
        "/v1/events/{event_id}/access",
        "/v1/me/events",
        "/v1/me/events/{event_id}",
        "/v1/sessions/{session_id}/enrollments",
        "/v1/enrollments/{enrollment_id}/cancel",
        "/v1/enrollments/{enrollment_id}/confirm-participation",
        "/v1/events/{event_id}/enrollments",
        "/v1/enrollments/{enrollment_id}",
        "/v1/events/{event_id}/enrollments/import",
        "/v1/sessions/{session_id}/seats",
    ):
        assert path in paths, path


async def test_user_views_take_two_queries_whatever_the_number_of_events(reg: Reg) -> None:
    """The user views are one or two queries (no N+1), however many events and sessions."""
    from sqlalchemy import event

    user = "n-plus-one"
    for _ in range(6):
        await reg.build(sessions=3, access=[user])
    engine = reg.app.state.runtime.engine.sync_engine
    selects: list[str] = []

    def count(conn: object, cursor: object, statement: str, *args: object) -> None:
        # the outbox relay polls on the same engine in the background; it is not the view
        if statement.lstrip().upper().startswith("SELECT") and "outbox" not in statement:
            selects.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        r = await reg.client.get("/v1/me/events?tab=available", headers=reg.user(user))
        assert len(r.json()["items"]) == 6
        assert all(len(e["sessions"]) == 3 for e in r.json()["items"])
        assert len(selects) == 2, selects
        selects.clear()
        eid = r.json()["items"][0]["id"]
        assert (await reg.client.get(f"/v1/me/events/{eid}", headers=reg.user(user))).is_success
        assert len(selects) == 2, selects
    finally:
        event.remove(engine, "before_cursor_execute", count)


async def test_r_enr_4_admin_enrollment_by_user_id_publishes_the_known_email(reg: Reg) -> None:
    """R-ENR-4 / R-ZOOM-5: an admin enrollment or import naming a user by id publishes
    EnrollmentChanged with the email the service knows for them (from a token), so the bridge
    can match attendance."""
    elsewhere = await reg.build(access=["em-1", "em-2"])
    for user in ("em-1", "em-2"):
        r = await reg.sign_up(elsewhere.session_ids[0], user, email=f"{user.upper()}@x.io")
        assert r.status_code == 201, r.text
    built = await reg.build()
    eid, sid = built.event_id, built.session_ids[0]
    r = await reg.client.post(
        f"/v1/events/{eid}/enrollments",
        json={"user_id": "em-1", "session_id": str(sid)},
        headers=reg.admin(),
    )
    assert r.status_code == 201, r.text
    name = f"S-{sid.hex[:6]}"
    r = await reg.client.post(
        f"/v1/events/{eid}/enrollments/import",
        files={"file": ("u.csv", f"user_id,session\nem-2,{name}\nem-3,{name}\n".encode())},
        headers=reg.admin(),
    )
    assert r.json() == {"imported": 2, "unchanged": 0}, r.text
    changes = {
        m["user_id"]: m["email"]
        for m in await reg.outbox(c.EnrollmentChanged.routing_key)
        if m["event_id"] == str(eid)
    }
    assert changes == {"em-1": "em-1@x.io", "em-2": "em-2@x.io", "em-3": None}
    listing = (await reg.client.get(f"/v1/events/{eid}/enrollments", headers=reg.admin())).json()
    assert {e["user_id"]: e["email"] for e in listing["items"]} == changes


async def test_r_enr_4_an_address_pasted_from_a_mail_program_is_that_address(reg: Reg) -> None:
    """R-ENR-4: an admin pastes `Seven Known <Seven@X.io>` from Outlook. Stored as written it
    would never match the e-mail the person signs in with; it is read as the address, as in an
    import. Anything else with an `@` is still taken as given (providers vary)."""
    built = await reg.build()
    eid, sid = built.event_id, built.session_ids[0]
    for email in ("Seven Known <Seven@X.io>", "eight@intranet"):
        r = await reg.client.post(
            f"/v1/events/{eid}/enrollments",
            json={"email": email, "session_id": str(sid)},
            headers=reg.admin(),
        )
        assert r.status_code == 201, r.text
    listing = (await reg.client.get(f"/v1/events/{eid}/enrollments", headers=reg.admin())).json()
    assert sorted(e["email"] for e in listing["items"]) == ["eight@intranet", "seven@x.io"]
    other = await reg.build(access=["seven"])
    signed_in = await reg.sign_up(other.session_ids[0], "seven", email="seven@x.io")
    assert signed_in.status_code == 201, signed_in.text
    listing = (await reg.client.get(f"/v1/events/{eid}/enrollments", headers=reg.admin())).json()
    assert {e["email"]: e["user_id"] for e in listing["items"]}["seven@x.io"] == "seven"


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("put", "access", {"user_ids": ["fine", "nul\u0000user"]}),
        ("put", "access", {"user_ids": ["fine", "u" * 201]}),
        ("put", "access", {"user_ids": ["fine", "bell\u0007"]}),
        ("put", "access", b'{"user_ids": ["fine", "lone\\ud800"]}'),
        ("post", "enroll", {"user_id": "nul\u0000user"}),
        ("post", "enroll", {"user_id": "u" * 201}),
        ("post", "enroll", {"user_id": "mail-1", "email": "m" * 320 + "@x.io"}),
        ("post", "enroll", {"user_id": "mail-2", "email": "nul\u0000@x.io"}),
        ("post", "enroll", {"user_id": "mail-3", "email": "no-at-sign"}),
        ("patch", "status", {"status": "denied", "reason": "nul\u0000reason"}),
    ],
)
async def test_r_err_1_text_that_cannot_be_stored_is_422_and_changes_nothing(
    reg: Reg, method: str, path: str, body: dict[str, Any] | bytes
) -> None:
    """R-ERR-1: NUL and other control characters, lone surrogates, user ids over 200
    characters and emails over 320 (or without @) are 422 problems naming the field, never a
    500, and change nothing."""
    built = await reg.build(access=["txt-owner"])
    eid, sid = built.event_id, built.session_ids[0]
    enrollment = (await reg.sign_up(sid, "txt-owner")).json()
    urls = {
        "access": f"/v1/events/{eid}/access",
        "enroll": f"/v1/events/{eid}/enrollments",
        "status": f"/v1/enrollments/{enrollment['id']}",
    }
    if isinstance(body, dict) and path == "enroll":
        body = {**body, "session_id": str(sid)}
    messages = (
        len(await reg.outbox(c.EnrollmentChanged.routing_key)),
        len(await reg.outbox(c.AccessGranted.routing_key)),
    )
    r = await reg.client.request(
        method,
        urls[path],
        headers={**reg.admin(), "content-type": "application/json"},
        **({"content": body} if isinstance(body, bytes) else {"json": body}),
    )
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["field"].startswith("body")
    listing = (await reg.client.get(f"/v1/events/{eid}/enrollments", headers=reg.admin())).json()
    assert [(e["user_id"], e["status"]) for e in listing["items"]] == [("txt-owner", "approved")]
    assert (
        len(await reg.outbox(c.EnrollmentChanged.routing_key)),
        len(await reg.outbox(c.AccessGranted.routing_key)),
    ) == messages


async def test_r_enr_7_catalog_raising_or_disabling_the_limit_promotes_the_waitlist(
    reg: Reg,
) -> None:
    """R-ENR-7: seats that appear through catalog (a higher limit, or the limit disabled) go to
    the earliest waitlisted users at once."""
    users = ["rl-1", "rl-2", "rl-3", "rl-4"]
    built = await reg.build(limit=1, waitlist=True, access=users)
    eid, sid = built.event_id, built.session_ids[0]
    for user in users:
        assert (await reg.sign_up(sid, user)).status_code == 201

    async def statuses() -> dict[str, str]:
        r = await reg.client.get(f"/v1/events/{eid}/enrollments", headers=reg.admin())
        return {e["user_id"]: e["status"] for e in r.json()["items"]}

    assert await statuses() == {
        "rl-1": "approved",
        "rl-2": "waitlisted",
        "rl-3": "waitlisted",
        "rl-4": "waitlisted",
    }
    await reg.apply(
        reg.session_msg(eid, session_id=sid, limit=2, waitlist=True, cls=c.SessionUpdated)
    )
    assert await statuses() == {
        "rl-1": "approved",
        "rl-2": "approved",
        "rl-3": "waitlisted",
        "rl-4": "waitlisted",
    }
    await reg.apply(reg.session_msg(eid, session_id=sid, waitlist=True, cls=c.SessionUpdated))
    assert set((await statuses()).values()) == {"approved"}
    seats = (await reg.client.get(f"/v1/sessions/{sid}/seats", headers=reg.admin())).json()
    assert (seats["taken"], seats["waitlisted"]) == (4, 0)
    listing = (await reg.client.get(f"/v1/events/{eid}/enrollments", headers=reg.admin())).json()
    promoted = next(e for e in listing["items"] if e["user_id"] == "rl-4")
    assert [(h["from_status"], h["to_status"], h["by"]) for h in promoted["history"]] == [
        (None, "waitlisted", "rl-4"),
        ("waitlisted", "approved", "system"),
    ]


async def test_r_enr_7_promotion_goes_through_the_transition_table(
    reg: Reg, monkeypatch: pytest.MonkeyPatch
) -> None:
    """R-ENR-7 / R-ENR-12: promotion is a status change like any other, checked against the
    transition table: with waitlisted → approved taken out of it, the withdrawal that would
    promote is refused (409 naming from and to) and nothing changes."""
    from registration.enrollments import rules

    built = await reg.build(limit=1, waitlist=True, access=["tt-1", "tt-2"])
    sid = built.session_ids[0]
    first = (await reg.sign_up(sid, "tt-1")).json()
    assert (await reg.sign_up(sid, "tt-2")).json()["status"] == "waitlisted"
    S = c.EnrollmentStatus
    monkeypatch.setitem(
        rules.TRANSITIONS, S.WAITLISTED, frozenset({S.PENDING, S.DENIED, S.CANCELLED})
    )
    r = await reg.client.post(f"/v1/enrollments/{first['id']}/cancel", headers=reg.user("tt-1"))
    assert r.status_code == 409, r.text
    assert (r.json()["from"], r.json()["to"]) == ("waitlisted", "approved")
    listing = (
        await reg.client.get(f"/v1/events/{built.event_id}/enrollments", headers=reg.admin())
    ).json()
    assert {e["user_id"]: e["status"] for e in listing["items"]} == {
        "tt-1": "approved",
        "tt-2": "waitlisted",
    }


async def test_r_enr_9_what_does_not_reopen_an_ended_session(reg: Reg) -> None:
    """R-ENR-9 negative cases: a future day not confirmed after the end, a confirmed day in the
    past, a day of the ended session moved into the future, and a confirmed future day of
    another session of the event leave participated, missed and awaiting_confirmation as
    they are."""
    start = now() - dt.timedelta(hours=3)
    built = await reg.build(
        sessions=2, registration_end=start - dt.timedelta(days=1), day_start=start
    )
    eid, (s1, s2) = built.event_id, built.session_ids
    ids: dict[str, str] = {}
    for user, sid, target in (
        ("nr-part", s1, "participated"),
        ("nr-miss", s1, "missed"),
        ("nr-other", s2, "participated"),
    ):
        r = await reg.client.post(
            f"/v1/events/{eid}/enrollments",
            json={"user_id": user, "session_id": str(sid)},
            headers=reg.admin(),
        )
        ids[user] = r.json()["id"]
        r = await reg.client.patch(
            f"/v1/enrollments/{ids[user]}", json={"status": target}, headers=reg.admin()
        )
        assert r.json()["status"] == target, r.text
    waiting = await reg.client.post(
        f"/v1/enrollments/{ids['nr-miss']}/confirm-participation", headers=reg.user("nr-miss")
    )
    assert waiting.status_code == 409  # missed is not approved: no confirmation

    async def statuses() -> dict[str, str]:
        r = await reg.client.get(f"/v1/events/{eid}/enrollments", headers=reg.admin())
        return {e["user_id"]: e["status"] for e in r.json()["items"]}

    ended = {"nr-part": "participated", "nr-miss": "missed", "nr-other": "participated"}
    assert await statuses() == ended
    changes = len(await reg.outbox(c.EnrollmentChanged.routing_key))
    await reg.apply(
        reg.day_msg(eid, s1, start=now() + dt.timedelta(days=2)),  # not confirmed
        reg.day_msg(eid, s1, start=now() - dt.timedelta(days=2), confirmed=True),  # past
        reg.day_msg(
            eid,
            s1,
            day_id=built.day_ids[0],
            start=now() + dt.timedelta(days=3),
            cls=c.DayRescheduled,
        ),
    )
    assert await statuses() == ended
    assert len(await reg.outbox(c.EnrollmentChanged.routing_key)) == changes
    await reg.apply(reg.day_msg(eid, s2, start=now() + dt.timedelta(days=4), confirmed=True))
    assert await statuses() == {**ended, "nr-other": "approved"}


async def test_r_enr_10_ruling_every_live_status_but_denied_is_participating_until_the_end(
    reg: Reg,
) -> None:
    """R-ENR-10 ruling: while the session has not ended, awaiting_confirmation, participated and
    missed show in participating (the event never vanishes); denied shows in no tab."""
    eid = await reg.event()
    msg = reg.session_msg(eid, registration_end=now() - dt.timedelta(days=1))
    day = reg.day_msg(eid, msg.session_id, start=now() - dt.timedelta(hours=1), hours=5)
    await reg.apply(msg, day)
    targets = {
        "lt-await": None,
        "lt-part": "participated",
        "lt-miss": "missed",
        "lt-deny": "denied",
    }
    for user, target in targets.items():
        r = await reg.client.post(
            f"/v1/events/{eid}/enrollments",
            json={"user_id": user, "session_id": str(msg.session_id)},
            headers=reg.admin(),
        )
        if target is None:
            r = await reg.client.post(
                f"/v1/enrollments/{r.json()['id']}/confirm-participation", headers=reg.user(user)
            )
        else:
            r = await reg.client.patch(
                f"/v1/enrollments/{r.json()['id']}", json={"status": target}, headers=reg.admin()
            )
        assert r.status_code == 200, r.text

    async def tabs(user: str) -> dict[str, bool]:
        found = {}
        for tab in ("available", "participating", "completed"):
            r = await reg.client.get(f"/v1/me/events?tab={tab}", headers=reg.user(user))
            found[tab] = str(eid) in {e["id"] for e in r.json()["items"]}
        return found

    for user in ("lt-await", "lt-part", "lt-miss"):
        assert await tabs(user) == {"available": False, "participating": True, "completed": False}
    assert await tabs("lt-deny") == {"available": False, "participating": False, "completed": False}
    view = (await reg.client.get(f"/v1/me/events/{eid}", headers=reg.user("lt-miss"))).json()
    assert (view["tab"], view["enrollment"]["status"]) == ("participating", "missed")


async def test_days_show_users_where_to_go(reg: Reg) -> None:
    """R-DAY-2 as users see it: each day in /v1/me/events and /v1/me/events/{id} carries the
    address of an offline day and the link of an online one; a DayRescheduled that only
    changes them is kept."""
    built = await reg.build(access=["where"])
    eid, sid = built.event_id, built.session_ids[0]
    start = now() + dt.timedelta(days=4)
    offline = reg.day_msg(eid, sid, start=start, address="Hall 2, 1 Main St")
    online = reg.day_msg(
        eid, sid, start=start + dt.timedelta(days=1), url="https://meet.example/r/1"
    )
    await reg.apply(offline, online)

    def places(event: dict[str, Any]) -> dict[str, tuple[str | None, str | None]]:
        return {d["id"]: (d["address"], d["url"]) for d in event["sessions"][0]["days"]}

    expected = {
        str(built.day_ids[0]): (None, None),
        str(offline.day_id): ("Hall 2, 1 Main St", None),
        str(online.day_id): (None, "https://meet.example/r/1"),
    }
    listing = (
        await reg.client.get("/v1/me/events?tab=available", headers=reg.user("where"))
    ).json()
    assert places(next(e for e in listing["items"] if e["id"] == str(eid))) == expected
    view = (await reg.client.get(f"/v1/me/events/{eid}", headers=reg.user("where"))).json()
    assert places(view) == expected
    moved = reg.day_msg(
        eid, sid, day_id=offline.day_id, start=start, address="Hall 5", cls=c.DayRescheduled
    )
    await reg.apply(moved)
    view = (await reg.client.get(f"/v1/me/events/{eid}", headers=reg.user("where"))).json()
    assert places(view)[str(offline.day_id)] == ("Hall 5", None)


async def test_r_enr_3_ruling_admins_sign_themselves_up_like_users(reg: Reg) -> None:
    """R-ENR-3 ruling: an admin signing themselves up needs access and an active event like any
    user; as they can see the event, the missing condition is a 409 naming it."""
    me = reg.admin(user="self-admin")
    built = await reg.build()
    sid = built.session_ids[0]
    r = await reg.client.post(f"/v1/sessions/{sid}/enrollments", headers=me)
    assert (r.status_code, r.json()["code"]) == (409, "no_access")
    r = await reg.client.put(
        f"/v1/events/{built.event_id}/access", json={"user_ids": ["self-admin"]}, headers=me
    )
    assert r.status_code == 200
    await reg.event(event_id=built.event_id, state=c.EventState.HIDDEN)
    r = await reg.client.post(f"/v1/sessions/{sid}/enrollments", headers=me)
    assert (r.status_code, r.json()["code"]) == (409, "event_not_active")
    listing = (
        await reg.client.get(f"/v1/events/{built.event_id}/enrollments", headers=reg.admin())
    ).json()
    assert listing["items"] == []
    await reg.event(event_id=built.event_id, state=c.EventState.ACTIVE)
    r = await reg.client.post(f"/v1/sessions/{sid}/enrollments", headers=me)
    assert (r.status_code, r.json()["status"]) == (201, "approved")
