"""R-ZOOM-3 registrants: with the administrator role every seat holder of the day's session is
registered for its meeting (automatic approval) and gets a personal join link; a lost seat
loses the registration; a new meeting registers everyone again; participant-role meetings keep
the shared link. Against the simulator over HTTP, enrollments and days over RabbitMQ."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from te_shared import contracts as c
from te_testing import messages
from zoom_bridge.models import MeetingRegistrant, WebhookEvent, ZoomJob, ZoomMeeting
from zoom_bridge.zoom.api import ZoomApi
from zoom_bridge.zoom.client import ZoomNotFound

if TYPE_CHECKING:
    from conftest import Env


async def _account(env: Env, role: str = "administrator") -> str:
    key = f"_account_{role}"
    if key not in env.overrides:
        env.overrides[key] = await env.connect(role, sim_user=f"reg-{role}@zoom.test")
    return str(env.overrides[key])


async def _registrants(env: Env, account: str, zoom_id: str) -> dict[str, dict[str, str]]:
    """The meeting's approved registrants at Zoom, by e-mail."""
    api = ZoomApi(env.app.state.runtime.extras["zoom"])
    try:
        found = await api.list_registrants(uuid.UUID(account), zoom_id)
    except ZoomNotFound:  # the meeting takes no registrants (yet)
        return {}
    return {r.email: {"id": r.id, "join_url": r.join_url} for r in found}


async def _rows(env: Env, day_id: uuid.UUID) -> dict[uuid.UUID, MeetingRegistrant]:
    factory = env.app.state.runtime.session_factory()
    async with factory() as session:
        rows = await session.execute(
            select(MeetingRegistrant).where(MeetingRegistrant.day_id == day_id)
        )
        return {r.enrollment_id: r for r in rows.scalars()}


async def _settled(env: Env, day_id: uuid.UUID) -> bool:
    """No registrants job of the day is left to run."""
    factory = env.app.state.runtime.session_factory()
    async with factory() as session:
        return await session.get(ZoomJob, (day_id, "registrants")) is None


async def _registered_as(
    env: Env, account: str, zoom_id: str, emails: set[str]
) -> dict[str, dict[str, str]]:
    async def check() -> dict[str, dict[str, str]] | None:
        found = await _registrants(env, account, zoom_id)
        return found if set(found) == emails else None

    result: dict[str, dict[str, str]] = await env.wait(check)
    return result


async def _recreated(env: Env, day_id: uuid.UUID, gone: str | None) -> ZoomMeeting | None:
    """The day's meeting once a new one (not ``gone``) is stored as created."""
    row = await env.meeting_row(day_id)
    if row is None or row.zoom_meeting_id in (None, gone):
        return None
    return row if row.status == "created" else None


async def _join_url(env: Env, day_id: uuid.UUID, headers: dict[str, str]) -> Any:
    async with env.client() as bridge:
        r = await bridge.get(f"/v1/days/{day_id}/meeting", headers=headers)
    return r.json()["join_url"] if r.status_code == 200 else r.status_code


