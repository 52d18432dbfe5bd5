"""Outbox, inbox and dead-lettering against real RabbitMQ and PostgreSQL (R-ERR-2, R-ERR-3)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import io
import json
import logging
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aio_pika
import pytest
from faststream.rabbit import RabbitBroker, RabbitQueue
from pydantic import ValidationError
from sqlalchemy import Integer, String, bindparam, event, func, insert, select, text, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column

from te_shared import contracts as c
from te_shared.db import create_engine, create_sessionmaker, driver_pool, unit_of_work
from te_shared.inbox import Consumers, claim
from te_shared.logging import configure_logging
from te_shared.outbox import OutboxRelay, add_message, outbox_values
from te_shared.replica import CompanyReplicaMixin, follow_company_settings
from te_shared.service import make_broker
from te_shared.settings import ServiceSettings
from te_shared.topology import CATALOG, INTEGRATIONS, REGISTRATION, ZOOM_BRIDGE, Topology
from te_testing import messages
from te_testing.infra import DatabaseFactory, RabbitNamespace, use_sqlite
from te_testing.polling import eventually
from te_testing.tables import Base, Inbox, Outbox


class Effect(Base):
    """What a consumer does: one row per applied message."""

    __tablename__ = "effect"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    company_id: Mapped[str] = mapped_column(String(50))
    version: Mapped[int] = mapped_column(Integer)


class CompanyReplica(CompanyReplicaMixin, Base):
    """A read model kept by ``keep_newest`` (``follow_company_settings``)."""


class Seen(Base):
    """A row a consumer inserts when it reads it as missing (one per company)."""

    __tablename__ = "seen"
    company_id: Mapped[str] = mapped_column(String(50), primary_key=True)


def settings_message(company: str, version: int = 1) -> c.CompanySettingsChanged:
    return messages.company_settings_changed(
        company=company, version=version, timezone="Europe/Moscow"
    )


@contextlib.asynccontextmanager
async def database(databases: DatabaseFactory) -> AsyncIterator[tuple[AsyncEngine, Any]]:
    engine = create_engine(await databases.create("msg"))
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    try:
        yield engine, create_sessionmaker(engine)
    finally:
        await engine.dispose()


async def effects(sm: async_sessionmaker[AsyncSession], company: str) -> int:
    async with sm() as session:
        return int(
            await session.scalar(select(func.count()).where(Effect.company_id == company)) or 0
        )


async def unsent(sm: async_sessionmaker[AsyncSession]) -> int:
    async with sm() as session:
        return int(await session.scalar(select(func.count()).where(Outbox.sent_at.is_(None))) or 0)


@contextlib.asynccontextmanager
async def consumer(
    ns: RabbitNamespace,
    sm: async_sessionmaker[AsyncSession],
    *,
    poison: str | None = None,
    database_away: dict[str, int] | None = None,
) -> AsyncIterator[list[str]]:
    """Registration-side consumer of CompanySettingsChanged that records an Effect per message.
    ``database_away`` names companies whose first N attempts find the database away (as while
    PostgreSQL restarts)."""
    away = dict(database_away or {})
    calls: list[str] = []
    consumers = Consumers(REGISTRATION)
    consumers.observers.append(lambda _key, outcome: calls.append(f"outcome:{outcome}"))

    @consumers.handler(c.CompanySettingsChanged)
    async def on_settings(session: AsyncSession, msg: c.CompanySettingsChanged) -> None:
        calls.append(msg.company_id)
        if msg.company_id == poison:
            raise RuntimeError("cannot process this one")
        if away.get(msg.company_id, 0) > 0:
            away[msg.company_id] -= 1
            raise OperationalError(
                "INSERT", {}, ConnectionRefusedError("the database system is shutting down")
            )
        session.add(Effect(company_id=msg.company_id, version=msg.version))

    async with bound(consumers, ns, sm):
        yield calls


@contextlib.asynccontextmanager
async def bound(
    consumers: Consumers, ns: RabbitNamespace, sm: async_sessionmaker[AsyncSession]
) -> AsyncIterator[None]:
    """``consumers`` subscribed to their queues in ``ns``, through the inbox in ``sm``."""
    broker = RabbitBroker(ns.amqp_url)
    consumers.bind(broker, ns.topology, lambda: sm, Inbox)
    await broker.connect()
    await ns.topology.declare(broker)
    await broker.start()
    try:
        yield
    finally:
        await broker.stop()


@contextlib.asynccontextmanager
async def publisher_broker(url: str) -> AsyncIterator[RabbitBroker]:
    broker = RabbitBroker(url, reconnect_interval=0.2)
    await broker.connect()
    try:
        yield broker
    finally:
        await broker.stop()


class TcpProxy:
    """A TCP proxy to RabbitMQ that a test can cut and restore, to play "the broker is down"."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.server: asyncio.Server | None = None
        self.port = 0
        self.writers: set[asyncio.StreamWriter] = set()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(Exception):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self.target)
        self.writers |= {writer, up_writer}
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    async def up(self) -> None:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        self.port = self.server.sockets[0].getsockname()[1]

    async def down(self) -> None:
        assert self.server is not None
        self.server.close()
        for writer in self.writers:
            writer.close()
        self.writers.clear()
        await self.server.wait_closed()


def proxied(url: str, port: int) -> str:
    parsed = aio_pika.connection.make_url(url)
    return str(parsed.with_host("127.0.0.1").with_port(port))


