"""R-ZOOM-3 one meeting per zoom day and R-ZOOM-8 Zoom being slow: a create whose answer is
lost (the bridge times out after 1 s, the simulator makes the meeting seconds later) never
leaves a day with two live meetings, and the meeting kept is the one whose join link catalog
got (MeetingCreated). Against the simulator over HTTP, day messages over RabbitMQ."""

from __future__ import annotations

import datetime as dt
import functools
import uuid
from typing import TYPE_CHECKING, Any

from te_shared import contracts as c
from zoom_bridge.meetings import jobs
from zoom_bridge.models import ZoomJob, ZoomMeeting

if TYPE_CHECKING:
    from conftest import Env

#: the bridge gives up on Zoom after 1 s; a retry looks an unanswered create up 3 s after it
#: was sent; the verification lists the day's meetings 1 s after the meeting is stored and
#: again 3 s later
BRIDGE_SETTINGS = {
    "zoom_http_timeout": 1.0,
    "zoom_create_settle_seconds": 3.0,
    "zoom_create_verify_delay_seconds": 1.0,
    "zoom_create_verify_again_seconds": 3.0,
}


async def _account(env: Env) -> str:
    if "_account" not in env.overrides:
        env.overrides["_account"] = await env.connect("administrator", sim_user="slow@zoom.test")
    return str(env.overrides["_account"])


async def _slow_creates(env: Env, delay_ms: int, count: int) -> None:
    """Zoom makes each of the next ``count`` meetings ``delay_ms`` after the POST arrived."""
    async with env.sim() as sim:
        r = await sim.post(
            "/_sim/faults",
            json={
                "delay_ms": delay_ms,
                "count": count,
                "method": "POST",
                "path_prefix": "/v2/users",
            },
        )
        assert r.status_code < 300, r.text


async def _made(env: Env, day_id: uuid.UUID) -> list[dict[str, Any]]:
    """Every meeting Zoom made for the day (deleted ones too)."""
    async with env.sim() as sim:
        meetings = (await sim.get("/_sim/meetings")).json()
    return [m for m in meetings if m["agenda"] == f"day:{day_id}"]


async def _verified(env: Env, day_id: uuid.UUID) -> bool:
    """The day's latest version is done at Zoom (meeting stored, or deleted) and no
    unanswered create is left to verify."""
    row = await env.meeting_row(day_id)
    if row is None or row.synced_version != row.version or row.create_account_id is not None:
        return False
    factory = env.app.state.runtime.session_factory()
    async with factory() as session:
        return await session.get(ZoomJob, (day_id, "verify")) is None


async def _timed_out(env: Env, day_id: uuid.UUID) -> bool:
    factory = env.app.state.runtime.session_factory()
    async with factory() as session:
        job = await session.get(ZoomJob, (day_id, "sync"))
        return job is not None and "timed out" in str(job.last_error)


async def _one_live_meeting_announced(env: Env, day_id: uuid.UUID) -> dict[str, Any]:
    """Exactly one live meeting for the day, the stored one, whose join link catalog got."""
    live = [m for m in await _made(env, day_id) if not m["deleted"]]
    row = await env.meeting_row(day_id)
    assert row is not None
    assert [str(m["id"]) for m in live] == [row.zoom_meeting_id]
    created = await env.outbox(c.MeetingCreated.routing_key, day_id)
    assert [m["join_url"] for m in created] == [live[0]["join_url"]]
    assert [m["zoom_meeting_id"] for m in created] == [row.zoom_meeting_id]
    return live[0]


async def test_r_zoom_8_slow_creates_of_four_days_end_with_one_meeting_each(env: Env) -> None:
    """Four days at once; every create takes Zoom 2.5 s, the bridge waits 1 s. Each retry
    looks its create up only once it settled (3 s after it was sent), finds what Zoom made
    and adopts it: no second POST lands, so no day ever had two meetings."""
    account = await _account(env)
    await _slow_creates(env, 2500, 4)
    days = [env.day(account) for _ in range(4)]
    for day in days:
        await env.publish(day)
    for day in days:
        await env.wait(functools.partial(_verified, env, day.day_id), 40)
    for day in days:
        await _one_live_meeting_announced(env, day.day_id)
        assert len(await _made(env, day.day_id)) == 1  # never a second one, not even for a while


