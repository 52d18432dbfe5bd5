"""R-ZOOM-4 webhooks, R-ZOOM-5/R-ZOOM-2 attendance and R-ZOOM-7 recordings, with the simulator
sending signed webhooks to the bridge over HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from te_shared import contracts as c
from te_testing import messages
from te_testing.clock import iso, minutes_after
from te_testing.infra import use_sqlite
from zoom_bridge.meetings import attendance, jobs, store
from zoom_bridge.meetings.store import MeetingStore
from zoom_bridge.models import (
    AttendanceSegment,
    CompanyReplica,
    RecordingInstance,
    WebhookEvent,
    ZoomAccount,
    ZoomMeeting,
)
from zoom_bridge.settings import ZoomBridgeSettings
from zoom_bridge.webhooks import rules, service

if TYPE_CHECKING:
    from conftest import Env

T0 = dt.datetime(2026, 11, 20, 9, 0, tzinfo=dt.UTC)


async def _day(env: Env, role: str, email: str, *, learners: dict[str, str]) -> tuple[Any, str]:
    key = f"_acct_{role}_{email}"
    if key not in env.overrides:
        env.overrides[key] = await env.connect(role, sim_user=email)
    day = env.day(str(env.overrides[key]))
    for user_id, mail in learners.items():
        await env.publish(env.approved(day, user_id, mail))
    await env.publish(day)
    row = await env.created(day.day_id)
    return day, str(row.zoom_meeting_id)


async def _attendance(env: Env, day_id: uuid.UUID, user_id: str, **match: Any) -> Any:
    async def find() -> dict[str, Any] | None:
        rows = await env.outbox(c.AttendanceRecorded.routing_key, day_id)
        rows = [r for r in rows if r["user_id"] == user_id]
        rows = [r for r in rows if all(r.get(k) == v for k, v in match.items())]
        return rows[-1] if rows else None

    return await env.wait(find)


async def _webhooks(env: Env, event: str, zoom_id: str) -> list[WebhookEvent]:
    factory = env.app.state.runtime.session_factory()
    async with factory() as session:
        rows = (await session.execute(select(WebhookEvent))).scalars().all()
    return [
        r
        for r in rows
        if r.event == event
        and str(((r.body.get("payload") or {}).get("object") or {}).get("id")) == zoom_id
    ]


async def _processed(env: Env, event: str, zoom_id: str) -> list[WebhookEvent]:
    """Wait until the stored webhook(s) of ``event`` for the meeting are processed."""

    async def done() -> list[WebhookEvent] | None:
        rows = await _webhooks(env, event, zoom_id)
        return rows if rows and all(r.processed for r in rows) else None

    found: list[WebhookEvent] = await env.wait(done)
    return found


async def _one_batch(env: Env, bodies: list[dict[str, Any]]) -> list[service.Outcome]:
    """Store ``bodies`` (signed by the OAuth app, received in this order) and process them as
    one batch; the caller has stopped the worker."""
    factory = env.app.state.runtime.session_factory()
    at = dt.datetime.now(dt.UTC)
    async with factory() as session, session.begin():
        await service.store_many(
            session,
            [
                service.Received(b, rules.Signer(app=True), at + dt.timedelta(microseconds=i))
                for i, b in enumerate(bodies)
            ],
        )
    async with factory() as session, session.begin():
        return await service.process_batch(session, env.settings(), 100)


def _hook(
    event: str, zoom_id: str | int, instance: str, n: int, *, ts: int = 1, **extra: Any
) -> dict[str, Any]:
    """A webhook body as Zoom sends it for the meeting ``zoom_id``'s ``instance``; a
    participant's event names participant ``n`` (joined or left ``n`` minutes after T0)."""
    obj: dict[str, Any] = {"id": zoom_id, "uuid": instance, **extra}
    if event.startswith("meeting.participant_"):
        obj["participant"] = {
            "user_id": f"{n}",
            "participant_uuid": f"{instance}-{n}",
            "user_name": f"P{n}",
            "email": f"p{n}@example.com",
            "join_time": iso(minutes_after(T0, n)),
        }
    return {"event": event, "event_ts": ts, "payload": {"object": obj}}


async def test_r_zoom_4_bad_signature_stale_timestamp_and_url_validation(env: Env) -> None:
    async with env.sim() as sim:
        bad = await sim.post(
            "/_sim/webhook/send",
            json={"event": "meeting.ended", "payload": {}, "bad_signature": True},
        )
        assert bad.json()["webhook_status"] == 401
        stale = await sim.post(  # older than Zoom's last retry (85 minutes) and then some
            "/_sim/webhook/send",
            json={"event": "meeting.ended", "payload": {}, "timestamp_offset_s": -6000},
        )
        assert stale.json()["webhook_status"] == 401
        future = await sim.post(
            "/_sim/webhook/send",
            json={"event": "meeting.ended", "payload": {}, "timestamp_offset_s": 400},
        )
        assert future.json()["webhook_status"] == 401
        fresh = await sim.post(
            "/_sim/webhook/send",
            json={"event": "meeting.ended", "payload": {}, "timestamp_offset_s": -200},
        )
        assert fresh.json()["webhook_status"] == 200
        unknown = await sim.post(
            "/_sim/webhook/send", json={"event": "meeting.sharing_started", "payload": {}}
        )
        assert unknown.json()["webhook_status"] == 200
        assert unknown.json()["webhook"]["response"] == {"status": "ignored"}
        validation = await sim.post("/_sim/webhook/url-validation", json={})
        assert validation.json()["valid"] is True
    async with httpx.AsyncClient(base_url=env.bridge_url) as bridge:
        r = await bridge.post("/v1/zoom/webhooks", content=b'{"event":"meeting.ended"}')
        assert r.status_code == 401


async def test_r_zoom_5_administrator_minutes_sum_rejoins_and_reconcile(env: Env) -> None:
    day, zoom_id = await _day(
        env, "administrator", "admin-role@zoom.test", learners={"ann": "Ann@Example.com"}
    )
    async with env.sim() as sim:
        base = f"/_sim/meetings/{zoom_id}"
        await sim.post(
            f"{base}/join", json={"email": "ann@example.com", "at": iso(minutes_after(T0, 0))}
        )
        await sim.post(
            f"{base}/leave", json={"email": "ann@example.com", "at": iso(minutes_after(T0, 10))}
        )
        await sim.post(
            f"{base}/join", json={"email": "ann@example.com", "at": iso(minutes_after(T0, 20))}
        )
        await sim.post(
            f"{base}/join", json={"email": "stranger@example.com", "at": iso(minutes_after(T0, 1))}
        )
        live = await _attendance(env, day.day_id, "ann", minutes=10)
        assert live["joined"] is True
        assert live["final"] is False
        await sim.post(
            f"{base}/leave", json={"email": "ann@example.com", "at": iso(minutes_after(T0, 35))}
        )
        await _attendance(env, day.day_id, "ann", minutes=25)
        await sim.post(f"{base}/end", json={"at": iso(minutes_after(T0, 40))})
    final = await _attendance(env, day.day_id, "ann", final=True)
    assert final["minutes"] == 25
    rows = await env.outbox(c.AttendanceRecorded.routing_key, day.day_id)
    assert {r["user_id"] for r in rows} == {"ann"}  # the stranger matches no platform user


async def test_r_zoom_5_reconciliation_fixes_a_lost_leave_webhook(env: Env) -> None:
    day, zoom_id = await _day(
        env, "administrator", "admin-role@zoom.test", learners={"dee": "dee@example.com"}
    )
    async with env.sim() as sim:
        base = f"/_sim/meetings/{zoom_id}"
        await sim.post(
            f"{base}/join", json={"email": "dee@example.com", "at": iso(minutes_after(T0, 0))}
        )
        await _attendance(env, day.day_id, "dee", minutes=0)
        await sim.patch("/_sim/config", json={"webhook_url": "http://127.0.0.1:9/lost"})
        try:
            await sim.post(
                f"{base}/leave", json={"email": "dee@example.com", "at": iso(minutes_after(T0, 15))}
            )
        finally:
            await sim.patch(
                "/_sim/config", json={"webhook_url": f"{env.bridge_url}/v1/zoom/webhooks"}
            )
        await sim.post(f"{base}/end", json={"at": iso(minutes_after(T0, 20))})
    final = await _attendance(env, day.day_id, "dee", final=True)
    assert final["minutes"] == 15  # from the participants report


