"""R-ZOOM-3 meetings per day and R-ZOOM-8 durable retries, against the simulator over HTTP and
day messages over RabbitMQ."""

from __future__ import annotations

import datetime as dt
import time
import uuid
from typing import TYPE_CHECKING

from sqlalchemy import select

from te_shared import contracts as c
from zoom_bridge.models import ZoomJob

if TYPE_CHECKING:
    from conftest import Env


async def _account(env: Env, email: str) -> str:
    if email not in env.overrides.setdefault("_accounts", {}):
        env.overrides["_accounts"][email] = await env.connect("administrator", sim_user=email)
    return str(env.overrides["_accounts"][email])


async def _calls(env: Env, method: str, prefix: str) -> list[dict[str, object]]:
    async with env.sim() as sim:
        calls = (await sim.get("/_sim/calls")).json()
    return [x for x in calls if x["method"] == method and str(x["path"]).startswith(prefix)]


async def test_r_zoom_3_scheduled_day_gets_one_meeting_even_when_redelivered(env: Env) -> None:
    account = await _account(env, "meet@zoom.test")
    day = env.day(account, minutes=90)
    await env.publish(day)
    await env.publish(day)  # redelivered
    row = await env.created(day.day_id)
    sim_meeting = await env.sim_meeting(str(row.zoom_meeting_id))
    assert sim_meeting["topic"] == "Onboarding day"
    assert sim_meeting["duration"] == 90
    assert sim_meeting["timezone"] == "Europe/Berlin"
    assert sim_meeting["settings"]["auto_recording"] in ("cloud", "none")
    await env.publish(day)  # and once more after the meeting exists
    created = await env.wait(lambda: env.outbox(c.MeetingCreated.routing_key, day.day_id))
    assert created[0]["join_url"] == row.join_url
    async with env.sim() as sim:
        meetings = (await sim.get("/_sim/meetings")).json()
    assert sum(1 for m in meetings if m["agenda"] == f"day:{day.day_id}") == 1
    assert len(await env.outbox(c.MeetingCreated.routing_key, day.day_id)) == 1


async def test_r_zoom_3_reschedule_patches_and_cancel_deletes(env: Env) -> None:
    account = await _account(env, "meet@zoom.test")
    day = env.day(account)
    await env.publish(day)
    row = await env.created(day.day_id)
    later = day.start + dt.timedelta(hours=3)
    moved = env.day(
        account,
        day_id=day.day_id,
        session_id=day.session_id,
        start=later,
        minutes=30,
        cls=c.DayRescheduled,
    )
    await env.publish(moved)
    await env.wait(lambda: env.outbox(c.MeetingUpdated.routing_key, day.day_id))
    sim_meeting = await env.sim_meeting(str(row.zoom_meeting_id))
    assert sim_meeting["duration"] == 30
    assert sim_meeting["start_time"] == later.strftime("%Y-%m-%dT%H:%M:%SZ")
    await env.publish(
        c.DayCancelled(
            company_id="acme",
            day_id=day.day_id,
            session_id=day.session_id,
            event_id=day.event_id,
            version=env.next_version(day.day_id),
            format=c.DayFormat.ZOOM,
        )
    )
    deleted = await env.wait(lambda: env.outbox(c.MeetingDeleted.routing_key, day.day_id))
    assert deleted[0]["zoom_meeting_id"] == row.zoom_meeting_id
    assert (await env.sim_meeting(str(row.zoom_meeting_id)))["deleted"] is True
    async with env.client() as bridge:
        r = await bridge.get(f"/v1/days/{day.day_id}/meeting", headers=env.admin())
        assert r.status_code == 404