class TestOutbox:
    async def test_rolled_back_transaction_publishes_nothing(
        self, databases: DatabaseFactory, fresh_rabbit: RabbitNamespace
    ) -> None:
        async with database(databases) as (_, sm):
            with pytest.raises(RuntimeError):
                async with unit_of_work(sm) as session:
                    add_message(session, Outbox, settings_message("rolled-back"))
                    raise RuntimeError("the change failed")
            assert await unsent(sm) == 0
            async with sm() as session:
                assert await session.scalar(select(func.count()).select_from(Outbox)) == 0

    async def test_change_committed_while_broker_down_is_delivered_when_back(
        self, databases: DatabaseFactory, fresh_rabbit: RabbitNamespace
    ) -> None:
        ns = fresh_rabbit
        parsed = aio_pika.connection.make_url(ns.amqp_url)
        proxy = TcpProxy(parsed.host or "127.0.0.1", parsed.port or 5672)
        await proxy.up()
        async with database(databases) as (_, sm), consumer(ns, sm):
            async with publisher_broker(proxied(ns.amqp_url, proxy.port)) as broker:
                relay = OutboxRelay(sm, Outbox, broker, ns.topology.exchange, publish_timeout=1)
                await proxy.down()
                async with unit_of_work(sm) as session:
                    add_message(session, Outbox, settings_message("during-outage"))
                assert await relay.relay_once() == 1  # claimed, publish failed
                async with sm() as session:
                    row = (await session.scalars(select(Outbox))).one()
                assert row.sent_at is None
                assert row.attempts == 1
                assert row.last_error
                await proxy.up()
                relay._poll_interval = 0.05
                relay.start()
                try:
                    await eventually(
                        lambda: effects_is(sm, "during-outage", 1), timeout=60, interval=0.05
                    )
                finally:
                    await relay.stop()
                assert await unsent(sm) == 0
        await proxy.down()

    async def test_relay_killed_before_marking_sent_duplicate_is_absorbed(
        self, databases: DatabaseFactory, fresh_rabbit: RabbitNamespace
    ) -> None:
        ns = fresh_rabbit

        class CrashingRelay(OutboxRelay):
            """Publishes, then dies before it can mark the rows sent."""

            async def relay_once(self) -> int:
                rows = await self._claim()
                for row in rows:
                    await self._publish(row)
                raise SystemError("killed between publish and mark")

        async with database(databases) as (_, sm), consumer(ns, sm) as calls:
            async with publisher_broker(ns.amqp_url) as broker:
                async with unit_of_work(sm) as session:
                    add_message(session, Outbox, settings_message("dup"))
                crashing = CrashingRelay(
                    sm, Outbox, broker, ns.topology.exchange, lease_seconds=0.3
                )
                with pytest.raises(SystemError):
                    await crashing.relay_once()
                await eventually(lambda: effects_is(sm, "dup", 1), interval=0.05)
                assert await unsent(sm) == 1  # never marked
                await asyncio.sleep(0.4)  # the lease runs out
                healthy = OutboxRelay(sm, Outbox, broker, ns.topology.exchange)
                assert await healthy.relay_once() == 1
                await eventually(lambda: calls_count(calls, "outcome:duplicate", 1), interval=0.05)
                await asyncio.sleep(0.3)
            assert await effects(sm, "dup") == 1  # the duplicate was absorbed by the inbox
            assert await unsent(sm) == 0

    async def test_several_relays_publish_each_row_once(
        self, databases: DatabaseFactory, fresh_rabbit: RabbitNamespace
    ) -> None:
        ns = fresh_rabbit
        async with database(databases) as (_, sm), consumer(ns, sm) as calls:
            async with unit_of_work(sm) as session:
                for i in range(300):
                    add_message(session, Outbox, settings_message(f"many-{i}"))
            async with publisher_broker(ns.amqp_url) as broker:
                relays = [
                    OutboxRelay(sm, Outbox, broker, ns.topology.exchange, batch_size=25)
                    for _ in range(3)
                ]

                async def drain(relay: OutboxRelay) -> None:
                    while await relay.relay_once():
                        pass

                await asyncio.gather(*(drain(r) for r in relays))
                await eventually(
                    lambda: calls_count(calls, "outcome:processed", 300), interval=0.05
                )
                await asyncio.sleep(0.3)
            if databases.admin_url is not None:  # SKIP LOCKED: no row twice on PostgreSQL
                assert calls.count("outcome:processed") == 300
                assert "outcome:duplicate" not in calls
            assert await unsent(sm) == 0

    @pytest.mark.skipif(use_sqlite(), reason="a driver pool is PostgreSQL's")
    async def test_a_relay_marks_rows_sent_on_the_driver_pool_or_the_engine_when_it_is_busy(
        self, databases: DatabaseFactory, fresh_rabbit: RabbitNamespace
    ) -> None:
        """Where the service has a driver pool, the published rows are marked sent there (one
        statement, ``= ANY`` of their ids); a pool that stays busy leaves it to the engine,
        and no row stays unmarked (it would be published again once its lease ran out)."""
        ns = fresh_rabbit
        async with database(databases) as (engine, sm), consumer(ns, sm) as calls:
            pool = await driver_pool(engine.url.render_as_string(hide_password=False), 1)
            assert pool is not None
            try:
                async with unit_of_work(sm) as session:
                    for i in range(30):
                        add_message(session, Outbox, settings_message(f"driven-{i}"))
                async with publisher_broker(ns.amqp_url) as broker:
                    relay = OutboxRelay(
                        sm, Outbox, broker, ns.topology.exchange, driver=lambda: pool
                    )
                    assert await relay.relay_once() == 30
                    assert await unsent(sm) == 0
                    async with engine.connect() as conn:  # what each connection ran last
                        ran = (
                            await conn.execute(
                                text(
                                    "SELECT query FROM pg_stat_activity"
                                    " WHERE datname = current_database()"
                                )
                            )
                        ).scalars()
                        marked = [q for q in ran if q.startswith("UPDATE outbox SET sent_at=")]
                    assert marked == [marked[0]]
                    assert "= ANY (" in marked[0]  # the driver's statement, not the engine's
                    async with pool.acquire():  # the pool's one connection, held
                        async with unit_of_work(sm) as session:
                            add_message(session, Outbox, settings_message("busy"))
                        busy = OutboxRelay(
                            sm,
                            Outbox,
                            broker,
                            ns.topology.exchange,
                            driver=lambda: pool,
                            busy_timeout=0.1,
                        )
                        assert await busy.relay_once() == 1  # the pool's connection is held
                    assert await unsent(sm) == 0
                    await eventually(
                        lambda: calls_count(calls, "outcome:processed", 31), interval=0.05
                    )
            finally:
                await pool.close()

    async def test_a_woken_relay_claims_once_per_wake_and_loses_no_wake_up(
        self, databases: DatabaseFactory, fresh_rabbit: RabbitNamespace
    ) -> None:
        """A batch that was not full took every row due when it began: the relay then waits for
        the next wake (or its poll) instead of claiming again at once and finding nothing. A
        commit that wakes it while a batch is in flight is claimed at once, not at the poll."""
        ns = fresh_rabbit

        class CountingRelay(CountingClaims):
            async def _claim(self) -> list[Any]:
                rows = await super()._claim()
                if len(self.claims) == 1:  # while the first batch is in flight, another commit
                    async with unit_of_work(sm) as session:
                        add_message(session, Outbox, settings_message("during-batch"))
                    self.wake()
                return rows

        async with database(databases) as (_, sm), consumer(ns, sm):
            async with publisher_broker(ns.amqp_url) as broker:
                # a poll far longer than the test: only wake-ups move this relay
                relay = CountingRelay(sm, Outbox, broker, ns.topology.exchange, poll_interval=60)
                async with unit_of_work(sm) as session:
                    add_message(session, Outbox, settings_message("first"))
                relay.start()
                relay.wake()
                try:
                    await eventually(lambda: effects_is(sm, "during-batch", 1), interval=0.05)
                    await eventually(lambda: effects_is(sm, "first", 1), interval=0.05)
                    await asyncio.sleep(0.3)
                    assert relay.claims == [1, 1]  # no empty claim after either batch
                    async with unit_of_work(sm) as session:
                        add_message(session, Outbox, settings_message("later"))
                    relay.wake()
                    await eventually(lambda: effects_is(sm, "later", 1), interval=0.05)
                    await asyncio.sleep(0.3)
                    assert relay.claims == [1, 1, 1]
                finally:
                    await relay.stop()
            assert await unsent(sm) == 0


