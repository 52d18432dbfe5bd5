"""Meetings API: create / get / patch / delete, Zoom error bodies, call log, /_sim/meetings."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

from zoom_sim.settings import Settings


async def test_create_meeting_returns_zoom_shape(kit: Any) -> None:
    auth = await kit.auth()
    m = await kit.create_meeting(auth)
    assert isinstance(m["id"], int)
    assert len(str(m["id"])) == 11
    assert m["uuid"]
    assert m["topic"] == "Day 1"
    assert m["type"] == 2
    assert m["start_time"] == "2030-03-01T09:00:00Z"
    assert m["duration"] == 90
    assert m["timezone"] == "Europe/Berlin"
    assert m["join_url"].startswith(f"http://zoom-sim.test/j/{m['id']}")
    assert m["start_url"].startswith(f"http://zoom-sim.test/s/{m['id']}")
    assert m["settings"]["auto_recording"] == "cloud"
    assert m["settings"]["join_before_host"] is False
    me = (await kit.client.get("/v2/users/me", headers=auth)).json()
    assert m["host_id"] == me["id"]
    got = await kit.client.get(f"/v2/meetings/{m['id']}", headers=auth)
    assert got.status_code == 200
    assert got.json()["join_url"] == m["join_url"]


async def test_local_start_time_is_read_in_the_meeting_timezone(kit: Any) -> None:
    auth = await kit.auth()
    m = await kit.create_meeting(auth, start_time="2030-07-01T10:00:00", timezone="Europe/Berlin")
    assert m["start_time"] == "2030-07-01T08:00:00Z"


async def test_create_for_user_by_id_or_email(kit: Any) -> None:
    auth = await kit.auth()
    me = (await kit.client.get("/v2/users/me", headers=auth)).json()
    for ref in (me["id"], me["email"]):
        r = await kit.client.post(f"/v2/users/{ref}/meetings", headers=auth, json={"topic": "x"})
        assert r.status_code == 201
    r = await kit.client.post("/v2/users/nobody/meetings", headers=auth, json={"topic": "x"})
    assert r.status_code == 404
    assert r.json()["code"] == 1001


async def test_validation_errors_are_zoom_shaped(kit: Any) -> None:
    auth = await kit.auth()
    r = await kit.client.post(
        "/v2/users/me/meetings", headers=auth, json={"topic": "x", "duration": -5}
    )
    assert r.status_code == 400
    body = r.json()
    assert body["code"] == 300
    assert body["message"] == "Validation Failed."
    assert body["errors"][0]["field"] == "duration"
    r = await kit.client.post(
        "/v2/users/me/meetings", headers=auth, json={"settings": {"auto_recording": "tape"}}
    )
    assert r.status_code == 400
    r = await kit.client.post(
        "/v2/users/me/meetings",
        headers={**auth, "content-type": "application/json"},
        content=b"{not json",
    )
    assert r.status_code == 400
    assert r.json()["code"] == 300


async def test_patch_updates_and_answers_204(kit: Any) -> None:
    auth = await kit.auth()
    m = await kit.create_meeting(auth)
    r = await kit.client.patch(
        f"/v2/meetings/{m['id']}",
        headers=auth,
        json={
            "start_time": "2030-03-02T10:30:00Z",
            "duration": 45,
            "settings": {"waiting_room": True},
        },
    )
    assert r.status_code == 204
    assert r.content == b""
    got = (await kit.client.get(f"/v2/meetings/{m['id']}", headers=auth)).json()
    assert got["start_time"] == "2030-03-02T10:30:00Z"
    assert got["duration"] == 45
    assert got["topic"] == "Day 1"
    assert got["settings"]["waiting_room"] is True
    assert got["settings"]["auto_recording"] == "cloud"


async def test_delete_then_404_with_zoom_body(kit: Any) -> None:
    auth = await kit.auth()
    m = await kit.create_meeting(auth)
    r = await kit.client.delete(f"/v2/meetings/{m['id']}", headers=auth)
    assert r.status_code == 204
    for method in ("GET", "PATCH", "DELETE"):
        kwargs: dict[str, Any] = {"json": {"topic": "y"}} if method == "PATCH" else {}
        r = await kit.client.request(method, f"/v2/meetings/{m['id']}", headers=auth, **kwargs)
        assert r.status_code == 404
        assert r.json() == {"code": 3001, "message": f"Meeting does not exist: {m['id']}."}
    r = await kit.client.get("/v2/meetings/12345678901", headers=auth)
    assert r.status_code == 404
    assert r.json()["code"] == 3001

    listing = (await kit.client.get("/_sim/meetings")).json()
    assert [(x["id"], x["deleted"]) for x in listing] == [(m["id"], True)]
    assert set(listing[0]) >= {"id", "topic", "start_time", "duration", "timezone", "join_url"}


async def test_list_meetings_paginates(kit: Any) -> None:
    auth = await kit.auth()
    ids = [(await kit.create_meeting(auth, topic=f"T{i}"))["id"] for i in range(3)]
    first = (await kit.client.get("/v2/users/me/meetings?page_size=2", headers=auth)).json()
    assert first["total_records"] == 3
    assert len(first["meetings"]) == 2
    token = first["next_page_token"]
    second = await kit.client.get(
        "/v2/users/me/meetings", params={"page_size": 2, "next_page_token": token}, headers=auth
    )
    body = second.json()
    assert body["next_page_token"] == ""
    assert [x["id"] for x in first["meetings"] + body["meetings"]] == ids


async def test_call_log_records_api_calls(kit: Any) -> None:
    auth = await kit.auth()
    m = await kit.create_meeting(auth)
    await kit.client.delete(f"/v2/meetings/{m['id']}", headers=auth)
    await kit.client.get("/_sim/meetings")  # control calls are not logged
    calls = (await kit.client.get("/_sim/calls")).json()
    assert [(c["method"], c["path"], c["status"]) for c in calls] == [
        ("POST", "/oauth/token", 200),
        ("POST", "/v2/users/me/meetings", 201),
        ("DELETE", f"/v2/meetings/{m['id']}", 204),
    ]
    creates = [c for c in calls if c["method"] == "POST" and c["path"].endswith("/meetings")]
    assert len(creates) == 1


async def test_reset_clears_everything(kit: Any) -> None:
    auth = await kit.auth()
    await kit.create_meeting(auth)
    assert (await kit.client.post("/_sim/reset")).status_code == 200
    assert (await kit.client.get("/_sim/meetings")).json() == []
    assert (await kit.client.get("/_sim/calls")).json() == []
    assert (await kit.client.get("/v2/users/me", headers=auth)).status_code == 401


async def test_health(kit: Any) -> None:
    r = await kit.client.get("/health/live")
    assert r.status_code == 200
    assert r.json() == {"status": "ok"}


async def test_get_meeting_hands_out_a_fresh_start_url_that_expires(kit: Any) -> None:
    """Zoom's start_url carries a host key (zak) that expires after about 2 hours; GET
    /v2/meetings/{id} gives a new one."""
    now = [dt.datetime.now(dt.UTC)]
    kit.app.state.sim.clock = lambda: now[0]
    c = kit.client
    auth = await kit.auth()
    created = await kit.create_meeting(auth)
    assert (await c.get(created["start_url"])).status_code == 200
    now[0] += dt.timedelta(hours=2, seconds=1)
    assert (await c.get(created["start_url"])).status_code == 401  # expired
    auth = await kit.auth()  # (the access token expired too)
    fresh = (await c.get(f"/v2/meetings/{created['id']}", headers=auth)).json()["start_url"]
    assert fresh != created["start_url"]
    assert fresh.startswith(f"http://zoom-sim.test/s/{created['id']}?zak=")
    assert (await c.get(fresh)).status_code == 200
    again = (await c.get(f"/v2/meetings/{created['id']}", headers=auth)).json()["start_url"]
    assert again != fresh
    other = await kit.create_meeting(auth)
    wrong_meeting = fresh.replace(f"/s/{created['id']}", f"/s/{other['id']}")
    assert (await c.get(wrong_meeting)).status_code == 401


async def test_daily_limit_of_meeting_creates_and_updates_per_user(new_sim: Any) -> None:
    """Zoom: 100 creates and 100 updates per user per UTC day (lowered to 2 here), then 429
    with X-RateLimit-Type: Daily-limit and Retry-After at the next 00:00 UTC."""
    now = [dt.datetime(2026, 12, 2, 22, 15, tzinfo=dt.UTC)]
    async with new_sim(meeting_daily_limit=2) as kit:
        kit.app.state.sim.clock = lambda: now[0]
        auth = await kit.auth()
        made = [await kit.create_meeting(auth, topic=f"T{n}") for n in range(2)]
        r = await kit.client.post("/v2/users/me/meetings", headers=auth, json={"topic": "x"})
        assert r.status_code == 429
        assert r.headers["X-RateLimit-Type"] == "Daily-limit"
        assert r.headers["Retry-After"] == "2026-12-03T00:00:00Z"
        assert r.json() == {
            "code": 429,
            "message": "You have exceeded the daily rate limit (2) of Meeting Create/Update API "
            "requests permitted for this particular user. You may resume these requests at "
            "GMT 00:00:00.",
        }
        # updates have their own quota
        url = f"/v2/meetings/{made[0]['id']}"
        for _ in range(2):
            assert (await kit.client.patch(url, headers=auth, json={"topic": "y"})).status_code == (
                204
            )
        r = await kit.client.patch(url, headers=auth, json={"topic": "z"})
        assert r.status_code == 429
        assert r.headers["X-RateLimit-Type"] == "Daily-limit"
        got = (await kit.client.get(url, headers=auth)).json()
        assert got["topic"] == "y"  # the refused update changed nothing
        # the quota is the user's: another user of the app still can
        other = await kit.auth(sim_user="other@acme.test")
        assert (await kit.create_meeting(other))["id"]
        # and the next UTC day it is back
        now[0] = dt.datetime(2026, 12, 3, 0, 0, 1, tzinfo=dt.UTC)
        auth = await kit.auth()
        assert (await kit.create_meeting(auth))["id"]


def test_zoom_daily_limit_default() -> None:
    assert Settings().meeting_daily_limit == 100


async def test_a_deletion_sends_meeting_deleted_as_zoom_does(kit: Any) -> None:
    """Zoom notifies every deletion (``MeetingDeletedEvent``: ``object.id`` a number, the
    ``operator`` who deleted it), an app's own API call as much as a host in the web portal."""
    auth = await kit.auth()
    me = (await kit.client.get("/v2/users/me", headers=auth)).json()
    by_api = await kit.create_meeting(auth)
    in_portal = await kit.create_meeting(auth)
    deleted = await kit.client.delete(f"/v2/meetings/{by_api['id']}", headers=auth)
    assert deleted.status_code == 204
    answer = (await kit.client.post(f"/_sim/meetings/{in_portal['id']}/delete")).json()
    assert answer["meeting_id"] == in_portal["id"]
    assert answer["webhook_status"] == 200
    for _ in range(100):  # the API's deletion notifies in the background
        if len(kit.receiver.received) == 2:
            break
        await asyncio.sleep(0.01)
    bodies = sorted((r.body for r in kit.receiver.received), key=lambda b: b["event_ts"])
    assert [b["event"] for b in bodies] == ["meeting.deleted", "meeting.deleted"]
    for body, meeting in zip(bodies, (by_api, in_portal), strict=True):
        payload = body["payload"]
        assert payload["account_id"] == me["account_id"]
        assert payload["operator"] == me["email"]
        assert payload["operator_id"] == me["id"]
        obj = payload["object"]
        assert obj["id"] == meeting["id"]
        assert isinstance(obj["id"], int)
        assert obj["uuid"] == meeting["uuid"]
        assert obj["host_id"] == me["id"]
        assert obj["start_time"] == meeting["start_time"]
    assert all(r.signature_ok for r in kit.receiver.received)
    # in the trash: the API no longer finds it, and it cannot be deleted twice
    got = await kit.client.get(f"/v2/meetings/{in_portal['id']}", headers=auth)
    assert got.status_code == 404
    assert (await kit.client.post(f"/_sim/meetings/{in_portal['id']}/delete")).status_code == 404