async def test_r_zoom_3_seat_holders_of_an_administrator_meeting_get_personal_links(
    env: Env,
) -> None:
    account = await _account(env)
    day = env.day(account, organizer="org-r")
    unbound = messages.enrollment_in(
        day, None, "newbie@example.com"
    )  # an e-mail nobody signed in with
    for message in (
        messages.enrollment_in(day, "ann", "Ann@Example.com"),
        messages.enrollment_in(day, "pat", "pat@example.com", c.EnrollmentStatus.PENDING),
        messages.enrollment_in(day, "wes", "wes@example.com", c.EnrollmentStatus.WAITLISTED),
        unbound,
    ):
        await env.publish(message)
    await env.publish(day)
    row = await env.created(day.day_id)
    zoom_id = str(row.zoom_meeting_id)
    settings = (await env.sim_meeting(zoom_id))["settings"]
    assert (settings["approval_type"], settings["registration_type"]) == (0, 1)
    # seat holders only (pending and waitlisted hold no join link), by e-mail when unbound
    at_zoom = await _registered_as(env, account, zoom_id, {"ann@example.com", "newbie@example.com"})
    await env.wait(lambda: _settled(env, day.day_id))
    rows = await _rows(env, day.day_id)
    assert {r.email for r in rows.values()} == set(at_zoom)
    for stored in rows.values():
        assert stored.zoom_meeting_id == zoom_id
        assert stored.zoom_registrant_id == at_zoom[stored.email]["id"]
        assert "tk=" not in stored.join_url_enc  # the personal link is encrypted at rest
    # the user gets their own link; admins and the organizer the meeting's shared one
    mine = await _join_url(env, day.day_id, env.user("ann"))
    assert mine == at_zoom["ann@example.com"]["join_url"]
    assert mine != row.join_url
    assert "tk=" in mine
    assert await _join_url(env, day.day_id, env.admin()) == row.join_url
    assert await _join_url(env, day.day_id, env.user("org-r")) == row.join_url
    assert await _join_url(env, day.day_id, env.user("pat")) == 404
    # the unbound enrollment's person signs in: the same registration is theirs, not a new one
    await env.publish(
        messages.enrollment_in(
            day, "newbie", "newbie@example.com", enrollment_id=unbound.enrollment_id, version=2
        )
    )

    async def newbies_link() -> Any:
        url = await _join_url(env, day.day_id, env.user("newbie"))
        return url if isinstance(url, str) else None

    assert await env.wait(newbies_link) == at_zoom["newbie@example.com"]["join_url"]
    assert set(await _registrants(env, account, zoom_id)) == set(at_zoom)


async def test_r_zoom_3_a_lost_seat_removes_the_registrant_at_zoom_and_here(env: Env) -> None:
    account = await _account(env)
    day = env.day(account)
    cid = uuid.uuid4()
    mover = uuid.uuid4()
    await env.publish(messages.enrollment_in(day, "cat", "cat@example.com", enrollment_id=cid))
    await env.publish(messages.enrollment_in(day, "max", "max@example.com", enrollment_id=mover))
    await env.publish(messages.enrollment_in(day, "liv", "liv@example.com"))
    await env.publish(day)
    row = await env.created(day.day_id)
    zoom_id = str(row.zoom_meeting_id)
    everyone = {"cat@example.com", "max@example.com", "liv@example.com"}
    before = await _registered_as(env, account, zoom_id, everyone)
    # cat withdraws; max moves to another session of the event
    await env.publish(
        messages.enrollment_in(
            day,
            "cat",
            "cat@example.com",
            c.EnrollmentStatus.CANCELLED,
            enrollment_id=cid,
            version=2,
        )
    )
    await env.publish(
        messages.enrollment_in(
            day, "max", "max@example.com", enrollment_id=mover, version=2, session_id=uuid.uuid4()
        )
    )
    await _registered_as(env, account, zoom_id, {"liv@example.com"})
    await env.wait(lambda: _settled(env, day.day_id))
    assert {r.email for r in (await _rows(env, day.day_id)).values()} == {"liv@example.com"}
    assert await _join_url(env, day.day_id, env.user("cat")) == 404
    assert await _join_url(env, day.day_id, env.user("max")) == 404
    # cat's seat comes back (approved again): registered again, with a new link
    await env.publish(
        messages.enrollment_in(day, "cat", "cat@example.com", enrollment_id=cid, version=3)
    )
    again = await _registered_as(env, account, zoom_id, {"liv@example.com", "cat@example.com"})
    assert again["cat@example.com"]["id"] != before["cat@example.com"]["id"]


