"""R-ENR-6: the limit is never exceeded under any concurrency, with two replicas of the service
sharing one PostgreSQL database (the guarantee is the database's conditional seat update)."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import DBAPIError

from registration import readmodel
from registration.app import create_app
from registration.enrollments import service
from registration.models import Enrollment, EventReplica, SessionReplica
from registration.settings import RegistrationSettings
from te_shared import contracts as c
from te_shared.auth import Principal, Role
from te_shared.db import unit_of_work
from te_shared.rules import FAR_FUTURE
from te_testing import messages
from te_testing.clock import days_from_now
from te_testing.infra import (
    DatabaseFactory,
    RabbitNamespace,
    TokenFactory,
    running_app,
    settings_for,
    use_sqlite,
)

if TYPE_CHECKING:
    from conftest import Reg

pytestmark = pytest.mark.skipif(
    use_sqlite(),
    reason="R-ENR-6 concurrency is proven on PostgreSQL; SQLite serialises all writers anyway",
)

SEAT_HOLDING = ("pending", "approved", "awaiting_confirmation", "participated", "missed")


@pytest.fixture(scope="module")
async def replicas(
    databases: DatabaseFactory,
    reg_rabbit: RabbitNamespace,
    token: TokenFactory,
    reg_class: type[Reg],
) -> AsyncIterator[tuple[Reg, httpx.AsyncClient]]:
    """Two app instances on one database: ``reg`` (with helpers) and a second client."""
    rabbit = reg_rabbit
    url = await databases.create("regrace")
    first = create_app(settings_for(RegistrationSettings, url, rabbit))
    second = create_app(settings_for(RegistrationSettings, url, rabbit))
    async with contextlib.AsyncExitStack() as stack:
        client1 = await stack.enter_async_context(running_app(first))
        client2 = await stack.enter_async_context(running_app(second))
        yield reg_class(app=first, client=client1, token=token, ns=rabbit), client2


def _client(replicas: tuple[Reg, httpx.AsyncClient], i: int) -> httpx.AsyncClient:
    return replicas[0].client if i % 2 == 0 else replicas[1]


async def _counts(reg: Reg, session_id: uuid.UUID) -> dict[str, int]:
    factory = reg.app.state.runtime.session_factory()
    async with unit_of_work(factory) as session:
        rows = await session.execute(
            select(Enrollment.status, func.count())
            .where(Enrollment.session_id == session_id)
            .group_by(Enrollment.status)
        )
        return {status: int(n) for status, n in rows}


async def _taken(reg: Reg, session_id: uuid.UUID) -> int:
    r = await reg.client.get(f"/v1/sessions/{session_id}/seats", headers=reg.admin())
    return int(r.json()["taken"])


async def test_r_enr_6_200_concurrent_sign_ups_take_exactly_20_seats(
    replicas: tuple[Reg, httpx.AsyncClient],
) -> None:
    """R-ENR-6: 200 concurrent sign-ups at a session limited to 20 → exactly 20 seats taken."""
    reg = replicas[0]
    users = [f"race-{i}" for i in range(200)]
    built = await reg.build(limit=20, access=users)
    sid = built.session_ids[0]

    async def sign_up(i: int) -> int:
        r = await _client(replicas, i).post(
            f"/v1/sessions/{sid}/enrollments", headers=reg.user(users[i])
        )
        assert r.status_code in (201, 409), r.text
        return r.status_code

    codes = await asyncio.gather(*(sign_up(i) for i in range(200)))
    assert codes.count(201) == 20
    assert codes.count(409) == 180
    assert await _taken(reg, sid) == 20
    assert await _counts(reg, sid) == {"approved": 20}


async def _seat_locked(reg: Reg, session_id: uuid.UUID) -> bool:
    """Whether a transaction holds the session's seat counter (NOWAIT fails at once)."""
    try:
        async with unit_of_work(reg.app.state.runtime.session_factory()) as session:
            await session.execute(
                select(SessionReplica.taken)
                .where(SessionReplica.session_id == session_id)
                .with_for_update(nowait=True)
            )
    except DBAPIError:
        return True
    return False


