"""Idempotent consumers: a message's effect and its ``message_id`` commit in one transaction.

:class:`Consumers` collects a service's message handlers; :meth:`Consumers.bind` subscribes each
to its quorum queue. For every delivery the wrapper opens a transaction, records
``(message_id, consumer)`` in the ``inbox`` table (skipping the handler if it is already there),
runs the handler and commits. A handler that raises rolls everything back and the delivery is
nacked and requeued; after the queue's delivery limit RabbitMQ dead-letters it. While the
database is away (a restart, a failover) the delivery is held and the transaction retried with
backoff instead, for up to :data:`TRANSIENT_RETRY_SECONDS`, so an outage never uses up a good
message's deliveries. A body that does
not validate against its contract is rejected at once (dead-lettered without retries).

A handler whose whole effect is one ``UPDATE`` or ``DELETE`` can say so
(:meth:`Consumers.statement`): on PostgreSQL its statement and the inbox record then run as one
statement in autocommit (the record a data-modifying ``WITH``, the statement gated on it), one
round trip instead of four (``BEGIN``, the record, the statement, ``COMMIT``), with the same
outcome: both take effect or neither, and a duplicate changes nothing. A statement that changes
nothing when run twice (an upsert that keeps the newest version,
:func:`te_shared.replica.keep_newest`) may be any statement, ``INSERT ... ON CONFLICT``
included: it runs beside the record, not gated on it (``gated=False``).
"""

from __future__ import annotations

import datetime as dt
import functools
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import structlog
from faststream import AckPolicy, ContextRepo
from faststream.exceptions import RejectMessage
from faststream.rabbit import RabbitBroker
from faststream.rabbit.annotations import RabbitMessage
from pydantic import ValidationError
from sqlalchemy import String, Table, Uuid, bindparam, exists, func, insert, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column

from te_shared.contracts import Message
from te_shared.db import UTCDateTime, alone, utcnow
from te_shared.errors import unique_violation, while_database_away
from te_shared.logging import correlation_id_var, get_logger
from te_shared.topology import Topology

log = get_logger(__name__)

M = TypeVar("M", bound=Message)

#: How long a delivery is held and retried while the database is away before it is nacked
#: (and counts against the queue's delivery limit).
TRANSIENT_RETRY_SECONDS = 60.0
Handler = Callable[[AsyncSession, Any], Awaitable[None]]
#: A handler whose whole effect is one ``UPDATE`` or ``DELETE`` (:meth:`Consumers.statement`):
#: the statement for a message, and its parameters
StatementHandler = Callable[[Any], tuple[Any, dict[str, Any]]]


class InboxRecordMixin:
    __tablename__ = "inbox"

    message_id: Mapped[uuid.UUID] = mapped_column(Uuid(), primary_key=True)
    consumer: Mapped[str] = mapped_column(String(200), primary_key=True)
    processed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


@functools.cache
def _claim_statement(table: Table, dialect: str) -> Any:
    """The inbox insert of :func:`claim`, built once per table and dialect (every value a bind
    parameter): building it for every delivery cost more CPU than running it. On the table, not
    the mapped class: the ORM would take the parameters for a bulk insert, which reports no
    row count."""
    values: dict[str, Any] = {
        "message_id": bindparam("message_id"),
        "consumer": bindparam("consumer"),
        "processed_at": bindparam("processed_at"),
    }
    if dialect == "postgresql":
        return pg_insert(table).values(**values).on_conflict_do_nothing()
    if dialect == "sqlite":
        return sqlite_insert(table).values(**values).on_conflict_do_nothing()
    return insert(table).values(**values)  # pragma: no cover


async def claim(
    session: AsyncSession, model: type[InboxRecordMixin], message_id: uuid.UUID, consumer: str
) -> bool:
    """Record the message as processed by ``consumer``; False if it already was.

    On PostgreSQL a concurrent duplicate waits for the first transaction and then sees the row.
    """
    table: Table = model.__table__  # type: ignore[attr-defined]
    stmt = _claim_statement(table, session.get_bind().dialect.name)
    params = {"message_id": message_id, "consumer": consumer, "processed_at": utcnow()}
    result = await session.execute(stmt, params)
    return bool(getattr(result, "rowcount", 0) == 1)


#: the bind names of the inbox record in a one-statement handler's statement (its own must differ)
_RECORD_BINDS = ("inbox_message_id", "inbox_consumer", "inbox_processed_at")