class CountingClaims(OutboxRelay):
    """A relay that counts its claims and the rows each took."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.claims: list[int] = []

    async def _claim(self) -> list[Any]:
        rows = await super()._claim()
        self.claims.append(len(rows))
        return rows


async def outbox_rows(sm: async_sessionmaker[AsyncSession]) -> list[Any]:
    async with sm() as session:
        return list((await session.scalars(select(Outbox).order_by(Outbox.id))).all())


class TestHandOver:
    """R-ERR-2 with the relay taking commits by hand: rows written leased to it, handed over on
    commit, published without a claim; the lease, the claim and the poll stay the safety net."""

    async def test_a_committed_message_is_published_without_a_claim(
        self, databases: DatabaseFactory, fresh_rabbit: RabbitNamespace
    ) -> None:
        ns = fresh_rabbit
        async with database(databases) as (_, sm), consumer(ns, sm):
            async with publisher_broker(ns.amqp_url) as broker:
                # a poll far longer than the test: only the first claim, at start, is the poll's
                relay = CountingClaims(sm, Outbox, broker, ns.topology.exchange, poll_interval=60)
                relay.hand_over_commits()
                relay.start()
                try:
                    await eventually(lambda: claims_made(relay, 1), interval=0.02)
                    async with unit_of_work(sm) as session:
                        add_message(session, Outbox, settings_message("handed"))
                    await eventually(lambda: effects_is(sm, "handed", 1), interval=0.02)
                    await eventually(lambda: none_unsent(sm), interval=0.02)
                    assert relay.claims == [0]  # the start's claim only
                finally:
                    await relay.stop()
            (row,) = await outbox_rows(sm)
            # written leased to the relay: no other relay claims it while it publishes
            assert row.available_at - row.created_at == dt.timedelta(seconds=30)
            assert row.attempts == 0

    async def test_a_row_a_statement_wrote_leased_is_handed_over_without_a_claim(
        self, databases: DatabaseFactory, fresh_rabbit: RabbitNamespace
    ) -> None:
        """A write done in one statement of its own (the sign-up's fast path) inserts its
        outbox row itself: :meth:`OutboxRelay.leased` values, then :meth:`hand_written`."""
        ns = fresh_rabbit
        async with database(databases) as (_, sm), consumer(ns, sm):
            async with publisher_broker(ns.amqp_url) as broker:
                relay = CountingClaims(sm, Outbox, broker, ns.topology.exchange, poll_interval=60)
                relay.start()
                try:
                    await eventually(lambda: claims_made(relay, 1), interval=0.02)
                    values = relay.leased(outbox_values(settings_message("by-statement")))
                    async with unit_of_work(sm) as session:
                        row_id = await session.scalar(
                            insert(Outbox).values(values).returning(Outbox.id)
                        )
                    assert row_id is not None
                    relay.hand_written(row_id, values)
                    await eventually(lambda: effects_is(sm, "by-statement", 1), interval=0.02)
                    await eventually(lambda: none_unsent(sm), interval=0.02)
                    assert relay.claims == [0]  # the start's claim only
                finally:
                    await relay.stop()
            (row,) = await outbox_rows(sm)
            assert row.available_at - row.created_at == relay.lease

    async def test_a_message_undone_with_its_savepoint_or_transaction_is_not_handed(
        self, databases: DatabaseFactory, fresh_rabbit: RabbitNamespace
    ) -> None:
        ns = fresh_rabbit
        handed: list[str] = []

        class Recording(OutboxRelay):
            def hand(self, rows: Any) -> None:
                handed.extend(r.payload["company_id"] for r in rows)
                super().hand(rows)

        async with database(databases) as (_, sm), consumer(ns, sm) as calls:
            async with publisher_broker(ns.amqp_url) as broker:
                relay = Recording(sm, Outbox, broker, ns.topology.exchange, poll_interval=60)
                relay.hand_over_commits()
                async with sm() as session:
                    # one session, a transaction undone, then one that commits
                    with pytest.raises(RuntimeError):
                        async with session.begin():
                            add_message(session, Outbox, settings_message("undone"))
                            await session.flush()  # inserted, then rolled back
                            raise RuntimeError("the change failed")
                    async with session.begin():
                        async with session.begin_nested() as savepoint:
                            add_message(session, Outbox, settings_message("savepoint"))
                            await session.flush()
                            await savepoint.rollback()
                        add_message(session, Outbox, settings_message("kept"))
                assert handed == ["kept"]
                relay.start()
                try:
                    await eventually(lambda: effects_is(sm, "kept", 1), interval=0.02)
                    await asyncio.sleep(0.3)
                finally:
                    await relay.stop()
            assert "undone" not in calls
            assert "savepoint" not in calls
            assert [r.payload["company_id"] for r in await outbox_rows(sm)] == ["kept"]

    async def test_rows_handed_to_a_relay_that_died_are_claimed_once_the_lease_runs_out(
        self, databases: DatabaseFactory, fresh_rabbit: RabbitNamespace
    ) -> None:
        ns = fresh_rabbit
        async with database(databases) as (_, sm), consumer(ns, sm) as calls:
            async with publisher_broker(ns.amqp_url) as broker:
                # the process that committed them dies before its relay publishes them
                dead = OutboxRelay(sm, Outbox, broker, ns.topology.exchange, lease_seconds=0.5)
                dead.hand_over_commits()
                async with unit_of_work(sm) as session:
                    add_message(session, Outbox, settings_message("orphan"))
                other = OutboxRelay(sm, Outbox, broker, ns.topology.exchange)
                assert await other.relay_once() == 0  # leased: another replica keeps off it
                await asyncio.sleep(0.6)
                assert await other.relay_once() == 1
                await eventually(lambda: effects_is(sm, "orphan", 1), interval=0.02)
                await asyncio.sleep(0.3)
            assert calls.count("orphan") == 1
            assert await unsent(sm) == 0

    async def test_a_stopping_relay_publishes_what_was_handed_to_it(
        self, databases: DatabaseFactory, fresh_rabbit: RabbitNamespace
    ) -> None:
        ns = fresh_rabbit
        async with database(databases) as (_, sm), consumer(ns, sm):
            async with publisher_broker(ns.amqp_url) as broker:
                relay = OutboxRelay(sm, Outbox, broker, ns.topology.exchange)
                relay.hand_over_commits()
                async with unit_of_work(sm) as session:
                    add_message(session, Outbox, settings_message("at-shutdown"))
                await relay.stop(flush_timeout=5)  # never started: the flush publishes it
                assert await unsent(sm) == 0
                await eventually(lambda: effects_is(sm, "at-shutdown", 1), interval=0.02)

    async def test_rows_handed_beyond_what_a_relay_holds_are_claimed_after_their_lease(
        self, databases: DatabaseFactory, fresh_rabbit: RabbitNamespace
    ) -> None:
        """While the broker is away commits go on handing rows over: the relay holds ten
        batches at most; the oldest beyond are let go of, and none is lost."""
        ns = fresh_rabbit
        async with database(databases) as (_, sm), consumer(ns, sm) as calls:
            async with publisher_broker(ns.amqp_url) as broker:
                relay = OutboxRelay(
                    sm,
                    Outbox,
                    broker,
                    ns.topology.exchange,
                    batch_size=2,
                    lease_seconds=1,
                    poll_interval=0.1,
                )
                relay.hand_over_commits()
                for i in range(0, 26, 2):  # not started yet: as if stuck on the broker
                    async with unit_of_work(sm) as session:
                        add_message(session, Outbox, settings_message(f"held-{i}"))
                        add_message(session, Outbox, settings_message(f"held-{i + 1}"))
                assert len(relay._handed) == 20
                assert relay._handed[0].payload["company_id"] == "held-6"  # the oldest let go of
                relay.start()
                try:
                    await eventually(lambda: all_effects(sm, "held-", 26), interval=0.05)
                    await asyncio.sleep(0.3)
                finally:
                    await relay.stop()
            assert await unsent(sm) == 0
            assert calls.count("outcome:duplicate") == 0

    async def test_past_a_batch_in_one_transaction_rows_are_claimed_as_before(
        self, databases: DatabaseFactory, fresh_rabbit: RabbitNamespace
    ) -> None:
        """A bulk change hands over one batch; the rest is due at once and claimed, so a
        large import never waits on one process's lease."""
        ns = fresh_rabbit
        async with database(databases) as (_, sm), consumer(ns, sm):
            async with publisher_broker(ns.amqp_url) as broker:
                relay = CountingClaims(
                    sm, Outbox, broker, ns.topology.exchange, batch_size=5, poll_interval=60
                )
                relay.hand_over_commits()
                async with unit_of_work(sm) as session:
                    for i in range(8):
                        add_message(session, Outbox, settings_message(f"bulk-{i}"))
                rows = await outbox_rows(sm)
                leased = [r.available_at > r.created_at for r in rows]
                assert leased == [True] * 5 + [False] * 3
                relay.start()
                try:
                    await eventually(lambda: all_effects(sm, "bulk-", 8), interval=0.02)
                finally:
                    await relay.stop()
                assert relay.claims[0] == 3  # the start's claim took the three due rows
            assert await unsent(sm) == 0


class TestDeadLettering:
    async def test_poison_message_is_dead_lettered_and_the_rest_flow(
        self, databases: DatabaseFactory, fresh_rabbit: RabbitNamespace
    ) -> None:
        ns = fresh_rabbit
        async with database(databases) as (_, sm), consumer(ns, sm, poison="poison") as calls:
            async with publisher_broker(ns.amqp_url) as broker:
                relay = OutboxRelay(sm, Outbox, broker, ns.topology.exchange)
                async with unit_of_work(sm) as session:
                    add_message(session, Outbox, settings_message("poison"))
                    for i in range(3):
                        add_message(session, Outbox, settings_message(f"good-{i}"))
                await relay.relay_once()
                for i in range(3):
                    await eventually(
                        functools.partial(effects_is, sm, f"good-{i}", 1), interval=0.05
                    )
                dlq = ns.topology.dead_letter_queue(REGISTRATION).name
                body = await dead_lettered_body(ns.amqp_url, dlq)
            assert b'"poison"' in body
            # RabbitMQ dead-letters once the delivery limit is exceeded
            assert calls.count("poison") >= ns.topology.delivery_limit
            assert await effects(sm, "poison") == 0

    async def test_a_database_outage_does_not_use_up_a_good_messages_deliveries(
        self, databases: DatabaseFactory, fresh_rabbit: RabbitNamespace
    ) -> None:
        """R-ERR-2: while the database is away the delivery is held and retried, not nacked, so
        a message that is fine is processed once the database is back, never dead-lettered."""
        ns = fresh_rabbit
        tries = ns.topology.delivery_limit + 3
        async with (
            database(databases) as (_, sm),
            consumer(ns, sm, database_away={"outage": tries}) as calls,
        ):
            async with publisher_broker(ns.amqp_url) as broker:
                relay = OutboxRelay(sm, Outbox, broker, ns.topology.exchange)
                async with unit_of_work(sm) as session:
                    add_message(session, Outbox, settings_message("outage"))
                await relay.relay_once()
                await eventually(lambda: effects_is(sm, "outage", 1), interval=0.05)
            assert calls.count("outage") == tries + 1  # every attempt in one delivery
            assert calls.count("outcome:failed") == 0
            assert calls.count("outcome:processed") == 1
            connection = await aio_pika.connect(ns.amqp_url)
            async with connection:
                channel = await connection.channel()
                dlq = await channel.declare_queue(
                    ns.topology.dead_letter_queue(REGISTRATION).name, passive=True
                )
                assert dlq.declaration_result.message_count == 0

    @pytest.mark.skipif(use_sqlite(), reason="SQLite runs one writer at a time: no such race")
    async def test_a_handler_that_loses_an_insert_race_runs_again_and_finds_the_row(
        self, databases: DatabaseFactory, fresh_rabbit: RabbitNamespace
    ) -> None:
        """A handler reads a row, finds it missing and inserts it; another transaction (a
        handler of another message, the bridge's worker) inserted it meanwhile and committed.
        The duplicate key does not send the message back to wait for a redelivery: it runs
        again at once, finds the row, and is processed in the same delivery."""
        ns = fresh_rabbit
        calls: list[str] = []
        consumers = Consumers(REGISTRATION)
        consumers.observers.append(lambda _key, outcome: calls.append(f"outcome:{outcome}"))
        async with database(databases) as (_, sm):

            @consumers.handler(c.CompanySettingsChanged)
            async def on_settings(session: AsyncSession, msg: c.CompanySettingsChanged) -> None:
                calls.append(msg.company_id)
                if await session.get(Seen, msg.company_id) is not None:
                    return
                if calls.count(msg.company_id) == 1:  # the other transaction wins the race
                    async with unit_of_work(sm) as other:
                        other.add(Seen(company_id=msg.company_id))
                session.add(Seen(company_id=msg.company_id))

            broker = RabbitBroker(ns.amqp_url)
            consumers.bind(broker, ns.topology, lambda: sm, Inbox)
            await broker.connect()
            await ns.topology.declare(broker)
            await broker.start()
            try:
                async with publisher_broker(ns.amqp_url) as publisher:
                    relay = OutboxRelay(sm, Outbox, publisher, ns.topology.exchange)
                    async with unit_of_work(sm) as session:
                        add_message(session, Outbox, settings_message("raced"))
                    await relay.relay_once()
                    await eventually(
                        lambda: asyncio.sleep(0, "outcome:processed" in calls), interval=0.05
                    )
            finally:
                await broker.stop()
        assert calls == ["raced", "raced", "outcome:processed"]

    async def test_invalid_body_is_rejected_at_once(
        self, databases: DatabaseFactory, fresh_rabbit: RabbitNamespace
    ) -> None:
        ns = fresh_rabbit
        async with database(databases) as (_, sm), consumer(ns, sm) as calls:
            async with publisher_broker(ns.amqp_url) as broker:
                await broker.publish(
                    {"company_id": "x", "message_id": str(uuid.uuid4())},  # misses fields
                    exchange=ns.topology.exchange,
                    routing_key=c.CompanySettingsChanged.routing_key,
                    persist=True,
                )
                body = await dead_lettered_body(
                    ns.amqp_url, ns.topology.dead_letter_queue(REGISTRATION).name
                )
        assert b'"company_id"' in body
        assert calls == ["outcome:rejected"]

    async def test_the_inbox_records_a_message_once_per_consumer(
        self, databases: DatabaseFactory
    ) -> None:
        """R-ERR-3's bookkeeping itself: the first claim of a message by a consumer is True,
        every later one False, and another consumer's claim of it is its own."""
        message_id = uuid.uuid4()
        async with database(databases) as (_, sm):
            outcomes = []
            for consumer_name in ("a", "a", "b"):
                async with unit_of_work(sm) as session:
                    outcomes.append(await claim(session, Inbox, message_id, consumer_name))
            async with sm() as session:
                rows = await session.scalar(select(func.count()).select_from(Inbox))
        assert outcomes == [True, False, True]
        assert rows == 2


@contextlib.asynccontextmanager
async def statement_consumer(
    ns: RabbitNamespace, sm: async_sessionmaker[AsyncSession]
) -> AsyncIterator[list[str]]:
    """A consumer of CompanySettingsChanged whose handler is one statement: it sets the
    company's Effect row to the message's version (and to NULL for company ``poison``: the
    column is NOT NULL, so the statement fails)."""
    outcomes: list[str] = []
    consumers = Consumers(REGISTRATION)
    consumers.observers.append(lambda _key, outcome: outcomes.append(outcome))
    version: Any = bindparam("version")
    statement = (
        update(Effect)
        .where(Effect.company_id == bindparam("company"))
        .values(version=version)
        .execution_options(synchronize_session=False)
    )

    @consumers.statement(c.CompanySettingsChanged)
    def on_settings(msg: c.CompanySettingsChanged) -> tuple[Any, dict[str, Any]]:
        poison = msg.company_id == "poison"
        return statement, {"company": msg.company_id, "version": None if poison else msg.version}

    async with bound(consumers, ns, sm):
        yield outcomes


async def effect_version(sm: async_sessionmaker[AsyncSession], company: str) -> int | None:
    async with sm() as session:
        return await session.scalar(select(Effect.version).where(Effect.company_id == company))


async def inbox_rows(sm: async_sessionmaker[AsyncSession], message_id: uuid.UUID) -> int:
    async with sm() as session:
        return int(
            await session.scalar(
                select(func.count()).select_from(Inbox).where(Inbox.message_id == message_id)
            )
            or 0
        )


async def publish_raw(broker: RabbitBroker, ns: RabbitNamespace, message: c.Message) -> None:
    """Publish ``message`` as a relay would (the same message id every time it is called)."""
    await broker.publish(
        message.model_dump(mode="json"),
        exchange=ns.topology.exchange,
        routing_key=message.routing_key,
        message_id=str(message.message_id),
        persist=True,
    )


async def statements_consuming(
    engine: AsyncEngine, ns: RabbitNamespace, message: c.Message, outcomes: list[str]
) -> list[str]:
    """The statements ``engine`` sends while a bound consumer takes ``message`` (published
    now) to its first outcome."""
    sent: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        sent.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        async with publisher_broker(ns.amqp_url) as broker:
            await publish_raw(broker, ns, message)
            await eventually(lambda: calls_len(outcomes, 1), interval=0.02)
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)
    return sent


