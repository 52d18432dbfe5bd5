"""Signed webhooks, attendance (joins, leaves, rejoins, end), the participants report,
recordings, URL validation and deauthorization."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any
from urllib.parse import quote

import httpx
from fastapi import FastAPI, Request

from te_testing.servers import served
from zoom_sim.app import create_app
from zoom_sim.settings import Settings
from zoom_sim.webhooks import sign


def test_sign_matches_zoom_recipe() -> None:
    body = b'{"event":"x"}'
    expected = hmac.new(b"secret", b'v0:1700000000:{"event":"x"}', hashlib.sha256).hexdigest()
    assert sign("secret", "1700000000", body) == "v0=" + expected


async def test_join_leave_rejoin_end_and_report(kit: Any) -> None:
    auth = await kit.auth()
    m = await kit.create_meeting(auth)
    mid = m["id"]
    steps = [
        ("join", {"email": "ann@acme.test", "name": "Ann", "at": "2030-03-01T09:00:00Z"}),
        ("join", {"email": "bob@acme.test", "name": "Bob", "at": "2030-03-01T09:05:00Z"}),
        ("leave", {"email": "ann@acme.test", "at": "2030-03-01T09:20:00Z"}),
        ("join", {"email": "ann@acme.test", "name": "Ann", "at": "2030-03-01T09:30:00Z"}),
        ("leave", {"email": "ann@acme.test", "at": "2030-03-01T09:40:30Z"}),
    ]
    for action, body in steps:
        r = await kit.client.post(f"/_sim/meetings/{mid}/{action}", json=body)
        assert r.status_code == 200, r.text
        assert r.json()["webhook_status"] == 200

    # Bob is still in: the report lists only finished sessions.
    report = await kit.client.get(f"/v2/report/meetings/{mid}/participants", headers=auth)
    assert report.status_code == 200
    assert [p["name"] for p in report.json()["participants"]] == ["Ann", "Ann"]

    r = await kit.client.post(f"/_sim/meetings/{mid}/end", json={"at": "2030-03-01T10:00:00Z"})
    assert r.status_code == 200
    end = r.json()
    assert end["webhook_status"] == 200
    assert [d["event"] for d in end["deliveries"]] == ["meeting.participant_left", "meeting.ended"]

    assert kit.receiver.events() == [
        "meeting.participant_joined",
        "meeting.participant_joined",
        "meeting.participant_left",
        "meeting.participant_joined",
        "meeting.participant_left",
        "meeting.participant_left",
        "meeting.ended",
    ]
    for received in kit.receiver.received:
        assert received.signature_ok
        ts = int(received.headers["x-zm-request-timestamp"])
        assert abs(ts - time.time()) < 5
        assert received.headers["x-zm-signature"].startswith("v0=")
        assert received.body["payload"]["account_id"] == "acctTEST"
        assert isinstance(received.body["event_ts"], int)
        assert received.body["payload"]["object"]["id"] == str(mid)
        assert received.body["payload"]["object"]["uuid"] == m["uuid"]

    joined = kit.receiver.received[0].body["payload"]["object"]
    assert joined["host_id"] == m["host_id"]
    assert joined["topic"] == "Day 1"
    p = joined["participant"]
    assert p["email"] == "ann@acme.test"
    assert p["user_name"] == "Ann"
    assert p["join_time"] == "2030-03-01T09:00:00Z"
    assert p["user_id"]
    assert p["participant_user_id"] == p["id"]

    left = kit.receiver.received[2].body["payload"]["object"]["participant"]
    assert left["leave_time"] == "2030-03-01T09:20:00Z"
    assert left["email"] == "ann@acme.test"

    ended = kit.receiver.received[-1].body["payload"]["object"]
    assert ended["start_time"] == "2030-03-01T09:00:00Z"
    assert ended["end_time"] == "2030-03-01T10:00:00Z"
    assert ended["duration"] == 90

    report = await kit.client.get(
        f"/v2/report/meetings/{mid}/participants", params={"page_size": 2}, headers=auth
    )
    page1 = report.json()
    assert page1["total_records"] == 3
    assert page1["page_count"] == 2
    assert page1["next_page_token"]
    page2 = (
        await kit.client.get(
            f"/v2/report/meetings/{mid}/participants",
            params={"page_size": 2, "next_page_token": page1["next_page_token"]},
            headers=auth,
        )
    ).json()
    assert page2["next_page_token"] == ""
    rows = page1["participants"] + page2["participants"]
    assert [(r["user_email"], r["duration"]) for r in rows] == [
        ("ann@acme.test", 20 * 60),
        ("bob@acme.test", 55 * 60),
        ("ann@acme.test", 10 * 60 + 30),
    ]
    assert rows[0]["join_time"] == "2030-03-01T09:00:00Z"
    assert rows[0]["leave_time"] == "2030-03-01T09:20:00Z"
    assert rows[0]["name"] == "Ann"
    assert rows[0]["id"]
    assert rows[0]["user_id"]


async def test_control_conflicts_and_unknown_meeting(kit: Any) -> None:
    auth = await kit.auth()
    m = await kit.create_meeting(auth)
    r = await kit.client.post(f"/_sim/meetings/{m['id']}/leave", json={"email": "x@y.z"})
    assert r.status_code == 409
    await kit.client.post(f"/_sim/meetings/{m['id']}/join", json={"email": "x@y.z"})
    r = await kit.client.post(f"/_sim/meetings/{m['id']}/join", json={"email": "x@y.z"})
    assert r.status_code == 409
    r = await kit.client.post("/_sim/meetings/123/join", json={"email": "x@y.z"})
    assert r.status_code == 404


async def test_report_is_for_paid_admins_only(kit: Any) -> None:
    auth = await kit.auth()
    m = await kit.create_meeting(auth)
    await kit.client.post("/_sim/users", json={"email": "host@zoom-sim.local", "type": 1})
    r = await kit.client.get(f"/v2/report/meetings/{m['id']}/participants", headers=auth)
    assert r.status_code == 400
    assert r.json()["code"] == 200
    await kit.client.post(
        "/_sim/users", json={"email": "host@zoom-sim.local", "type": 2, "role_name": "Member"}
    )
    me = (await kit.client.get("/v2/users/me", headers=auth)).json()
    assert (me["type"], me["role_name"]) == (2, "Member")
    r = await kit.client.get(f"/v2/report/meetings/{m['id']}/participants", headers=auth)
    assert r.status_code == 400


async def test_recording_completed_and_recordings_api(kit: Any) -> None:
    auth = await kit.auth()
    m = await kit.create_meeting(auth)
    r = await kit.client.get(f"/v2/meetings/{m['id']}/recordings", headers=auth)
    assert r.status_code == 404
    assert r.json()["code"] == 3301
    await kit.client.post(
        f"/_sim/meetings/{m['id']}/join", json={"email": "a@b.c", "at": "2030-03-01T09:00:00Z"}
    )
    await kit.client.post(f"/_sim/meetings/{m['id']}/end", json={"at": "2030-03-01T10:00:00Z"})
    r = await kit.client.post(f"/_sim/meetings/{m['id']}/recording")
    assert r.status_code == 200
    assert r.json()["webhook_status"] == 200
    sent = kit.receiver.received[-1].body
    assert sent["event"] == "recording.completed"
    assert sent["download_token"]
    obj = sent["payload"]["object"]
    assert obj["id"] == m["id"]  # a number here, unlike the meeting.* events
    assert isinstance(obj["id"], int)
    assert obj["uuid"] == m["uuid"]
    assert obj["topic"] == "Day 1"
    assert obj["recording_play_passcode"]
    assert obj["password"]
    assert obj["recording_count"] == 3
    assert obj["share_url"].startswith("http://zoom-sim.test/rec/share/")
    files = obj["recording_files"]
    assert [(f["file_type"], f["file_extension"], f["recording_type"]) for f in files] == [
        ("MP4", "MP4", "shared_screen_with_speaker_view"),
        ("M4A", "M4A", "audio_only"),
        ("CHAT", "TXT", "chat_file"),
    ]
    assert obj["total_size"] == sum(f["file_size"] for f in files)
    f = files[0]
    assert f["meeting_id"] == m["uuid"]
    assert f["status"] == "completed"
    assert f["recording_start"] == "2030-03-01T09:00:00Z"
    assert f["recording_end"] == "2030-03-01T10:00:00Z"
    assert f["play_url"].startswith("http://zoom-sim.test/rec/play/")
    assert f["download_url"].startswith("http://zoom-sim.test/rec/download/")
    assert f["id"] not in f["play_url"]  # an opaque token, as Zoom's links
    assert (await kit.client.get(f["play_url"])).status_code == 200
    chat = await kit.client.get(files[2]["download_url"])
    assert chat.headers["content-type"].startswith("text/plain")

    api = (await kit.client.get(f"/v2/meetings/{m['id']}/recordings", headers=auth)).json()
    assert [x["id"] for x in api["recording_files"]] == [x["id"] for x in files]
    assert api["recording_play_passcode"] == obj["recording_play_passcode"]

    # Sending again re-delivers the same recording (a duplicate delivery).
    again = await kit.client.post(f"/_sim/meetings/{m['id']}/recording")
    assert [x["id"] for x in again.json()["recording_files"]] == [x["id"] for x in files]


async def test_a_recording_trashed_recovered_and_deleted_notifies_as_zoom_does(
    kit: Any,
) -> None:
    """The host, or the account's retention policy, moves cloud recordings: to the trash
    (``recording.trashed``: the links answer 404, the API no longer lists the files), back
    (``recording.recovered``), or away for good (``recording.deleted``). Each webhook lists
    the files it moved, the host as ``operator`` (``RecordingTrashedEvent`` ...)."""
    auth = await kit.auth()
    me = (await kit.client.get("/v2/users/me", headers=auth)).json()
    m = await kit.create_meeting(auth)
    files = (await kit.client.post(f"/_sim/meetings/{m['id']}/recording")).json()["recording_files"]
    video, audio, chat = files
    base = f"/_sim/meetings/{m['id']}/recording"

    trashed = await kit.client.post(f"{base}/trash", json={"file_ids": [video["id"]]})
    assert trashed.status_code == 200, trashed.text
    sent = kit.receiver.received[-1].body
    assert sent["event"] == "recording.trashed"
    assert (sent["payload"]["operator"], sent["payload"]["operator_id"]) == (me["email"], me["id"])
    obj = sent["payload"]["object"]
    assert (obj["id"], obj["uuid"]) == (m["id"], m["uuid"])
    assert [(f["id"], f["status"]) for f in obj["recording_files"]] == [(video["id"], "trashed")]
    assert (await kit.client.get(video["play_url"])).status_code == 404
    assert (await kit.client.get(video["download_url"])).status_code == 404
    assert (await kit.client.get(audio["play_url"])).status_code == 200
    api = (await kit.client.get(f"/v2/meetings/{m['id']}/recordings", headers=auth)).json()
    assert [f["id"] for f in api["recording_files"]] == [audio["id"], chat["id"]]

    recovered = await kit.client.post(f"{base}/recover")
    assert recovered.status_code == 200
    assert kit.receiver.received[-1].body["event"] == "recording.recovered"
    assert [f["id"] for f in recovered.json()["recording_files"]] == [video["id"]]
    assert (await kit.client.get(video["play_url"])).status_code == 200
    assert (await kit.client.post(f"{base}/recover")).status_code == 409  # none in the trash

    deleted = await kit.client.post(f"{base}/delete")
    assert kit.receiver.received[-1].body["event"] == "recording.deleted"
    assert [f["id"] for f in deleted.json()["recording_files"]] == [f["id"] for f in files]
    assert (await kit.client.get(audio["play_url"])).status_code == 404
    assert (await kit.client.post(f"{base}/trash")).status_code == 409  # nothing left
    other = await kit.create_meeting(auth)
    assert (
        await kit.client.post(f"/_sim/meetings/{other['id']}/recording/trash")
    ).status_code == 404
    assert all(r.signature_ok for r in kit.receiver.received)


async def test_recordings_moved_in_bulk_notify_once_naming_instances(kit: Any) -> None:
    """The host selects several meetings' recordings in Zoom's web portal and trashes,
    recovers or deletes them at once: one webhook names the instances
    (``RecordingBatchTrashedEvent``: ``meeting_uuids``; ``...Recovered``/``...Deleted``:
    ``meetings`` with ``recording_file_ids``), no meeting id, no link; the files move as they
    would one by one."""
    auth = await kit.auth()
    me = (await kit.client.get("/v2/users/me", headers=auth)).json()
    one, two = await kit.create_meeting(auth), await kit.create_meeting(auth)
    files = {}
    for m in (one, two):
        r = await kit.client.post(f"/_sim/meetings/{m['id']}/recording")
        files[m["id"]] = [f["id"] for f in r.json()["recording_files"]]
    both = {"meeting_ids": [str(one["id"]), str(two["id"])]}

    r = await kit.client.post("/_sim/recordings/bulk/trash", json=both)
    assert r.status_code == 200, r.text
    sent = kit.receiver.received[-1].body
    assert sent["event"] == "recording.batch_trashed"
    assert sent["payload"]["operator_id"] == me["id"]
    assert sent["payload"]["object"] == {"meeting_uuids": [one["uuid"], two["uuid"]]}
    listed = await kit.client.get(f"/v2/meetings/{one['id']}/recordings", headers=auth)
    assert listed.json()["recording_files"] == []
    assert (await kit.client.post("/_sim/recordings/bulk/trash", json=both)).status_code == 409

    r = await kit.client.post("/_sim/recordings/bulk/recover", json=both)
    sent = kit.receiver.received[-1].body
    assert sent["event"] == "recording.batch_recovered"
    assert sent["payload"]["object"] == {
        "meetings": [
            {"meeting_uuid": one["uuid"], "recording_file_ids": files[one["id"]]},
            {"meeting_uuid": two["uuid"], "recording_file_ids": files[two["id"]]},
        ]
    }
    listed = await kit.client.get(f"/v2/meetings/{one['id']}/recordings", headers=auth)
    assert [f["id"] for f in listed.json()["recording_files"]] == files[one["id"]]

    r = await kit.client.post(
        "/_sim/recordings/bulk/delete", json={"meeting_ids": [str(two["id"])]}
    )
    assert kit.receiver.received[-1].body["event"] == "recording.batch_deleted"
    without = await kit.create_meeting(auth)
    r = await kit.client.post(
        "/_sim/recordings/bulk/trash", json={"meeting_ids": [str(without["id"])]}
    )
    assert r.status_code == 404
    assert all(r.signature_ok for r in kit.receiver.received)


async def test_recording_links_can_be_on_zooms_host(new_sim: Any) -> None:
    async with new_sim(recording_host="https://us06web.zoom.us/") as kit:
        auth = await kit.auth()
        m = await kit.create_meeting(auth)
        r = await kit.client.post(f"/_sim/meetings/{m['id']}/recording")
        files = r.json()["recording_files"]
        assert all(f["play_url"].startswith("https://us06web.zoom.us/rec/play/") for f in files)
        assert all(
            f["download_url"].startswith("https://us06web.zoom.us/rec/download/") for f in files
        )
        obj = kit.receiver.received[-1].body["payload"]["object"]
        assert obj["share_url"].startswith("https://us06web.zoom.us/rec/share/")
        # the simulator still serves them under its own URL
        token = files[0]["play_url"].rsplit("/", 1)[1]
        assert (await kit.client.get(f"/rec/play/{token}")).status_code == 200


async def test_url_validation_round_trip(kit: Any) -> None:
    r = await kit.client.post("/_sim/webhook/url-validation", json={"plainToken": "abc123"})
    body = r.json()
    assert body["webhook_status"] == 200
    assert body["valid"] is True
    assert body["webhook"]["response"]["plainToken"] == "abc123"
    expected = hmac.new(kit.SECRET.encode(), b"abc123", hashlib.sha256).hexdigest()
    assert body["expected_encryptedToken"] == expected
    sent = kit.receiver.received[-1]
    assert sent.body["event"] == "endpoint.url_validation"
    assert sent.body["payload"] == {"plainToken": "abc123"}
    assert sent.signature_ok


async def test_wrong_secret_on_the_bridge_is_visible(kit: Any) -> None:
    kit.receiver.secret = "another-secret"
    r = await kit.client.post("/_sim/webhook/url-validation")
    assert r.json()["webhook_status"] == 401
    assert r.json()["valid"] is False


async def test_raw_send_with_bad_signature_or_stale_timestamp(kit: Any) -> None:
    r = await kit.client.post(
        "/_sim/webhook/send",
        json={"event": "meeting.ended", "payload": {"account_id": "a"}, "bad_signature": True},
    )
    assert r.json()["webhook_status"] == 401
    r = await kit.client.post(
        "/_sim/webhook/send",
        json={"event": "meeting.ended", "payload": {}, "timestamp_offset_s": -600},
    )
    sent = kit.receiver.received[-1]
    assert sent.signature_ok
    assert int(sent.headers["x-zm-request-timestamp"]) < time.time() - 590


async def test_deauthorize_revokes_tokens_and_notifies(kit: Any) -> None:
    tokens = await kit.connect()
    r = await kit.client.post("/_sim/deauthorize", json={})
    assert r.status_code == 200
    assert r.json()["webhook_status"] == 200
    sent = kit.receiver.received[-1].body
    assert sent["event"] == "app_deauthorized"
    assert set(sent["payload"]) >= {
        "account_id",
        "user_id",
        "client_id",
        "deauthorization_time",
        "signature",
        "user_data_retention",
    }
    assert sent["payload"]["client_id"] == kit.CLIENT_ID
    me = await kit.client.get("/v2/users/me", headers=kit.bearer(tokens["access_token"]))
    assert me.status_code == 401
    r = await kit.client.post(
        "/oauth/token",
        headers=kit.basic(),
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
    )
    assert r.status_code == 400


async def test_bridge_down_is_reported_not_raised() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    app = create_app(Settings(), http_transport=httpx.MockTransport(refuse))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sim") as client:
        r = await client.post(
            "/oauth/token",
            auth=("dev-client-id", "dev-client-secret"),
            data={"grant_type": "account_credentials", "account_id": "zoomSimAccount00000001"},
        )
        auth = {"Authorization": f"Bearer {r.json()['access_token']}"}
        m = (await client.post("/v2/users/me/meetings", headers=auth, json={})).json()
        r = await client.post(f"/_sim/meetings/{m['id']}/join", json={"email": "a@b.c"})
        assert r.status_code == 200
        assert r.json()["webhook_status"] is None
        assert "ConnectError" in r.json()["webhook"]["error"]
        log = (await client.get("/_sim/webhooks")).json()
        assert log[-1]["event"] == "meeting.participant_joined"
        assert log[-1]["status"] is None


async def test_real_http_delivery_to_a_uvicorn_receiver() -> None:
    got: list[tuple[dict[str, str], bytes]] = []
    bridge = FastAPI()

    @bridge.post("/hooks")
    async def hooks(request: Request) -> dict[str, bool]:
        got.append((dict(request.headers), await request.body()))
        return {"ok": True}

    async with served(bridge, lifespan="off") as server:
        settings = Settings(webhook_url=f"{server.url}/hooks", webhook_secret="s3cr3t")
        app = create_app(settings)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://sim") as client:
            r = await client.post("/_sim/webhook/send", json={"event": "ping", "payload": {}})
            assert r.json()["webhook_status"] == 200
        headers, raw = got[0]
        assert json.loads(raw)["event"] == "ping"
        ts = headers["x-zm-request-timestamp"]
        assert headers["x-zm-signature"] == sign("s3cr3t", ts, raw)


async def test_recording_is_refused_when_the_meeting_does_not_record_to_the_cloud(
    kit: Any,
) -> None:
    auth = await kit.auth()
    m = await kit.create_meeting(auth, settings={"auto_recording": "none"})
    sent_before = len(kit.receiver.received)
    r = await kit.client.post(f"/_sim/meetings/{m['id']}/recording")
    assert r.status_code == 409
    assert "auto_recording" in r.json()["detail"]
    assert len(kit.receiver.received) == sent_before  # no recording.completed went out
    local = await kit.create_meeting(auth, settings={"auto_recording": "local"})
    assert (await kit.client.post(f"/_sim/meetings/{local['id']}/recording")).status_code == 409


async def test_webhooks_of_an_s2s_account_are_signed_with_its_app_secret(kit: Any) -> None:
    """A Server-to-Server app signs its account's notifications with its own secret token."""
    await kit.client.post(
        "/_sim/s2s-apps",
        json={
            "client_id": "s2s-hook",
            "client_secret": "s2s-client-secret",
            "account_id": "acctHook",
            "webhook_secret": "per-app-secret",
        },
    )
    r = await kit.client.post(
        "/_sim/webhook/send", json={"event": "meeting.ended", "payload": {"account_id": "acctHook"}}
    )
    assert r.json()["webhook_status"] == 401  # the receiver only knows the OAuth app's secret
    sent = kit.receiver.received[-1]
    assert not sent.signature_ok
    ts = sent.headers["x-zm-request-timestamp"]
    assert sent.headers["x-zm-signature"] == sign("per-app-secret", ts, sent.raw)
    # other accounts still use the OAuth app's secret
    r = await kit.client.post(
        "/_sim/webhook/send", json={"event": "meeting.ended", "payload": {"account_id": "acctTEST"}}
    )
    assert r.json()["webhook_status"] == 200
    # URL validation as that app: encryptedToken with its secret
    kit.receiver.secret = "per-app-secret"
    v = await kit.client.post(
        "/_sim/webhook/url-validation", json={"plainToken": "p1", "account_id": "acctHook"}
    )
    expected = hmac.new(b"per-app-secret", b"p1", hashlib.sha256).hexdigest()
    assert v.json()["expected_encryptedToken"] == expected
    assert v.json()["valid"] is True


