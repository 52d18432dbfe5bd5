"""Transactional outbox: messages are written in the caller's transaction, a relay publishes them.

A message is a row in the ``outbox`` table, added with :meth:`Outbox.add` inside the same database
transaction as the change it describes, so a rollback publishes nothing and a crash after commit
loses nothing. :class:`OutboxRelay` claims due rows with a short lease (``FOR UPDATE SKIP LOCKED``
on PostgreSQL, so several replicas share the work), publishes them concurrently with publisher
confirms, then marks them sent; a failed publish is retried with exponential backoff and jitter.
If a relay dies after publishing but before marking, the lease expires and the row is published
again: consumers absorb the duplicate through the inbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import math
import random
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
from faststream.rabbit import RabbitBroker, RabbitExchange
from sqlalchemy import (
    JSON,
    BigInteger,
    Index,
    Integer,
    String,
    Text,
    Uuid,
    any_,
    bindparam,
    delete,
    event,
    func,
    inspect,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, Session, declared_attr, mapped_column

from te_shared.contracts import Message
from te_shared.db import (
    DriverStatement,
    UTCDateTime,
    add_session_info,
    alone,
    alone_on_driver,
    utcnow,
)
from te_shared.errors import transient_database_error
from te_shared.inbox import InboxRecordMixin
from te_shared.logging import correlation_id_var, get_logger
from te_shared.observability import attach_trace_context, detach, inject_trace_context

log = get_logger(__name__)

_OUTBOX_DIRTY = "te_outbox_dirty"
#: in a session's ``info``: the relay its commits hand rows to, and the rows to hand
_RELAY = "te_outbox_relay"
_HANDED = "te_outbox_handed"
UNSENT = "sent_at IS NULL"


class OutboxRecordMixin:
    """Columns of the ``outbox`` table; a service declares ``class OutboxRecord(OutboxRecordMixin,
    Base)``. The table itself is created by :func:`te_shared.migrations.create_messaging_tables`."""

    __tablename__ = "outbox"

    @declared_attr.directive
    def __table_args__(cls) -> tuple[Any, ...]:
        # the relay's claim reads the unsent rows by due time (created by the migration,
        # declared here so the models describe the tables the migrations make)
        return (
            Index(
                "ix_outbox_unsent",
                "available_at",
                "id",
                postgresql_where=text(UNSENT),
                sqlite_where=text(UNSENT),
            ),
        )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    message_id: Mapped[uuid.UUID] = mapped_column(Uuid(), unique=True)
    routing_key: Mapped[str] = mapped_column(String(200))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON())
    headers: Mapped[dict[str, Any]] = mapped_column(JSON())
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    available_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    attempts: Mapped[int] = mapped_column(Integer(), default=0, server_default="0")
    last_error: Mapped[str | None] = mapped_column(Text(), nullable=True)


def add_message(session: AsyncSession, model: type[OutboxRecordMixin], message: Message) -> None:
    """Write ``message`` into the outbox in the session's current transaction.

    When this process's relay takes hand-overs from the session's sessionmaker
    (:meth:`OutboxRelay.hand_over_commits`), the row is written already leased to it and handed
    to it when the transaction commits: the relay publishes it without claiming it first. A
    process that dies before publishing it leaves the lease to run out, then any relay claims
    it. Past a batch in one transaction, rows go the ordinary way (due at once, claimed)."""
    values = outbox_values(message)
    relay: OutboxRelay | None = session.info.get(_RELAY)
    handed: list[_Handed] = session.info.setdefault(_HANDED, []) if relay is not None else []
    lease = relay.lease if relay is not None and len(handed) < relay.batch_size else None
    if lease is not None:
        values["available_at"] = values["created_at"] + lease
    record: Any = model(**values)  # a mapped subclass of the mixin
    session.add(record)
    if lease is not None:
        handed.append(_Handed(record, values))
    else:
        mark_written(session)


def outbox_values(message: Message) -> dict[str, Any]:
    """The columns of ``message``'s outbox row (for a statement that inserts it itself, as a
    write done in one round trip does; then call :func:`mark_written`, or, for a statement run
    alone on a driver connection, lease the row with :meth:`OutboxRelay.leased` and hand it
    over with :meth:`OutboxRelay.hand_written` once it is committed)."""
    now = utcnow()
    headers: dict[str, Any] = {"schema_version": message.schema_version}
    cid = correlation_id_var.get()
    if cid:
        headers["correlation_id"] = cid
    inject_trace_context(headers)  # traceparent: the trace continues when the relay publishes
    return {
        "message_id": message.message_id,
        "routing_key": message.routing_key,
        "payload": message.model_dump(mode="json"),
        "headers": headers,
        "created_at": now,
        "available_at": now,
        "attempts": 0,
    }


def mark_written(session: AsyncSession) -> None:
    """The session wrote outbox rows: the relay is woken once it commits."""
    session.info[_OUTBOX_DIRTY] = True


def take_dirty_flag(session: AsyncSession) -> bool:
    """True (once) when the session wrote outbox rows: the caller then wakes the relay."""
    return bool(session.info.pop(_OUTBOX_DIRTY, False))


@dataclass(frozen=True, slots=True)
class _Handed:
    """An outbox row written leased to this process's relay, and its values."""

    record: Any
    values: dict[str, Any]