async def test_r_zoom_4_duplicate_and_out_of_order_webhooks(env: Env) -> None:
    day, zoom_id = await _day(
        env, "administrator", "admin-role@zoom.test", learners={"bob": "bob@example.com"}
    )
    obj: dict[str, Any] = {"id": zoom_id, "uuid": "u", "topic": "t"}
    who = {"user_id": "9001", "participant_uuid": "p-bob", "email": "bob@example.com"}
    left = {**obj, "participant": {**who, "leave_time": iso(minutes_after(T0, 30))}}
    joined = {**obj, "participant": {**who, "join_time": iso(minutes_after(T0, 5))}}
    async with env.sim() as sim:
        for event, o in (
            ("meeting.participant_left", left),  # leave arrives before its join
            ("meeting.participant_left", left),  # and twice
            ("meeting.participant_joined", joined),
            ("meeting.participant_joined", joined),
        ):
            r = await sim.post(
                "/_sim/webhook/send",
                json={"event": event, "payload": {"account_id": "a", "object": o}},
            )
            assert r.json()["webhook_status"] == 200
    record = await _attendance(env, day.day_id, "bob", minutes=25)
    assert record["joined"] is True
    rows = await env.outbox(c.AttendanceRecorded.routing_key, day.day_id)
    # at most one per distinct delivery (one when both were processed in one batch): the
    # duplicates were absorbed, and the last says what the stay adds up to
    assert 1 <= len(rows) <= 2
    assert rows[-1]["minutes"] == 25


async def test_r_zoom_2_participant_role_records_who_joined_without_minutes(env: Env) -> None:
    day, zoom_id = await _day(
        env, "participant", "free@zoom.test", learners={"cid": "cid@example.com"}
    )
    async with env.sim() as sim:
        base = f"/_sim/meetings/{zoom_id}"
        await sim.post(
            f"{base}/join", json={"email": "cid@example.com", "at": iso(minutes_after(T0, 0))}
        )
        await sim.post(
            f"{base}/leave", json={"email": "cid@example.com", "at": iso(minutes_after(T0, 30))}
        )
    record = await _attendance(env, day.day_id, "cid")
    assert record["joined"] is True
    assert record["minutes"] is None
    async with env.client() as bridge:
        r = await bridge.get(f"/v1/days/{day.day_id}/meeting", headers=env.admin())
        assert "recordings" not in r.json()


async def test_r_zoom_7_recordings_attached_while_training_module_enabled(env: Env) -> None:
    await env.publish(messages.company_settings_changed(version=10, zoom_enabled=True))
    day, zoom_id = await _day(env, "administrator", "admin-role@zoom.test", learners={})
    async with env.sim() as sim:
        r = await sim.post(f"/_sim/meetings/{zoom_id}/recording", json={})
        assert r.json()["webhook_status"] == 200
        sent = r.json()["recording_files"]
        await sim.post(f"/_sim/meetings/{zoom_id}/recording", json={})  # duplicate
        deliveries = (await sim.get("/_sim/webhooks")).json()
    (completed, *_) = [d for d in deliveries if d["event"] == "recording.completed"]
    passcode = completed["body"]["payload"]["object"]["recording_play_passcode"]
    assert passcode
    (available,) = await env.wait(lambda: env.outbox(c.RecordingsChanged.routing_key, day.day_id))
    assert (available["session_id"], available["event_id"]) == (
        str(day.session_id),
        str(day.event_id),
    )
    # an MP4, an audio-only M4A and the chat: typed, each link carrying the passcode
    kinds = {r["file_type"]: r["kind"] for r in available["recordings"]}
    assert kinds == {"MP4": "video", "M4A": "audio", "CHAT": "chat"}
    by_type = {f["file_type"]: f for f in sent}
    for file in available["recordings"]:
        assert file["play_url"] == f"{by_type[file['file_type']]['play_url']}?pwd={passcode}"
    async with env.client() as bridge:
        meeting = (await bridge.get(f"/v1/days/{day.day_id}/meeting", headers=env.admin())).json()
    assert [(r["file_type"], r["kind"]) for r in meeting["recordings"]] == [
        ("MP4", "video"),
        ("M4A", "audio"),
        ("CHAT", "chat"),
    ]
    assert {r["play_url"] for r in meeting["recordings"]} == {
        r["play_url"] for r in available["recordings"]
    }
    assert len(await env.outbox(c.RecordingsChanged.routing_key, day.day_id)) == 1

    # the module is disabled later: what is attached stays, new recordings are not attached
    day2, zoom_id2 = await _day(env, "administrator", "admin-role@zoom.test", learners={})
    assert (await env.sim_meeting(zoom_id2))["settings"]["auto_recording"] == "cloud"
    await env.publish(
        messages.company_settings_changed(
            version=11, zoom_enabled=True, training_module_enabled=False
        )
    )

    async def module_disabled() -> bool:
        factory = env.app.state.runtime.session_factory()
        async with factory() as session:
            company = await session.get(CompanyReplica, "acme")
            return company is not None and not company.training_module_enabled

    await env.wait(module_disabled)
    async with env.sim() as sim:
        r = await sim.post(f"/_sim/meetings/{zoom_id2}/recording", json={})
        assert r.json()["webhook"]["response"] == {"status": "accepted"}
    await _processed(env, "recording.completed", zoom_id2)
    async with env.client() as bridge:
        first = (await bridge.get(f"/v1/days/{day.day_id}/meeting", headers=env.admin())).json()
        assert len(first["recordings"]) == 3
        second = (await bridge.get(f"/v1/days/{day2.day_id}/meeting", headers=env.admin())).json()
        assert second["recordings"] == []
    assert not await env.outbox(c.RecordingsChanged.routing_key, day2.day_id)


async def test_r_zoom_7_recordings_trashed_or_deleted_at_zoom_leave_the_day(env: Env) -> None:
    """A host, or the account's retention policy, trashes a cloud recording at Zoom
    (``recording.trashed``) and its links answer 404: the file leaves the day, announced
    whole (``RecordingsChanged``, one version higher). A recovery brings it back, a deletion
    takes it for good. A trash that was sent before a recovery but delivered after it (Zoom
    delivers in no order) changes nothing: Zoom's ``event_ts`` orders them."""
    await env.publish(messages.company_settings_changed(version=20, zoom_enabled=True))
    day, zoom_id = await _day(env, "administrator", "trash-role@zoom.test", learners={})
    async with env.sim() as sim:
        r = await sim.post(f"/_sim/meetings/{zoom_id}/recording", json={})
        video, audio, chat = r.json()["recording_files"]

    async def announced(version: int) -> dict[str, Any]:
        async def found() -> dict[str, Any] | None:
            rows = await env.outbox(c.RecordingsChanged.routing_key, day.day_id)
            return next((m for m in rows if m["version"] == version), None)

        message: dict[str, Any] = await env.wait(found)
        return message

    async def shown() -> list[str]:
        async with env.client() as bridge:
            r = await bridge.get(f"/v1/days/{day.day_id}/meeting", headers=env.admin())
        return sorted(f["id"] for f in r.json()["recordings"])

    first = await announced(1)
    assert len(first["recordings"]) == 3
    recording = f"/_sim/meetings/{zoom_id}/recording"
    async with env.sim() as sim:
        trashed = await sim.post(f"{recording}/trash", json={"file_ids": [video["id"]]})
        assert trashed.json()["webhook_status"] == 200
    second = await announced(2)
    assert [f["file_type"] for f in second["recordings"]] == ["M4A", "CHAT"]
    assert await shown() == sorted([audio["id"], chat["id"]])

    # the audio's trash is held back; its recovery, sent later, arrives first
    async with env.sim() as sim:
        held = await sim.post(
            f"{recording}/trash", json={"file_ids": [audio["id"]], "delay_ms": 1500}
        )
        assert held.status_code == 200
        await sim.post(f"{recording}/recover", json={"file_ids": [audio["id"]]})

    async def both_trashes() -> bool:
        rows = await _webhooks(env, "recording.trashed", zoom_id)
        return len(rows) == 2 and all(r.processed for r in rows)

    await env.wait(both_trashes, timeout=15)
    assert await shown() == sorted([audio["id"], chat["id"]])
    assert len(await env.outbox(c.RecordingsChanged.routing_key, day.day_id)) == 2

    async with env.sim() as sim:  # the video, still in the trash, and the rest: for good
        await sim.post(f"{recording}/delete")
    third = await announced(3)
    assert third["recordings"] == []
    assert await shown() == []