async def test_r_zoom_3_a_recreated_meeting_registers_everyone_again(env: Env) -> None:
    account = await _account(env)
    day = env.day(account)
    await env.publish(messages.enrollment_in(day, "ida", "ida@example.com"))
    await env.publish(day)
    first = await env.created(day.day_id)
    await _registered_as(env, account, str(first.zoom_meeting_id), {"ida@example.com"})
    # somebody deletes the meeting through the API: Zoom notifies it (meeting.deleted) and the
    # day gets a new one; a change of the day that comes first finds it gone (404) and makes
    # it too: either way, one new meeting
    api = ZoomApi(env.app.state.runtime.extras["zoom"])
    await api.delete_meeting(uuid.UUID(account), str(first.zoom_meeting_id))
    await env.publish(
        env.day(
            account,
            day_id=day.day_id,
            session_id=day.session_id,
            start=day.start + dt.timedelta(hours=1),
            cls=c.DayRescheduled,
        )
    )

    second = await env.wait(lambda: _recreated(env, day.day_id, first.zoom_meeting_id))
    at_zoom = await _registered_as(env, account, str(second.zoom_meeting_id), {"ida@example.com"})
    await env.wait(lambda: _settled(env, day.day_id))
    [stored] = (await _rows(env, day.day_id)).values()
    assert stored.zoom_meeting_id == second.zoom_meeting_id
    assert (
        await _join_url(env, day.day_id, env.user("ida")) == at_zoom["ida@example.com"]["join_url"]
    )


async def test_r_zoom_3_participant_role_meetings_keep_the_shared_link(env: Env) -> None:
    account = await _account(env, "participant")
    day = env.day(account)
    await env.publish(messages.enrollment_in(day, "joe", "joe@example.com"))
    await env.publish(day)
    row = await env.created(day.day_id)
    assert (await env.sim_meeting(str(row.zoom_meeting_id)))["settings"]["approval_type"] == 2

    async def joe_sees() -> Any:
        url = await _join_url(env, day.day_id, env.user("joe"))
        return url if isinstance(url, str) else None

    assert await env.wait(joe_sees) == row.join_url
    await env.wait(lambda: _settled(env, day.day_id))
    assert await _rows(env, day.day_id) == {}
    async with env.sim() as sim:
        calls = (await sim.get("/_sim/calls")).json()
    assert not [x for x in calls if f"/v2/meetings/{row.zoom_meeting_id}/registrants" in x["path"]]


async def test_r_zoom_3_registration_respects_zooms_rate_limits(env: Env) -> None:
    """Per-second 429s on adding registrants are retried with backoff: everyone ends up
    registered once, whatever was cut short."""
    account = await _account(env)
    day = env.day(account)
    emails = {f"learner{i}@example.com" for i in range(5)}
    for i, email in enumerate(sorted(emails)):
        await env.publish(messages.enrollment_in(day, f"learner{i}", email))
    async with env.sim() as sim:
        await sim.post(
            "/_sim/faults",
            json={
                "status": 429,
                "rate_limit_type": "QPS",
                "retry_after": 1,
                "count": 2,
                "method": "POST",
                "path_prefix": "/v2/meetings/",
            },
        )
    await env.publish(day)
    row = await env.created(day.day_id)
    await _registered_as(env, account, str(row.zoom_meeting_id), emails)
    await env.wait(lambda: _settled(env, day.day_id))
    assert {r.email for r in (await _rows(env, day.day_id)).values()} == emails