@functools.lru_cache(maxsize=256)
def _one_statement(effect: Any, table: Table, gated: bool = True) -> Any:
    """``effect`` (an ``UPDATE`` or ``DELETE``) and the inbox record of its message as one
    PostgreSQL statement: the record is inserted unless already there, the effect runs only if
    it was (a data-modifying ``WITH`` sees what the one before it returned), and the statement
    returns how many records it inserted: 1, or 0 for a duplicate. A concurrent duplicate waits
    for the first statement's record and then inserts none, as :func:`claim` does. Not
    ``gated``, the effect (any statement that changes nothing when run twice) runs either way.
    Built once per effect statement, which should be built once too (a bounded cache: one
    built per message would work, only slower)."""
    columns = ("message_id", "consumer", "processed_at")
    values: dict[str, Any] = {
        column: bindparam(name) for column, name in zip(columns, _RECORD_BINDS, strict=True)
    }
    record = (
        pg_insert(table)
        .values(**values)
        .on_conflict_do_nothing()
        .returning(table.c.message_id)
        .cte("inbox_record")
    )
    if gated:
        effect = effect.where(exists(select(record.c.message_id)))
    return select(func.count()).select_from(record).add_cte(effect.cte("effect"))


@dataclass
class Consumers:
    """A service's message handlers, each made idempotent through the inbox."""

    service: str
    handlers: dict[type[Message], Handler] = field(default_factory=dict)
    #: the handlers that are one statement (:meth:`statement`), also in :attr:`handlers`
    statements: dict[type[Message], StatementHandler] = field(default_factory=dict)
    #: those of them that run beside the inbox record, not gated on it (``gated=False``)
    ungated: set[type[Message]] = field(default_factory=set)
    #: Called with (routing key, outcome) per delivery: processed, duplicate, rejected, failed.
    observers: list[Callable[[str, str], None]] = field(default_factory=list)

    def handler(
        self, message: type[M]
    ) -> Callable[
        [Callable[[AsyncSession, M], Awaitable[None]]], Callable[[AsyncSession, M], Awaitable[None]]
    ]:
        def register(
            fn: Callable[[AsyncSession, M], Awaitable[None]],
        ) -> Callable[[AsyncSession, M], Awaitable[None]]:
            if message in self.handlers:
                raise ValueError(f"{message.__name__} already has a handler in {self.service}")
            self.handlers[message] = fn
            return fn

        return register

    def statement(
        self,
        message: type[M],
        *,
        gated: bool = True,
        in_transaction: Callable[[AsyncSession, M], Awaitable[None]] | None = None,
    ) -> Callable[
        [Callable[[M], tuple[Any, dict[str, Any]]]], Callable[[M], tuple[Any, dict[str, Any]]]
    ]:
        """Register a handler whose whole effect is one ``UPDATE`` or ``DELETE``: it returns the
        statement for a message and its parameters, and does nothing else. On PostgreSQL the
        statement runs with the message's inbox record as one statement in autocommit (one
        round trip; no session, so it writes no outbox row and wakes no commit hook); elsewhere
        in a transaction after :func:`claim`, as ``in_transaction`` (by default: the same
        statement). Its bind names must not be the record's (``inbox_message_id``,
        ``inbox_consumer``, ``inbox_processed_at``).

        ``gated=False``: the statement changes nothing when it runs twice (a duplicate of a
        message that keeps the newest version is not newer than itself), so it runs beside the
        record instead of only when the record is new, and may be any statement, an
        ``INSERT ... ON CONFLICT`` too."""

        def register(
            fn: Callable[[M], tuple[Any, dict[str, Any]]],
        ) -> Callable[[M], tuple[Any, dict[str, Any]]]:
            async def in_a_transaction(session: AsyncSession, msg: M) -> None:
                statement, params = fn(msg)
                await session.execute(statement, params)

            self.handler(message)(in_transaction or in_a_transaction)
            self.statements[message] = fn
            if not gated:
                self.ungated.add(message)
            return fn

        return register

    def _observe(self, routing_key: str, outcome: str) -> None:
        for observer in self.observers:
            observer(routing_key, outcome)

    def bind(
        self,
        broker: RabbitBroker,
        topology: Topology,
        sessionmaker: Callable[[], async_sessionmaker[AsyncSession]],
        inbox_model: type[InboxRecordMixin],
        after_commit: Callable[[AsyncSession], None] = lambda _: None,
        observe: Callable[[str, str], None] | None = None,
    ) -> None:
        """Subscribe every handler to its queue. ``sessionmaker`` is read at delivery time;
        ``observe`` (like :attr:`observers`, but for this binding only) sees every outcome."""

        def observe_all(routing_key: str, outcome: str) -> None:
            self._observe(routing_key, outcome)
            if observe is not None:
                observe(routing_key, outcome)

        for message_type, fn in self.handlers.items():
            queue = topology.queue(self.service, message_type)
            consumer_name = f"{self.service}:{message_type.routing_key}"
            subscriber = broker.subscriber(
                queue,
                exchange=topology.exchange,
                ack_policy=AckPolicy.NACK_ON_ERROR,
                title=f"{self.service}/{message_type.routing_key}",
                description=(message_type.__doc__ or message_type.__name__).strip(),
            )
            consume = _make_consumer(
                message_type,
                fn,
                consumer_name,
                sessionmaker,
                inbox_model,
                after_commit,
                observe_all,
                self.statements.get(message_type),
                gated=message_type not in self.ungated,
            )
            subscriber(_with_the_message_from(broker.context, consume))