async def test_r_zoom_7_recordings_moved_in_bulk_at_zoom_leave_and_come_back(env: Env) -> None:
    """A host selects several days' recordings in Zoom's web portal and trashes, recovers or
    deletes them at once: one webhook names the meeting instances and file ids, no meeting id
    and no link (``recording.batch_trashed`` ...). Each day's files leave, come back as they
    were (their links), or go for good, announced whole as one by one."""
    await env.publish(messages.company_settings_changed(version=21, zoom_enabled=True))
    one, one_zoom = await _day(env, "administrator", "bulk@zoom.test", learners={})
    two, two_zoom = await _day(env, "administrator", "bulk@zoom.test", learners={})
    async with env.sim() as sim:
        for zoom_id in (one_zoom, two_zoom):
            await sim.post(f"/_sim/meetings/{zoom_id}/recording", json={})

    async def announced(day_id: uuid.UUID, version: int) -> dict[str, Any]:
        async def found() -> dict[str, Any] | None:
            rows = await env.outbox(c.RecordingsChanged.routing_key, day_id)
            return next((m for m in rows if m["version"] == version), None)

        message: dict[str, Any] = await env.wait(found)
        return message

    shown = {day.day_id: await announced(day.day_id, 1) for day in (one, two)}
    assert all(len(m["recordings"]) == 3 for m in shown.values())
    both = {"meeting_ids": [one_zoom, two_zoom]}
    async with env.sim() as sim:
        r = await sim.post("/_sim/recordings/bulk/trash", json=both)
        assert r.json()["webhook_status"] == 200
    for day in (one, two):
        assert (await announced(day.day_id, 2))["recordings"] == []
    async with env.sim() as sim:
        await sim.post("/_sim/recordings/bulk/recover", json=both)
    for day in (one, two):
        back = await announced(day.day_id, 3)
        assert back["recordings"] == shown[day.day_id]["recordings"]  # the same links
    async with env.sim() as sim:
        await sim.post("/_sim/recordings/bulk/delete", json={"meeting_ids": [two_zoom]})
    assert (await announced(two.day_id, 4))["recordings"] == []
    async with env.client() as bridge:
        r = await bridge.get(f"/v1/days/{one.day_id}/meeting", headers=env.admin())
        assert len(r.json()["recordings"]) == 3
        r = await bridge.get(f"/v1/days/{two.day_id}/meeting", headers=env.admin())
        assert r.json()["recordings"] == []
    row = await env.meeting_row(two.day_id)
    assert row is not None
    assert not row.recordings_trashed  # deleted for good: nothing left to bring back


async def test_r_zoom_7_a_bulk_recovery_delivered_before_the_trash_it_undid_keeps_the_files(
    env: Env,
) -> None:
    """Zoom retries a failed notification for hours: a host's bulk trash is held back, and the
    bulk recovery sent after it (naming files by id only, no links) reaches the bridge first.
    The files are at Zoom: the day keeps showing them, and the late trash changes nothing."""
    await env.publish(messages.company_settings_changed(version=22, zoom_enabled=True))
    day, zoom_id = await _day(env, "administrator", "late-bulk@zoom.test", learners={})
    async with env.sim() as sim:
        await sim.post(f"/_sim/meetings/{zoom_id}/recording", json={})

    async def versions() -> list[int]:
        rows = await env.outbox(c.RecordingsChanged.routing_key, day.day_id)
        return sorted(m["version"] for m in rows)

    await env.wait(lambda: versions_are(versions, [1]))
    before = await env.meeting_row(day.day_id)
    assert before is not None
    shown = sorted(f["id"] for f in before.recordings or [])
    assert len(shown) == 3
    instance = str((before.recordings or [{}])[0]["instance"])
    one = {"meeting_ids": [zoom_id]}
    async with env.sim() as sim:
        held = await sim.post("/_sim/recordings/bulk/trash", json={**one, "delay_ms": 1500})
        assert held.status_code == 200
        recovered = await sim.post("/_sim/recordings/bulk/recover", json=one)
        assert recovered.json()["webhook_status"] == 200

    async def both_processed() -> bool:
        async with env.app.state.runtime.session_factory()() as session:
            rows = (await session.execute(select(WebhookEvent))).scalars().all()
        bulk = [
            r
            for r in rows
            if r.event.startswith("recording.batch_") and instance in json.dumps(r.body)
        ]
        return len(bulk) == 2 and all(r.processed for r in bulk)

    await env.wait(both_processed, timeout=15)
    after = await env.meeting_row(day.day_id)
    assert after is not None
    assert sorted(f["id"] for f in after.recordings or []) == shown
    assert await versions() == [1]  # nothing shown changed: nothing announced
    async with env.client() as bridge:
        r = await bridge.get(f"/v1/days/{day.day_id}/meeting", headers=env.admin())
        assert len(r.json()["recordings"]) == 3


async def test_r_zoom_7_a_late_recovery_sent_before_a_bulk_trash_brings_nothing_back(
    env: Env,
) -> None:
    """A host trashes a file and recovers it (that notification held back, retried later),
    then trashes the whole recording in bulk (``recording.batch_trashed`` names the instance
    only). The late recovery, sent before the bulk trash, must not bring the file back: at
    Zoom it is in the trash. A recovery by id after all that does."""
    zoom_id, shown, showing = await _recorded_day(env, 23, "late-recover@zoom.test")
    files = await shown()
    recording = f"/_sim/meetings/{zoom_id}/recording"
    async with env.sim() as sim:
        trashed = await sim.post(f"{recording}/trash", json={"file_ids": [files[0]]})
        assert trashed.json()["webhook_status"] == 200
        await env.wait(showing(2))
        held = await sim.post(
            f"{recording}/recover", json={"file_ids": [files[0]], "delay_ms": 1500}
        )
        assert held.status_code == 200
        bulk = await sim.post("/_sim/recordings/bulk/trash", json={"meeting_ids": [zoom_id]})
        assert bulk.json()["webhook_status"] == 200
        await env.wait(showing(0))
        await env.wait(lambda: recovery_processed(env, zoom_id), timeout=15)
        assert await shown() == []  # the late recovery brought nothing back
        await sim.post("/_sim/recordings/bulk/recover", json={"meeting_ids": [zoom_id]})
    await env.wait(showing(3))


Check = Callable[[], Awaitable[bool]]