async def test_r_enr_6_a_sign_up_locks_the_seat_counter_only_while_its_write_runs(
    reg: Reg,
) -> None:
    """A self sign-up's seat-taking write is one statement run alone: before the request's
    own commit its seat, enrollment and outbox row are committed and the counter is free for
    the next sign-up. An admin's enrollment (several writes in one transaction) holds the
    counter until that transaction ends."""
    built = await reg.build(limit=5, access=["alone-1", "alone-2"])
    sid = built.session_ids[0]
    factory = reg.app.state.runtime.session_factory()
    async with factory() as session:
        _, created = await service.sign_up(
            session, Principal("alone-1", "acme", Role.USER, None), sid, None
        )
        assert created
        assert await _seat_locked(reg, sid) is False
        assert await _taken(reg, sid) == 1
        await session.rollback()  # the request failing afterwards takes nothing back
    assert await _counts(reg, sid) == {"approved": 1}
    changed = await reg.outbox("registration.enrollment.changed")
    assert [m["status"] for m in changed if m["user_id"] == "alone-1"] == ["approved"]

    async with factory() as session:
        target = await readmodel.get_session(session, "acme", sid)
        await service.admin_enroll(
            session, "acme", built.event_id, target, "alone-2", None, by="admin1", reason="t"
        )
        assert await _seat_locked(reg, sid) is True
        await session.rollback()
    assert await _taken(reg, sid) == 1


async def _enrolled(reg: Reg, event_id: uuid.UUID) -> dict[str, str]:
    r = await reg.client.get(f"/v1/events/{event_id}/enrollments?limit=500", headers=reg.admin())
    return {e["user_id"]: e["status"] for e in r.json()["items"]}


def _csv(rows: list[tuple[str, str]]) -> dict[str, Any]:
    body = "user_id,session\n" + "".join(f"{user},{name}\n" for user, name in rows)
    return {"file": ("u.csv", body.encode(), "text/csv")}


async def test_r_enr_6_admin_enrollment_and_import_racing_self_sign_ups(
    replicas: tuple[Reg, httpx.AsyncClient],
) -> None:
    """R-ENR-6 / R-ENR-5: admin enrollments and imports racing self sign-ups never overbook;
    every answer matches what was stored (an import's 200 means its 3 users hold seats, a
    refused import left none of them) and the seats taken are exactly the enrollments."""
    reg = replicas[0]
    selfies = [f"self-{i}" for i in range(80)]
    built = await reg.build(limit=20, access=selfies)
    eid, sid = built.event_id, built.session_ids[0]
    name = f"S-{sid.hex[:6]}"
    admin = reg.admin()
    files = {f"imp-{i}": [f"imp-{i}-{k}" for k in range(3)] for i in range(10)}

    async def self_sign_up(i: int) -> tuple[list[str], int]:
        r = await _client(replicas, i).post(
            f"/v1/sessions/{sid}/enrollments", headers=reg.user(selfies[i])
        )
        assert r.status_code in (201, 409), r.text
        return [selfies[i]], r.status_code

    async def admin_enroll(i: int) -> tuple[list[str], int]:
        r = await _client(replicas, i + 1).post(
            f"/v1/events/{eid}/enrollments",
            json={"user_id": f"adm-{i}", "session_id": str(sid)},
            headers=admin,
        )
        assert r.status_code in (201, 409), r.text
        return [f"adm-{i}"], r.status_code

    async def import_file(i: int) -> tuple[list[str], int]:
        users = files[f"imp-{i}"]
        r = await _client(replicas, i).post(
            f"/v1/events/{eid}/enrollments/import",
            files=_csv([(u, name) for u in users]),
            headers=admin,
        )
        assert r.status_code in (200, 409, 422), r.text
        if r.status_code == 200:
            assert r.json() == {"imported": 3, "unchanged": 0}
        return users, r.status_code

    # interleaved, so every kind of writer is in flight while seats remain
    jobs: list[Any] = []
    for i in range(80):
        jobs.append(self_sign_up(i))
        if i < 40:
            jobs.append(admin_enroll(i))
        if i < 10:
            jobs.append(import_file(i))
    outcomes = await asyncio.gather(*jobs)
    stored = await _enrolled(reg, eid)
    assert set(stored.values()) == {"approved"}
    accepted = [u for users, code in outcomes if code in (200, 201) for u in users]
    refused = [u for users, code in outcomes if code not in (200, 201) for u in users]
    assert sorted(stored) == sorted(accepted)  # all or nothing, and answers tell the truth
    assert not set(refused) & set(stored)
    # more sign-ups than seats were refused, so the session filled: exactly the limit
    assert len(stored) == 20
    assert await _taken(reg, sid) == 20
    assert await _counts(reg, sid) == {"approved": 20}


