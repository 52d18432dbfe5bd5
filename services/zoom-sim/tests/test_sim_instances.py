"""Meeting instances (each holding of a meeting has its own uuid, and its participants are
numbered from 16778240), guests, the waiting room, the order of the end's webhooks, and the
participant reports per instance (paging, Zoom's double-encoding rule for UUIDs)."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

from te_testing.polling import eventually

ZOOM_UUID = re.compile(r"[A-Za-z0-9+/]{22}==")


def instance_ref(uuid: str) -> str:
    """A meeting uuid in a path, as Zoom asks: encoded twice when it starts with ``/`` or has
    ``//`` in it (a random uuid does, now and then), once otherwise."""
    once = quote(uuid, safe="")
    return quote(once, safe="") if uuid.startswith("/") or "//" in uuid else once


def _t(hhmm: str) -> str:
    return f"2030-03-01T{hhmm}:00Z"


async def _post(kit: Any, mid: int, action: str, **body: Any) -> dict[str, Any]:
    r = await kit.client.post(f"/_sim/meetings/{mid}/{action}", json=body)
    assert r.status_code == 200, r.text
    data: dict[str, Any] = r.json()
    return data


async def _report(kit: Any, auth: dict[str, str], ref: str, **params: Any) -> Any:
    return await kit.client.get(
        f"/v2/report/meetings/{ref}/participants", headers=auth, params=params
    )


def _participants(kit: Any, event: str) -> list[dict[str, Any]]:
    return [
        r.body["payload"]["object"]["participant"]
        for r in kit.receiver.received
        if r.body["event"] == event
    ]


async def test_each_end_closes_an_instance_and_the_next_join_opens_a_new_one(kit: Any) -> None:
    auth = await kit.auth()
    m = await kit.create_meeting(auth)
    mid = m["id"]
    ann = await _post(kit, mid, "join", email="ann@acme.test", name="Ann", at=_t("09:00"))
    bob = await _post(kit, mid, "join", email="bob@acme.test", name="Bob", at=_t("09:01"))
    assert (ann["user_id"], bob["user_id"]) == ("16778240", "16779264")
    assert ann["uuid"] == bob["uuid"] == m["uuid"]  # the first instance: the uuid Zoom gave
    await _post(kit, mid, "leave", email="ann@acme.test", at=_t("09:10"))
    again = await _post(kit, mid, "join", email="ann@acme.test", at=_t("09:20"))
    assert again["user_id"] == "16780288"  # a rejoin is a new stay, with a new user_id
    assert again["participant"]["participant_uuid"] == ann["participant"]["participant_uuid"]
    end = await _post(kit, mid, "end", at=_t("10:00"))
    assert end["uuid"] == m["uuid"]

    shown = (await kit.client.get(f"/v2/meetings/{mid}", headers=auth)).json()
    assert shown["uuid"] != m["uuid"]  # the next instance's
    assert shown["status"] == "waiting"

    cid = await _post(kit, mid, "join", email="cid@acme.test", at=_t("11:00"))
    assert cid["user_id"] == "16778240"  # numbered again: Ann's user_id in the first instance
    assert cid["uuid"] == shown["uuid"]
    assert ZOOM_UUID.fullmatch(cid["uuid"])
    assert ZOOM_UUID.fullmatch(m["uuid"])
    assert (await kit.client.get(f"/v2/meetings/{mid}", headers=auth)).json()["status"] == (
        "started"
    )
    await _post(kit, mid, "end", at=_t("12:00"))

    for received in kit.receiver.received:
        obj = received.body["payload"]["object"]
        assert obj["id"] == str(mid)
    ended = [
        r.body["payload"]["object"] for r in kit.receiver.received if "ended" in r.body["event"]
    ]
    assert [(o["uuid"], o["start_time"], o["end_time"]) for o in ended] == [
        (m["uuid"], _t("09:00"), _t("10:00")),
        (cid["uuid"], _t("11:00"), _t("12:00")),
    ]

    # a meeting id means the latest instance; a UUID names one
    latest = (await _report(kit, auth, str(mid))).json()
    assert [(p["user_email"], p["user_id"]) for p in latest["participants"]] == [
        ("cid@acme.test", "16778240")
    ]
    first = (await _report(kit, auth, instance_ref(m["uuid"]))).json()
    assert [(p["name"], p["user_id"], p["duration"]) for p in first["participants"]] == [
        ("Ann", "16778240", 600),
        ("Bob", "16779264", 59 * 60),
        ("ann", "16780288", 40 * 60),
    ]
    instances = (await kit.client.get(f"/v2/past_meetings/{mid}/instances", headers=auth)).json()
    assert instances == {
        "meetings": [
            {"uuid": m["uuid"], "start_time": _t("09:00")},
            {"uuid": cid["uuid"], "start_time": _t("11:00")},
        ]
    }
    past = (await kit.client.get(f"/v2/past_meetings/{mid}/participants", headers=auth)).json()
    (row,) = past["participants"]
    assert row["user_email"] == "cid@acme.test"
    assert row["registrant_id"] == ""
    assert row["status"] == "in_meeting"
    listing = (await kit.client.get("/_sim/meetings")).json()[0]
    assert [i["uuid"] for i in listing["instances"]] == [m["uuid"], cid["uuid"]]


