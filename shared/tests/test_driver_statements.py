"""``DriverStatement`` and ``driver_pool``: a Core statement compiled once and run on a raw
asyncpg connection gives what SQLAlchemy's own execution gives, its values through their
types' bind processors; a pool connection goes back without asyncpg's reset round trip."""

from __future__ import annotations

import datetime as dt
import re

import asyncpg
import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, bindparam, select

from te_shared.db import DriverStatement, UTCDateTime, create_engine, driver_pool
from te_testing.infra import DatabaseFactory, use_sqlite

metadata = MetaData()
held = Table(
    "held",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("owner", String(20)),
    Column("at", UTCDateTime()),
)
#: a literal (``'gone'``) among named values, one of them used twice
BY_OWNER = select(held.c.id).where(
    held.c.owner == bindparam("owner"),
    held.c.owner != "gone",
    held.c.at < bindparam("before"),
    held.c.id > bindparam("after"),
    held.c.id != bindparam("after"),
)


def test_arguments_come_in_the_statements_order_with_its_literals() -> None:
    statement = DriverStatement.of(BY_OWNER)
    before = dt.datetime(2026, 12, 4, 12, tzinfo=dt.timezone(dt.timedelta(hours=3)))
    arguments = statement.arguments({"after": 0, "before": before, "owner": "ann"})
    assert arguments == ["ann", "gone", before.astimezone(dt.UTC), 0]
    assert arguments[2].utcoffset() == dt.timedelta(0)  # UTCDateTime's bind processor ran
    assert set(re.findall(r"\$\d+", statement.sql)) == {"$1", "$2", "$3", "$4"}  # ``after`` once
    with pytest.raises(ValueError, match="naive"):
        statement.arguments({"after": 0, "before": before.replace(tzinfo=None), "owner": "ann"})


async def test_no_pool_on_sqlite_or_when_turned_off() -> None:
    assert await driver_pool("sqlite+aiosqlite:///:memory:", 4) is None
    assert await driver_pool("postgresql+asyncpg://postgres@127.0.0.1/postgres", 0) is None


@pytest.fixture
async def database(databases: DatabaseFactory) -> str:
    url = await databases.create("driver")
    engine = create_engine(url)
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
        await conn.execute(
            held.insert(),
            [
                {"id": 1, "owner": "ann", "at": dt.datetime(2026, 1, 1, tzinfo=dt.UTC)},
                {"id": 2, "owner": "ann", "at": dt.datetime(2026, 6, 1, tzinfo=dt.UTC)},
                {"id": 3, "owner": "bob", "at": dt.datetime(2026, 1, 1, tzinfo=dt.UTC)},
            ],
        )
    await engine.dispose()
    return url


@pytest.mark.skipif(use_sqlite(), reason="asyncpg is PostgreSQL's")
async def test_a_driver_statement_finds_what_sqlalchemy_finds(database: str) -> None:
    values = {"owner": "ann", "before": dt.datetime(2026, 3, 1, tzinfo=dt.UTC), "after": 0}
    engine = create_engine(database)
    async with engine.connect() as conn:
        expected = (await conn.execute(BY_OWNER, values)).scalars().all()
    await engine.dispose()
    pool = await driver_pool(database, 1)
    assert pool is not None
    statement = DriverStatement.of(BY_OWNER)
    try:
        async with pool.acquire() as connection:
            rows = await connection.fetch(statement.sql, *statement.arguments(values))
            backend = await connection.fetchval("SELECT pg_backend_pid()")
        assert [row["id"] for row in rows] == expected == [1]
        # asyncpg's default reset would have sent ``RESET ALL`` and the rest when the
        # connection went back; ours leaves the pid query the last the server saw from it
        other = await asyncpg.connect(database.replace("postgresql+asyncpg", "postgresql"))
        try:
            last = await other.fetchval(
                "SELECT query FROM pg_stat_activity WHERE pid = $1", backend
            )
        finally:
            await other.close()
        assert last == "SELECT pg_backend_pid()"
    finally:
        await pool.close()