async def test_a_meeting_recovered_from_the_trash_answers_again(kit: Any) -> None:
    """A host takes a deleted meeting back out of Zoom's trash (Recently Deleted): the API
    finds it again, same id and links, and ``meeting.recovered`` is sent
    (``MeetingRecoveredEvent``: ``object.id`` a number, the host as operator). A meeting not in
    the trash cannot be recovered."""
    auth = await kit.auth()
    me = (await kit.client.get("/v2/users/me", headers=auth)).json()
    m = await kit.create_meeting(auth)
    assert (await kit.client.post(f"/_sim/meetings/{m['id']}/recover")).status_code == 409
    await kit.client.post(f"/_sim/meetings/{m['id']}/delete")
    answer = (await kit.client.post(f"/_sim/meetings/{m['id']}/recover")).json()
    assert answer["webhook_status"] == 200
    got = await kit.client.get(f"/v2/meetings/{m['id']}", headers=auth)
    assert got.status_code == 200
    assert got.json()["join_url"] == m["join_url"]
    bodies = await _received(kit, 2)
    assert [b["event"] for b in bodies] == ["meeting.deleted", "meeting.recovered"]
    payload = bodies[1]["payload"]
    assert payload["operator_id"] == me["id"]
    assert payload["object"]["id"] == m["id"]
    assert isinstance(payload["object"]["id"], int)
    assert payload["object"]["start_time"] == m["start_time"]
    assert (await kit.client.post(f"/_sim/meetings/{m['id']}/recover")).status_code == 409