class TestOneStatementHandlers:
    """R-ERR-3 for a handler whose whole effect is one statement (``Consumers.statement``): on
    PostgreSQL it runs with its inbox record as one statement, with what the inbox promises of
    any handler."""

    async def test_a_message_takes_effect_once_and_its_duplicate_changes_nothing(
        self, databases: DatabaseFactory, fresh_rabbit: RabbitNamespace
    ) -> None:
        ns = fresh_rabbit
        message = settings_message("once", version=5)
        async with database(databases) as (_, sm), statement_consumer(ns, sm) as outcomes:
            async with unit_of_work(sm) as session:
                session.add(Effect(company_id="once", version=0))
            async with publisher_broker(ns.amqp_url) as broker:
                await publish_raw(broker, ns, message)
                await eventually(lambda: calls_len(outcomes, 1), interval=0.02)
                assert await effect_version(sm, "once") == 5
                async with unit_of_work(sm) as session:  # changed since: a duplicate must not undo
                    await session.execute(
                        update(Effect).where(Effect.company_id == "once").values(version=7)
                    )
                await publish_raw(broker, ns, message)
                await eventually(lambda: calls_len(outcomes, 2), interval=0.02)
            assert outcomes == ["processed", "duplicate"]
            assert await effect_version(sm, "once") == 7
            assert await inbox_rows(sm, message.message_id) == 1

    async def test_on_postgresql_the_record_and_the_effect_are_one_statement(
        self, databases: DatabaseFactory, fresh_rabbit: RabbitNamespace
    ) -> None:
        if use_sqlite():
            pytest.skip("PostgreSQL only: on SQLite it is an ordinary transaction")
        ns = fresh_rabbit
        async with database(databases) as (engine, sm), statement_consumer(ns, sm) as outcomes:
            async with unit_of_work(sm) as session:
                session.add(Effect(company_id="one", version=0))
            sent = await statements_consuming(
                engine, ns, settings_message("one", version=3), outcomes
            )
            assert outcomes == ["processed"]
            assert await effect_version(sm, "one") == 3
        assert len(sent) == 1, sent
        assert "INSERT INTO inbox" in sent[0]
        assert "UPDATE effect" in sent[0]

    async def test_a_concurrent_duplicate_waits_for_the_first_and_changes_nothing(
        self, databases: DatabaseFactory, fresh_rabbit: RabbitNamespace
    ) -> None:
        """The first delivery's record is written but not committed (a transaction holds it)
        when the second arrives: the second waits; once the first commits it records nothing
        and applies nothing."""
        if use_sqlite():
            pytest.skip("PostgreSQL only: SQLite has one writer at a time")
        ns = fresh_rabbit
        message = settings_message("raced", version=4)
        async with database(databases) as (_, sm), statement_consumer(ns, sm) as outcomes:
            async with unit_of_work(sm) as session:
                session.add(Effect(company_id="raced", version=0))
            async with sm() as first, first.begin():
                await claim(first, Inbox, message.message_id, "registration:" + message.routing_key)
                async with publisher_broker(ns.amqp_url) as broker:
                    await publish_raw(broker, ns, message)
                    await asyncio.sleep(0.5)
                    assert outcomes == []  # waiting on the first one's record
            await eventually(lambda: calls_len(outcomes, 1), interval=0.02)
            assert outcomes == ["duplicate"]
            assert await effect_version(sm, "raced") == 0
            assert await inbox_rows(sm, message.message_id) == 1

    async def test_a_failing_statement_records_nothing_and_is_dead_lettered(
        self, databases: DatabaseFactory, fresh_rabbit: RabbitNamespace
    ) -> None:
        """The record and the effect commit together or not at all: a statement that fails
        (a NOT NULL column set to NULL) leaves no record, so every delivery tries it again,
        until RabbitMQ dead-letters it; the messages after it flow."""
        ns = fresh_rabbit
        poison = settings_message("poison", version=2)
        async with database(databases) as (_, sm), statement_consumer(ns, sm) as outcomes:
            async with unit_of_work(sm) as session:
                session.add_all(
                    [Effect(company_id="poison", version=0), Effect(company_id="ok", version=0)]
                )
            async with publisher_broker(ns.amqp_url) as broker:
                await publish_raw(broker, ns, poison)
                await publish_raw(broker, ns, settings_message("ok", version=6))
                body = await dead_lettered_body(
                    ns.amqp_url, ns.topology.dead_letter_queue(REGISTRATION).name
                )
                await eventually(lambda: effect_version_is(sm, "ok", 6), interval=0.02)
            assert b'"poison"' in body
            assert outcomes.count("failed") >= ns.topology.delivery_limit
            assert await effect_version(sm, "poison") == 0
            assert await inbox_rows(sm, poison.message_id) == 0