async def _recorded_day(
    env: Env, settings_version: int, host: str
) -> tuple[str, Callable[[], Awaitable[list[str]]], Callable[[int], Check]]:
    """A day of a host with the administrator role whose meeting's recording completed (three
    files, shown): its Zoom meeting id, the file ids the day shows, and a check of how many."""
    await env.publish(
        messages.company_settings_changed(version=settings_version, zoom_enabled=True)
    )
    day, zoom_id = await _day(env, "administrator", host, learners={})
    async with env.sim() as sim:
        await sim.post(f"/_sim/meetings/{zoom_id}/recording", json={})

    async def shown() -> list[str]:
        row = await env.meeting_row(day.day_id)
        return sorted(f["id"] for f in (row.recordings if row else None) or [])

    def showing(n: int) -> Check:
        async def has() -> bool:
            return len(await shown()) == n

        return has

    await env.wait(showing(3))
    return zoom_id, shown, showing


async def recovery_processed(env: Env, zoom_id: str) -> bool:
    rows = await _webhooks(env, "recording.recovered", zoom_id)
    return len(rows) == 1 and all(r.processed for r in rows)


async def test_r_zoom_7_a_file_trashed_again_after_its_recovery_leaves_again(env: Env) -> None:
    """A host trashes a file, recovers it, and trashes it again: Zoom's second
    ``recording.trashed`` carries the same payload as the first, only its ``event_ts`` differs.
    It is a change of its own, not a re-delivery of the first (a retry re-sends the request
    as it was, ``event_ts`` included): the file leaves the day again. Found by the soak, where
    a second bulk recovery of the same meetings was taken for a duplicate."""
    zoom_id, shown, showing = await _recorded_day(env, 24, "trash-again@zoom.test")
    first = (await shown())[0]
    recording = f"/_sim/meetings/{zoom_id}/recording"
    async with env.sim() as sim:
        for action, files_then in (("trash", 2), ("recover", 3), ("trash", 2), ("recover", 3)):
            moved = await sim.post(f"{recording}/{action}", json={"file_ids": [first]})
            assert moved.json()["webhook_status"] == 200
            await env.wait(showing(files_then))
        await sim.post("/_sim/recordings/bulk/trash", json={"meeting_ids": [zoom_id]})
        await env.wait(showing(0))
        for action, files_then in (("recover", 3), ("trash", 0), ("recover", 3)):
            await sim.post(f"/_sim/recordings/bulk/{action}", json={"meeting_ids": [zoom_id]})
            await env.wait(showing(files_then))
    stored = await _webhooks(env, "recording.trashed", zoom_id)
    assert len(stored) == 2  # two trashes, one payload: both stored


async def versions_are(read: Any, want: list[int]) -> bool:
    return bool(await read() == want)


async def test_r_zoom_4_s2s_webhooks_verify_with_the_connections_own_secret_token(
    env: Env,
) -> None:
    """A Server-to-Server app signs its account's webhooks with its own secret token: stored
    (encrypted) with the connection and picked by the webhook's payload.account_id."""
    zoom_account = "s2sAcctHooks"
    app_secret = "s2s-hooks-secret-token"
    async with env.sim() as sim:
        await sim.post(
            "/_sim/s2s-apps",
            json={
                "client_id": "s2s-hooks-id",
                "client_secret": "s2s-hooks-client-secret",
                "account_id": zoom_account,
                "webhook_secret": app_secret,
            },
        )
        ended = {"event": "meeting.ended", "payload": {"account_id": zoom_account}}
        before = await sim.post("/_sim/webhook/send", json=ended)
        assert before.json()["webhook_status"] == 401  # the bridge does not know that secret
    async with env.client() as bridge:
        r = await bridge.post(
            "/v1/zoom/accounts/server-to-server",
            json={
                "zoom_account_id": zoom_account,
                "client_id": "s2s-hooks-id",
                "client_secret": "s2s-hooks-client-secret",
                "role": "administrator",
                "webhook_secret_token": app_secret,
            },
            headers=env.admin(),
        )
        assert r.status_code == 201, r.text
        assert app_secret not in r.text
        account_id = r.json()["id"]
    factory = env.app.state.runtime.session_factory()
    async with factory() as session:
        stored = await session.get(ZoomAccount, uuid.UUID(account_id))
    assert stored is not None
    assert stored.webhook_secret_enc
    assert app_secret not in stored.webhook_secret_enc
    assert env.app.state.runtime.extras["zoom"].cipher.decrypt(stored.webhook_secret_enc) == (
        app_secret
    )
    day = env.day(account_id)
    await env.publish(env.approved(day, "eve", "eve@example.com"))
    await env.publish(day)
    row = await env.created(day.day_id)
    async with env.sim() as sim:
        base = f"/_sim/meetings/{row.zoom_meeting_id}"
        joined = await sim.post(
            f"{base}/join", json={"email": "eve@example.com", "at": iso(minutes_after(T0, 0))}
        )
        assert joined.json()["webhook_status"] == 200  # signed with the app's own secret
        await sim.post(
            f"{base}/leave", json={"email": "eve@example.com", "at": iso(minutes_after(T0, 20))}
        )
        forged = await sim.post("/_sim/webhook/send", json={**ended, "bad_signature": True})
        assert forged.json()["webhook_status"] == 401
        validation = await sim.post(
            "/_sim/webhook/url-validation", json={"account_id": zoom_account}
        )
        assert validation.json()["valid"] is True  # answered with that app's secret
    record = await _attendance(env, day.day_id, "eve", minutes=20)
    assert record["joined"] is True


async def test_r_zoom_5_rejoins_without_user_id_add_up_in_any_order(env: Env) -> None:
    """Without Zoom's per-stay user_id, participant_uuid is the same for every stay: each stay
    is its own segment (a rejoin adds, never overwrites), a leave ends the stay it closes."""
    day, zoom_id = await _day(
        env, "administrator", "admin-role@zoom.test", learners={"gus": "gus@example.com"}
    )
    obj: dict[str, Any] = {"id": zoom_id, "uuid": "u", "topic": "t"}
    who = {"user_id": "", "participant_uuid": "p-gus", "email": "gus@example.com"}
    async with env.sim() as sim:
        for event, when in (
            ("meeting.participant_joined", {"join_time": iso(minutes_after(T0, 0))}),
            ("meeting.participant_left", {"leave_time": iso(minutes_after(T0, 10))}),
            (
                "meeting.participant_left",
                {"leave_time": iso(minutes_after(T0, 35))},
            ),  # before its join
            ("meeting.participant_joined", {"join_time": iso(minutes_after(T0, 20))}),
        ):
            r = await sim.post(
                "/_sim/webhook/send",
                json={
                    "event": event,
                    "payload": {
                        "account_id": "a",
                        "object": {**obj, "participant": {**who, **when}},
                    },
                },
            )
            assert r.json()["webhook_status"] == 200
    record = await _attendance(env, day.day_id, "gus", minutes=25)
    assert record["joined"] is True