@event.listens_for(Session, "after_commit")
def _hand_over(session: Session) -> None:
    """The transaction committed: its leased rows go to the relay. A row whose insert was
    undone (a savepoint rolled back, or an earlier transaction of this session) is transient
    again, with no identity: it was never committed and is not handed."""
    handed: list[_Handed] | None = session.info.pop(_HANDED, None)
    if not handed:
        return
    rows = []
    for item in handed:
        identity = inspect(item.record).identity
        if identity is None:
            continue
        rows.append(_Claimed.written(identity[0], item.values))
    if rows:
        session.info[_RELAY].hand(rows)


@dataclass(frozen=True, slots=True)
class _Claimed:
    id: int
    message_id: uuid.UUID
    routing_key: str
    payload: dict[str, Any]
    headers: dict[str, Any]
    attempts: int

    @classmethod
    def written(cls, row_id: int, values: dict[str, Any]) -> _Claimed:
        """A row just committed leased to this process's relay, from its values."""
        v = values
        return cls(row_id, v["message_id"], v["routing_key"], v["payload"], v["headers"], 0)


@dataclass(frozen=True, slots=True)
class OutboxStats:
    backlog: int
    oldest_age_seconds: float


#: how many batches of handed-over rows a relay holds at most (see :meth:`OutboxRelay.hand`)
HANDED_BATCHES = 10


def backoff_seconds(attempts: int, *, base: float = 0.5, cap: float = 60.0) -> float:
    """Exponential backoff with full jitter: uniform in [0, min(cap, base * 2**attempts)]."""
    return random.uniform(0, min(cap, base * (2 ** min(attempts, 30))))


