"""Pooled connections on a real PostgreSQL: pinged only after idling, replaced when dead.

``te_shared.db.ping_when_idle`` replaces ``pool_pre_ping`` (a round trip before every
transaction). A connection back from use a moment ago is not pinged; one that idled is, and a
dead one (its server session ended, as a restart, failover or idle-connection firewall does) is
replaced before the request uses it. A connection that dies between two quick uses fails that
request as a 503, and the pool drops all its connections at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from te_shared.db import create_engine
from te_testing.infra import DatabaseFactory, use_sqlite

pytestmark = pytest.mark.skipif(use_sqlite(), reason="the PostgreSQL pool is the subject")

IDLE = 0.3


@pytest.fixture
async def engine(databases: DatabaseFactory) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(await databases.create("pool"), pool_size=1)
    yield engine
    await engine.dispose()


@pytest.fixture
async def idler(databases: DatabaseFactory) -> AsyncIterator[AsyncEngine]:
    """An engine whose connections count as idle after a short time."""
    engine = create_engine(await databases.create("pool"), pool_size=1, ping_after_idle=IDLE)
    yield engine
    await engine.dispose()


def count_pings(engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every ping the pool sends, counted at the dialect."""
    sent: list[Any] = []
    dialect = engine.sync_engine.dialect
    original = dialect.do_ping

    def counted(dbapi_connection: Any) -> bool:
        sent.append(dbapi_connection)
        return bool(original(dbapi_connection))

    monkeypatch.setattr(dialect, "do_ping", counted)
    return sent


@pytest.fixture
def pings(engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    return count_pings(engine, monkeypatch)


async def backend_pid(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one())


async def end_session(engine: AsyncEngine, pid: int) -> None:
    """Ends a server session from outside, as a PostgreSQL restart or failover does."""
    async with engine.connect() as conn:
        await conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})


async def test_a_connection_in_steady_use_is_not_pinged(
    engine: AsyncEngine, pings: list[Any]
) -> None:
    first = await backend_pid(engine)
    for _ in range(20):
        assert await backend_pid(engine) == first  # the same pooled connection every time
    assert pings == []


async def test_an_idle_connection_is_pinged_once_before_use(
    idler: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent = count_pings(idler, monkeypatch)
    first = await backend_pid(idler)
    await asyncio.sleep(IDLE * 2)
    assert await backend_pid(idler) == first  # alive: pinged and kept
    assert len(sent) == 1
    assert await backend_pid(idler) == first  # used a moment ago: not pinged again
    assert len(sent) == 1


async def test_a_dead_idle_connection_is_replaced_before_the_request_uses_it(
    idler: AsyncEngine, databases: DatabaseFactory
) -> None:
    engine = idler
    other = create_engine(await databases.create("killer"), pool_size=1)
    try:
        first = await backend_pid(engine)
        await end_session(other, first)
        await asyncio.sleep(IDLE * 2)
        # the request never sees the dead connection: the ping finds it, the pool reconnects
        second = await backend_pid(engine)
        assert second != first
    finally:
        await other.dispose()


async def test_a_connection_that_died_between_quick_uses_fails_once_then_the_pool_renews(
    engine: AsyncEngine, databases: DatabaseFactory
) -> None:
    """The price of pinging only idle connections, bounded: the request that meets the dead
    connection fails (services answer it 503 with Retry-After); the next one connects afresh."""
    other = create_engine(await databases.create("killer"), pool_size=1)
    try:
        first = await backend_pid(engine)
        await end_session(other, first)
        with pytest.raises(DBAPIError) as failed:
            await backend_pid(engine)
        assert failed.value.connection_invalidated
        assert await backend_pid(engine) != first
    finally:
        await other.dispose()


async def test_after_a_burst_a_quiet_service_keeps_using_its_warm_connection(
    databases: DatabaseFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pool hands out the connection checked in last: after a burst opened several, the
    one-at-a-time traffic that follows reuses the same warm connection (no ping), instead of
    going round all of them (each idle long enough by its turn to be pinged first)."""
    engine = create_engine(await databases.create("pool"), pool_size=4, ping_after_idle=IDLE)
    try:
        sent = count_pings(engine, monkeypatch)
        burst = await asyncio.gather(*(held_pid(engine) for _ in range(4)))
        assert len(set(burst)) == 4  # four connections in the pool now
        pids = set()
        for _ in range(8):
            await asyncio.sleep(IDLE / 3)
            pids.add(await backend_pid(engine))
        assert len(pids) == 1
        assert sent == []
    finally:
        await engine.dispose()


async def held_pid(engine: AsyncEngine) -> int:
    """A connection's backend pid, the connection held a moment so that others open beside it."""
    async with engine.connect() as conn:
        pid = int((await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one())
        await asyncio.sleep(0.05)
        return pid