async def test_guests_have_empty_email_and_id(kit: Any) -> None:
    auth = await kit.auth()
    m = await kit.create_meeting(auth)
    mid = m["id"]
    g1 = await _post(kit, mid, "join", at=_t("09:00"))
    kim = await _post(kit, mid, "join", name="Kim", at=_t("09:01"))
    out = await _post(kit, mid, "join", email="ext@other.test", guest=True, at=_t("09:02"))
    host = await _post(kit, mid, "join", email="host@zoom-sim.local", at=_t("09:03"))
    assert g1["participant"]["name"] == "Guest 1"
    assert kim["participant"]["name"] == "Kim"
    assert (out["participant"]["email"], out["participant"]["id"]) == ("ext@other.test", "")
    assert host["participant"]["id"] == m["host_id"]  # signed in: the Zoom user id
    joined = _participants(kit, "meeting.participant_joined")
    assert [(p["user_name"], p["email"], p["id"]) for p in joined[:2]] == [
        ("Guest 1", "", ""),
        ("Kim", "", ""),
    ]
    assert "participant_user_id" not in joined[0]
    assert joined[0]["participant_uuid"]
    assert joined[0]["participant_uuid"] != joined[1]["participant_uuid"]
    assert joined[3]["participant_user_id"] == m["host_id"]
    r = await kit.client.post(f"/_sim/meetings/{mid}/leave", json={"at": _t("09:30")})
    assert r.status_code == 422  # a user_id or an email
    await _post(kit, mid, "leave", user_id=g1["user_id"], at=_t("09:30"))
    await _post(kit, mid, "leave", user_id=kim["user_id"], at=_t("09:31"))
    left = _participants(kit, "meeting.participant_left")
    assert [(p["user_id"], p["email"], p["id"]) for p in left] == [
        (g1["user_id"], "", ""),
        (kim["user_id"], "", ""),
    ]
    await _post(kit, mid, "end", at=_t("10:00"))
    rows = (await _report(kit, auth, str(mid))).json()["participants"]
    assert [(r["name"], r["user_email"], r["id"]) for r in rows] == [
        ("Guest 1", "", ""),
        ("Kim", "", ""),
        ("ext", "ext@other.test", ""),
        ("host", "host@zoom-sim.local", m["host_id"]),
    ]


async def test_waiting_room_then_admit(kit: Any) -> None:
    auth = await kit.auth()
    m = await kit.create_meeting(auth)
    mid = m["id"]
    wes = await _post(kit, mid, "join", email="wes@acme.test", waiting_room=True, at=_t("09:00"))
    assert wes["participant"]["status"] == "in_waiting_room"
    assert wes["webhook_status"] == 200
    (entered,) = _participants(kit, "meeting.participant_joined_waiting_room")
    assert entered["date_time"] == _t("09:00")
    assert "join_time" not in entered
    assert not _participants(kit, "meeting.participant_joined")  # not in the meeting yet

    admitted = await _post(kit, mid, "admit", user_id=wes["user_id"], at=_t("09:05"))
    assert admitted["user_id"] == wes["user_id"]
    assert [d["event"] for d in admitted["deliveries"]] == [
        "meeting.participant_admitted",
        "meeting.participant_joined",
    ]
    (joined,) = _participants(kit, "meeting.participant_joined")
    assert joined["join_time"] == _t("09:05")
    assert joined["user_id"] == wes["user_id"]
    r = await kit.client.post(f"/_sim/meetings/{mid}/admit", json={"user_id": wes["user_id"]})
    assert r.status_code == 409  # not in the waiting room any more

    # someone who gives up waiting leaves the waiting room, not the meeting
    val = await _post(kit, mid, "join", email="val@acme.test", waiting_room=True, at=_t("09:10"))
    gone = await _post(kit, mid, "leave", user_id=val["user_id"], at=_t("09:12"))
    assert gone["webhook"]["event"] == "meeting.participant_left_waiting_room"
    await _post(kit, mid, "leave", email="wes@acme.test", at=_t("09:30"))
    await _post(kit, mid, "end", at=_t("10:00"))
    rows = (await _report(kit, auth, str(mid))).json()["participants"]
    assert [(r["user_email"], r["status"], r["join_time"], r["duration"]) for r in rows] == [
        ("wes@acme.test", "in_waiting_room", _t("09:00"), 300),
        ("wes@acme.test", "in_meeting", _t("09:05"), 25 * 60),
        ("val@acme.test", "in_waiting_room", _t("09:10"), 120),
    ]


