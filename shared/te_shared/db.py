"""Database plumbing: declarative base with a naming convention, engines, sessions, migrations."""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import time
import uuid
import weakref
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import asyncpg
from sqlalchemy import DateTime, MetaData, TypeDecorator, event, make_url, text
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.sql import Executable
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ClauseElement

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def make_metadata() -> MetaData:
    return MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """A timezone-aware datetime stored in UTC on every backend (SQLite keeps no offset)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; attach a timezone")
        return value.astimezone(dt.UTC)

    def process_result_value(
        self, value: dt.datetime | None, dialect: Dialect
    ) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def new_id() -> uuid.UUID:
    return uuid.uuid4()


def create_engine(
    database_url: str,
    *,
    echo: bool = False,
    pool_size: int = 10,
    pool_timeout: float = 10.0,
    ping_after_idle: float | None = None,
) -> AsyncEngine:
    """An async engine; SQLite gets WAL, foreign keys and a busy timeout. On PostgreSQL work
    waits up to ``pool_timeout`` seconds for a connection while all are in use, then fails
    with SQLAlchemy's ``TimeoutError`` (a request's 503 ``database_busy``)."""
    if database_url.startswith("sqlite"):
        path = database_url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(
            database_url, echo=echo, connect_args={"timeout": 30}, hide_parameters=True
        )

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _: Any) -> None:
            dbapi_connection.isolation_level = None  # we emit BEGIN ourselves, below
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        # SQLite: take the write lock at BEGIN so concurrent writers queue instead of failing.
        @event.listens_for(engine.sync_engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    # hide_parameters: an error's text never quotes the values (clients' data) into a log line
    engine = create_async_engine(
        database_url,
        echo=echo,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_timeout=pool_timeout,
        # the connection checked in last goes out first: a quiet service keeps reusing the
        # few it needs, which stay warm (no ping, see below), and the rest idle out of use
        pool_use_lifo=True,
        hide_parameters=True,
    )
    ping_when_idle(engine, PING_AFTER_IDLE_SECONDS if ping_after_idle is None else ping_after_idle)
    return engine


#: a pooled connection unused this long is pinged before it is handed out
PING_AFTER_IDLE_SECONDS = 2.0


def ping_when_idle(engine: AsyncEngine, after: float = PING_AFTER_IDLE_SECONDS) -> None:
    """Ping a pooled connection before use only when it sat idle ``after`` seconds or more.

    ``pool_pre_ping`` pings on every checkout: a round trip before every transaction, a quarter
    of a stored webhook's and a seventh of a sign-up's, waiting its turn on a busy event loop
    each time. A connection that was in use a moment ago is alive or its server just went away;
    in the second case the statement fails (503 with Retry-After) and SQLAlchemy invalidates
    the whole pool at once, so the next checkouts connect afresh. The ones that idled, where a
    restart, a failover or a firewall dropping idle connections goes unnoticed, are pinged,
    and a dead one is replaced before anyone uses it (the pool's documented ``checkout``
    recipe: raising ``DisconnectionError`` makes it retry with a new connection)."""
    pool = engine.sync_engine.pool
    dialect = engine.sync_engine.dialect

    @event.listens_for(pool, "checkin")
    def _idle_from(_dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(pool, "checkout")
    def _ping_if_idle(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get("idle_since")
        if since is None or time.monotonic() - since < after:
            return
        try:
            alive = dialect.do_ping(dbapi_connection)
        except Exception as exc:
            raise DisconnectionError("the pooled connection did not answer a ping") from exc
        if alive is False:
            raise DisconnectionError("the pooled connection did not answer a ping")


@dataclass(frozen=True)
class DriverStatement:
    """A Core statement compiled once for asyncpg, to run on a driver connection of
    :func:`driver_pool`: its SQL, and the arguments in their places from named values, each
    through its type's bind processor as SQLAlchemy would send it. Rows come back as asyncpg
    records (by column name), without SQLAlchemy's result processing."""

    sql: str
    names: tuple[str, ...]
    processors: tuple[Callable[[Any], Any] | None, ...]
    literals: dict[str, Any]

    @classmethod
    def of(cls, statement: ClauseElement) -> DriverStatement:
        dialect = asyncpg_dialect()  # type: ignore[no-untyped-call]
        compiled = cast(SQLCompiler, statement.compile(dialect=dialect))
        names = tuple(compiled.positiontup or ())
        binds = {name: bind for bind, name in compiled.bind_names.items()}
        return cls(
            sql=str(compiled),
            names=names,
            processors=tuple(
                binds[name].type.dialect_impl(dialect).bind_processor(dialect) for name in names
            ),
            literals={
                name: binds[name].effective_value for name in names if not binds[name].required
            },
        )

    def arguments(self, values: Mapping[str, Any]) -> list[Any]:
        given = {**self.literals, **values}
        return [
            given[name] if processor is None else processor(given[name])
            for name, processor in zip(self.names, self.processors, strict=True)
        ]