class OutboxRelay:
    """Publishes outbox rows. Safe to run in several replicas at once."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        model: type[OutboxRecordMixin],
        broker: RabbitBroker,
        exchange: RabbitExchange,
        *,
        batch_size: int = 200,
        poll_interval: float = 0.5,
        lease_seconds: float = 30.0,
        publish_timeout: float = 10.0,
        max_backoff: float = 60.0,
        retention: dt.timedelta = dt.timedelta(days=7),
        inbox_model: type[InboxRecordMixin] | None = None,
        inbox_retention: dt.timedelta = dt.timedelta(days=14),
        expiring: Sequence[Any] = (),
        on_published: Callable[[str], None] | None = None,
        driver: Callable[[], asyncpg.Pool | None] = lambda: None,
        busy_timeout: float = 10.0,
    ) -> None:
        self._sessionmaker = sessionmaker
        #: the service's driver pool, when it has one: the rows' marking runs there
        self._driver = driver
        self._busy_timeout = busy_timeout
        self._model = model
        self._broker = broker
        self._exchange = exchange
        self._batch_size = batch_size
        self._poll_interval = poll_interval
        self._lease = dt.timedelta(seconds=lease_seconds)
        self._publish_timeout = publish_timeout
        self._max_backoff = max_backoff
        self._retention = retention
        self._inbox_model = inbox_model
        self._inbox_retention = inbox_retention
        #: tables whose rows carry ``expires_at`` (idempotency keys): pruned once past it
        self._expiring = tuple(expiring)
        self._on_published = on_published
        self._wake = asyncio.Event()
        #: a claim is wanted at once (rows were committed that were not handed over)
        self._claim_wanted = False
        #: rows committed leased to this relay, to publish without claiming them
        self._handed: list[_Claimed] = []
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._last_prune = utcnow()
        # built once: building them again for every batch cost more CPU than running them
        due = (
            select(model.id)
            .where(model.sent_at.is_(None), model.available_at <= bindparam("now"))
            .order_by(model.id)
            .limit(batch_size)
            .with_for_update(skip_locked=True)  # rendered only where supported (PostgreSQL)
        )
        self._claim_statement = (
            update(model)
            .where(model.id.in_(due.scalar_subquery()))
            .values(available_at=bindparam("until"))
            .returning(
                model.id,
                model.message_id,
                model.routing_key,
                model.payload,
                model.headers,
                model.attempts,
            )
        )
        self._mark_sent_statement = (
            update(model)
            .where(model.id.in_(bindparam("ids", expanding=True)))
            .values(sent_at=bindparam("at"))
        )

    @functools.cached_property
    def _mark_sent_driver(self) -> DriverStatement:
        """The marking for the driver pool, compiled once, when a pool first runs it (most
        services have none): ``= ANY`` of the ids, where an expanding ``IN`` would be rendered
        anew for each number of rows."""
        model = self._model
        return DriverStatement.of(
            update(model)
            .where(model.id == any_(bindparam("ids", type_=ARRAY(BigInteger()))))
            .values(sent_at=bindparam("at"))
        )

    @property
    def batch_size(self) -> int:
        return self._batch_size

    @property
    def lease(self) -> dt.timedelta:
        return self._lease

    def wake(self) -> None:
        """Ask the relay to look at the outbox now instead of at its next poll."""
        self._claim_wanted = True
        self._wake.set()

    def hand_over_commits(self) -> None:
        """From now on, messages :func:`add_message` writes in sessions of this relay's
        sessionmaker are leased to this relay and handed to it on commit: it publishes them
        without a claim (a statement, and on a quiet service a cold round trip, on the way of
        every message). Only the relay that publishes for this process may take them."""
        add_session_info(self._sessionmaker, _RELAY, self)

    def hand(self, rows: Sequence[_Claimed]) -> None:
        """Rows committed leased to this relay: publish them now. What it holds is bounded
        (:data:`HANDED_BATCHES` batches): while the broker is away commits go on handing rows
        over, and the oldest beyond the bound are let go of; they are in the outbox, where a
        claim finds them once their lease runs out."""
        self._handed.extend(rows)
        excess = len(self._handed) - HANDED_BATCHES * self._batch_size
        if excess > 0:
            del self._handed[:excess]
        self._wake.set()

    def leased(self, values: dict[str, Any]) -> dict[str, Any]:
        """:func:`outbox_values` of a row that a statement run alone (its own transaction, on a
        driver connection, outside any session) inserts, written leased to this relay: after
        the statement, :meth:`hand_written` gives it the row to publish without a claim. Should
        the process die first, the lease runs out and any relay claims the row."""
        return values | {"available_at": values["created_at"] + self._lease}

    def hand_written(self, row_id: int, values: dict[str, Any]) -> None:
        """The row :meth:`leased` gave ``values`` to is committed, with id ``row_id``: publish
        it now, as a session's hand-over does (:meth:`hand`)."""
        self.hand([_Claimed.written(row_id, values)])

    def start(self) -> None:
        self._task = asyncio.create_task(self.run(), name="outbox-relay")

    async def stop(self, flush_timeout: float = 0.0) -> None:
        """Finish the batch in flight and publish what was handed over, then publish what is
        due (handed over meanwhile, or claimed) for up to ``flush_timeout``."""
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            await self._task
            self._task = None
        if flush_timeout <= 0:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + flush_timeout
        with contextlib.suppress(Exception):
            while loop.time() < deadline:
                await asyncio.wait_for(self._deliver_handed(), max(deadline - loop.time(), 0.1))
                remaining = max(deadline - loop.time(), 0.1)
                if not await asyncio.wait_for(self.relay_once(), timeout=remaining):
                    break

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        claimed_at = -math.inf
        while not self._stopping:
            # cleared before the claim: a commit that wakes the relay from here on is looked at
            # by the next claim, whether this one saw its rows or not (cleared after an empty
            # claim, a wake-up that came in between was lost until the next poll)
            self._wake.clear()
            claim = self._claim_wanted or loop.time() - claimed_at >= self._poll_interval
            self._claim_wanted = False
            relayed = 0
            try:
                await self._deliver_handed()
                if claim:
                    claimed_at = loop.time()
                    relayed = await self.relay_once()
                    await self._maybe_prune()
            except Exception as exc:  # keep relaying whatever happens
                if transient_database_error(exc):
                    # restarting or failing over: nothing is lost, the next poll claims again;
                    # a warning, not an error with its traceback at every failover
                    log.warning("outbox_relay_database_unavailable", error=type(exc).__name__)
                else:
                    log.exception("outbox_relay_error")
                relayed = 0
                await asyncio.sleep(self._poll_interval)
            if relayed >= self._batch_size:  # a full batch: more may be due at once
                self._claim_wanted = True
                continue
            if self._stopping or self._wake.is_set():
                continue  # woken meanwhile
            # a batch that was not full took every due row this process had committed when it
            # began: claiming again at once finds none (a statement per message in a quiet
            # hour, a third of a relayed sign-up's). Rows of other replicas, rows put off after
            # a failed publish, and rows whose holder died with them leased come due by the
            # poll, which runs on time however many hand-overs keep the relay busy
            due_in = claimed_at + self._poll_interval - loop.time()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=max(due_in, 0.0))
        with contextlib.suppress(Exception):  # committed and handed: published before stopping
            await asyncio.wait_for(self._deliver_handed(), timeout=self._publish_timeout)

    async def _deliver_handed(self) -> None:
        """Publish the rows handed over, a batch at a time (they were committed leased to this
        relay: no claim)."""
        while self._handed:
            batch = self._handed[: self._batch_size]
            del self._handed[: self._batch_size]
            await self._deliver(batch)

    async def _claim(self) -> list[_Claimed]:
        """Lease a batch of due rows in one statement (``UPDATE ... RETURNING``), in one round
        trip: it is on the path of every message."""
        now = utcnow()
        claimed = await alone(
            self._sessionmaker, self._claim_statement, {"now": now, "until": now + self._lease}
        )
        rows = [_Claimed(*row) for row in claimed]
        rows.sort(key=lambda r: r.id)
        return rows

    async def relay_once(self) -> int:
        """Claim one batch, publish it with confirms, record the outcome. Returns rows handled."""
        rows = await self._claim()
        if rows:
            await self._deliver(rows)
        return len(rows)

    async def _deliver(self, rows: Sequence[_Claimed]) -> None:
        """Publish leased rows with confirms, then record the outcome: sent, or put off with
        backoff."""
        results = await asyncio.gather(*(self._publish(r) for r in rows), return_exceptions=True)
        now = utcnow()
        sent_ids = [r.id for r, res in zip(rows, results, strict=True) if res is None]
        model = self._model
        sent = {"ids": sent_ids, "at": now}
        if len(sent_ids) == len(rows):  # the common case: one statement, one round trip
            await self._mark_sent(sent)
            self._count_published(rows)
            return
        async with self._sessionmaker() as session, session.begin():
            if sent_ids:
                await session.execute(self._mark_sent_statement, sent)
            failures = 0
            for row, res in zip(rows, results, strict=True):
                if res is None:
                    continue
                failures += 1
                attempts = row.attempts + 1
                delay = backoff_seconds(attempts, cap=self._max_backoff)
                await session.execute(
                    update(model)
                    .where(model.id == row.id)
                    .values(
                        attempts=attempts,
                        available_at=now + dt.timedelta(seconds=delay),
                        last_error=repr(res)[:1000],
                    )
                    .execution_options(synchronize_session=False)
                )
            if failures:  # one line per batch, not per row: an outage must not flood the logs
                first = next(r for r in results if r is not None)
                log.warning(
                    "outbox_publish_failed",
                    failed=failures,
                    batch=len(rows),
                    error=repr(first)[:300],
                )
        self._count_published([r for r, res in zip(rows, results, strict=True) if res is None])

    async def _mark_sent(self, sent: dict[str, Any]) -> None:
        """The published rows marked sent: one statement, on the service's driver pool when it
        has one (through the engine it cost a seat-taking sign-up, whose ``EnrollmentChanged``
        it marks, a seventh of its CPU), else through the engine. A busy pool does not hold it
        up: the engine's connection then."""
        pool = self._driver()
        await alone_on_driver(
            pool,
            self._busy_timeout,
            self._sessionmaker,
            self._mark_sent_statement,
            sent,
            compiled=self._mark_sent_driver if pool is not None else None,
            engine_when_busy=True,
        )

    def _count_published(self, rows: Sequence[_Claimed]) -> None:
        if self._on_published is not None:  # counted once marked sent, so figures agree
            for row in rows:
                self._on_published(row.routing_key)

    async def _publish(self, row: _Claimed) -> None:
        headers = dict(row.headers)
        if "traceparent" not in headers:
            await self._send(row, headers)
            return
        token = attach_trace_context(headers)
        try:
            # the telemetry middleware (when tracing is on) writes the publish span's context
            headers.pop("traceparent", None)
            headers.pop("tracestate", None)
            await self._send(row, headers)
        finally:
            detach(token)

    async def _send(self, row: _Claimed, headers: dict[str, Any]) -> None:
        async with asyncio.timeout(self._publish_timeout):
            await self._broker.publish(
                row.payload,
                exchange=self._exchange,
                routing_key=row.routing_key,
                persist=True,
                mandatory=False,
                message_id=str(row.message_id),
                correlation_id=headers.get("correlation_id") or str(row.message_id),
                headers=headers,
                content_type="application/json",
                message_type=row.routing_key,
            )

    async def _maybe_prune(self) -> None:
        now = utcnow()
        if now - self._last_prune < dt.timedelta(minutes=10):
            return
        self._last_prune = now
        await self.prune(now)

    async def prune(self, now: dt.datetime | None = None) -> tuple[int, int]:
        """Housekeeping: delete outbox rows sent longer ago than the outbox retention, and inbox
        rows processed longer ago than the inbox retention (by then no duplicate of their message
        can still arrive: duplicates come from a relay retrying within its lease, or RabbitMQ
        redelivering an unacknowledged delivery at once). Returns (outbox, inbox) rows deleted."""
        now = now or utcnow()
        model = self._model
        async with self._sessionmaker() as session, session.begin():
            outbox = await session.execute(
                delete(model).where(
                    model.sent_at.is_not(None), model.sent_at < now - self._retention
                )
            )
            inbox_deleted = 0
            if self._inbox_model is not None:
                inbox = await session.execute(
                    delete(self._inbox_model).where(
                        self._inbox_model.processed_at < now - self._inbox_retention
                    )
                )
                inbox_deleted = int(getattr(inbox, "rowcount", 0) or 0)
            for expiring in self._expiring:
                await session.execute(delete(expiring).where(expiring.expires_at < now))
        deleted = (int(getattr(outbox, "rowcount", 0) or 0), inbox_deleted)
        if any(deleted):
            log.info("housekeeping_pruned", outbox=deleted[0], inbox=deleted[1])
        return deleted

    async def stats(self) -> OutboxStats:
        model = self._model
        async with self._sessionmaker() as session:
            count, oldest = (
                await session.execute(
                    select(func.count(model.id), func.min(model.created_at)).where(
                        model.sent_at.is_(None)
                    )
                )
            ).one()
        age = 0.0
        if oldest is not None:
            if oldest.tzinfo is None:
                oldest = oldest.replace(tzinfo=dt.UTC)
            age = max(0.0, (utcnow() - oldest).total_seconds())
        return OutboxStats(backlog=int(count), oldest_age_seconds=age)