async def test_a_meeting_deleted_for_good_is_found_by_nothing(kit: Any) -> None:
    """The host empties a deleted meeting out of Zoom's trash ("Delete permanently"; Zoom does
    it after 7 days): ``meeting.permanently_deleted`` is sent
    (``MeetingPermanentlyDeletedEvent``, shaped as the deletion), and nothing finds it any
    more, a recovery included. Only a meeting in the trash can be emptied out of it."""
    auth = await kit.auth()
    m = await kit.create_meeting(auth)
    assert (await kit.client.post(f"/_sim/meetings/{m['id']}/purge")).status_code == 409
    await kit.client.post(f"/_sim/meetings/{m['id']}/delete")
    answer = (await kit.client.post(f"/_sim/meetings/{m['id']}/purge")).json()
    assert answer["webhook_status"] == 200
    bodies = await _received(kit, 2)
    assert [b["event"] for b in bodies] == ["meeting.deleted", "meeting.permanently_deleted"]
    assert bodies[1]["payload"]["object"]["id"] == m["id"]
    assert bodies[1]["payload"]["object"]["uuid"] == bodies[0]["payload"]["object"]["uuid"]
    for tried in ("recover", "purge", "delete"):
        assert (await kit.client.post(f"/_sim/meetings/{m['id']}/{tried}")).status_code == 404
    listed = {x["id"]: x for x in (await kit.client.get("/_sim/meetings")).json()}
    assert (listed[m["id"]]["deleted"], listed[m["id"]]["purged"]) == (True, True)