class TestKeptNewest:
    """R-ERR-3 for a read model kept by ``keep_newest``: on PostgreSQL the upsert and the inbox
    record are one statement, not gated on the record, and what a read model promises holds:
    the newest version wins whatever the order, and a duplicate changes nothing."""

    async def test_any_order_keeps_the_newest_and_a_late_duplicate_changes_nothing(
        self, databases: DatabaseFactory, fresh_rabbit: RabbitNamespace
    ) -> None:
        ns = fresh_rabbit
        outcomes: list[str] = []
        consumers = Consumers(REGISTRATION)
        consumers.observers.append(lambda _key, outcome: outcomes.append(outcome))
        follow_company_settings(consumers, CompanyReplica)
        third = messages.company_settings_changed(company="kept", version=3, zoom_enabled=True)
        async with database(databases) as (_, sm), bound(consumers, ns, sm):
            async with publisher_broker(ns.amqp_url) as broker:
                for message in (
                    third,
                    messages.company_settings_changed(company="kept", version=2),
                    messages.company_settings_changed(
                        company="kept", version=5, training_module_enabled=False
                    ),
                    third,  # a duplicate, after a newer version
                ):
                    await publish_raw(broker, ns, message)
                    arrived = functools.partial(calls_len, outcomes, len(outcomes) + 1)
                    await eventually(arrived, interval=0.02)
            async with sm() as session:
                row = await session.get(CompanyReplica, "kept")
            assert outcomes == ["processed", "processed", "processed", "duplicate"]
            assert row is not None
            assert (row.version, row.zoom_enabled, row.training_module_enabled) == (5, False, False)
            assert await inbox_rows(sm, third.message_id) == 1

    async def test_on_postgresql_the_record_and_the_upsert_are_one_statement(
        self, databases: DatabaseFactory, fresh_rabbit: RabbitNamespace
    ) -> None:
        if use_sqlite():
            pytest.skip("PostgreSQL only: on SQLite it is an ordinary transaction")
        ns = fresh_rabbit
        outcomes: list[str] = []
        consumers = Consumers(REGISTRATION)
        consumers.observers.append(lambda _key, outcome: outcomes.append(outcome))
        follow_company_settings(consumers, CompanyReplica)
        async with database(databases) as (engine, sm), bound(consumers, ns, sm):
            sent = await statements_consuming(
                engine, ns, settings_message("one-upsert", version=4), outcomes
            )
            async with sm() as session:
                row = await session.get(CompanyReplica, "one-upsert")
        assert outcomes == ["processed"]
        assert row is not None
        assert row.version == 4
        assert len(sent) == 1, sent
        assert "INSERT INTO inbox" in sent[0]
        assert "INSERT INTO company_replica" in sent[0]
        assert "ON CONFLICT" in sent[0]


