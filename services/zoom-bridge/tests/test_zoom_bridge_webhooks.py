"""R-ZOOM-4 webhooks, R-ZOOM-5/R-ZOOM-2 attendance and R-ZOOM-7 recordings, with the simulator
sending signed webhooks to the bridge over HTTP."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import TYPE_CHECKING, Any

import httpx

from te_shared import contracts as c

if TYPE_CHECKING:
    from conftest import Env

T0 = dt.datetime(2026, 11, 20, 9, 0, tzinfo=dt.UTC)


def at(minutes: float) -> str:
    return (T0 + dt.timedelta(minutes=minutes)).isoformat()


async def _day(env: Env, role: str, email: str, *, learners: dict[str, str]) -> tuple[Any, str]:
    key = f"_acct_{role}_{email}"
    if key not in env.overrides:
        env.overrides[key] = await env.connect(role, sim_user=email)
    day = env.day(str(env.overrides[key]))
    for user_id, mail in learners.items():
        await env.publish(
            c.EnrollmentChanged(
                company_id="acme",
                enrollment_id=uuid.uuid4(),
                event_id=day.event_id,
                session_id=day.session_id,
                user_id=user_id,
                email=mail,
                status=c.EnrollmentStatus.APPROVED,
                previous_status=None,
                version=1,
            )
        )
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


async def test_r_zoom_4_bad_signature_stale_timestamp_and_url_validation(env: Env) -> None:
    async with env.sim() as sim:
        bad = await sim.post(
            "/_sim/webhook/send",
            json={"event": "meeting.ended", "payload": {}, "bad_signature": True},
        )
        assert bad.json()["webhook_status"] == 401
        stale = await sim.post(
            "/_sim/webhook/send",
            json={"event": "meeting.ended", "payload": {}, "timestamp_offset_s": -400},
        )
        assert stale.json()["webhook_status"] == 401
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
        await sim.post(f"{base}/join", json={"email": "ann@example.com", "at": at(0)})
        await sim.post(f"{base}/leave", json={"email": "ann@example.com", "at": at(10)})
        await sim.post(f"{base}/join", json={"email": "ann@example.com", "at": at(20)})
        await sim.post(f"{base}/join", json={"email": "stranger@example.com", "at": at(1)})
        live = await _attendance(env, day.day_id, "ann", minutes=10)
        assert live["joined"] is True
        assert live["final"] is False
        await sim.post(f"{base}/leave", json={"email": "ann@example.com", "at": at(35)})
        await _attendance(env, day.day_id, "ann", minutes=25)
        await sim.post(f"{base}/end", json={"at": at(40)})
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
        await sim.post(f"{base}/join", json={"email": "dee@example.com", "at": at(0)})
        await _attendance(env, day.day_id, "dee", minutes=0)
        await sim.patch("/_sim/config", json={"webhook_url": "http://127.0.0.1:9/lost"})
        try:
            await sim.post(f"{base}/leave", json={"email": "dee@example.com", "at": at(15)})
        finally:
            await sim.patch(
                "/_sim/config", json={"webhook_url": f"{env.bridge_url}/v1/zoom/webhooks"}
            )
        await sim.post(f"{base}/end", json={"at": at(20)})
    final = await _attendance(env, day.day_id, "dee", final=True)
    assert final["minutes"] == 15  # from the participants report


async def test_r_zoom_4_duplicate_and_out_of_order_webhooks(env: Env) -> None:
    day, zoom_id = await _day(
        env, "administrator", "admin-role@zoom.test", learners={"bob": "bob@example.com"}
    )
    obj: dict[str, Any] = {"id": zoom_id, "uuid": "u", "topic": "t"}
    who = {"user_id": "9001", "participant_uuid": "p-bob", "email": "bob@example.com"}
    left = {**obj, "participant": {**who, "leave_time": at(30)}}
    joined = {**obj, "participant": {**who, "join_time": at(5)}}
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
    assert len(rows) == 2  # one per distinct delivery; the duplicates were absorbed


async def test_r_zoom_2_participant_role_records_who_joined_without_minutes(env: Env) -> None:
    day, zoom_id = await _day(
        env, "participant", "free@zoom.test", learners={"cid": "cid@example.com"}
    )
    async with env.sim() as sim:
        base = f"/_sim/meetings/{zoom_id}"
        await sim.post(f"{base}/join", json={"email": "cid@example.com", "at": at(0)})
        await sim.post(f"{base}/leave", json={"email": "cid@example.com", "at": at(30)})
    record = await _attendance(env, day.day_id, "cid")
    assert record["joined"] is True
    assert record["minutes"] is None
    async with env.client() as bridge:
        r = await bridge.get(f"/v1/days/{day.day_id}/meeting", headers=env.admin())
        assert "recordings" not in r.json()


async def test_r_zoom_7_recordings_attached_while_training_module_enabled(env: Env) -> None:
    await env.publish(
        c.CompanySettingsChanged(
            company_id="acme",
            version=10,
            timezone="UTC",
            locales=["en"],
            zoom_enabled=True,
            training_module_enabled=True,
        )
    )
    day, zoom_id = await _day(env, "administrator", "admin-role@zoom.test", learners={})
    async with env.sim() as sim:
        r = await sim.post(f"/_sim/meetings/{zoom_id}/recording", json={})
        assert r.json()["webhook_status"] == 200
        await sim.post(f"/_sim/meetings/{zoom_id}/recording", json={})  # duplicate
    available = await env.wait(lambda: env.outbox(c.RecordingAvailable.routing_key, day.day_id))
    assert available[0]["recordings"][0]["play_url"]
    async with env.client() as bridge:
        meeting = (await bridge.get(f"/v1/days/{day.day_id}/meeting", headers=env.admin())).json()
        assert len(meeting["recordings"]) == 1
    assert len(await env.outbox(c.RecordingAvailable.routing_key, day.day_id)) == 1

    # the module is disabled later: what is attached stays, new recordings are not attached
    await env.publish(
        c.CompanySettingsChanged(
            company_id="acme",
            version=11,
            timezone="UTC",
            locales=["en"],
            zoom_enabled=True,
            training_module_enabled=False,
        )
    )
    day2, zoom_id2 = await _day(env, "administrator", "admin-role@zoom.test", learners={})
    async with env.sim() as sim:
        await sim.post(f"/_sim/meetings/{zoom_id2}/recording", json={})
    async with env.client() as bridge:

        async def processed() -> bool:
            r = await bridge.get(f"/v1/days/{day2.day_id}/meeting", headers=env.admin())
            return r.status_code == 200

        await env.wait(processed)
        first = (await bridge.get(f"/v1/days/{day.day_id}/meeting", headers=env.admin())).json()
        assert len(first["recordings"]) == 1
    assert not await env.outbox(c.RecordingAvailable.routing_key, day2.day_id)
