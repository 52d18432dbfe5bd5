"""Read models built from another service's messages: keep the newest version, ignore stale ones."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Boolean, Integer, String, Table, bindparam
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from te_shared import contracts as c
from te_shared.inbox import Consumers

M = TypeVar("M", bound=c.Message)


async def upsert_if_newer(
    session: AsyncSession,
    model: Any,
    *,
    key: dict[str, Any],
    version: int,
    values: dict[str, Any],
) -> bool:
    """Insert the row, or update it only when ``version`` is newer than the stored one.

    One statement (``INSERT ... ON CONFLICT DO UPDATE ... WHERE version < excluded.version``), so
    concurrent and out-of-order deliveries converge on the newest version. Returns True when the
    row was written.
    """
    dialect = session.get_bind().dialect.name
    stmt = _newer_statement(model.__table__, tuple(key), tuple(values), dialect)
    result = await session.execute(stmt, {**key, **values, "version": version})
    return bool(getattr(result, "rowcount", 0))


@dataclass(frozen=True, slots=True)
class Newest:
    """The row a message keeps in a read model (:func:`upsert_if_newer`'s arguments)."""

    key: dict[str, Any]
    version: int
    values: dict[str, Any]


@functools.lru_cache(maxsize=128)
def _newer_statement(
    table: Table, key: tuple[str, ...], values: tuple[str, ...], dialect: str = "postgresql"
) -> Any:
    """:func:`upsert_if_newer`'s statement, every value bound by its column's name, built once
    per table, columns and dialect (on the table, not the mapped class: the ORM would take the
    parameters for a bulk insert, which reports no row count)."""
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    stmt = insert(table).values({name: bindparam(name) for name in (*key, *values, "version")})
    return stmt.on_conflict_do_update(
        index_elements=list(key),
        set_={name: stmt.excluded[name] for name in (*values, "version")},
        where=table.c.version < stmt.excluded.version,
    )


def keep_newest(
    consumers: Consumers, message: type[M], model: Any
) -> Callable[[Callable[[M], Newest]], Callable[[M], Newest]]:
    """Register a handler whose whole effect is the row it returns, kept in ``model`` unless a
    newer version is stored (:func:`upsert_if_newer`). On PostgreSQL the upsert and the
    message's inbox record are one statement in autocommit (one round trip, not four); the
    upsert needs no gate on the record, as a duplicate is not newer than itself
    (:meth:`Consumers.statement`, ``gated=False``). Elsewhere it runs in the inbox's
    transaction, as any handler."""

    def register(fn: Callable[[M], Newest]) -> Callable[[M], Newest]:
        table: Table = model.__table__

        def one_statement(msg: M) -> tuple[Any, dict[str, Any]]:
            row = fn(msg)
            statement = _newer_statement(table, tuple(row.key), tuple(row.values))
            return statement, {**row.key, **row.values, "version": row.version}

        async def in_a_transaction(session: AsyncSession, msg: M) -> None:
            row = fn(msg)
            await upsert_if_newer(
                session, model, key=row.key, version=row.version, values=row.values
            )

        consumers.statement(message, gated=False, in_transaction=in_a_transaction)(one_statement)
        return fn

    return register


async def tombstone_if_newer(
    session: AsyncSession,
    model: Any,
    *,
    key: dict[str, Any],
    version: int,
    values: dict[str, Any],
) -> bool:
    """Mark the row ``deleted`` unless a newer version is stored; when the row was never seen,
    insert a tombstone (with ``values`` for its required columns) so a late create stays out.

    One statement, like :func:`upsert_if_newer`; the model needs ``deleted`` and ``version``."""
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    stmt = insert(model).values(**key, **values, deleted=True, version=version)
    table = model.__table__
    stmt = stmt.on_conflict_do_update(
        index_elements=list(key),
        set_={"deleted": True, "version": stmt.excluded.version},
        where=table.c.version < stmt.excluded.version,
    )
    result = await session.execute(stmt)
    return bool(getattr(result, "rowcount", 0))


class CompanyReplicaMixin:
    """The company settings a consumer needs, as catalog last announced them.

    A service declares ``class CompanyReplica(CompanyReplicaMixin, Base)`` and calls
    :func:`follow_company_settings`."""

    __tablename__ = "company_replica"

    company_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    zoom_enabled: Mapped[bool] = mapped_column(Boolean())
    training_module_enabled: Mapped[bool] = mapped_column(Boolean())
    version: Mapped[int] = mapped_column(Integer())


def follow_company_settings(consumers: Consumers, model: type[CompanyReplicaMixin]) -> None:
    """Keep ``model`` up to date from ``CompanySettingsChanged`` (newest version wins)."""

    @keep_newest(consumers, c.CompanySettingsChanged, model)
    def on_company_settings(msg: c.CompanySettingsChanged) -> Newest:
        return Newest(
            key={"company_id": msg.company_id},
            version=msg.version,
            values={
                "zoom_enabled": msg.zoom_enabled,
                "training_module_enabled": msg.training_module_enabled,
            },
        )