async def test_r_enr_6_racing_imports_take_whole_files_or_nothing(
    replicas: tuple[Reg, httpx.AsyncClient],
) -> None:
    """R-ENR-5 / R-ENR-6: ten imports of 3 users racing for 20 seats: exactly 6 files get in
    whole (18 seats), the other 4 are refused and leave nothing."""
    reg = replicas[0]
    built = await reg.build(limit=20)
    eid, sid = built.event_id, built.session_ids[0]
    name = f"S-{sid.hex[:6]}"
    files = {i: [f"whole-{i}-{k}" for k in range(3)] for i in range(10)}

    async def import_file(i: int) -> int:
        r = await _client(replicas, i).post(
            f"/v1/events/{eid}/enrollments/import",
            files=_csv([(u, name) for u in files[i]]),
            headers=reg.admin(),
        )
        assert r.status_code in (200, 409, 422), r.text
        return r.status_code

    codes = await asyncio.gather(*(import_file(i) for i in range(10)))
    won = [i for i, code in enumerate(codes) if code == 200]
    assert len(won) == 6, codes
    stored = await _enrolled(reg, eid)
    assert sorted(stored) == sorted(u for i in won for u in files[i])
    assert await _taken(reg, sid) == 18


async def test_r_enr_6_imports_and_status_changes_in_opposite_orders_do_not_deadlock(
    replicas: tuple[Reg, httpx.AsyncClient],
) -> None:
    """Imports naming two sessions in opposite orders, racing each other and admin PATCHes of
    users they also name, all succeed: seats and rows are locked in one stable order (a
    deadlock would abort one of them)."""
    reg = replicas[0]
    built = await reg.build(sessions=2)
    eid, (s1, s2) = built.event_id, built.session_ids
    first, second = f"S-{s1.hex[:6]}", f"S-{s2.hex[:6]}"
    admin = reg.admin()
    denied: dict[str, str] = {}
    for i in range(6):  # users an import names again while an admin re-approves them
        user = f"dl-denied-{i}"
        r = await reg.client.post(
            f"/v1/events/{eid}/enrollments",
            json={"user_id": user, "session_id": str(s1)},
            headers=admin,
        )
        denied[user] = r.json()["id"]
        r = await reg.client.patch(
            f"/v1/enrollments/{denied[user]}", json={"status": "denied"}, headers=admin
        )
        assert r.json()["status"] == "denied"

    async def import_file(i: int) -> int:
        ahead = [(f"dl-{i}-{k}", first if i % 2 else second) for k in range(4)]
        behind = [(f"dl-{i}-{k + 4}", second if i % 2 else first) for k in range(4)]
        rows = ahead + behind + [(f"dl-denied-{i % 6}", first)]
        r = await _client(replicas, i).post(
            f"/v1/events/{eid}/enrollments/import", files=_csv(rows), headers=admin
        )
        assert r.status_code == 200, r.text
        assert r.json() == {"imported": 8, "unchanged": 1}
        return r.status_code

    async def approve(i: int, user: str) -> int:
        r = await _client(replicas, i).patch(
            f"/v1/enrollments/{denied[user]}", json={"status": "approved"}, headers=admin
        )
        assert r.status_code == 200, r.text
        return r.status_code

    jobs: list[Any] = [import_file(i) for i in range(12)]
    jobs += [approve(i, user) for i, user in enumerate(denied)]
    await asyncio.gather(*jobs)
    stored = await _enrolled(reg, eid)
    assert len(stored) == 12 * 8 + 6
    assert set(stored.values()) == {"approved"}
    assert await _taken(reg, s1) + await _taken(reg, s2) == 12 * 8 + 6


async def test_r_enr_6_waitlist_promotion_racing_cancellations(
    replicas: tuple[Reg, httpx.AsyncClient],
) -> None:
    """R-ENR-6/R-ENR-7: cancellations racing each other and new sign-ups; promotions fill the
    freed seats from the waitlist, in order, and never beyond the limit."""
    reg = replicas[0]
    users = [f"wl-{i}" for i in range(90)]
    built = await reg.build(limit=20, waitlist=True, access=users)
    sid = built.session_ids[0]
    ids: dict[str, str] = {}
    for user in users[:60]:  # 20 approved, 40 waitlisted, in a known order
        r = await reg.sign_up(sid, user)
        ids[user] = r.json()["id"]
    assert await _counts(reg, sid) == {"approved": 20, "waitlisted": 40}

    async def cancel(i: int, user: str) -> int:
        r = await _client(replicas, i).post(
            f"/v1/enrollments/{ids[user]}/cancel", headers=reg.user(user)
        )
        assert r.status_code == 200, r.text
        return r.status_code

    async def late_sign_up(i: int, user: str) -> int:
        r = await _client(replicas, i).post(
            f"/v1/sessions/{sid}/enrollments", headers=reg.user(user)
        )
        assert r.status_code == 201, r.text
        return r.status_code

    jobs: list[Any] = [cancel(i, u) for i, u in enumerate(users[:15])]  # approved ones
    jobs += [cancel(i, u) for i, u in enumerate(users[20:30])]  # waitlisted ones
    jobs += [late_sign_up(i, u) for i, u in enumerate(users[60:90])]
    await asyncio.gather(*jobs)
    counts = await _counts(reg, sid)
    assert counts["approved"] == 20
    assert counts["cancelled"] == 25
    assert counts["waitlisted"] == 60 + 30 - 25 - 20
    assert await _taken(reg, sid) == 20
    # promotion took the earliest waitlisted: every still-waiting early user is later than
    # every promoted one
    r = await reg.client.get(
        f"/v1/events/{built.event_id}/enrollments?limit=500", headers=reg.admin()
    )
    items = r.json()["items"]
    promoted = [
        e["created_at"] for e in items if e["status"] == "approved" and e["user_id"] in users[20:60]
    ]
    waiting = [e["created_at"] for e in items if e["status"] == "waitlisted"]
    assert len(promoted) == 15
    assert max(promoted) < min(waiting)
    # the seat counter matches the enrollments holding seats
    assert sum(counts.get(s, 0) for s in SEAT_HOLDING) == 20


