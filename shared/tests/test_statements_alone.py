"""``statements_alone`` / ``in_one_transaction`` on a real PostgreSQL: a statement run alone is
committed (and its row locks released) when it ends, before the session's owner commits; back
in one transaction, nothing is seen until the commit. A request keeps the connection it began
with: entering alone mode first gives none back to the pool."""

from __future__ import annotations

import gc
import weakref
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from te_shared.db import (
    create_engine,
    create_sessionmaker,
    in_one_transaction,
    is_alone,
    statements_alone,
)
from te_testing.infra import DatabaseFactory, use_sqlite

pytestmark = pytest.mark.skipif(use_sqlite(), reason="autocommit is PostgreSQL's")


@pytest.fixture
async def engine(databases: DatabaseFactory) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(await databases.create("alone"), pool_size=2)
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE counter (id int PRIMARY KEY, n int NOT NULL)"))
        await conn.execute(text("INSERT INTO counter VALUES (1, 0)"))
    yield engine
    await engine.dispose()


async def seen_from_outside(engine: AsyncEngine) -> int:
    async with engine.connect() as other:
        return int((await other.execute(text("SELECT n FROM counter WHERE id = 1"))).scalar_one())


async def locked_from_outside(engine: AsyncEngine) -> bool:
    """Whether another transaction holds the counter's row lock (NOWAIT fails at once)."""
    async with engine.connect() as other:
        try:
            await other.execute(text("SELECT n FROM counter WHERE id = 1 FOR UPDATE NOWAIT"))
        except DBAPIError:
            return True
        finally:
            await other.rollback()
        return False


async def test_a_statement_run_alone_is_committed_and_unlocked_when_it_ends(
    engine: AsyncEngine,
) -> None:
    async with create_sessionmaker(engine)() as session:
        assert await statements_alone(session) is True
        assert is_alone(session)
        await session.execute(text("UPDATE counter SET n = n + 1 WHERE id = 1"))
        # the session's owner has not committed: the row is written and not locked
        assert await seen_from_outside(engine) == 1
        assert await locked_from_outside(engine) is False

        assert await in_one_transaction(session) is True
        assert not is_alone(session)
        await session.execute(text("UPDATE counter SET n = n + 1 WHERE id = 1"))
        # in a transaction again: locked and unseen until the commit
        assert await locked_from_outside(engine) is True
        assert await seen_from_outside(engine) == 1
        await session.commit()
    assert await seen_from_outside(engine) == 2


async def test_what_came_before_is_committed_and_a_rollback_keeps_what_ran_alone(
    engine: AsyncEngine,
) -> None:
    async with create_sessionmaker(engine)() as session:
        await session.execute(text("UPDATE counter SET n = 10 WHERE id = 1"))
        await statements_alone(session)  # commits the transaction so far
        assert await seen_from_outside(engine) == 10
        await session.execute(text("UPDATE counter SET n = n + 1 WHERE id = 1"))
        await session.rollback()  # nothing left to roll back: each statement committed itself
    assert await seen_from_outside(engine) == 11


async def test_entering_first_keeps_one_connection_for_the_whole_request(
    engine: AsyncEngine,
) -> None:
    """Entered before the first statement, no connection goes back to the pool in between (a
    request that gave it back would queue again behind every other request for one)."""
    async with create_sessionmaker(engine)() as session:
        await statements_alone(session)
        first = (await session.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        await statements_alone(session)  # already alone: nothing happens
        again = (await session.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        assert first == again
        # leaving does give it back (the next transaction takes whichever is free)
        assert await in_one_transaction(session) is True
        assert await in_one_transaction(session) is False


async def test_a_commit_by_the_owner_ends_it_too(engine: AsyncEngine) -> None:
    """The mode goes with the autocommit connection: once a commit gives that back, the next
    statement is in an ordinary transaction, and entering again takes a new one."""
    async with create_sessionmaker(engine)() as session:
        await statements_alone(session)
        await session.commit()
        assert not is_alone(session)
        await session.execute(text("UPDATE counter SET n = 5 WHERE id = 1"))
        assert await locked_from_outside(engine) is True
        assert await in_one_transaction(session) is False  # not alone: the transaction stays
        await session.rollback()
        assert await statements_alone(session) is True
        await session.execute(text("UPDATE counter SET n = 6 WHERE id = 1"))
        assert await seen_from_outside(engine) == 6


async def test_a_closed_session_is_freed_without_the_garbage_collector(
    engine: AsyncEngine,
) -> None:
    """No reference cycle: every sign-up runs alone, and a session the collector had to find
    (with its transaction and connection, 44 objects) made a storm's collections a tenth of
    its CPU and their pauses its p99."""
    gc.collect()
    gc.disable()
    try:
        async with create_sessionmaker(engine)() as session:
            await statements_alone(session)
            await session.execute(text("UPDATE counter SET n = n + 1 WHERE id = 1"))
            freed = weakref.ref(session.sync_session)
        del session
        assert freed() is None  # freed when its last reference went, by reference counting
    finally:
        gc.enable()