def _with_the_message_from(
    context: ContextRepo, consume: Callable[[RabbitMessage], Awaitable[None]]
) -> Callable[[], Awaitable[None]]:
    """``consume`` as FastStream's handler, taking the delivery from the broker's context
    itself. A parameter FastStream injects (``message: RabbitMessage``, a ``Context`` field) is
    resolved by FastDepends with a synchronous call in a worker thread for every message: a
    thread hand-off each way, which cost a consumer half its CPU (a FastStream handler that
    only counts messages: 490-550 us a message with it, 240-260 us without) and its latency
    on every hop between services."""

    async def handler() -> None:
        await consume(context.get_local("message"))

    handler.__name__ = handler.__qualname__ = consume.__name__
    return handler


def validation_summary(exc: ValidationError, limit: int = 20) -> list[dict[str, str]]:
    """Where and why a body failed validation, without the values (``str(exc)`` quotes the
    input, e.g. a person's email)."""
    return [
        {"loc": ".".join(str(part) for part in err["loc"]), "type": err["type"]}
        for err in exc.errors(include_input=False, include_url=False, include_context=False)[:limit]
    ]


def _make_consumer(
    message_type: type[Message],
    fn: Handler,
    consumer_name: str,
    sessionmaker: Callable[[], async_sessionmaker[AsyncSession]],
    inbox_model: type[InboxRecordMixin],
    after_commit: Callable[[AsyncSession], None],
    observe: Callable[[str, str], None],
    one_statement: StatementHandler | None = None,
    *,
    gated: bool = True,
) -> Callable[[RabbitMessage], Awaitable[None]]:
    key = message_type.routing_key

    def duplicate(parsed: Message) -> str:
        log.info(
            "message_duplicate_skipped", consumer=consumer_name, message_id=str(parsed.message_id)
        )
        return "duplicate"

    async def _process(parsed: Message) -> str:
        maker = sessionmaker()
        bind = maker.kw.get("bind")
        if (
            one_statement is not None
            and isinstance(bind, AsyncEngine)
            and bind.dialect.name == "postgresql"
        ):
            effect, params = one_statement(parsed)
            record = dict(
                zip(_RECORD_BINDS, (parsed.message_id, consumer_name, utcnow()), strict=True)
            )
            table: Table = inbox_model.__table__  # type: ignore[attr-defined]
            rows = await alone(maker, _one_statement(effect, table, gated), {**params, **record})
            return "processed" if rows[0][0] else duplicate(parsed)
        async with maker() as session:
            async with session.begin():
                if not await claim(session, inbox_model, parsed.message_id, consumer_name):
                    return duplicate(parsed)
                await fn(session, parsed)
            after_commit(session)
        return "processed"

    async def _process_again_after_a_race(parsed: Message) -> str:
        """A handler that reads a row, finds it missing and inserts it can lose that race to
        another transaction (a handler of another message, the bridge's worker) that
        inserted it meanwhile: the duplicate key rolls it back. Run once more, it finds the
        row. Only once: a second duplicate is no race, and the error stands."""
        try:
            return await _process(parsed)
        except IntegrityError as exc:
            if not unique_violation(exc):
                raise
            log.info(
                "message_retried_after_insert_race",
                consumer=consumer_name,
                message_id=str(parsed.message_id),
            )
            return await _process(parsed)

    async def consume(message: RabbitMessage) -> None:
        token = correlation_id_var.set(message.correlation_id)
        outcome = "failed"
        try:
            try:
                parsed = message_type.model_validate_json(message.body)
            except ValidationError as exc:
                log.error(
                    "message_rejected_invalid",
                    consumer=consumer_name,
                    message_id=message.message_id,
                    errors=validation_summary(exc),
                )
                outcome = "rejected"
                raise RejectMessage from exc
            structlog.contextvars.bind_contextvars(company_id=parsed.company_id)
            # the database is restarting (or rolled this transaction back for another): keep
            # the message and run it again, so a database outage does not use up its
            # deliveries and dead-letter a message that is fine (R-ERR-2)
            outcome = await while_database_away(
                lambda: _process_again_after_a_race(parsed),
                budget_seconds=TRANSIENT_RETRY_SECONDS,
                what="message",
                consumer=consumer_name,
                message_id=str(parsed.message_id),
            )
        finally:
            observe(key, outcome)
            structlog.contextvars.unbind_contextvars("company_id")
            correlation_id_var.reset(token)

    consume.__name__ = f"consume_{message_type.__name__}"
    return consume