async def effect_version_is(sm: async_sessionmaker[AsyncSession], company: str, n: int) -> bool:
    return await effect_version(sm, company) == n


class TestHousekeeping:
    """R-ERR-3 over time: inbox rows are pruned only once no duplicate can still arrive, by the
    relay's housekeeping that also prunes sent outbox rows."""

    async def test_old_processed_inbox_rows_and_sent_outbox_rows_are_pruned(
        self, databases: DatabaseFactory, fresh_rabbit: RabbitNamespace
    ) -> None:
        now = dt.datetime.now(dt.UTC)
        async with database(databases) as (_, sm), publisher_broker(fresh_rabbit.amqp_url) as b:
            old, recent = uuid.uuid4(), uuid.uuid4()
            async with unit_of_work(sm) as session:
                session.add(
                    Inbox(message_id=old, consumer="c", processed_at=now - dt.timedelta(days=15))
                )
                session.add(
                    Inbox(message_id=recent, consumer="c", processed_at=now - dt.timedelta(days=13))
                )
                for company in ("sent-old", "sent-new"):
                    add_message(session, Outbox, settings_message(company))
                await session.flush()
                rows = (await session.scalars(select(Outbox).order_by(Outbox.id))).all()
                rows[0].sent_at = now - dt.timedelta(days=8)
                rows[1].sent_at = now - dt.timedelta(days=1)
                add_message(session, Outbox, settings_message("never-sent"))
            relay = OutboxRelay(
                sm,
                Outbox,
                b,
                fresh_rabbit.topology.exchange,
                inbox_model=Inbox,
                inbox_retention=dt.timedelta(days=14),
            )
            assert await relay.prune(now) == (1, 1)
            async with sm() as session:
                kept_inbox = set((await session.scalars(select(Inbox.message_id))).all())
                kept_outbox = (await session.scalars(select(Outbox.payload))).all()
            assert kept_inbox == {recent}
            assert sorted(p["company_id"] for p in kept_outbox) == ["never-sent", "sent-new"]
            assert await relay.prune(now) == (0, 0)  # idempotent

    async def test_a_duplicate_within_the_retention_is_still_absorbed_after_pruning(
        self, databases: DatabaseFactory, fresh_rabbit: RabbitNamespace
    ) -> None:
        ns = fresh_rabbit
        message = settings_message("dup-after-prune")
        async with database(databases) as (_, sm), consumer(ns, sm) as calls:
            async with publisher_broker(ns.amqp_url) as broker:
                relay = OutboxRelay(sm, Outbox, broker, ns.topology.exchange, inbox_model=Inbox)

                async def publish() -> None:
                    await broker.publish(
                        message.model_dump(mode="json"),
                        exchange=ns.topology.exchange,
                        routing_key=message.routing_key,
                        persist=True,
                    )

                await publish()
                await eventually(lambda: calls_count(calls, "outcome:processed", 1), interval=0.05)
                assert await relay.prune() == (0, 0)  # processed a moment ago: kept
                await publish()  # the same message again
                await eventually(lambda: calls_count(calls, "outcome:duplicate", 1), interval=0.05)
            assert await effects(sm, "dup-after-prune") == 1

    def test_inbox_retention_is_configurable_and_at_least_a_day(self) -> None:
        assert ServiceSettings(inbox_retention_days=30).inbox_retention_days == 30
        assert ServiceSettings().inbox_retention_days > 7  # past the outbox's own week
        with pytest.raises(ValidationError):
            ServiceSettings(inbox_retention_days=0.5)