#: where a service keeps its :func:`driver_pool` in its runtime's extras, when it opened one
#: (registration does, for the sign-up's fast path); shared code that has a statement on a hot
#: path (the idempotency key's claim and answer) runs it there when it is present
DRIVER_POOL = "driver_pool"


async def driver_pool(database_url: str, size: int) -> asyncpg.Pool | None:
    """A small asyncpg pool of its own beside the engine's, for a hot path that runs
    :class:`DriverStatement` s without SQLAlchemy's execution; None on SQLite or when ``size``
    is 0. Connections open as they are needed and every statement runs alone (autocommit)."""
    url = make_url(database_url)
    if size <= 0 or url.get_backend_name() != "postgresql":
        return None
    dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
    return await asyncpg.create_pool(dsn, min_size=0, max_size=size, reset=_statements_alone_left)


@asynccontextmanager
async def driver_connection(pool: asyncpg.Pool, timeout: float) -> AsyncIterator[Any]:
    """One of ``pool``'s connections, waited for ``timeout`` seconds at most (the service's
    ``DATABASE_POOL_TIMEOUT``): past it, SQLAlchemy's pool ``TimeoutError``, as the engine's
    pool raises, so a busy driver pool is the same 503 ``database_busy``."""
    try:
        connection = await pool.acquire(timeout=timeout)
    except TimeoutError as exc:
        raise PoolTimeout("every driver connection stayed in use") from exc
    try:
        yield connection
    finally:
        await pool.release(connection)


async def _statements_alone_left(_: asyncpg.Connection) -> None:
    """What a :func:`driver_pool` connection needs reset when it goes back: nothing more than
    asyncpg's own (an open transaction rolled back). Its statements run alone and leave no
    session state; asyncpg's default reset sent ``RESET ALL``, ``CLOSE ALL``, ``UNLISTEN *``
    and ``pg_advisory_unlock_all()`` after every use: a round trip of its own."""


def add_session_info(sessionmaker: async_sessionmaker[AsyncSession], key: str, value: Any) -> None:
    """Every session ``sessionmaker`` makes from now on starts with ``key`` in its ``info``,
    beside what others put there (``configure(info=...)`` alone would replace it)."""
    sessionmaker.configure(info={**(sessionmaker.kw.get("info") or {}), key: value})


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=True)