async def test_r_zoom_3_a_role_change_switches_registration(env: Env) -> None:
    """The account becomes a participant account: registrants are removed and the meeting
    takes none (everyone has the shared link); administrator again: registered again."""
    account = await env.connect("administrator", sim_user="reg-switch@zoom.test")
    day = env.day(account)
    await env.publish(messages.enrollment_in(day, "kim", "kim@example.com"))
    await env.publish(day)
    row = await env.created(day.day_id)
    zoom_id = str(row.zoom_meeting_id)
    await _registered_as(env, account, zoom_id, {"kim@example.com"})
    async with env.client() as bridge:
        r = await bridge.patch(
            f"/v1/zoom/accounts/{account}", json={"role": "participant"}, headers=env.admin()
        )
        assert r.status_code == 200

    async def switched_off() -> bool:
        meeting = await env.sim_meeting(zoom_id)
        return bool(meeting["settings"]["approval_type"] == 2)

    await env.wait(switched_off)
    await env.wait(lambda: _settled(env, day.day_id))
    assert await _rows(env, day.day_id) == {}
    assert await _join_url(env, day.day_id, env.user("kim")) == row.join_url
    async with env.client() as bridge:
        r = await bridge.patch(
            f"/v1/zoom/accounts/{account}", json={"role": "administrator"}, headers=env.admin()
        )
        assert r.status_code == 200
    again = await _registered_as(env, account, zoom_id, {"kim@example.com"})
    assert (await env.sim_meeting(zoom_id))["settings"]["approval_type"] == 0

    async def kims_link() -> Any:
        url = await _join_url(env, day.day_id, env.user("kim"))
        return url if url == again["kim@example.com"]["join_url"] else None

    await env.wait(kims_link)


async def test_r_zoom_3_a_meeting_its_host_deletes_at_zoom_is_made_again(env: Env) -> None:
    """The host deletes the day's meeting in Zoom's web portal (``meeting.deleted``): the day
    gets a new meeting at once, announced with its join link, and its seat holders are
    registered for it, without waiting for the day to change (before, the dead link stayed
    until someone edited the day)."""
    account = await _account(env)
    day = env.day(account)
    await env.publish(messages.enrollment_in(day, "eva", "eva@example.com"))
    await env.publish(day)
    first = await env.created(day.day_id)
    await _registered_as(env, account, str(first.zoom_meeting_id), {"eva@example.com"})
    async with env.sim() as sim:
        r = await sim.post(f"/_sim/meetings/{first.zoom_meeting_id}/delete")
        assert r.json()["webhook_status"] == 200

    second = await env.wait(lambda: _recreated(env, day.day_id, first.zoom_meeting_id))
    assert second.join_url != first.join_url
    assert (await env.sim_meeting(str(second.zoom_meeting_id)))["deleted"] is False

    async def announced() -> list[dict[str, Any]]:
        rows = await env.outbox(c.MeetingCreated.routing_key, day.day_id)
        return [r for r in rows if r["zoom_meeting_id"] == second.zoom_meeting_id]

    (created,) = await env.wait(announced)
    assert created["join_url"] == second.join_url
    at_zoom = await _registered_as(env, account, str(second.zoom_meeting_id), {"eva@example.com"})
    await env.wait(lambda: _settled(env, day.day_id))
    [stored] = (await _rows(env, day.day_id)).values()
    assert stored.zoom_meeting_id == second.zoom_meeting_id
    eva = at_zoom["eva@example.com"]["join_url"]
    assert await _join_url(env, day.day_id, env.user("eva")) == eva


async def _due_now(env: Env, day_id: uuid.UUID) -> None:
    factory = env.app.state.runtime.session_factory()
    async with factory() as session, session.begin():
        job = await session.get(ZoomJob, (day_id, "sync"))
        assert job is not None
        job.next_attempt_at = dt.datetime.now(dt.UTC)
    env.app.state.runtime.extras["wake"]()


async def _job_parked(env: Env, day_id: uuid.UUID) -> ZoomJob | None:
    factory = env.app.state.runtime.session_factory()
    async with factory() as session:
        job = await session.get(ZoomJob, (day_id, "sync"))
    return job if job is not None and "daily limit" in str(job.last_error) else None