async def test_deleting_a_session_under_a_storm_of_sign_ups_strands_nobody(
    replicas: tuple[Reg, httpx.AsyncClient],
) -> None:
    """Sign-ups (some taking seats, some waitlisted) race the session's deletion: every
    enrollment the deletion did not see was refused (404), every one it saw ended; no live
    enrollment is left in the deleted session, and no seat is counted."""
    reg = replicas[0]
    users = [f"del-{i}" for i in range(60)]
    built = await reg.build(limit=10, waitlist=True, access=users)
    sid = built.session_ids[0]
    deleted = c.SessionDeleted(
        company_id="acme",
        session_id=sid,
        event_id=built.event_id,
        version=reg.next_version(sid),
    )

    async def sign_up(i: int, user: str) -> int:
        r = await _client(replicas, i).post(
            f"/v1/sessions/{sid}/enrollments", headers=reg.user(user)
        )
        return r.status_code

    first = await asyncio.gather(*(sign_up(i, u) for i, u in enumerate(users[:20])))
    assert first == [201] * 20  # 10 seats taken, 10 waitlisted
    racing = await asyncio.gather(
        reg.apply(deleted), *(sign_up(i, u) for i, u in enumerate(users[20:]))
    )
    statuses = first + [s for s in racing if s is not None]
    assert set(statuses) <= {201, 404}, statuses
    counts = await _counts(reg, sid)
    assert set(counts) <= {"cancelled"}, counts  # nobody left in the deleted session
    assert counts.get("cancelled", 0) == statuses.count(201)
    factory = reg.app.state.runtime.session_factory()
    async with unit_of_work(factory) as session:
        row = await session.get(SessionReplica, sid)
        assert row is not None
        assert (row.deleted, row.taken) == (True, 0)


async def test_r_ses_9_r_enr_6_a_limit_lowered_while_sign_ups_are_in_flight(
    replicas: tuple[Reg, httpx.AsyncClient],
) -> None:
    """Registration is the authority on seats: when catalog lowers the limit below the seats
    taken while sign-ups race it, no seat already taken is revoked, no new seat is taken while
    ``taken >= limit``, and the seats view shows the overshoot."""
    reg = replicas[0]
    users = [f"low-{i}" for i in range(29)]  # the last one signs up after the race
    built = await reg.build(limit=10, access=users)
    sid, eid = built.session_ids[0], built.event_id

    async def sign_up(i: int, user: str) -> int:
        r = await _client(replicas, i).post(
            f"/v1/sessions/{sid}/enrollments", headers=reg.user(user)
        )
        return r.status_code

    first = await asyncio.gather(*(sign_up(i, u) for i, u in enumerate(users[:8])))
    assert first == [201] * 8
    lowered = reg.session_msg(eid, session_id=sid, limit=5, cls=c.SessionUpdated)
    racing = await asyncio.gather(
        reg.apply(lowered), *(sign_up(i, u) for i, u in enumerate(users[8:28]))
    )
    late = [s for s in racing if s is not None]
    assert set(late) <= {201, 409}
    counts = await _counts(reg, sid)
    assert counts.get("approved", 0) == 8 + late.count(201)  # nobody lost a seat
    assert 8 <= counts["approved"] <= 10  # never past the old limit, nothing new once >= 5
    seats = (await reg.client.get(f"/v1/sessions/{sid}/seats", headers=reg.admin())).json()
    assert seats["participant_limit"] == 5
    assert seats["taken"] == counts["approved"]  # the overshoot is shown
    assert seats["left"] == 0
    after = await reg.client.post(f"/v1/sessions/{sid}/enrollments", headers=reg.user("low-late"))
    assert after.status_code in (404, 409)  # no new seat while taken >= limit
    if after.status_code == 409:
        assert after.json()["code"] == "session_full"