async def test_meeting_ended_can_come_before_the_leaves(kit: Any) -> None:
    auth = await kit.auth()
    m = await kit.create_meeting(auth)
    mid = m["id"]
    await _post(kit, mid, "join", email="a@acme.test", at=_t("09:00"))
    await _post(kit, mid, "join", email="b@acme.test", at=_t("09:00"))
    end = await _post(kit, mid, "end", at=_t("10:00"), before_leaves=True)
    assert end["webhook"]["event"] == "meeting.ended"
    assert end["webhook_status"] == 200
    assert kit.receiver.events()[2:] == [
        "meeting.ended",
        "meeting.participant_left",
        "meeting.participant_left",
    ]


async def test_a_held_back_leave_arrives_after_the_end(kit: Any) -> None:
    auth = await kit.auth()
    m = await kit.create_meeting(auth)
    mid = m["id"]
    await _post(kit, mid, "join", email="a@acme.test", at=_t("09:00"))
    left = await _post(kit, mid, "leave", email="a@acme.test", at=_t("09:50"), delay_ms=150)
    assert left["webhook_status"] is None
    assert left["webhook"]["state"] == "scheduled"
    await _post(kit, mid, "end", at=_t("10:00"))

    async def received() -> int:
        return len(kit.receiver.received)

    await eventually(received, lambda n: n == 3, timeout=2, interval=0.02, what="3 webhooks")
    assert kit.receiver.events() == [
        "meeting.participant_joined",
        "meeting.ended",
        "meeting.participant_left",
    ]


async def test_a_uuid_beginning_with_a_slash_must_be_double_encoded(kit: Any) -> None:
    auth = await kit.auth()
    m = await kit.create_meeting(auth)
    mid = m["id"]
    odd = "/xY3+ab//Qk9Pt0uNvw1AB=="
    assert ZOOM_UUID.fullmatch(odd)
    joined = await _post(kit, mid, "join", email="a@acme.test", at=_t("09:00"), instance_uuid=odd)
    assert joined["uuid"] == odd
    await _post(kit, mid, "end", at=_t("10:00"))
    await _post(kit, mid, "join", email="b@acme.test", at=_t("11:00"))  # a later instance

    once = await _report(kit, auth, quote(odd, safe=""))
    assert once.status_code == 404
    assert once.json()["code"] == 3001
    twice = await _report(kit, auth, quote(quote(odd, safe=""), safe=""))
    assert twice.status_code == 200, twice.text
    assert [p["user_email"] for p in twice.json()["participants"]] == ["a@acme.test"]
    past = await kit.client.get(
        f"/v2/past_meetings/{quote(quote(odd, safe=''), safe='')}/participants", headers=auth
    )
    assert [p["user_email"] for p in past.json()["participants"]] == ["a@acme.test"]
    # a UUID with no leading or double slash works encoded once
    plain = "ab/cd+ef0123456789ABCD=="
    await _post(kit, mid, "end", at=_t("12:00"))
    await _post(kit, mid, "join", email="c@acme.test", at=_t("13:00"), instance_uuid=plain)
    await _post(kit, mid, "end", at=_t("14:00"))
    r = await _report(kit, auth, quote(plain, safe=""))
    assert [p["user_email"] for p in r.json()["participants"]] == ["c@acme.test"]


async def test_report_pages_default_30_at_most_300(kit: Any) -> None:
    auth = await kit.auth()
    m = await kit.create_meeting(auth)
    mid = m["id"]
    for n in range(35):
        await _post(kit, mid, "join", name=f"G{n:02d}", at=_t("09:00"))
    await _post(kit, mid, "end", at=_t("10:00"))
    first = (await _report(kit, auth, str(mid))).json()
    assert (first["page_size"], first["total_records"], first["page_count"]) == (30, 35, 2)
    assert len(first["participants"]) == 30
    rest = (await _report(kit, auth, str(mid), next_page_token=first["next_page_token"])).json()
    assert len(rest["participants"]) == 5
    assert rest["next_page_token"] == ""
    big = (await _report(kit, auth, str(mid), page_size=1000)).json()
    assert big["page_size"] == 300
    assert len(big["participants"]) == 35


async def test_report_of_a_meeting_never_held_is_not_found(kit: Any) -> None:
    auth = await kit.auth()
    m = await kit.create_meeting(auth)
    r = await _report(kit, auth, str(m["id"]))
    assert r.status_code == 404
    assert r.json()["code"] == 3001
    # ending a meeting nobody joined holds an (empty) instance
    await _post(kit, m["id"], "end", at=_t("10:00"))
    r = await _report(kit, auth, str(m["id"]))
    assert r.json()["participants"] == []