async def test_each_instance_has_its_own_recording(kit: Any) -> None:
    auth = await kit.auth()
    m = await kit.create_meeting(auth)
    base = f"/_sim/meetings/{m['id']}"
    first_ids = []
    for hour in (9, 11):
        await kit.client.post(
            f"{base}/join", json={"email": "a@b.c", "at": f"2030-03-01T{hour:02d}:00:00Z"}
        )
        await kit.client.post(f"{base}/end", json={"at": f"2030-03-01T{hour:02d}:30:00Z"})
        r = await kit.client.post(f"{base}/recording")
        first_ids.append(r.json()["recording_files"][0]["id"])
    uuids = [
        r.body["payload"]["object"]["uuid"]
        for r in kit.receiver.received
        if r.body["event"] == "recording.completed"
    ]
    assert uuids[0] == m["uuid"]
    assert uuids[1] != uuids[0]
    assert first_ids[0] != first_ids[1]
    latest = (await kit.client.get(f"/v2/meetings/{m['id']}/recordings", headers=auth)).json()
    assert latest["uuid"] == uuids[1]
    assert latest["start_time"] == "2030-03-01T11:00:00Z"
    quoted = quote(uuids[0], safe="")
    if uuids[0].startswith("/") or "//" in uuids[0]:
        quoted = quote(quoted, safe="")
    older = (await kit.client.get(f"/v2/meetings/{quoted}/recordings", headers=auth)).json()
    assert older["recording_files"][0]["id"] == first_ids[0]