async def test_r_zoom_3_delete_404_from_zoom_counts_as_done(env: Env) -> None:
    account = await _account(env, "meet@zoom.test")
    day = env.day(account)
    await env.publish(day)
    row = await env.created(day.day_id)
    zoom = env.app.state.runtime.extras["zoom"]
    await zoom.call(row.account_id, "DELETE", f"/meetings/{row.zoom_meeting_id}")  # gone already
    await env.publish(
        c.DayCancelled(
            company_id="acme",
            day_id=day.day_id,
            session_id=day.session_id,
            event_id=day.event_id,
            version=env.next_version(day.day_id),
            format=c.DayFormat.ZOOM,
        )
    )
    await env.wait(lambda: env.outbox(c.MeetingDeleted.routing_key, day.day_id))
    assert not await env.outbox(c.MeetingFailed.routing_key, day.day_id)


async def test_r_zoom_3_reschedule_before_schedule_is_tolerated(env: Env) -> None:
    """Out of order: DayRescheduled v2 arrives before DayScheduled v1; v1 is then stale."""
    account = await _account(env, "meet@zoom.test")
    day_id = uuid.uuid4()
    v1 = env.day(account, day_id=day_id, minutes=60, version=1)
    v2 = env.day(
        account,
        day_id=day_id,
        session_id=v1.session_id,
        minutes=45,
        version=2,
        cls=c.DayRescheduled,
    )
    await env.publish(v2)
    row = await env.created(day_id)
    await env.publish(v1)
    await env.wait(lambda: env.outbox(c.MeetingCreated.routing_key, day_id))
    assert (await env.sim_meeting(str(row.zoom_meeting_id)))["duration"] == 45
    row = await env.meeting_row(day_id)
    assert row is not None
    assert row.version == 2


async def test_r_zoom_3_host_link_only_for_organizer_and_admins(env: Env) -> None:
    account = await _account(env, "meet@zoom.test")
    day = env.day(account, organizer="org7")
    await env.publish(
        c.EnrollmentChanged(
            company_id="acme",
            enrollment_id=uuid.uuid4(),
            event_id=day.event_id,
            session_id=day.session_id,
            user_id="learner",
            email="learner@example.com",
            status=c.EnrollmentStatus.APPROVED,
            previous_status=None,
            version=1,
        )
    )
    await env.publish(day)
    await env.created(day.day_id)
    url = f"/v1/days/{day.day_id}/meeting"
    async with env.client() as bridge:
        admin = (await bridge.get(url, headers=env.admin())).json()
        assert admin["status"] == "created"
        assert admin["start_url"]
        assert admin["join_url"]
        assert admin["recordings"] == []
        organizer = (await bridge.get(url, headers=env.user("org7"))).json()
        assert organizer["start_url"] == admin["start_url"]

        async def learner_sees() -> dict[str, object] | None:
            r = await bridge.get(url, headers=env.user("learner"))
            return r.json() if r.status_code == 200 else None

        learner = await env.wait(learner_sees)
        assert learner["join_url"] == admin["join_url"]
        assert "start_url" not in learner
        assert (await bridge.get(url, headers=env.user("stranger"))).status_code == 404
        other = await bridge.get(url, headers=env.admin(company="globex"))
        assert other.status_code == 404


async def test_r_zoom_8_rate_limit_storm_honours_retry_after(env: Env) -> None:
    account = await _account(env, "meet@zoom.test")
    async with env.sim() as sim:
        await sim.delete("/_sim/calls")
        await sim.post(
            "/_sim/faults",
            json={
                "status": 429,
                "count": 3,
                "retry_after": 1,
                "method": "POST",
                "path_prefix": "/v2/users",
            },
        )
    day = env.day(account)
    started = time.monotonic()
    await env.publish(day)
    await env.created(day.day_id)
    assert time.monotonic() - started >= 2.5  # three Retry-After: 1 waits
    posts = await _calls(env, "POST", "/v2/users")
    assert [p["status"] for p in posts] == [429, 429, 429, 201]


async def test_r_zoom_8_server_errors_back_off_then_succeed(env: Env) -> None:
    account = await _account(env, "meet@zoom.test")
    async with env.sim() as sim:
        await sim.post("/_sim/faults", json={"status": 503, "count": 2, "method": "POST"})
    day = env.day(account)
    await env.publish(day)
    row = await env.created(day.day_id)
    assert row.error is None