class TestTopology:
    async def test_declare_is_idempotent_and_uses_quorum_queues(
        self, fresh_rabbit: RabbitNamespace
    ) -> None:
        ns = fresh_rabbit
        async with publisher_broker(ns.amqp_url) as broker:
            await ns.topology.declare(broker)
            await ns.topology.declare(broker)  # second time: no PRECONDITION_FAILED
        connection = await aio_pika.connect(ns.amqp_url)
        async with connection:
            channel = await connection.channel()
            name = ns.topology.queue_name(CATALOG, c.MeetingCreated)
            queue = await channel.declare_queue(name, passive=True)
            assert queue.name == name

    async def test_an_optional_services_queues_are_declared_by_itself_only(
        self, fresh_rabbit: RabbitNamespace
    ) -> None:
        """A deployment without integrations queues nothing for it: the services it always has
        do not declare its queues (they filled up while it was not deployed); it declares them
        at its first start."""
        ns = fresh_rabbit
        topology = ns.topology
        theirs = [
            topology.queue_name(INTEGRATIONS, c.EnrollmentChanged),
            topology.dead_letter_queue(INTEGRATIONS).name,
        ]
        async with publisher_broker(ns.amqp_url) as broker:
            for service in (CATALOG, REGISTRATION, ZOOM_BRIDGE):
                await topology.declare(broker, service)
            assert [await queue_exists(ns, name) for name in topology.all_queue_names()] == [
                not name.startswith(f"{ns.queue_prefix}{INTEGRATIONS}.")
                for name in topology.all_queue_names()
            ]
            await topology.declare(broker, INTEGRATIONS)
            assert [await queue_exists(ns, name) for name in theirs] == [True, True]

    def test_queue_arguments(self) -> None:
        topology = Topology(exchange_name="ex", queue_prefix="p.", delivery_limit=3)
        queue = topology.queue(REGISTRATION, c.DayScheduled)
        assert queue.name == "p.registration.catalog.day.scheduled"
        assert queue.arguments["x-queue-type"] == "quorum"
        assert queue.arguments["x-delivery-limit"] == 3
        assert queue.arguments["x-dead-letter-exchange"] == "ex.dlx"