async def test_r_zoom_8_reschedule_right_after_a_timed_out_create_waits_for_it_to_settle(
    env: Env,
) -> None:
    """The POST times out after 1 s (Zoom makes the meeting at 2.5 s) and a DayRescheduled
    arrives at once: the job it arms is not due before the create settled (3 s after it was
    sent), so the lookup finds Zoom's meeting and patches it instead of creating another."""
    account = await _account(env)
    await _slow_creates(env, 2500, 1)
    day = env.day(account, minutes=60)
    await env.publish(day)
    await env.wait(lambda: _timed_out(env, day.day_id))
    moved = env.day(
        account,
        day_id=day.day_id,
        session_id=day.session_id,
        start=day.start,
        minutes=45,
        cls=c.DayRescheduled,
    )
    await env.publish(moved)

    async def rescheduled() -> Any:
        row = await env.meeting_row(day.day_id)
        return row if row is not None and row.version == moved.version else None

    row = await env.wait(rescheduled)
    assert row.create_settles_at is not None
    factory = env.app.state.runtime.session_factory()
    async with factory() as session:
        job = await session.get(ZoomJob, (day.day_id, "sync"))
    # not due before the create settled (once claimed, its lease is later still)
    assert job is None or job.next_attempt_at >= row.create_settles_at

    async def synced() -> Any:
        row = await env.meeting_row(day.day_id)
        return row if row is not None and row.synced_version == moved.version else None

    await env.wait(synced)
    await env.wait(lambda: _verified(env, day.day_id))
    kept = await _one_live_meeting_announced(env, day.day_id)
    assert kept["duration"] == 45
    assert len(await _made(env, day.day_id)) == 1  # no second POST was made


async def test_r_zoom_8_a_create_slower_than_the_settle_time_is_deleted_by_the_verification(
    env: Env,
) -> None:
    """Zoom takes 5 s, longer than the 3 s settle time: the retry's lookup misses the meeting
    and creates another (stored, announced); a cancelled day's lookup misses it too. Zoom then
    makes the first meetings; the verification's later pass deletes every meeting with the
    day's agenda that is not the stored one (all of them for the cancelled day)."""
    account = await _account(env)
    before = await env.metrics()
    await _slow_creates(env, 5000, 2)
    kept_day, cancelled = env.day(account), env.day(account)
    await env.publish(kept_day)
    await env.publish(cancelled)
    await env.wait(lambda: _timed_out(env, cancelled.day_id))
    await env.publish(env.cancelled(cancelled))
    for day in (kept_day, cancelled):
        await env.wait(functools.partial(_verified, env, day.day_id), 40)
    await _one_live_meeting_announced(env, kept_day.day_id)
    made = await _made(env, kept_day.day_id)
    assert len(made) == 2  # the slow create did make a second meeting...
    assert [m["deleted"] for m in made].count(True) == 1  # ...which the verification deleted
    late = await _made(env, cancelled.day_id)
    assert [m["deleted"] for m in late] == [True]  # made after the day was gone, then deleted
    assert await env.outbox(c.MeetingDeleted.routing_key, cancelled.day_id)
    assert not await env.outbox(c.MeetingCreated.routing_key, cancelled.day_id)
    after = await env.metrics()
    name = "zoom_duplicate_meetings_deleted_total"
    assert after[(name, frozenset())] - before.get((name, frozenset()), 0.0) == 2


async def test_r_zoom_8_settling_never_delays_a_create_zoom_refused(env: Env) -> None:
    """A 429 made nothing: the create is not marked as possibly made, so its retry POSTs at
    once (Retry-After) without waiting for a settle time or verifying anything."""
    account = await _account(env)
    async with env.sim() as sim:
        await sim.post(
            "/_sim/faults",
            json={"status": 429, "count": 1, "retry_after": 0, "method": "POST"},
        )
    day = env.day(account)
    await env.publish(day)
    row = await env.created(day.day_id)
    assert row.create_account_id is None
    assert row.create_sent_at is None
    factory = env.app.state.runtime.session_factory()
    async with factory() as session:
        assert await session.get(ZoomJob, (day.day_id, "verify")) is None
    await _one_live_meeting_announced(env, day.day_id)


async def test_r_zoom_8_arming_a_sync_never_makes_it_due_before_the_create_settles(
    env: Env,
) -> None:
    """Whatever arms the day's sync (a day message, the admin's retry), it is not due before
    the unanswered create settles: the lookup would miss a meeting Zoom is still making."""
    factory = env.app.state.runtime.session_factory()
    day_id = uuid.uuid4()
    sent = dt.datetime.now(dt.UTC).replace(microsecond=0)
    settles = sent + dt.timedelta(hours=1)
    async with factory() as session, session.begin():
        session.add(
            ZoomMeeting(
                day_id=day_id,
                company_id="acme",
                session_id=uuid.uuid4(),
                event_id=uuid.uuid4(),
                version=1,
                desired="present",
                status="pending",
                synced_version=0,
                create_account_id=uuid.uuid4(),
                create_sent_at=sent,
                create_settles_at=settles,
            )
        )
        await session.flush()
        await jobs.arm(session, day_id, jobs.SYNC)
        await jobs.arm(session, day_id, jobs.VERIFY, delay=5)
    async with factory() as session:
        sync = await session.get(ZoomJob, (day_id, jobs.SYNC))
        verify = await session.get(ZoomJob, (day_id, jobs.VERIFY))
    assert sync is not None
    assert sync.next_attempt_at == settles
    assert verify is not None  # other kinds keep their own delay
    assert verify.next_attempt_at < settles