async def test_r_zoom_3_a_meeting_recovered_before_a_new_one_is_made_is_taken_back(
    env: Env,
) -> None:
    """The host deletes the day's meeting at Zoom by mistake and takes it back out of Zoom's
    trash (``meeting.recovered``) before the day has a new one (here Zoom's daily limit holds
    the new one back): the day takes its meeting back, announced with its join link, the
    links people had work again, its seat holders are registered, and no second meeting is
    made. Deleted again later, the day lets it go again."""
    account = await _account(env)
    day = env.day(account)
    await env.publish(messages.enrollment_in(day, "eva", "eva@example.com"))
    await env.publish(day)
    first = await env.created(day.day_id)
    zoom_id = str(first.zoom_meeting_id)
    await _registered_as(env, account, zoom_id, {"eva@example.com"})
    limit = {"status": 429, "rate_limit_type": "Daily-limit", "method": "POST"}
    async with env.sim() as sim:
        await sim.post("/_sim/faults", json={**limit, "path_prefix": "/v2/users"})
        r = await sim.post(f"/_sim/meetings/{zoom_id}/delete")
        assert r.json()["webhook_status"] == 200
        await env.wait(lambda: _job_parked(env, day.day_id))
        gone = await env.meeting_row(day.day_id)
        assert gone is not None
        assert (gone.zoom_meeting_id, gone.status) == (None, "pending")
        r = await sim.post(f"/_sim/meetings/{zoom_id}/recover")
        assert r.json()["webhook_status"] == 200

    async def announced() -> list[dict[str, Any]]:
        rows = await env.outbox(c.MeetingCreated.routing_key, day.day_id)
        return rows if len(rows) == 2 else []

    again = (await env.wait(announced))[-1]
    assert (again["zoom_meeting_id"], again["join_url"]) == (zoom_id, first.join_url)
    # the deletion was announced (catalog and the calendar drop the dead link meanwhile),
    # ordered between the two creations by seq: they come on queues of their own
    (gone_msg,) = await env.outbox(c.MeetingDeleted.routing_key, day.day_id)
    made = await env.outbox(c.MeetingCreated.routing_key, day.day_id)
    assert gone_msg["zoom_meeting_id"] == zoom_id
    assert made[0]["seq"] < gone_msg["seq"] < made[1]["seq"]
    assert made[0]["version"] == gone_msg["version"] == made[1]["version"]
    row = await env.meeting_row(day.day_id)
    assert row is not None
    assert (row.zoom_meeting_id, row.status, row.error) == (zoom_id, "created", None)
    assert row.gone_zoom_meeting_id is None
    await _registered_as(env, account, zoom_id, {"eva@example.com"})
    await env.wait(lambda: _settled(env, day.day_id))
    assert await _join_url(env, day.day_id, env.user("eva")) != 404
    async with env.sim() as sim:
        meetings = (await sim.get("/_sim/meetings")).json()
    made = [m for m in meetings if m["agenda"] == f"day:{day.day_id}"]
    assert [(str(m["id"]), m["deleted"]) for m in made] == [(zoom_id, False)]

    # deleted again: Zoom's second meeting.deleted carries the first one's payload, only its
    # event_ts differs; it is a deletion of its own, not a re-delivery of the first
    async with env.sim() as sim:
        r = await sim.post(f"/_sim/meetings/{zoom_id}/delete")
        assert r.json()["webhook_status"] == 200

    async def let_go() -> bool:
        row = await env.meeting_row(day.day_id)
        return row is not None and row.zoom_meeting_id != zoom_id

    await env.wait(let_go)