async def test_r_zoom_8_timeout_on_create_never_makes_a_second_meeting(env: Env) -> None:
    """Zoom creates the meeting but the answer times out: the retry finds it (by its agenda)."""
    account = await _account(env, "meet@zoom.test")
    async with env.sim() as sim:
        await sim.post("/_sim/faults", json={"delay_ms": 2000, "count": 1, "method": "POST"})
    day = env.day(account)
    await env.publish(day)
    row = await env.created(day.day_id)
    async with env.sim() as sim:
        meetings = (await sim.get("/_sim/meetings")).json()
    mine = [m for m in meetings if m["agenda"] == f"day:{day.day_id}" and not m["deleted"]]
    assert [str(m["id"]) for m in mine] == [row.zoom_meeting_id]
    assert row.join_url
    assert row.start_url_enc


async def test_r_zoom_8_retry_budget_exhausted_marks_failed_for_admins(env: Env) -> None:
    account = await _account(env, "meet@zoom.test")
    async with env.sim() as sim:
        await sim.post("/_sim/faults", json={"status": 500, "count": 10, "method": "POST"})
    day = env.day(account)
    await env.publish(day)
    failed = await env.wait(lambda: env.outbox(c.MeetingFailed.routing_key, day.day_id), 30)
    assert "500" in failed[0]["error"]
    async with env.sim() as sim:
        await sim.delete("/_sim/faults")
    async with env.client() as bridge:
        r = await bridge.get(f"/v1/days/{day.day_id}/meeting", headers=env.admin())
        assert r.json()["status"] == "failed"
        assert "500" in r.json()["error"]


async def test_r_zoom_8_retries_survive_a_bridge_restart(env: Env) -> None:
    account = await _account(env, "meet@zoom.test")
    async with env.sim() as sim:
        await sim.post(
            "/_sim/faults", json={"status": 429, "count": 1, "retry_after": 2, "method": "POST"}
        )
    day = env.day(account)
    await env.publish(day)

    async def job_waiting() -> ZoomJob | None:
        factory = env.app.state.runtime.session_factory()
        async with factory() as session:
            job = (
                await session.execute(select(ZoomJob).where(ZoomJob.day_id == day.day_id))
            ).scalar_one_or_none()
            return job if job is not None and job.last_error else None

    job = await env.wait(job_waiting)
    assert "429" in str(job.last_error)
    await env.stop_bridge()  # mid-retry: the only record of the work is in the database
    async with env.sim() as sim:
        await sim.delete("/_sim/faults")
    await env.start_bridge()
    row = await env.created(day.day_id)
    assert row.zoom_meeting_id


async def test_r_zoom_3_non_zoom_day_never_touches_zoom_and_switching_away_deletes(
    env: Env,
) -> None:
    account = await _account(env, "meet@zoom.test")
    offline = env.day(account)
    offline = offline.model_copy(update={"format": c.DayFormat.OFFLINE, "zoom": None})
    await env.publish(offline)
    zoomed = env.day(account)
    await env.publish(zoomed)
    row = await env.created(zoomed.day_id)
    await env.wait(lambda: env.meeting_row(offline.day_id))  # the offline day was handled
    for key in (c.MeetingCreated.routing_key, c.MeetingDeleted.routing_key):
        assert not await env.outbox(key, offline.day_id)
    # the zoom day becomes an offline day: its meeting goes away
    moved = env.day(
        account, day_id=zoomed.day_id, session_id=zoomed.session_id, cls=c.DayRescheduled
    ).model_copy(update={"format": c.DayFormat.OFFLINE, "zoom": None})
    await env.publish(moved)
    await env.wait(lambda: env.outbox(c.MeetingDeleted.routing_key, zoomed.day_id))
    assert (await env.sim_meeting(str(row.zoom_meeting_id)))["deleted"] is True