async def _consume_at_once(reg: Reg, first: c.Message, second: c.Message) -> None:
    """Run ``first``'s handler in a transaction, start ``second``'s in another while the first
    is still open, then commit both: two consumers of two queues at the same moment."""
    from registration.handlers import consumers

    factory = reg.app.state.runtime.session_factory()
    async with unit_of_work(factory) as one:
        await consumers.handlers[type(first)](one, first)

        async def other() -> None:
            async with unit_of_work(factory) as two:
                await consumers.handlers[type(second)](two, second)

        late = asyncio.create_task(other())
        await asyncio.sleep(0.3)  # the second reaches its writes while the first is open
    await late


@pytest.mark.parametrize("order", ["session first", "day first"])
async def test_a_session_and_its_day_consumed_at_once_leave_the_session_its_times(
    reg: Reg, order: str
) -> None:
    """R-ENR-10 rests on the session's first start and last end (the tabs): whichever of the
    session's and its day's messages commits first, the session ends when its day does."""
    event_id = await reg.event()
    session = reg.session_msg(event_id)
    day = reg.day_msg(event_id, session.session_id)
    first, second = (session, day) if order == "session first" else (day, session)
    await _consume_at_once(reg, first, second)
    async with unit_of_work(reg.app.state.runtime.session_factory()) as db:
        row = await db.get(SessionReplica, session.session_id)
    assert row is not None
    assert (row.first_start, row.last_end) == (day.start, day.end)


async def test_two_days_of_a_session_consumed_at_once_both_count(reg: Reg) -> None:
    event_id = await reg.event()
    session = reg.session_msg(event_id)
    await reg.apply(session)
    early = reg.day_msg(event_id, session.session_id, start=days_from_now(2))
    late = reg.day_msg(event_id, session.session_id, start=days_from_now(5))
    await _consume_at_once(reg, early, late)
    async with unit_of_work(reg.app.state.runtime.session_factory()) as db:
        row = await db.get(SessionReplica, session.session_id)
    assert row is not None
    assert (row.first_start, row.last_end) == (early.start, late.end)


async def _event_times(reg: Reg, event_id: uuid.UUID) -> tuple[Any, Any]:
    async with unit_of_work(reg.app.state.runtime.session_factory()) as db:
        row = await db.get(EventReplica, event_id)
    assert row is not None
    return row.first_start, row.registration_closes


async def test_two_sessions_of_an_event_consumed_at_once_both_count_in_its_times(
    reg: Reg,
) -> None:
    """R-ENR-10: the Available tab picks and orders events by their first start and
    registration close, kept from their sessions; two sessions' messages consumed at the
    same moment (one event lock, not one per session) both count."""
    event_id = await reg.event()
    # the one committed first closes later: the second must see it
    one = reg.session_msg(event_id, registration_end=days_from_now(6))
    two = reg.session_msg(event_id, registration_end=days_from_now(3))
    await _consume_at_once(reg, one, two)
    assert (await _event_times(reg, event_id))[1] == one.registration_end
    earlier = reg.day_msg(event_id, two.session_id, start=days_from_now(7))
    later = reg.day_msg(event_id, one.session_id, start=days_from_now(8))
    await _consume_at_once(reg, earlier, later)
    assert await _event_times(reg, event_id) == (earlier.start, one.registration_end)


@pytest.mark.parametrize("order", ["event first", "session first"])
async def test_an_event_and_its_session_consumed_at_once_leave_the_event_its_times(
    reg: Reg, order: str
) -> None:
    """Catalog's messages come on several queues: whichever of an event's and its session's
    commits first, the event has its session's registration close and first start."""
    event_id = uuid.uuid4()
    await reg.apply(reg.session_msg(event_id, registration_end=None))  # no end: never closes
    session = reg.session_msg(event_id, registration_end=days_from_now(4))
    day = reg.day_msg(event_id, session.session_id, start=days_from_now(9))
    await reg.apply(day)  # before its session: kept once the session comes
    event = messages.event_changed(event_id=event_id, version=reg.next_version(event_id))
    first, second = (event, session) if order == "event first" else (session, event)
    await _consume_at_once(reg, first, second)
    assert await _event_times(reg, event_id) == (day.start, FAR_FUTURE)
