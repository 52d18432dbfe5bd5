"""The durable Zoom jobs, on the database alone (no worker running): R-ZOOM-8's work is never
run by two workers at once, however often a day is armed while one of them runs it."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from te_shared.db import create_engine, create_sessionmaker, run_migrations_async, utcnow
from te_testing.infra import DatabaseFactory
from zoom_bridge.app import MIGRATIONS
from zoom_bridge.meetings import jobs
from zoom_bridge.models import ZoomJob

LEASE = 600.0


@pytest.fixture
async def factory(databases: DatabaseFactory) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    url = await databases.create("bridge_jobs")
    await run_migrations_async(url, MIGRATIONS)
    engine = create_engine(url)
    try:
        yield create_sessionmaker(engine)
    finally:
        await engine.dispose()


async def claim(factory: async_sessionmaker[AsyncSession]) -> list[jobs.Claimed]:
    return await jobs.claim(factory, limit=10, lease=LEASE)


async def arm(factory: async_sessionmaker[AsyncSession], day_id: uuid.UUID) -> None:
    async with factory() as session, session.begin():
        await jobs.arm(session, day_id, jobs.SYNC)


async def test_r_zoom_8_a_day_armed_while_a_worker_runs_it_waits_for_that_worker(
    factory: async_sessionmaker[AsyncSession],
) -> None:
    day_id = uuid.uuid4()
    await arm(factory, day_id)
    [first] = await claim(factory)
    assert first.day_id == day_id
    # a new desired state arrives (DayRescheduled) while the first worker calls Zoom
    await arm(factory, day_id)
    assert await claim(factory) == []  # a second worker or replica must not run it too
    # the first worker is done with the old generation: the new one runs next, at once
    async with factory() as session, session.begin():
        await jobs.finish(session, first)
    [second] = await claim(factory)
    assert (second.day_id, second.generation) == (day_id, first.generation + 1)
    async with factory() as session, session.begin():
        await jobs.finish(session, second)
    async with factory() as session:
        assert await session.get(ZoomJob, (day_id, jobs.SYNC)) is None


async def test_r_zoom_8_a_retry_or_a_crashed_worker_releases_the_lease(
    factory: async_sessionmaker[AsyncSession],
) -> None:
    day_id = uuid.uuid4()
    await arm(factory, day_id)
    [first] = await claim(factory)
    await arm(factory, day_id)
    async with factory() as session, session.begin():  # Zoom failed: retry (the new state)
        assert await jobs.retry_later(session, first, 30.0, "503 from Zoom")
    [again] = await claim(factory)
    assert again.generation == first.generation + 1
    # the worker dies holding the lease: once the lease has run out, another worker takes it
    async with factory() as session, session.begin():
        job = await session.get(ZoomJob, (day_id, jobs.SYNC))
        assert job is not None
        assert job.leased_until is not None
        job.leased_until = job.next_attempt_at = job.leased_until.replace(year=2000)
    [taken_over] = await claim(factory)
    assert taken_over.day_id == day_id


async def test_r_zoom_8_two_deliveries_arming_a_new_job_at_once_both_commit(
    factory: async_sessionmaker[AsyncSession],
) -> None:
    """Two enrollment changes for one day, consumed at once, both arm its registrants job
    before either commits: the second waits for the first (PostgreSQL) and bumps the job's
    generation instead of failing on a duplicate key, which sent the message back (CI saw the
    day's registrants wait 20 s for the redelivery)."""
    day_id = uuid.uuid4()
    first_armed = asyncio.Event()

    async def first() -> None:
        async with factory() as session, session.begin():
            await jobs.arm(session, day_id, jobs.REGISTRANTS)
            first_armed.set()
            await asyncio.sleep(0.2)  # the other delivery arms meanwhile

    async def second() -> None:
        await first_armed.wait()
        async with factory() as session, session.begin():
            await jobs.arm(session, day_id, jobs.REGISTRANTS)

    await asyncio.gather(first(), second())
    [claimed] = await jobs.claim(factory, limit=10, lease=LEASE)
    assert (claimed.day_id, claimed.kind, claimed.generation) == (day_id, jobs.REGISTRANTS, 2)


async def test_r_zoom_8_finish_in_a_session_that_read_the_job_leaves_no_stale_copy(
    factory: async_sessionmaker[AsyncSession],
) -> None:
    day_id = uuid.uuid4()
    await arm(factory, day_id)
    [claimed] = await claim(factory)
    async with factory() as session, session.begin():
        assert await session.get(ZoomJob, (day_id, jobs.SYNC)) is not None
        await jobs.finish(session, claimed)
        assert await session.get(ZoomJob, (day_id, jobs.SYNC)) is None
        await jobs.arm(session, day_id, jobs.SYNC)  # a new state arrives in the same txn
        again = await session.get(ZoomJob, (day_id, jobs.SYNC))
        assert again is not None
        assert (again.generation, again.leased_until) == (1, None)


@pytest.fixture
async def handing(
    factory: async_sessionmaker[AsyncSession],
) -> async_sessionmaker[AsyncSession]:
    """The sessionmaker of a process whose worker takes jobs handed over (as the service's)."""
    jobs.hand_over_to_worker(factory, LEASE)
    return factory


async def arm_handing(
    factory: async_sessionmaker[AsyncSession], day_id: uuid.UUID, delay: float = 0.0
) -> list[jobs.Claimed]:
    """Arm as a day message's handler does; what its commit hands to the worker."""
    async with factory() as session:
        async with session.begin():
            await jobs.arm(session, day_id, jobs.SYNC, delay, hand_over=True)
        return jobs.take_handed(session)


async def test_r_zoom_8_a_job_handed_to_the_worker_is_leased_to_it_and_never_claimed(
    handing: async_sessionmaker[AsyncSession],
) -> None:
    day_id = uuid.uuid4()
    [handed] = await arm_handing(handing, day_id)
    assert (handed.day_id, handed.kind, handed.generation, handed.attempts) == (
        day_id,
        jobs.SYNC,
        1,
        1,
    )
    assert await claim(handing) == []  # no other worker or replica runs it meanwhile
    async with handing() as session, session.begin():
        await jobs.finish(session, handed)
    async with handing() as session:
        assert await session.get(ZoomJob, (day_id, jobs.SYNC)) is None


async def test_r_zoom_8_a_job_another_worker_runs_is_not_handed_over(
    handing: async_sessionmaker[AsyncSession],
) -> None:
    day_id = uuid.uuid4()
    await arm(handing, day_id)
    [running] = await claim(handing)  # another worker calls Zoom for the day
    assert await arm_handing(handing, day_id) == []  # a new state arrives meanwhile
    assert await claim(handing) == []
    async with handing() as session, session.begin():
        await jobs.finish(session, running)
    [after] = await claim(handing)  # the new state runs once that worker is done
    assert after.generation == running.generation + 1


async def test_r_zoom_8_a_job_handed_to_a_worker_that_died_runs_once_its_lease_ran_out(
    handing: async_sessionmaker[AsyncSession],
) -> None:
    day_id = uuid.uuid4()
    [handed] = await arm_handing(handing, day_id)
    async with handing() as session, session.begin():  # the process died: the lease runs out
        job = await session.get(ZoomJob, (day_id, jobs.SYNC))
        assert job is not None
        assert job.leased_until is not None
        job.leased_until = job.next_attempt_at = job.leased_until.replace(year=2000)
    [taken_over] = await claim(handing)
    assert (taken_over.day_id, taken_over.generation) == (day_id, handed.generation)
    # handed again while another worker runs it: not handed, it runs after that worker
    assert await arm_handing(handing, day_id) == []


async def test_r_zoom_8_jobs_a_stopping_worker_did_not_run_are_due_at_once(
    handing: async_sessionmaker[AsyncSession],
) -> None:
    day_ids = [uuid.uuid4(), uuid.uuid4()]
    handed = [job for day_id in day_ids for job in await arm_handing(handing, day_id)]
    assert len(handed) == 2
    await jobs.release(handing, handed)
    assert sorted(job.day_id for job in await claim(handing)) == sorted(day_ids)


async def test_r_zoom_8_only_a_job_due_now_with_a_worker_here_is_handed_over(
    factory: async_sessionmaker[AsyncSession],
) -> None:
    no_worker = uuid.uuid4()  # no worker in this process: armed as usual
    assert await arm_handing(factory, no_worker) == []
    assert [job.day_id for job in await claim(factory)] == [no_worker]
    jobs.hand_over_to_worker(factory, LEASE)
    later = uuid.uuid4()  # due later (a retry's delay, an unanswered create settling)
    assert await arm_handing(factory, later, delay=60.0) == []
    async with factory() as session:
        job = await session.get(ZoomJob, (later, jobs.SYNC))
        assert job is not None
        assert job.leased_until is None


async def test_r_zoom_3_the_registrants_of_many_days_are_armed_in_one_statement(
    factory: async_sessionmaker[AsyncSession],
) -> None:
    """An enrollment's message arms the registrants job of every day of its session (an
    account's role change, of every day of the account): one statement for all of them, each
    job due now, one armed before renewed (a new generation), a day named twice armed once,
    and the worker woken once the transaction commits."""
    days = [uuid.uuid4() for _ in range(20)]
    async with factory() as session, session.begin():
        await jobs.arm(session, days[0], jobs.REGISTRANTS)
    ran: list[str] = []

    def count(*args: Any) -> None:
        ran.append(args[2])  # the statement's SQL

    engine = factory.kw["bind"].sync_engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        async with factory() as session, session.begin():
            await jobs.arm_registrants(session, [*days, days[3]])
            woken = jobs.take_armed_flag(session)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert len([sql for sql in ran if "zoom_jobs" in sql]) == 1
    assert woken
    async with factory() as session:
        armed = (
            await session.scalars(select(ZoomJob).where(ZoomJob.kind == jobs.REGISTRANTS))
        ).all()
    assert sorted(job.day_id for job in armed) == sorted(days)
    assert all(job.next_attempt_at <= utcnow() for job in armed)
    assert {job.day_id: job.generation for job in armed} == {
        day: 2 if day == days[0] else 1 for day in days
    }