async def test_r_zoom_3_a_meeting_found_deleted_by_a_patch_is_taken_back_too(env: Env) -> None:
    """Zoom's ``meeting.deleted`` is late (or lost) and the day's next patch finds the meeting
    gone (404): it is remembered as deleted at Zoom all the same, so recovered before the new
    one is made, the day takes it back."""
    account = await _account(env)
    start = dt.datetime.now(dt.UTC) + dt.timedelta(days=3)
    day = env.day(account, start=start)
    await env.publish(day)
    first = await env.created(day.day_id)
    zoom_id = str(first.zoom_meeting_id)
    limit = {"status": 429, "rate_limit_type": "Daily-limit", "method": "POST"}
    async with env.sim() as sim:
        await sim.post("/_sim/faults", json={**limit, "path_prefix": "/v2/users"})
        r = await sim.post(f"/_sim/meetings/{zoom_id}/delete", json={"delay_ms": 600_000})
        assert r.status_code == 200
        moved = env.day(
            account,
            day_id=day.day_id,
            session_id=day.session_id,
            start=start + dt.timedelta(hours=1),
            cls=c.DayRescheduled,
        )
        await env.publish(moved)
        await env.wait(lambda: _job_parked(env, day.day_id))
        gone = await env.meeting_row(day.day_id)
        assert gone is not None
        assert (gone.zoom_meeting_id, gone.gone_zoom_meeting_id) == (None, zoom_id)
        await sim.post(f"/_sim/meetings/{zoom_id}/recover")

    async def taken_back() -> Any:
        row = await env.meeting_row(day.day_id)
        ok = row is not None and row.zoom_meeting_id == zoom_id and row.status == "created"
        return row if ok else None

    row = await env.wait(taken_back)
    assert row.join_url == first.join_url
    assert (await env.sim_meeting(zoom_id))["start_time"].startswith(
        (start + dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:")
    )  # patched to the day as it is now


async def test_r_zoom_3_a_meeting_deleted_for_good_is_forgotten_or_replaced(env: Env) -> None:
    """``meeting.permanently_deleted``: the meeting left Zoom's trash for good.

    1. Its deletion was announced and its new one held back by Zoom's daily limit: the day
       forgets it (no recovery can come for it any more), and the new one is made as before.
    2. Its deletion's notice is late (Zoom retries for hours): the day learns here that its
       meeting is gone and makes a new one at once."""
    account = await _account(env)
    day = env.day(account)
    await env.publish(day)
    first = await env.created(day.day_id)
    zoom_id = str(first.zoom_meeting_id)
    limit = {"status": 429, "rate_limit_type": "Daily-limit", "method": "POST"}
    async with env.sim() as sim:
        await sim.post("/_sim/faults", json={**limit, "path_prefix": "/v2/users"})
        await sim.post(f"/_sim/meetings/{zoom_id}/delete")
        await env.wait(lambda: _job_parked(env, day.day_id))
        r = await sim.post(f"/_sim/meetings/{zoom_id}/purge")
        assert r.json()["webhook_status"] == 200

    async def forgotten() -> Any:
        row = await env.meeting_row(day.day_id)
        return row if row is not None and row.gone_zoom_meeting_id is None else None

    row = await env.wait(forgotten)
    assert (row.zoom_meeting_id, row.status) == (None, "pending")
    await _due_now(env, day.day_id)  # the next UTC day
    made = await env.created(day.day_id)
    assert made.zoom_meeting_id not in (None, first.zoom_meeting_id)

    late = env.day(account)
    await env.publish(late)
    second = await env.created(late.day_id)
    second_id = str(second.zoom_meeting_id)
    async with env.sim() as sim:
        r = await sim.post(f"/_sim/meetings/{second_id}/delete", json={"delay_ms": 600_000})
        assert r.status_code == 200
        r = await sim.post(f"/_sim/meetings/{second_id}/purge")
        assert r.json()["webhook_status"] == 200

    async def replaced() -> Any:
        row = await env.meeting_row(late.day_id)
        ok = row is not None and row.status == "created" and row.zoom_meeting_id != second_id
        return row if ok else None

    row = await env.wait(replaced)
    assert row.gone_zoom_meeting_id is None
    (gone_msg,) = await env.outbox(c.MeetingDeleted.routing_key, late.day_id)
    assert gone_msg["zoom_meeting_id"] == second_id


async def test_r_zoom_3_a_recovery_delivered_before_its_deletion_keeps_the_meeting(
    env: Env,
) -> None:
    """Zoom delivers in no order: the host's recovery arrives before the deletion it undid (a
    delivery that failed and was retried). Zoom's ``event_ts`` orders them: the late deletion
    changes nothing, and the day keeps its meeting, no new one made."""
    account = await _account(env)
    day = env.day(account)
    await env.publish(day)
    first = await env.created(day.day_id)
    zoom_id = str(first.zoom_meeting_id)
    async with env.sim() as sim:
        r = await sim.post(f"/_sim/meetings/{zoom_id}/delete", json={"delay_ms": 1500})
        assert r.status_code == 200
        r = await sim.post(f"/_sim/meetings/{zoom_id}/recover")
        assert r.json()["webhook_status"] == 200

    async def both() -> bool:
        factory = env.app.state.runtime.session_factory()
        async with factory() as session:
            rows = (await session.execute(select(WebhookEvent))).scalars().all()
        done = {w.event for w in rows if w.processed and str(zoom_id) in str(w.body)}
        return {"meeting.deleted", "meeting.recovered"} <= done

    await env.wait(both)
    await env.wait(lambda: _settled(env, day.day_id))
    row = await env.meeting_row(day.day_id)
    assert row is not None
    assert (row.zoom_meeting_id, row.status, row.join_url) == (zoom_id, "created", first.join_url)
    assert row.gone_zoom_meeting_id is None
    assert len(await env.outbox(c.MeetingCreated.routing_key, day.day_id)) == 1
    async with env.sim() as sim:
        meetings = (await sim.get("/_sim/meetings")).json()
    made = [m for m in meetings if m["agenda"] == f"day:{day.day_id}"]
    assert [(str(m["id"]), m["deleted"]) for m in made] == [(zoom_id, False)]


async def test_r_zoom_3_a_meeting_recovered_after_a_new_one_was_made_stays_apart(
    env: Env,
) -> None:
    """Recovered once the day already has its new meeting, the old one is not the day's: the
    day keeps the new one (nothing announced, nothing patched), and the recovered meeting is
    left as its host recovered it, not deleted by the bridge."""
    account = await _account(env)
    day = env.day(account)
    await env.publish(day)
    first = await env.created(day.day_id)
    old_id = str(first.zoom_meeting_id)
    async with env.sim() as sim:
        await sim.post(f"/_sim/meetings/{old_id}/delete")
        second = await env.wait(lambda: _recreated(env, day.day_id, old_id))
        created = len(await env.outbox(c.MeetingCreated.routing_key, day.day_id))
        r = await sim.post(f"/_sim/meetings/{old_id}/recover")
        assert r.json()["webhook_status"] == 200

    async def processed() -> list[WebhookEvent]:
        factory = env.app.state.runtime.session_factory()
        async with factory() as session:
            rows = (await session.execute(select(WebhookEvent))).scalars().all()
        return [w for w in rows if w.event == "meeting.recovered" and w.processed]

    await env.wait(processed)
    await env.wait(lambda: _settled(env, day.day_id))
    row = await env.meeting_row(day.day_id)
    assert row is not None
    assert (row.zoom_meeting_id, row.join_url) == (second.zoom_meeting_id, second.join_url)
    assert len(await env.outbox(c.MeetingCreated.routing_key, day.day_id)) == created
    assert not await env.outbox(c.MeetingUpdated.routing_key, day.day_id)
    assert (await env.sim_meeting(old_id))["deleted"] is False


async def test_r_zoom_3_a_registration_ended_at_zoom_is_made_again(env: Env) -> None:
    """A seat holder's registration ends at Zoom: the host cancels it in the web portal, the
    registrant cancels it with the link of Zoom's confirmation e-mail, or the host denies it
    (``meeting.registration_cancelled`` / ``_denied``). Their personal link admits nobody;
    while the day is to be held the bridge registers them again, and the user is shown the
    new link, never the dead one. The registration of someone else stays as it was."""
    account = await _account(env)
    day = env.day(account)
    learners = ("ana", "ben", "cy", "dee")
    for name in learners:
        await env.publish(messages.enrollment_in(day, name, f"{name}@example.com"))
    await env.publish(day)
    zoom_id = str((await env.created(day.day_id)).zoom_meeting_id)
    everyone = {f"{name}@example.com" for name in learners}
    before = await _registered_as(env, account, zoom_id, everyone)
    await env.wait(lambda: _settled(env, day.day_id))
    cancel = f"/_sim/meetings/{zoom_id}/registrants/{{}}/cancel"
    async with env.sim() as sim:
        for name, how in (("ana", {}), ("ben", {"by": "registrant"}), ("cy", {"deny": True})):
            r = await sim.post(cancel.format(before[f"{name}@example.com"]["id"]), json=how)
            assert r.json()["webhook_status"] == 200, r.text

    async def made_again() -> dict[str, dict[str, str]] | None:
        found = await _registrants(env, account, zoom_id)
        fresh = all(
            found.get(f"{n}@example.com", {}).get("id")
            not in (None, before[f"{n}@example.com"]["id"])
            for n in ("ana", "ben", "cy")
        )
        return found if set(found) == everyone and fresh else None

    after = await env.wait(made_again)
    assert after["dee@example.com"] == before["dee@example.com"]  # untouched
    await env.wait(lambda: _settled(env, day.day_id))
    rows = {r.email: r for r in (await _rows(env, day.day_id)).values()}
    assert {e: r.zoom_registrant_id for e, r in rows.items()} == {
        e: after[e]["id"] for e in everyone
    }
    ana = await _join_url(env, day.day_id, env.user("ana"))
    assert ana == after["ana@example.com"]["join_url"]
    async with env.sim() as sim:
        dead = await sim.post(
            f"/_sim/meetings/{zoom_id}/join",
            json={"join_url": before["ana@example.com"]["join_url"]},
        )
        assert dead.status_code == 409  # the old link: Zoom no longer lets her in
        live = await sim.post(f"/_sim/meetings/{zoom_id}/join", json={"join_url": ana})
        assert live.status_code == 200, live.text


async def test_r_zoom_3_a_held_meetings_registration_ended_at_zoom_stays(env: Env) -> None:
    """Once the meeting was held its registrations stay as stored (its joins were matched by
    them), and a registration ended at Zoom is not made again: no Zoom call, no e-mail."""
    account = await _account(env)
    day = env.day(account)
    await env.publish(messages.enrollment_in(day, "fay", "fay@example.com"))
    await env.publish(day)
    zoom_id = str((await env.created(day.day_id)).zoom_meeting_id)
    before = await _registered_as(env, account, zoom_id, {"fay@example.com"})
    await env.wait(lambda: _settled(env, day.day_id))
    fay = before["fay@example.com"]
    async with env.sim() as sim:
        await sim.post(f"/_sim/meetings/{zoom_id}/join", json={"join_url": fay["join_url"]})
        await sim.post(f"/_sim/meetings/{zoom_id}/end")

    async def ended() -> bool:
        row = await env.meeting_row(day.day_id)
        return row is not None and row.ended

    await env.wait(ended)
    async with env.sim() as sim:
        r = await sim.post(f"/_sim/meetings/{zoom_id}/registrants/{fay['id']}/cancel")
        assert r.json()["webhook_status"] == 200

    async def processed() -> bool:
        factory = env.app.state.runtime.session_factory()
        async with factory() as session:
            rows = (
                await session.execute(
                    select(WebhookEvent).where(
                        WebhookEvent.event == "meeting.registration_cancelled"
                    )
                )
            ).scalars()
            return any(
                w.processed and w.body["payload"]["object"]["registrant"]["id"] == fay["id"]
                for w in rows
            )

    await env.wait(processed)
    [stored] = (await _rows(env, day.day_id)).values()
    assert stored.zoom_registrant_id == fay["id"]
    assert await _settled(env, day.day_id)
    assert await _registrants(env, account, zoom_id) == {}  # not registered again at Zoom