async def queue_exists(ns: RabbitNamespace, name: str) -> bool:
    connection = await aio_pika.connect(ns.amqp_url)
    async with connection:
        channel = await connection.channel()
        try:
            await channel.declare_queue(name, passive=True)
        except aio_pika.exceptions.ChannelNotFoundEntity:
            return False
        return True


async def effects_is(sm: async_sessionmaker[AsyncSession], company: str, n: int) -> bool:
    return await effects(sm, company) == n


async def calls_count(calls: list[str], company: str, n: int) -> bool:
    return calls.count(company) >= n


async def all_effects(sm: async_sessionmaker[AsyncSession], prefix: str, n: int) -> bool:
    async with sm() as session:
        found = await session.scalar(
            select(func.count(func.distinct(Effect.company_id))).where(
                Effect.company_id.startswith(prefix)
            )
        )
    return found == n


async def claims_made(relay: CountingClaims, n: int) -> bool:
    return len(relay.claims) >= n


async def none_unsent(sm: async_sessionmaker[AsyncSession]) -> bool:
    return await unsent(sm) == 0


async def calls_len(calls: list[str], n: int) -> bool:
    return len(calls) >= n


async def dead_lettered_body(url: str, queue_name: str, timeout: float = 30.0) -> bytes:
    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel()
        queue = await channel.declare_queue(queue_name, passive=True)
        message = await eventually(
            lambda: queue.get(fail=False, no_ack=True),
            lambda got: got is not None,
            timeout=timeout,
            interval=0.1,
            what=f"a message dead-lettered into {queue_name}",
        )
        assert message is not None
        return message.body


@pytest.mark.parametrize("level", ["INFO", "DEBUG"])
async def test_a_consumed_message_logs_received_and_processed_only_at_debug(
    fresh_rabbit: RabbitNamespace, level: str
) -> None:
    """Every message's "Received"/"Processed" lines (FastStream's) only at LOG_LEVEL=DEBUG, as
    HTTP requests have no access log: at INFO a storm's consumers wrote two lines a message.
    A handler that fails is logged as an error at either level."""
    root = logging.getLogger()
    before = (root.level, list(root.handlers))
    configure_logging("svc-under-test", level, json=True)
    [handler] = root.handlers
    assert isinstance(handler, logging.StreamHandler)
    buffer = io.StringIO()
    handler.setStream(buffer)
    settings = ServiceSettings(amqp_url=fresh_rabbit.amqp_url, service_name="svc-under-test")
    broker = make_broker(settings)
    done: asyncio.Queue[str] = asyncio.Queue()
    queue = RabbitQueue(f"{fresh_rabbit.queue_prefix}log-probe", auto_delete=True)

    @broker.subscriber(queue)
    async def probe(body: dict[str, str]) -> None:
        done.put_nowait(body["name"])
        if body["name"] == "fails":
            raise RuntimeError("the handler failed")

    await broker.start()
    try:
        for name in ("works", "fails"):
            await broker.publish({"name": name}, queue=queue)
            assert await asyncio.wait_for(done.get(), timeout=10) == name
        await asyncio.sleep(0.2)  # the failure's log line follows the handler
    finally:
        await broker.stop()
        root.setLevel(before[0])
        root.handlers[:] = before[1]
    logged = [json.loads(line) for line in buffer.getvalue().splitlines() if line.strip()]
    events = [(line["event"], line["level"]) for line in logged]
    lifecycle = [e for e in events if e[0] in ("Received", "Processed")]
    assert lifecycle == (
        [] if level == "INFO" else [("Received", "debug"), ("Processed", "debug")] * 2
    )
    assert ("RuntimeError: the handler failed", "error") in events


async def test_a_relay_that_meets_its_database_away_warns_and_an_unexpected_error_is_an_error(
    databases: DatabaseFactory, fresh_rabbit: RabbitNamespace, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The relay keeps going whatever its claim meets. The database restarting (a connection
    closed under it) is a warning without a traceback: every failover logged an error with
    one, in each service. Anything else stays an error with its traceback."""
    root = logging.getLogger()
    before = (root.level, list(root.handlers))
    configure_logging("svc-under-test", "INFO", json=True)
    [handler] = root.handlers
    assert isinstance(handler, logging.StreamHandler)
    buffer = io.StringIO()
    handler.setStream(buffer)
    failures: list[Exception] = [
        OperationalError("UPDATE outbox ...", {}, ConnectionResetError("connection is closed")),
        RuntimeError("a bug in the relay"),
    ]
    async with database(databases) as (_, sm), publisher_broker(fresh_rabbit.amqp_url) as b:
        relay = OutboxRelay(sm, Outbox, b, fresh_rabbit.topology.exchange, poll_interval=0.05)

        async def failing() -> int:
            if failures:
                raise failures.pop(0)
            await relay.stop()
            return 0

        monkeypatch.setattr(relay, "relay_once", failing)
        try:
            await asyncio.wait_for(relay.run(), timeout=10)
        finally:
            root.setLevel(before[0])
            root.handlers[:] = before[1]
    logged = [json.loads(line) for line in buffer.getvalue().splitlines() if line.strip()]
    relay_lines = [line for line in logged if str(line["event"]).startswith("outbox_relay")]
    assert [(line["event"], line["level"]) for line in relay_lines] == [
        ("outbox_relay_database_unavailable", "warning"),
        ("outbox_relay_error", "error"),
    ]
    assert relay_lines[0]["error"] == "OperationalError"
    assert "exception" not in relay_lines[0]
    assert "a bug in the relay" in relay_lines[1]["exception"]
