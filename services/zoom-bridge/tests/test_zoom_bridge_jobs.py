"""The durable Zoom jobs, on the database alone (no worker running): R-ZOOM-8's work is never
run by two workers at once, however often a day is armed while one of them runs it."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from te_shared.db import create_engine, create_sessionmaker, run_migrations_async
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