async def test_r_zoom_4_webhook_whose_processing_fails_is_kept_and_processed_later(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A transient failure while processing a stored webhook does not lose it: it stays
    unprocessed with the error and is processed on a later attempt (with its effect)."""
    day, zoom_id = await _day(
        env, "administrator", "admin-role@zoom.test", learners={"hal": "hal@example.com"}
    )
    real = service._handle
    failures: list[str] = []

    async def flaky(session: Any, event: WebhookEvent, settings: ZoomBridgeSettings) -> None:
        if event.event == "meeting.participant_joined" and not failures:
            failures.append(event.digest)
            raise ConnectionError("the database went away")
        await real(session, event, settings)

    monkeypatch.setattr(service, "_handle", flaky)
    async with env.sim() as sim:
        r = await sim.post(
            f"/_sim/meetings/{zoom_id}/join",
            json={"email": "hal@example.com", "at": iso(minutes_after(T0, 0))},
        )
        assert r.json()["webhook_status"] == 200
    await _attendance(env, day.day_id, "hal", minutes=0)
    (row,) = await _processed(env, "meeting.participant_joined", zoom_id)
    assert failures == [row.digest]
    assert row.attempts == 2
    assert "the database went away" in str(row.last_error)


def poison_meeting_ended(monkeypatch: pytest.MonkeyPatch) -> None:
    """Processing ``meeting.ended`` fails every time; every other webhook is handled."""
    real = service._handle

    async def poisoned(session: Any, event: WebhookEvent, settings: ZoomBridgeSettings) -> None:
        if event.event == "meeting.ended":
            raise ValueError("cannot handle this one")
        await real(session, event, settings)

    monkeypatch.setattr(service, "_handle", poisoned)


async def test_r_zoom_4_a_webhook_that_keeps_failing_is_given_up_visibly(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, zoom_id = await _day(env, "administrator", "admin-role@zoom.test", learners={})
    poison_meeting_ended(monkeypatch)
    monkeypatch.setattr(env.app.state.runtime.settings, "zoom_webhook_max_attempts", 3)
    async with env.sim() as sim:
        await sim.post(f"/_sim/meetings/{zoom_id}/end", json={"at": iso(minutes_after(T0, 5))})

    async def given_up() -> list[WebhookEvent] | None:
        rows = await _webhooks(env, "meeting.ended", zoom_id)
        return rows if rows and rows[0].failed else None

    (row,) = await env.wait(given_up)
    assert row.attempts == 3
    assert not row.processed
    assert "cannot handle this one" in str(row.last_error)
    # the ones behind it are not blocked
    async with env.sim() as sim:
        await sim.post(f"/_sim/meetings/{zoom_id}/join", json={"email": "x@example.com"})
    await _processed(env, "meeting.participant_joined", zoom_id)


async def test_r_zoom_4_one_failing_webhook_in_a_batch_keeps_the_others_and_counts_once(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch runs in one savepoint; when one webhook fails, the batch is run again with each
    in its own: the others are processed (each stay written once, not twice), the failing one
    is kept for a later attempt."""
    day, zoom_id = await _day(env, "administrator", "batch@zoom.test", learners={})

    def hook(event: str, n: int, **extra: Any) -> dict[str, Any]:
        return _hook(event, zoom_id, "batch", n, **extra)

    worker = env.app.state.runtime.extras["worker"]
    await worker.stop()  # this test runs the batch itself
    poison_meeting_ended(monkeypatch)
    factory = env.app.state.runtime.session_factory()
    try:
        received = [
            hook("meeting.participant_joined", 1),
            hook("meeting.ended", 0, end_time=iso(minutes_after(T0, 30))),
            hook("meeting.participant_joined", 2),
        ]
        outcomes = await _one_batch(env, received)
        (ended,) = await _webhooks(env, "meeting.ended", zoom_id)
        async with factory() as session, session.begin():
            segments = (
                await session.scalars(
                    select(AttendanceSegment).where(AttendanceSegment.day_id == day.day_id)
                )
            ).all()
            # given up before the worker runs again: no later test sees it retried
            (row,) = await session.scalars(
                select(WebhookEvent).where(WebhookEvent.digest == ended.digest)
            )
            row.failed = True
    finally:
        worker.start()
    assert [o.result for o in outcomes] == ["processed", "failed", "processed"]
    assert (ended.processed, ended.attempts) == (False, 1)
    assert "cannot handle this one" in str(ended.last_error)
    assert sorted(s.participant_uuid or "" for s in segments) == ["batch-1", "batch-2"]


async def test_r_zoom_7_recording_changes_in_one_batch_keep_each_other(env: Env) -> None:
    """One batch holds the meeting's end, its recording and a file's trash: each recording
    change reads the meeting again (locked), and what came before it in the batch is kept."""
    day, zoom_id = await _day(env, "administrator", "batch-rec@zoom.test", learners={})
    obj: dict[str, Any] = {"id": int(zoom_id), "uuid": "batch-rec=="}
    files = [
        {
            "id": key,
            "file_type": kind,
            "play_url": f"https://zoom.us/rec/play/{key}",
            "meeting_id": "batch-rec==",
        }
        for key, kind in (("rv", "MP4"), ("ra", "M4A"))
    ]
    received = [
        {
            "event": "meeting.ended",
            "event_ts": 5,
            "payload": {"object": {**obj, "id": zoom_id, "end_time": iso(minutes_after(T0, 30))}},
        },
        {
            "event": "recording.completed",
            "event_ts": 10,
            "payload": {"object": {**obj, "recording_files": files}},
        },
        {
            "event": "recording.trashed",
            "event_ts": 20,
            "payload": {"object": {**obj, "recording_files": [{"id": "rv"}]}},
        },
    ]
    worker = env.app.state.runtime.extras["worker"]
    await worker.stop()  # this test runs the batch itself
    try:
        outcomes = await _one_batch(env, received)
    finally:
        worker.start()
    assert [o.result for o in outcomes] == ["processed"] * 3
    row = await env.meeting_row(day.day_id)
    assert row is not None
    assert row.ended
    assert [f["id"] for f in row.recordings or []] == ["ra"]
    assert row.recordings_gone == {"rv": 20}
    assert row.recordings_version == 2
    changes = await env.outbox(c.RecordingsChanged.routing_key, day.day_id)
    assert [len(m["recordings"]) for m in sorted(changes, key=lambda m: m["version"])] == [2, 1]


@pytest.mark.skipif(use_sqlite(), reason="SQLite runs one writer at a time")
async def test_r_zoom_5_two_workers_recording_one_day_publish_figures_holding_both(
    env: Env,
) -> None:
    """Two transactions (two workers or replicas) record stays of the same user on the same
    day at once. The one that publishes second waits for the first's commit and adds up both
    stays: the newest figure (the one registration keeps) lacks neither."""
    day, _ = await _day(
        env, "administrator", "two-workers@zoom.test", learners={"tia": "tia@example.com"}
    )
    factory = env.app.state.runtime.session_factory()
    who = attendance.Who(email="tia@example.com", participant_uuid="tia-uuid", name="Tia")

    def stay(n: int, joined: bool) -> attendance.StayEvent:
        at = minutes_after(T0, n * 60 + (0 if joined else 20))
        return attendance.StayEvent("instance-two", f"stay-{n}", joined, at, who)

    async def meeting(session: AsyncSession) -> ZoomMeeting:
        found = await session.get(ZoomMeeting, day.day_id)
        assert found is not None
        return found

    async with factory() as first, first.begin():
        one = await meeting(first)
        keys = {await attendance.record(first, one, stay(1, j)) for j in (True, False)}
        await attendance.publish_touching(first, one, keys)
        async with factory() as second, second.begin():
            two = await meeting(second)
            other = {await attendance.record(second, two, stay(2, j)) for j in (True, False)}
            late = asyncio.create_task(attendance.publish_touching(second, two, other))
            await asyncio.sleep(0.3)
            assert not late.done(), "the second did not wait for the first"
            await first.commit()
            await late
    rows = await env.outbox(c.AttendanceRecorded.routing_key, day.day_id)
    assert [r["minutes"] for r in rows if r["user_id"] == "tia"][-2:] == [20, 40]


@pytest.mark.skipif(use_sqlite(), reason="SQLite runs one writer at a time")
async def test_r_zoom_4_two_workers_batches_naming_two_meetings_in_either_order_do_not_deadlock(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two workers' batches name the same two meetings in opposite orders: each hears of a
    change at Zoom to one meeting (its row locked mid-batch) and of a join on the other (its
    attendance published, the day locked, at the end). Both batches are processed in full:
    the second waits for the first, it is not aborted as a deadlock."""
    _, first_id = await _day(env, "administrator", "order-a@zoom.test", learners={})
    _, second_id = await _day(env, "administrator", "order-b@zoom.test", learners={})

    def hook(event: str, zoom_id: str, n: int) -> dict[str, Any]:
        return _hook(event, int(zoom_id), f"order-{zoom_id}", n, ts=n)

    # the first batch reaches its attendance first; the second is let go only then, and the
    # first publishes once both are there (or the second waits for it: a second at most)
    arrived = 0
    both = asyncio.Event()
    first_there = asyncio.Event()
    real = attendance.publish_touching

    async def together(session: AsyncSession, meeting: ZoomMeeting, keys: Any) -> Any:
        nonlocal arrived
        arrived += 1
        first_there.set()
        if arrived == 2:
            both.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(both.wait(), 1.0)
        return await real(session, meeting, keys)

    monkeypatch.setattr(attendance, "publish_touching", together)
    worker = env.app.state.runtime.extras["worker"]
    await worker.stop()  # this test runs the batches itself
    factory = env.app.state.runtime.session_factory()
    try:
        at = dt.datetime.now(dt.UTC)
        bodies = [
            hook("meeting.updated", first_id, 1),  # nothing the bridge keeps: no job
            hook("meeting.participant_joined", second_id, 2),
            hook("meeting.updated", second_id, 3),
            hook("meeting.participant_joined", first_id, 4),
        ]
        async with factory() as session, session.begin():
            await service.store_many(
                session,
                [
                    service.Received(b, rules.Signer(app=True), at + dt.timedelta(microseconds=i))
                    for i, b in enumerate(bodies)
                ],
            )

        async def batch() -> list[service.Outcome]:
            async with factory() as session, session.begin():
                return await service.process_batch(session, env.settings(), 2)

        one = asyncio.create_task(batch())
        await asyncio.wait_for(first_there.wait(), 10)
        two = asyncio.create_task(batch())
        outcomes = await asyncio.gather(one, two)
    finally:
        worker.start()
    assert [[o.result for o in batch] for batch in outcomes] == [["processed"] * 2] * 2
    for zoom_id in (first_id, second_id):
        (updated,) = await _webhooks(env, "meeting.updated", zoom_id)
        (joined,) = await _webhooks(env, "meeting.participant_joined", zoom_id)
        assert (updated.processed, joined.processed) == (True, True)
        assert (updated.attempts, joined.attempts) == (1, 1)


@pytest.mark.skipif(use_sqlite(), reason="PostgreSQL's row locks")
async def test_r_zoom_4_a_batch_locks_first_every_meeting_its_webhooks_name_and_no_other(
    env: Env,
) -> None:
    """Before it handles any webhook, a batch locks the meetings its webhooks name: by their
    Zoom id, by the id of a meeting deleted at Zoom that its day remembers, by an instance in a
    bulk recording notification. Not a meeting no webhook names, nor one named by a signer
    that does not cover it (another company's Server-to-Server secret)."""
    names = ("by-id", "gone", "instance", "unnamed", "uncovered")
    days = {}
    for name in names:
        day, zoom_id = await _day(env, "administrator", "lock-first@zoom.test", learners={})
        days[name] = (day.day_id, zoom_id)
    factory = env.app.state.runtime.session_factory()
    async with factory() as session, session.begin():
        gone = await session.get(ZoomMeeting, days["gone"][0])
        assert gone is not None
        gone.gone_zoom_meeting_id, gone.gone_account_id = "91919191919", gone.account_id
        session.add(
            RecordingInstance(instance_uuid="LockFirstInstance==", day_id=days["instance"][0])
        )

    def event(name: str, obj: dict[str, Any], signer: rules.Signer) -> WebhookEvent:
        return WebhookEvent(
            event=name, body={"payload": {"object": obj}}, signed_by=signer.as_json()
        )

    app = rules.Signer(app=True)
    other = rules.Signer(account_ids=frozenset({uuid.uuid4()}))
    events = [
        event("meeting.participant_joined", {"id": int(days["by-id"][1])}, app),
        event("meeting.recovered", {"id": 91919191919}, app),
        event("recording.batch_trashed", {"meeting_uuids": ["LockFirstInstance=="]}, app),
        event("meeting.updated", {"id": int(days["uncovered"][1])}, other),
    ]

    async def refused(day_id: uuid.UUID) -> str | None:
        """Why another transaction may not lock the day's meeting now (None: it may)."""
        async with factory() as probe, probe.begin():
            try:
                await probe.execute(
                    select(ZoomMeeting.day_id)
                    .where(ZoomMeeting.day_id == day_id)
                    .with_for_update(nowait=True)
                )
            except DBAPIError as exc:
                return str(exc)
            return None

    async with factory() as session, session.begin():
        await service._lock_named_meetings(session, events)
        why = {name: await refused(days[name][0]) for name in names}
    assert {name for name, error in why.items() if error} == {"by-id", "gone", "instance"}
    assert all("could not obtain lock" in error for error in why.values() if error)


async def test_r_zoom_5_reconciliation_waits_for_a_report_zoom_does_not_have_yet(
    env: Env,
) -> None:
    """The participants report is not ready right after the end (404): read again later.
    (The instance has an id of its own, and only its report calls count: other tests' days
    ask for theirs meanwhile.)"""
    day, zoom_id = await _day(
        env, "administrator", "admin-role@zoom.test", learners={"ivy": "ivy@example.com"}
    )
    report = "/v2/report/meetings/IvyReportNotReady000000==/"
    async with env.sim() as sim:
        await sim.delete("/_sim/calls")
        await sim.post(
            "/_sim/faults",
            json={"status": 404, "count": 2, "method": "GET", "path_prefix": report},
        )
        base = f"/_sim/meetings/{zoom_id}"
        await sim.post(
            f"{base}/join",
            json={
                "email": "ivy@example.com",
                "at": iso(minutes_after(T0, 0)),
                "instance_uuid": "IvyReportNotReady000000==",
            },
        )
        await sim.patch("/_sim/config", json={"webhook_url": "http://127.0.0.1:9/lost"})
        try:  # the leave webhook is lost: only the report knows she stayed 12 minutes
            await sim.post(
                f"{base}/leave", json={"email": "ivy@example.com", "at": iso(minutes_after(T0, 12))}
            )
        finally:
            await sim.patch(
                "/_sim/config", json={"webhook_url": f"{env.bridge_url}/v1/zoom/webhooks"}
            )
        await sim.post(f"{base}/end", json={"at": iso(minutes_after(T0, 15))})
    final = await _attendance(env, day.day_id, "ivy", final=True)
    assert final["minutes"] == 12
    async with env.sim() as sim:
        calls = (await sim.get("/_sim/calls")).json()
    reports = [x["status"] for x in calls if str(x["path"]).startswith(report)]
    assert reports == [404, 404, 200]


async def test_processed_webhooks_are_pruned_after_the_retention_period(env: Env) -> None:
    factory = env.app.state.runtime.session_factory()
    now = dt.datetime.now(dt.UTC)
    old = now - dt.timedelta(days=30)

    def row(name: str, *, processed: bool, failed: bool, when: dt.datetime) -> WebhookEvent:
        return WebhookEvent(
            digest=f"prune-{name}-{uuid.uuid4().hex[:8]}",
            event="meeting.ended",
            body={"event": "meeting.ended", "payload": {}},
            received_at=when,
            processed=processed,
            processed_at=when if processed else None,
            attempts=1,
            next_attempt_at=when,
            failed=failed,
        )

    rows = {
        "old": row("old", processed=True, failed=False, when=old),
        "recent": row("recent", processed=True, failed=False, when=now),
        "failed": row("failed", processed=False, failed=True, when=old),
    }
    async with factory() as session, session.begin():
        session.add_all(rows.values())
    worker = env.app.state.runtime.extras["worker"]
    worker._pruned_at = None  # due now
    await worker.prune()
    async with factory() as session:
        left = {
            r.digest
            for r in (await session.execute(select(WebhookEvent))).scalars()
            if r.digest.startswith("prune-")
        }
    assert left == {rows["recent"].digest, rows["failed"].digest}


def _sample(
    metrics: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    return metrics.get((name, frozenset(labels.items())), 0.0)


async def test_r_zoom_4_webhook_outcomes_and_a_failing_webhook_show_in_the_metrics(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Operators see webhooks in /metrics, not only as a row and a log line: deliveries by
    event and outcome; a webhook whose processing fails counts as failed while it waits in the
    backlog (pending), then as given up, and stays in the backlog as given up."""
    _, zoom_id = await _day(env, "administrator", "admin-role@zoom.test", learners={})
    real = service._handle

    async def poisoned(session: Any, event: WebhookEvent, settings: ZoomBridgeSettings) -> None:
        obj = (event.body.get("payload") or {}).get("object") or {}
        if event.event == "meeting.ended" and str(obj.get("id")) == zoom_id:
            raise ValueError("cannot handle this one")
        await real(session, event, settings)

    monkeypatch.setattr(service, "_handle", poisoned)
    monkeypatch.setattr(env.app.state.runtime.settings, "zoom_webhook_max_attempts", 1000)
    before = await env.metrics()
    received = "zoom_webhooks_received_total"
    processing = "zoom_webhooks_processing_total"
    ended = "meeting.ended"
    async with env.sim() as sim:
        await sim.post("/_sim/webhook/send", json={"event": ended, "bad_signature": True})
        await sim.post("/_sim/webhook/send", json={"event": ended, "timestamp_offset_s": -6000})
        await sim.post("/_sim/webhook/send", json={"event": "meeting.sharing_started"})
        await sim.post("/_sim/webhook/url-validation", json={})
        twice = {"event": "meeting.participant_joined", "payload": {"object": {"id": "x1"}}}
        for _ in range(2):
            assert (await sim.post("/_sim/webhook/send", json=twice)).json()[
                "webhook_status"
            ] == 200
        await sim.post(f"/_sim/meetings/{zoom_id}/end", json={"at": iso(minutes_after(T0, 5))})
    async with httpx.AsyncClient(base_url=env.bridge_url) as bridge:  # no signature at all
        assert (await bridge.post("/v1/zoom/webhooks", content=b"{}")).status_code == 401

    async def failing() -> dict[tuple[str, frozenset[tuple[str, str]]], float] | None:
        now = await env.metrics()
        done = (
            _sample(now, processing, event=ended, outcome="failed")
            >= _sample(before, processing, event=ended, outcome="failed") + 2
        )
        return now if done else None

    during = await env.wait(failing)
    assert _sample(during, "zoom_webhook_backlog", state="pending") >= 1  # ours, retried
    joined = "meeting.participant_joined"
    for event, outcome, more in [
        (ended, "bad_signature", 1),
        ("other", "bad_signature", 1),  # the body names no event: a bounded label
        (ended, "stale", 1),
        ("meeting.sharing_started", "ignored", 1),
        ("endpoint.url_validation", "url_validation", 1),
        (joined, "accepted", 1),
        (joined, "duplicate", 1),
        (ended, "accepted", 1),
    ]:
        grew = _sample(during, received, event=event, outcome=outcome) - _sample(
            before, received, event=event, outcome=outcome
        )
        assert grew == more, (event, outcome)
    # the attempts run out: given up, and kept in the backlog as such
    monkeypatch.setattr(env.app.state.runtime.settings, "zoom_webhook_max_attempts", 1)

    async def given_up() -> dict[tuple[str, frozenset[tuple[str, str]]], float] | None:
        now = await env.metrics()
        done = _sample(now, processing, event=ended, outcome="given_up") > _sample(
            before, processing, event=ended, outcome="given_up"
        )
        return now if done else None

    after = await env.wait(given_up)
    assert _sample(after, processing, event=ended, outcome="given_up") == 1 + _sample(
        before, processing, event=ended, outcome="given_up"
    )
    assert _sample(after, "zoom_webhook_backlog", state="given_up") >= 1 + _sample(
        before, "zoom_webhook_backlog", state="given_up"
    )
    (row,) = await _webhooks(env, ended, zoom_id)
    assert row.failed
    assert not row.processed
    assert _sample(after, processing, event=joined, outcome="processed") >= 1


async def test_r_zoom_4_s2s_webhook_secret_token_is_replaced_by_patch_and_never_returned(
    env: Env,
) -> None:
    """The app's secret token is regenerated at Zoom: PATCH gives the bridge the new one
    (stored encrypted, never returned), and the account's webhooks verify with it, no longer
    with the old one. An OAuth connection has no token of its own (422); another company's
    account is a 404; a body with nothing to change is a 422."""
    zoom_account, old, new = "s2sAcctRotate", "s2s-rotate-old-secret", "s2s-rotate-new-secret"

    async def app_signs_with(secret: str) -> None:
        async with env.sim() as sim:
            r = await sim.post(
                "/_sim/s2s-apps",
                json={
                    "client_id": "s2s-rotate-id",
                    "client_secret": "s2s-rotate-client-secret",
                    "account_id": zoom_account,
                    "webhook_secret": secret,
                },
            )
            assert r.status_code == 200, r.text

    async def webhook_status() -> int:
        body = {"event": "meeting.ended", "payload": {"account_id": zoom_account}}
        async with env.sim() as sim:
            status: int = (await sim.post("/_sim/webhook/send", json=body)).json()["webhook_status"]
        return status

    await app_signs_with(old)
    async with env.client() as bridge:
        r = await bridge.post(
            "/v1/zoom/accounts/server-to-server",
            json={
                "zoom_account_id": zoom_account,
                "client_id": "s2s-rotate-id",
                "client_secret": "s2s-rotate-client-secret",
                "role": "administrator",
                "webhook_secret_token": old,
            },
            headers=env.admin(),
        )
        assert r.status_code == 201, r.text
        account_id = r.json()["id"]
    assert await webhook_status() == 200
    await app_signs_with(new)  # regenerated at Zoom
    assert await webhook_status() == 401  # the bridge still has the old one
    url = f"/v1/zoom/accounts/{account_id}"
    async with env.client() as bridge:
        r = await bridge.patch(url, json={"webhook_secret_token": new}, headers=env.admin())
        assert r.status_code == 200, r.text
        assert r.json()["role"] == "administrator"  # unchanged
        assert new not in r.text
        listed = await bridge.get("/v1/zoom/accounts", headers=env.admin())
        assert new not in listed.text
        assert old not in listed.text
    factory = env.app.state.runtime.session_factory()
    async with factory() as session:
        stored = await session.get(ZoomAccount, uuid.UUID(account_id))
    assert stored is not None
    assert stored.webhook_secret_enc
    assert new not in stored.webhook_secret_enc
    assert env.app.state.runtime.extras["zoom"].cipher.decrypt(stored.webhook_secret_enc) == new
    assert await webhook_status() == 200  # signed with the new token
    await app_signs_with(old)
    assert await webhook_status() == 401  # the old token no longer verifies
    oauth_account = await env.connect("administrator", sim_user="rotate-oauth@zoom.test")
    async with env.client() as bridge:
        r = await bridge.patch(url, json={"webhook_secret_token": "x"}, headers=env.admin("globex"))
        assert r.status_code == 404
        r = await bridge.patch(url, json={}, headers=env.admin())
        assert r.status_code == 422
        r = await bridge.patch(url, json={"webhook_secret_token": ""}, headers=env.admin())
        assert r.status_code == 422
        assert r.json()["errors"][0]["field"] == "body.webhook_secret_token"
        r = await bridge.patch(
            f"/v1/zoom/accounts/{oauth_account}",
            json={"webhook_secret_token": "mine"},
            headers=env.admin(),
        )
        assert r.status_code == 422
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["errors"][0]["field"] == "body.webhook_secret_token"
        r = await bridge.patch(url, json={"webhook_secret_token": "x"}, headers=env.user("u1"))
        assert r.status_code == 403


async def test_r_zoom_3_a_held_meeting_deleted_at_zoom_stays_as_stored(env: Env) -> None:
    """A host cleaning up Zoom deletes a meeting that was held: no new meeting (its attendance
    came from this one, and nobody joins it again); the day keeps what it has."""
    day, zoom_id = await _day(env, "administrator", "held@zoom.test", learners={})
    async with env.sim() as sim:
        at = iso(minutes_after(T0, 0))
        await sim.post(f"/_sim/meetings/{zoom_id}/join", json={"email": "x@example.com", "at": at})
        await sim.post(f"/_sim/meetings/{zoom_id}/end", json={"at": iso(minutes_after(T0, 30))})
        await _processed(env, "meeting.ended", zoom_id)
        r = await sim.post(f"/_sim/meetings/{zoom_id}/delete")
        assert r.json()["webhook_status"] == 200
    await _processed(env, "meeting.deleted", zoom_id)
    row = await env.meeting_row(day.day_id)
    assert row is not None
    assert (row.zoom_meeting_id, row.status) == (zoom_id, "created")
    assert len(await env.outbox(c.MeetingCreated.routing_key, day.day_id)) == 1


async def test_r_zoom_3_the_bridges_own_deletion_makes_no_new_meeting(env: Env) -> None:
    """Zoom notifies the bridge's own deletions too (``meeting.deleted`` for the meeting of a
    deleted day): nothing is made again."""
    day, zoom_id = await _day(env, "administrator", "own@zoom.test", learners={})
    await env.publish(env.cancelled(day))
    await env.wait(lambda: env.outbox(c.MeetingDeleted.routing_key, day.day_id))
    await _processed(env, "meeting.deleted", zoom_id)
    row = await env.meeting_row(day.day_id)
    assert row is not None
    assert row.status == "deleted"
    assert len(await env.outbox(c.MeetingCreated.routing_key, day.day_id)) == 1
    async with env.sim() as sim:
        meetings = (await sim.get("/_sim/meetings")).json()
    made = [m for m in meetings if m["agenda"] == f"day:{day.day_id}"]
    assert [m["deleted"] for m in made] == [True]


async def test_r_zoom_3_a_meeting_its_host_moves_at_zoom_is_moved_back_once(env: Env) -> None:
    """The host moves the day's meeting in Zoom's web portal (``meeting.updated``): the day's
    time is the one users see, and Zoom mails registrants the meeting's, so the sync patches
    it back, once: the notification of that patch moves nothing (no ping-pong). What is the
    host's to change (the waiting room) stays as they set it, and costs no patch."""
    day, zoom_id = await _day(env, "administrator", "moved@zoom.test", learners={})
    before = await env.sim_meeting(zoom_id)
    async with env.sim() as sim:
        await sim.delete("/_sim/calls")
        own = {"settings": {"waiting_room": not before["settings"]["waiting_room"]}}
        r = await sim.post(f"/_sim/meetings/{zoom_id}/update", json=own)
        assert r.json()["webhook_status"] == 200
        await _processed(env, "meeting.updated", zoom_id)
        moved = {"start_time": "2031-01-01T08:00:00Z", "duration": 15}
        r = await sim.post(f"/_sim/meetings/{zoom_id}/update", json=moved)
        assert r.json()["webhook_status"] == 200

    async def moved_back() -> dict[str, Any] | None:
        now = await env.sim_meeting(zoom_id)
        same = (now["start_time"], now["duration"]) == (before["start_time"], before["duration"])
        return now if same else None

    after = await env.wait(moved_back)
    assert after["settings"]["waiting_room"] is own["settings"]["waiting_room"]

    async def notified() -> list[WebhookEvent] | None:
        rows = await _webhooks(env, "meeting.updated", zoom_id)
        return rows if len(rows) == 3 and all(r.processed for r in rows) else None

    await env.wait(notified)  # the host's two edits and the bridge's own patch
    async with env.sim() as sim:
        calls = (await sim.get("/_sim/calls")).json()
    assert [x["method"] for x in calls if x["path"].endswith(f"/meetings/{zoom_id}")] == ["PATCH"]
    row = await env.meeting_row(day.day_id)
    assert row is not None
    assert (row.status, row.synced_version) == ("created", row.version)


@pytest.mark.skipif(use_sqlite(), reason="SQLite runs one writer at a time")
async def test_r_zoom_3_a_job_storing_what_zoom_did_waits_for_a_webhook_on_the_meeting(
    env: Env,
) -> None:
    """R-ZOOM-3: the day's meeting is deleted at Zoom (its webhook processed by one worker)
    while a job of the day's stores what Zoom answered (another worker or replica). The job
    waits for the webhook's transaction and writes after it, announcing with the next ``seq``:
    unlocked, it read the row as it was, announced the same ``seq`` as the webhook (catalog
    keeps whichever it consumes last) and wrote its links over the webhook's."""
    day, zoom_id = await _day(env, "administrator", "race@zoom.test", learners={})
    runtime = env.app.state.runtime
    worker = runtime.extras["worker"]
    store = MeetingStore(runtime.session_factory(), env.settings(), worker.zoom.cipher)
    snap = await store.snapshot(day.day_id)
    assert snap is not None
    kinds: tuple[type[c.MeetingData], ...] = (c.MeetingCreated, c.MeetingDeleted, c.MeetingUpdated)
    await worker.stop()  # this test is both workers
    try:
        async with runtime.session_factory()() as first, first.begin():
            meeting = await first.get(ZoomMeeting, day.day_id)
            assert meeting is not None
            at = int(dt.datetime.now(dt.UTC).timestamp() * 1000)
            await service._deleted_at_zoom(first, meeting, at, zoom_id)  # forgotten, announced
            claimed = jobs.Claimed(day.day_id, jobs.SYNC, generation=0, attempts=1)
            late = asyncio.create_task(store.save(claimed, snap, updated=True))
            await asyncio.sleep(0.3)
            assert not late.done(), "the job did not wait for the webhook's transaction"
        await late
    finally:
        worker.start()
    seqs = {
        kind: [m["seq"] for m in await env.outbox(kind.routing_key, day.day_id)] for kind in kinds
    }
    # made, deleted at Zoom, then what the job stored: three announcements, one after another
    assert seqs == {c.MeetingCreated: [1], c.MeetingDeleted: [2], c.MeetingUpdated: [3]}


@pytest.mark.skipif(use_sqlite(), reason="SQLite runs one writer at a time")
async def test_r_zoom_3_a_deletion_at_zoom_of_a_meeting_a_job_just_replaced_changes_nothing(
    env: Env,
) -> None:
    """R-ZOOM-3: a ``meeting.deleted`` found the day by the deleted meeting's id; before it
    takes the day's row, a job of another worker stores the day's new meeting (the day moved
    to another account, or the old one was found deleted and made again). Under the row's
    lock the webhook sees the new meeting and leaves it: that one was not deleted."""
    day, zoom_id = await _day(env, "administrator", "replaced@zoom.test", learners={})
    runtime = env.app.state.runtime
    factory = runtime.session_factory()
    worker = runtime.extras["worker"]
    new_id, new_link = "99999999999", "https://zoom.example/j/99999999999"
    await worker.stop()  # this test is both workers
    try:
        async with factory() as webhook, webhook.begin():
            found = await service._meeting(webhook, {"id": zoom_id}, rules.Signer(app=True))
            assert found is not None
            async with factory() as job, job.begin():  # the other worker's job commits
                stored = await store.locked(job, day.day_id)
                assert stored is not None
                stored.zoom_meeting_id, stored.join_url = new_id, new_link
            at = int(dt.datetime.now(dt.UTC).timestamp() * 1000)
            await service._deleted_at_zoom(webhook, found, at, zoom_id)
    finally:
        worker.start()
    row = await env.meeting_row(day.day_id)
    assert row is not None
    assert (row.zoom_meeting_id, row.join_url, row.gone_zoom_meeting_id) == (new_id, new_link, None)
    assert await env.outbox(c.MeetingDeleted.routing_key, day.day_id) == []
