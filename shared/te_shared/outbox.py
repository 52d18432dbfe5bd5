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
import random
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from faststream.rabbit import RabbitBroker, RabbitExchange
from sqlalchemy import (
    JSON,
    BigInteger,
    Index,
    Integer,
    String,
    Text,
    Uuid,
    bindparam,
    delete,
    func,
    select,
    text,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, declared_attr, mapped_column

from te_shared.contracts import Message
from te_shared.db import UTCDateTime, alone, utcnow
from te_shared.inbox import InboxRecordMixin
from te_shared.logging import correlation_id_var, get_logger
from te_shared.observability import attach_trace_context, detach, inject_trace_context

log = get_logger(__name__)

_OUTBOX_DIRTY = "te_outbox_dirty"
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
    """Write ``message`` into the outbox in the session's current transaction."""
    record: Any = model  # a mapped subclass of the mixin
    session.add(record(**outbox_values(message)))
    mark_written(session)


def outbox_values(message: Message) -> dict[str, Any]:
    """The columns of ``message``'s outbox row (for a statement that inserts it itself, as a
    write done in one round trip does; then call :func:`mark_written`)."""
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
class _Claimed:
    id: int
    message_id: uuid.UUID
    routing_key: str
    payload: dict[str, Any]
    headers: dict[str, Any]
    attempts: int


@dataclass(frozen=True, slots=True)
class OutboxStats:
    backlog: int
    oldest_age_seconds: float


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
    ) -> None:
        self._sessionmaker = sessionmaker
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

    def wake(self) -> None:
        """Ask the relay to look at the outbox now instead of at its next poll."""
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self.run(), name="outbox-relay")

    async def stop(self, flush_timeout: float = 0.0) -> None:
        """Finish the batch in flight, then publish what is due for up to ``flush_timeout``."""
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            await self._task
            self._task = None
        if flush_timeout <= 0:
            return
        deadline = asyncio.get_running_loop().time() + flush_timeout
        with contextlib.suppress(Exception):
            while asyncio.get_running_loop().time() < deadline:
                remaining = deadline - asyncio.get_running_loop().time()
                if not await asyncio.wait_for(self.relay_once(), timeout=max(remaining, 0.1)):
                    break

    async def run(self) -> None:
        while not self._stopping:
            # cleared before the claim: a commit that wakes the relay from here on is looked at
            # by the next claim, whether this one saw its rows or not (cleared after an empty
            # claim, a wake-up that came in between was lost until the next poll)
            self._wake.clear()
            try:
                relayed = await self.relay_once()
                await self._maybe_prune()
            except Exception:  # keep relaying whatever happens; the database may be restarting
                log.exception("outbox_relay_error")
                relayed = 0
                await asyncio.sleep(self._poll_interval)
            if self._stopping or self._wake.is_set() or relayed >= self._batch_size:
                continue  # woken meanwhile, or a full batch: more may be due at once
            # a batch that was not full took every due row this process had committed when it
            # began: claiming again at once finds none (a statement per message in a quiet
            # hour, a third of a relayed sign-up's). Rows of other replicas, and rows put off
            # after a failed publish, come due by the poll, as before
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self._poll_interval)

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
        if not rows:
            return 0
        results = await asyncio.gather(*(self._publish(r) for r in rows), return_exceptions=True)
        now = utcnow()
        sent_ids = [r.id for r, res in zip(rows, results, strict=True) if res is None]
        model = self._model
        sent = {"ids": sent_ids, "at": now}
        if len(sent_ids) == len(rows):  # the common case: one statement, one round trip
            await alone(self._sessionmaker, self._mark_sent_statement, sent)
            self._count_published(rows)
            return len(rows)
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
        return len(rows)

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