async def _received(kit: Any, count: int) -> list[dict[str, Any]]:
    for _ in range(100):  # the API's notifications go out in the background
        if len(kit.receiver.received) >= count:
            break
        await asyncio.sleep(0.01)
    return [r.body for r in kit.receiver.received]


async def test_an_update_sends_meeting_updated_with_what_changed(kit: Any) -> None:
    """``MeetingUpdatedEvent``: ``object`` holds the id (a number) and the changed fields,
    ``old_object`` what they were; the app's own patches notify as the host's edits do."""
    auth = await kit.auth()
    me = (await kit.client.get("/v2/users/me", headers=auth)).json()
    m = await kit.create_meeting(auth)
    patch = {"topic": "Day 1", "duration": 45, "settings": {"auto_recording": "none"}}
    r = await kit.client.patch(f"/v2/meetings/{m['id']}", headers=auth, json=patch)
    assert r.status_code == 204
    [by_api] = await _received(kit, 1)
    assert by_api["event"] == "meeting.updated"
    payload = by_api["payload"]
    assert (payload["operator"], payload["operator_id"]) == (me["email"], me["id"])
    assert payload["object"] == {
        "id": m["id"],
        "uuid": m["uuid"],
        "duration": 45,
        "settings": {"auto_recording": "none"},
    }
    assert payload["old_object"] == {
        "id": m["id"],
        "uuid": m["uuid"],
        "duration": 90,
        "settings": {"auto_recording": "cloud"},
    }
    edit = {"start_time": "2030-03-01T11:00:00Z", "agenda": "mine now"}
    answer = (await kit.client.post(f"/_sim/meetings/{m['id']}/update", json=edit)).json()
    assert answer["webhook_status"] == 200
    assert answer["changed"] == edit
    by_host = (await _received(kit, 2))[1]["payload"]
    assert by_host["object"] == {"id": m["id"], "uuid": m["uuid"], **edit}
    assert by_host["old_object"]["start_time"] == "2030-03-01T09:00:00Z"
    got = (await kit.client.get(f"/v2/meetings/{m['id']}", headers=auth)).json()
    assert (got["start_time"], got["agenda"]) == (edit["start_time"], "mine now")
    assert got["duration"] == 45
