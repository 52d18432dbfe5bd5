"""R-ZOOM-3 meetings per day and R-ZOOM-8 durable retries, against the simulator over HTTP and
day messages over RabbitMQ."""

from __future__ import annotations

import datetime as dt
import functools
import itertools
import re
import time
import uuid
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import select, update

from te_shared import contracts as c
from te_testing import messages
from te_testing.clock import zoom_time
from zoom_bridge import handlers
from zoom_bridge.meetings import jobs, store
from zoom_bridge.models import ZoomJob, ZoomMeeting
from zoom_bridge.zoom.client import ZoomRetryable

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


async def test_r_zoom_3_a_day_messages_job_goes_to_the_worker_as_it_commits_unclaimed(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sync job a day message arms is handed to this process's worker when the message's
    transaction commits: the meeting is made without a claim on the way (a statement, on the
    path of every new meeting's join link)."""
    account = await _account(env, "handed@zoom.test")
    worker = env.app.state.runtime.extras["worker"]
    handed: list[uuid.UUID] = []
    claimed: list[tuple[uuid.UUID, str]] = []
    hand, claim = worker.hand, jobs.claim

    def hand_and_note(job: jobs.Claimed) -> None:
        handed.append(job.day_id)
        hand(job)

    async def claim_and_note(*args: Any, **kwargs: Any) -> list[jobs.Claimed]:
        found = await claim(*args, **kwargs)
        claimed.extend((job.day_id, job.kind) for job in found)
        return found

    monkeypatch.setattr(worker, "hand", hand_and_note)
    monkeypatch.setattr(jobs, "claim", claim_and_note)
    day = env.day(account)
    await env.publish(day)
    row = await env.created(day.day_id)
    assert row.join_url
    assert handed == [day.day_id]
    assert (day.day_id, jobs.SYNC) not in claimed  # (its registrants job is claimed)


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
    # catalog never announced acme's settings: R-CO-1's defaults hold (training module on),
    # so the day's automatic recording is not lost for want of a message (R-DAY-9)
    assert sim_meeting["settings"]["auto_recording"] == "cloud"
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
    assert sim_meeting["start_time"] == zoom_time(later)
    await env.publish(env.cancelled(day))
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
    await env.publish(env.cancelled(day))
    await env.wait(lambda: env.outbox(c.MeetingDeleted.routing_key, day.day_id))
    assert not await env.outbox(c.MeetingFailed.routing_key, day.day_id)


async def test_r_zoom_3_a_day_message_is_kept_only_when_newer_and_keeps_the_meetings_fields(
    env: Env,
) -> None:
    """The day consumer's one statement (``store.record_day``): a stale version changes
    nothing; a newer zoom day makes a failed meeting Zoom never made pending again (R-ZOOM-8)
    and leaves a made one as it is; a day that is no zoom day any more keeps the meeting's
    account and fields (the meeting still to delete is made of them)."""
    factory = env.app.state.runtime.session_factory()
    account = str(uuid.uuid4())
    day = env.day(account, version=5)

    async def record(msg: c.DayData | c.DayCancelled) -> store.DayRecorded | None:
        async with factory() as session, session.begin():
            return await store.record_day(session, handlers.day_values(msg))

    async def change(**values: Any) -> None:
        async with factory() as session, session.begin():
            await session.execute(
                update(ZoomMeeting).where(ZoomMeeting.day_id == day.day_id).values(**values)
            )

    recorded = await record(day)
    assert recorded == store.DayRecorded("present", None, None, None)
    stale = env.day(account, day_id=day.day_id, minutes=30, version=4)
    assert await record(stale) is None
    row = await env.meeting_row(day.day_id)
    assert row is not None
    assert (row.version, row.status, row.start, row.end) == (5, "pending", day.start, day.end)

    await change(status="failed", error="Zoom said no")
    assert await record(env.day(account, day_id=day.day_id, version=6)) is not None
    row = await env.meeting_row(day.day_id)
    assert row is not None
    assert (row.status, row.error) == ("pending", None)

    await change(status="created", zoom_meeting_id="9100")
    gone = await record(messages.day_cancelled(day, 7))
    assert gone == store.DayRecorded("absent", "9100", None, None)
    row = await env.meeting_row(day.day_id)
    assert row is not None
    assert (row.desired, row.status, str(row.account_id), row.topic) == (
        "absent",
        "created",
        account,
        "Onboarding day",
    )
    assert await record(env.day(account, day_id=day.day_id, version=8)) is not None
    row = await env.meeting_row(day.day_id)
    assert row is not None
    assert (row.desired, row.status) == ("present", "created")


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
    again = await env.meeting_row(day_id)
    assert again is not None
    assert again.version == 2


async def test_r_zoom_3_host_link_only_for_organizer_and_admins(env: Env) -> None:
    account = await _account(env, "meet@zoom.test")
    day = env.day(account, organizer="org7")
    await env.publish(env.approved(day, "learner", "learner@example.com"))
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
        assert organizer["start_url"]
        assert organizer["start_url_fresh"] is True

        async def learner_sees() -> dict[str, object] | None:
            r = await bridge.get(url, headers=env.user("learner"))
            # with the administrator role, once registered, their own link (R-ZOOM-3)
            personal = r.status_code == 200 and "tk=" in str(r.json()["join_url"])
            return r.json() if personal else None

        learner = await env.wait(learner_sees)
        assert learner["join_url"] != admin["join_url"]
        assert f"/j/{admin['zoom_meeting_id']}?" in str(learner["join_url"])
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


async def test_r_zoom_8_budget_spent_is_failed_visibly_then_retry_or_reschedule_rearms(
    env: Env,
) -> None:
    """After the retry budget (6 s of 5xx here), the meeting is failed with the reason for
    admins and no longer retried; the admin's POST .../meeting/retry, or a later change of the
    day, arms it again and the meeting is created (R-ZOOM-8: a day's meeting is not lost)."""
    account = await _account(env, "meet@zoom.test")
    async with env.sim() as sim:
        await sim.post(
            "/_sim/faults",
            json={"status": 500, "count": 100000, "method": "POST", "path_prefix": "/v2/users"},
        )
    retried, rescheduled = env.day(account), env.day(account)
    await env.publish(retried)
    await env.publish(rescheduled)
    try:
        for day in (retried, rescheduled):
            failed = await env.wait(
                functools.partial(env.outbox, c.MeetingFailed.routing_key, day.day_id), 40
            )
            assert "500" in failed[0]["error"]
        async with env.client() as bridge:
            for day in (retried, rescheduled):
                r = await bridge.get(f"/v1/days/{day.day_id}/meeting", headers=env.admin())
                assert r.json()["status"] == "failed"
                assert "gave up" in r.json()["error"]
                assert "500" in r.json()["error"]
                assert await _job(env, day.day_id) is None  # no longer retried
    finally:
        async with env.sim() as sim:
            await sim.delete("/_sim/faults")
    url = f"/v1/days/{retried.day_id}/meeting/retry"
    async with env.client() as bridge:
        assert (await bridge.post(url, headers=env.user("u1"))).status_code == 403
        other = await bridge.post(url, headers=env.admin(company="globex"))
        assert other.status_code == 404
        unknown = await bridge.post(f"/v1/days/{uuid.uuid4()}/meeting/retry", headers=env.admin())
        assert unknown.status_code == 404
        r = await bridge.post(url, headers=env.admin())
        assert r.status_code == 202, r.text
        assert r.json()["status"] == "pending"
    await env.publish(
        env.day(
            account,
            day_id=rescheduled.day_id,
            session_id=rescheduled.session_id,
            start=rescheduled.start,
            cls=c.DayRescheduled,
        )
    )
    for day in (retried, rescheduled):
        row = await env.created(day.day_id)
        assert row.error is None
        assert len(await _mine(env, day.day_id)) == 1
        assert await env.outbox(c.MeetingCreated.routing_key, day.day_id)


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


async def _job(env: Env, day_id: uuid.UUID) -> ZoomJob | None:
    factory = env.app.state.runtime.session_factory()
    async with factory() as session:
        job: ZoomJob | None = await session.get(ZoomJob, (day_id, "sync"))
        return job


async def _set_job_due(env: Env, day_id: uuid.UUID, at: dt.datetime) -> None:
    factory = env.app.state.runtime.session_factory()
    async with factory() as session, session.begin():
        job = await session.get(ZoomJob, (day_id, "sync"))
        assert job is not None
        job.next_attempt_at = at
    env.app.state.runtime.extras["wake"]()


async def _mine(env: Env, day_id: uuid.UUID) -> list[dict[str, Any]]:
    async with env.sim() as sim:
        meetings = (await sim.get("/_sim/meetings")).json()
    return [m for m in meetings if m["agenda"] == f"day:{day_id}"]


async def test_r_zoom_3_auto_recording_is_cloud_only_for_administrator_role_with_training(
    env: Env,
) -> None:
    """R-DAY-9 / R-ZOOM-7: cloud recording when the day asks for it, the account has the
    administrator role and the company has the training module; otherwise none."""
    await env.publish(messages.company_settings_changed(company="recco", zoom_enabled=True))
    admin_role = await env.connect("administrator", company="recco", sim_user="rec-a@zoom.test")
    free_role = await env.connect("participant", company="recco", sim_user="rec-p@zoom.test")
    cases = {
        "cloud": env.day(admin_role, company="recco", auto_recording=True),
        "none (day does not ask)": env.day(admin_role, company="recco", auto_recording=False),
        "none (participant role)": env.day(free_role, company="recco", auto_recording=True),
    }
    for day in cases.values():
        await env.publish(day)
    for case, day in cases.items():
        row = await env.created(day.day_id)
        sim_meeting = await env.sim_meeting(str(row.zoom_meeting_id))
        assert sim_meeting["settings"]["auto_recording"] == case.split(" ")[0], case


async def test_r_zoom_3_host_link_is_fresh_from_zoom_and_falls_back_when_zoom_is_down(
    env: Env,
) -> None:
    """Zoom's start_url expires (about 2 h): organizer and admins get a fresh one from
    GET /meetings/{id}; when Zoom fails, the stored one, flagged as not fresh."""
    account = await _account(env, "meet@zoom.test")
    day = env.day(account, organizer="org8")
    await env.publish(day)
    row = await env.created(day.day_id)
    assert row.start_url_enc
    created_start_url = env.app.state.runtime.extras["zoom"].cipher.decrypt(row.start_url_enc)
    url = f"/v1/days/{day.day_id}/meeting"
    async with env.client() as bridge, env.sim() as sim:
        first = (await bridge.get(url, headers=env.admin())).json()
        second = (await bridge.get(url, headers=env.user("org8"))).json()
        assert first["start_url_fresh"] is True
        assert second["start_url_fresh"] is True
        assert len({created_start_url, first["start_url"], second["start_url"]}) == 3
        assert (await sim.get(second["start_url"])).status_code == 200  # a working host link
        await sim.post(
            "/_sim/faults",
            json={"status": 503, "count": 1, "method": "GET", "path_prefix": "/v2/meetings/"},
        )
        down = (await bridge.get(url, headers=env.admin())).json()
    assert down["status"] == "created"
    assert down["start_url_fresh"] is False
    assert down["start_url"] == second["start_url"]  # the last fresh one was kept


@pytest.mark.parametrize(
    ("style", "seconds"), [("seconds", 120), ("http-date", 120), ("iso", 7200)]
)
async def test_r_zoom_8_retry_after_is_read_in_all_three_forms(
    env: Env, style: str, seconds: int
) -> None:
    """Retry-After as delay-seconds, as an HTTP date, and as Zoom's daily-limit ISO time."""
    account = await _account(env, "meet@zoom.test")
    async with env.sim() as sim:
        await sim.post(
            "/_sim/faults",
            json={
                "status": 429,
                "retry_after": seconds,
                "retry_after_format": style,
                "method": "GET",
                "path_prefix": "/v2/users/me",
            },
        )
    zoom = env.app.state.runtime.extras["zoom"]
    with pytest.raises(ZoomRetryable) as caught:
        await zoom.call(uuid.UUID(account), "GET", "/users/me")
    assert caught.value.status == 429
    assert caught.value.retry_after is not None
    assert seconds - 3 <= caught.value.retry_after <= seconds + 1


async def test_r_zoom_8_long_retry_after_is_honoured_and_spends_no_budget(env: Env) -> None:
    """Zoom's daily limit says "come back in 2 hours": the job waits that long (not the 2 s
    backoff cap), its budget (6 s here) moves on by the wait, and the meeting is not failed."""
    account = await _account(env, "meet@zoom.test")
    async with env.sim() as sim:
        await sim.post(
            "/_sim/faults",
            json={
                "status": 429,
                "retry_after": 7200,
                "retry_after_format": "iso",
                "method": "POST",
                "path_prefix": "/v2/users",
            },
        )
    day = env.day(account)
    await env.publish(day)

    async def rate_limited() -> ZoomJob | None:
        job = await _job(env, day.day_id)
        return job if job is not None and job.last_error and "429" in job.last_error else None

    job = await env.wait(rate_limited)
    now = dt.datetime.now(dt.UTC)
    assert job.next_attempt_at > now + dt.timedelta(seconds=7100)
    assert job.retry_until is not None
    assert job.retry_until > now + dt.timedelta(seconds=7100)
    assert job.attempts == 0  # the wait was not an attempt for the backoff either
    # the two hours pass
    await _set_job_due(env, day.day_id, now)
    row = await env.created(day.day_id)
    assert row.error is None
    assert not await env.outbox(c.MeetingFailed.routing_key, day.day_id)


async def test_r_zoom_8_timed_out_create_then_reschedule_never_makes_a_second_meeting(
    env: Env,
) -> None:
    """The exact sequence: the POST times out (Zoom did create the meeting), DayRescheduled
    arrives and restarts the job (attempt 1 again), and the next attempt adopts the meeting
    Zoom made (found by its agenda) and patches it, instead of POSTing a second one."""
    account = await _account(env, "meet@zoom.test")
    async with env.sim() as sim:
        await sim.post(
            "/_sim/faults",
            json={"delay_ms": 2500, "count": 1, "method": "POST", "path_prefix": "/v2/users"},
        )
    day = env.day(account, minutes=60)
    await env.publish(day)

    async def timed_out() -> ZoomJob | None:
        job = await _job(env, day.day_id)
        return job if job is not None and "timed out" in str(job.last_error) else None

    await env.wait(timed_out)
    # the job's own retry is far away: only the reschedule runs it again
    await _set_job_due(env, day.day_id, dt.datetime.now(dt.UTC) + dt.timedelta(hours=1))
    made = await env.wait(lambda: _mine(env, day.day_id))  # Zoom finished the create
    assert len(made) == 1
    moved = env.day(
        account,
        day_id=day.day_id,
        session_id=day.session_id,
        start=day.start,
        minutes=45,
        cls=c.DayRescheduled,
    )
    await env.publish(moved)
    row = await env.created(day.day_id)
    mine = await _mine(env, day.day_id)
    assert [str(m["id"]) for m in mine] == [row.zoom_meeting_id] == [str(made[0]["id"])]
    assert mine[0]["duration"] == 45  # the adopted meeting got the new version
    assert row.synced_version == moved.version
    # the unanswered create stays marked until the verification's last pass clears it
    assert row.create_account_id is not None

    async def verified() -> bool:
        current = await env.meeting_row(day.day_id)
        return current is not None and current.create_account_id is None

    await env.wait(verified)
    assert [str(m["id"]) for m in await _mine(env, day.day_id)] == [row.zoom_meeting_id]


async def test_r_zoom_3_cancel_after_timed_out_create_deletes_what_zoom_made(env: Env) -> None:
    """DayCancelled while the create's answer was lost (no meeting id yet): the bridge looks
    the meeting up by its agenda and deletes it."""
    account = await _account(env, "meet@zoom.test")
    async with env.sim() as sim:
        await sim.post(
            "/_sim/faults",
            json={"delay_ms": 2500, "count": 1, "method": "POST", "path_prefix": "/v2/users"},
        )
    day = env.day(account)
    await env.publish(day)

    async def timed_out() -> ZoomJob | None:
        job = await _job(env, day.day_id)
        return job if job is not None and "timed out" in str(job.last_error) else None

    await env.wait(timed_out)
    await _set_job_due(env, day.day_id, dt.datetime.now(dt.UTC) + dt.timedelta(hours=1))
    made = await env.wait(lambda: _mine(env, day.day_id))
    await env.publish(env.cancelled(day))
    await env.wait(lambda: env.outbox(c.MeetingDeleted.routing_key, day.day_id))
    assert (await env.sim_meeting(str(made[0]["id"])))["deleted"] is True
    assert [m["deleted"] for m in await _mine(env, day.day_id)] == [True]
    assert not await env.outbox(c.MeetingCreated.routing_key, day.day_id)


async def test_r_zoom_3_changing_the_days_account_moves_the_meeting(env: Env) -> None:
    """The day's Zoom account changes: the meeting on the old account is deleted (not left
    behind) and one is created on the new account."""
    old = await _account(env, "meet@zoom.test")
    new = await _account(env, "meet-other@zoom.test")
    day = env.day(old)
    await env.publish(day)
    first = await env.created(day.day_id)
    moved = env.day(
        new, day_id=day.day_id, session_id=day.session_id, start=day.start, cls=c.DayRescheduled
    )
    await env.publish(moved)

    async def on_new_account() -> ZoomMeeting | None:
        row = await env.meeting_row(day.day_id)
        ok = row is not None and row.status == "created" and row.synced_version == moved.version
        return row if ok else None

    second = await env.wait(on_new_account)
    assert second.zoom_meeting_id != first.zoom_meeting_id
    assert str(second.meeting_account_id) == new
    assert (await env.sim_meeting(str(first.zoom_meeting_id)))["deleted"] is True
    live = [m for m in await _mine(env, day.day_id) if not m["deleted"]]
    assert [str(m["id"]) for m in live] == [second.zoom_meeting_id]
    async with env.sim() as sim:
        users = (await sim.get("/_sim/users")).json()
    host = next(u for u in users if u["email"] == "meet-other@zoom.test")
    assert live[0]["host_id"] == host["id"]


async def test_r_zoom_3_a_topic_longer_than_zoom_takes_is_cut_not_refused(env: Env) -> None:
    """Zoom refuses a topic over 200 characters: the meeting is created with the topic cut at a
    character boundary, ending with "…" (a whole emoji is dropped, never half of it)."""
    account = await _account(env, "meet@zoom.test")
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"  # one emoji, five code points
    long = "Quarterly compliance refresher " * 6 + "and more " + family + " for everyone"
    assert len(long) > 200
    day = env.day(account).model_copy(update={"topic": long})
    await env.publish(day)
    row = await env.created(day.day_id)
    topic = (await env.sim_meeting(str(row.zoom_meeting_id)))["topic"]
    assert topic.endswith("…")
    assert len(topic) <= 200
    assert long.startswith(topic[:-1].rstrip())
    assert "\u200d" not in topic


def _next_utc_midnight() -> dt.datetime:
    day = dt.datetime.now(dt.UTC).date() + dt.timedelta(days=1)
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)


async def test_r_zoom_8_daily_limit_parks_the_job_until_zoom_says_outside_the_budget(
    env: Env,
) -> None:
    """Zoom's daily limit of meeting creates (429, X-RateLimit-Type: Daily-limit, Retry-After:
    the next 00:00 UTC): the job waits until then, not a backoff; the wait is neither an attempt
    nor part of the retry budget (6 s here), the meeting stays pending and says when it is
    tried again, to catalog too (``MeetingPending``). Once the day has passed, the meeting is
    made."""
    account = await _account(env, "meet@zoom.test")
    async with env.sim() as sim:
        await sim.post(
            "/_sim/faults",
            json={
                "status": 429,
                "rate_limit_type": "Daily-limit",
                "method": "POST",
                "path_prefix": "/v2/users",
            },
        )
    day = env.day(account)
    await env.publish(day)

    async def parked() -> ZoomJob | None:
        job = await _job(env, day.day_id)
        return job if job is not None and "daily limit" in str(job.last_error) else None

    job = await env.wait(parked)
    midnight = _next_utc_midnight()
    assert abs((job.next_attempt_at - midnight).total_seconds()) < 5
    assert job.attempts == 0
    assert job.retry_until is not None
    assert job.retry_until > midnight
    async with env.client() as bridge:
        seen = (await bridge.get(f"/v1/days/{day.day_id}/meeting", headers=env.admin())).json()
    assert seen["status"] == "pending"
    said = re.search(r"tried again at (\S+Z)", seen["error"])
    assert said is not None, seen
    assert abs((dt.datetime.fromisoformat(said.group(1)) - midnight).total_seconds()) < 5
    assert not await env.outbox(c.MeetingFailed.routing_key, day.day_id)
    # and catalog hears why the day has no link yet, and until when
    (pending,) = await env.outbox(c.MeetingPending.routing_key, day.day_id)
    assert (pending["status"], pending["reason"], pending["join_url"]) == (
        "pending",
        seen["error"],
        None,
    )
    assert (pending["session_id"], pending["event_id"]) == (str(day.session_id), str(day.event_id))
    # the next UTC day comes
    await _set_job_due(env, day.day_id, dt.datetime.now(dt.UTC))
    row = await env.created(day.day_id)
    assert row.error is None
    (created,) = await env.outbox(c.MeetingCreated.routing_key, day.day_id)
    assert created["seq"] > pending["seq"]  # consumers apply the later one whatever the order
    async with env.client() as bridge:
        seen = (await bridge.get(f"/v1/days/{day.day_id}/meeting", headers=env.admin())).json()
    assert "error" not in seen


async def test_r_zoom_8_a_qps_429_is_an_ordinary_retry_within_the_budget(env: Env) -> None:
    """Per-second limits (429, X-RateLimit-Type: QPS, Retry-After: 1) are retried with backoff,
    never sooner than Zoom asks, and count against the retry budget: when they never stop,
    the meeting fails once the budget (6 s here) is spent, like any other retryable error."""
    account = await _account(env, "meet@zoom.test")
    async with env.sim() as sim:
        await sim.delete("/_sim/calls")
        await sim.post(
            "/_sim/faults",
            json={
                "status": 429,
                "rate_limit_type": "QPS",
                "retry_after": 1,
                "count": 100000,
                "method": "POST",
                "path_prefix": "/v2/users",
            },
        )
    day = env.day(account)
    try:
        await env.publish(day)
        failed = await env.wait(lambda: env.outbox(c.MeetingFailed.routing_key, day.day_id), 40)
    finally:
        async with env.sim() as sim:
            await sim.delete("/_sim/faults")
    assert "gave up" in failed[0]["error"]
    assert "429" in failed[0]["error"]
    posts = [p for p in await _calls(env, "POST", "/v2/users") if p["status"] == 429]
    assert len(posts) >= 3
    gaps = [
        (
            dt.datetime.fromisoformat(str(b["at"])) - dt.datetime.fromisoformat(str(a["at"]))
        ).total_seconds()
        for a, b in itertools.pairwise(posts)
    ]
    assert min(gaps) >= 0.9  # never sooner than Retry-After
