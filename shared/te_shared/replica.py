"""Read models built from another service's messages: keep the newest version, ignore stale ones."""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession


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
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    row = {**key, **values, "version": version}
    stmt = insert(model).values(**row)
    table = model.__table__
    stmt = stmt.on_conflict_do_update(
        index_elements=list(key),
        set_={name: stmt.excluded[name] for name in [*values, "version"]},
        where=table.c.version < stmt.excluded.version,
    )
    result = await session.execute(stmt)
    return bool(getattr(result, "rowcount", 0))