@asynccontextmanager
async def unit_of_work(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> AsyncIterator[AsyncSession]:
    """One transaction: commit when the block succeeds, roll back when it raises."""
    async with sessionmaker() as session, session.begin():
        yield session


def is_postgres(session: AsyncSession) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def dialect_of(sessionmaker: async_sessionmaker[AsyncSession]) -> str:
    """The dialect's name (``postgresql``, ``sqlite``) of what ``sessionmaker`` binds to, without
    making a session (for a statement built once per dialect)."""
    bind = sessionmaker.kw.get("bind")
    if bind is None:
        raise ValueError("the sessionmaker is bound to no engine")
    return str(bind.dialect.name)


#: a single statement, or reads that need no lock, need no transaction of their own
_AUTOCOMMIT = {"isolation_level": "AUTOCOMMIT"}


@asynccontextmanager
async def read_only(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> AsyncIterator[AsyncSession]:
    """A session for reads that need no lock: on PostgreSQL in autocommit, without the
    ``BEGIN`` and ``COMMIT`` round trips. What it reads is the same: under READ COMMITTED each
    statement sees its own snapshot, in a transaction or not. Never write through it."""
    async with sessionmaker() as session:
        await statements_alone(session)
        yield session


_ALONE = "te_statements_alone"


async def statements_alone(session: AsyncSession) -> bool:
    """From here on each statement of ``session`` is a transaction of its own (PostgreSQL's
    autocommit) until :func:`in_one_transaction`; what the session's transaction held so far is
    committed first. For a request whose every write is one statement: no ``BEGIN`` and
    ``COMMIT`` round trips, and a row a statement locks is unlocked when the statement ends,
    inside PostgreSQL, not when the event loop next gets round to sending ``COMMIT`` (the hot
    seat counter of a sign-up storm was locked that long, and every other sign-up waited).

    Only for single statements that are whole by themselves: no ORM object may be added (a flush
    would write each row on its own), and no lock outlives its statement. True when it took
    effect; on SQLite (one writer at a time) it does nothing and says False."""
    if not is_postgres(session):
        return False
    if not is_alone(session):
        if session.in_transaction():  # something ran before: commit it (a round trip)
            await session.commit()
        await session.connection(execution_options=_AUTOCOMMIT)
        # a weak reference: the transaction refers to the session, and a strong one here would
        # close a reference cycle (session, transaction, connection: 44 objects a request)
        # that only the garbage collector frees; a sign-up storm then spent a tenth of its
        # CPU in collections, and their pauses were its p99
        session.info[_ALONE] = weakref.ref(session.sync_session.get_transaction())
    return True


def is_alone(session: AsyncSession) -> bool:
    """Whether ``session``'s statements run each alone (:func:`statements_alone`): it is still
    in the transaction that took the autocommit connection (a commit by anyone ends that one,
    and the next statement begins an ordinary transaction)."""
    marked = session.info.get(_ALONE)
    transaction = marked() if marked is not None else None
    return transaction is not None and transaction is session.sync_session.get_transaction()


async def in_one_transaction(session: AsyncSession) -> bool:
    """End :func:`statements_alone`: the session's next statements share one transaction again
    (committed by whoever owns the session, as usual). True when it ended it; otherwise it
    does nothing and says False."""
    alone = is_alone(session)
    session.info.pop(_ALONE, None)
    if alone:
        await session.commit()
    return alone


async def alone(
    sessionmaker: async_sessionmaker[AsyncSession],
    statement: Executable,
    params: dict[str, Any] | None = None,
) -> list[tuple[Any, ...]]:
    """Run one statement as a transaction of its own and return its rows (``RETURNING``'s; none
    for a statement without). On PostgreSQL a single statement is atomic by itself, so it runs
    in autocommit: one round trip instead of three (``BEGIN``, the statement, ``COMMIT``), which
    on a busy event loop is most of a claim's time. Elsewhere in an ordinary transaction.

    It runs on a plain connection of the sessionmaker's engine, not in an ORM session: no
    session is needed for one statement, and making and closing one cost as much CPU as the
    statement itself (the outbox relay and the job claims run this on every message)."""
    bind = getattr(sessionmaker, "kw", {}).get("bind")
    if not isinstance(bind, AsyncEngine):  # a sessionmaker of another kind: through a session
        async with sessionmaker() as session:
            autocommit = is_postgres(session)
            conn = await session.connection(execution_options=_AUTOCOMMIT if autocommit else None)
            result = await conn.execute(statement, params)
            rows = [tuple(row) for row in result] if result.returns_rows else []
            if not autocommit:
                await session.commit()
            return rows
    if bind.dialect.name == "postgresql":
        async with bind.connect() as conn:
            conn = await conn.execution_options(**_AUTOCOMMIT)
            result = await conn.execute(statement, params)
            return [tuple(row) for row in result] if result.returns_rows else []
    async with bind.begin() as conn:
        result = await conn.execute(statement, params)
        return [tuple(row) for row in result] if result.returns_rows else []


@functools.cache
def _driver_statement(statement: ClauseElement) -> DriverStatement:
    """A statement run by :func:`alone_on_driver`, compiled once for the driver."""
    return DriverStatement.of(statement)


async def alone_on_driver(
    pool: asyncpg.Pool | None,
    timeout: float,
    sessionmaker: async_sessionmaker[AsyncSession],
    statement: Executable,
    values: dict[str, Any],
    *,
    compiled: DriverStatement | None = None,
    engine_when_busy: bool = False,
) -> list[Any]:
    """:func:`alone` on a connection of ``pool`` when it is a :func:`driver_pool` (no
    SQLAlchemy execution: on a hot path, the engine's execution cost several times the
    statement), else through the engine. ``compiled``: the statement as the driver runs it,
    when ``statement`` cannot be compiled once as it is (an expanding ``IN``); by default it is,
    once. A driver's error leaves the statement to the engine, which meets the same database
    and raises its errors as every statement's. No connection free within ``timeout``:
    :class:`PoolTimeout`, as the engine's pool raises (a request's 503), or with
    ``engine_when_busy`` the engine's connection instead (background work that must not fail
    for it). Rows come back as asyncpg records from the driver, tuples from the engine."""
    if isinstance(pool, asyncpg.Pool):
        driver = compiled or _driver_statement(cast(ClauseElement, statement))
        try:
            async with driver_connection(pool, timeout) as connection:
                return list(await connection.fetch(driver.sql, *driver.arguments(values)))
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
            pass
        except PoolTimeout:
            if not engine_when_busy:
                raise
    return await alone(sessionmaker, statement, values)


async def ping(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))


def run_migrations(database_url: str, script_location: Path) -> None:
    """Apply ``alembic upgrade head`` for one service (synchronously; call from a thread)."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(script_location))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    config.attributes["database_url"] = database_url
    command.upgrade(config, "head")


async def run_migrations_async(database_url: str, script_location: Path) -> None:
    await asyncio.to_thread(run_migrations, database_url, script_location)
