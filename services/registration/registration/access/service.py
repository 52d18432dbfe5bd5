"""Access: the right of a user to see an event."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from registration.models import Access, KnownUser, OutboxRecord
from te_shared import contracts as c
from te_shared.db import is_postgres, utcnow
from te_shared.outbox import add_message


async def has_access(
    session: AsyncSession, company_id: str, event_id: uuid.UUID, user: str
) -> bool:
    return (
        await session.scalar(
            select(Access.user_id).where(
                Access.company_id == company_id,
                Access.event_id == event_id,
                Access.user_id == user,
            )
        )
    ) is not None


async def grant_access(
    session: AsyncSession,
    company_id: str,
    event_id: uuid.UUID,
    user_ids: Sequence[str],
    *,
    by: str,
) -> list[str]:
    """Grant access (idempotent); publish ``AccessGranted`` for the users who lacked it."""
    wanted = sorted({u for u in user_ids if u})
    if not wanted:
        return []
    insert = pg_insert if is_postgres(session) else sqlite_insert
    now = utcnow()
    stmt = (
        insert(Access)
        .values(
            [
                {
                    "company_id": company_id,
                    "event_id": event_id,
                    "user_id": u,
                    "granted_at": now,
                    "granted_by": by,
                }
                for u in wanted
            ]
        )
        .on_conflict_do_nothing()
        .returning(Access.user_id)
    )
    added = sorted((await session.scalars(stmt)).all())
    if added:
        add_message(
            session,
            OutboxRecord,
            c.AccessGranted(company_id=company_id, event_id=event_id, user_ids=added),
        )
    return added


async def remember_user(session: AsyncSession, company_id: str, user_id: str, email: str) -> None:
    """Remember a user's email so an import may name them by email."""
    insert = pg_insert if is_postgres(session) else sqlite_insert
    stmt = insert(KnownUser).values(
        company_id=company_id, email=email.strip().lower(), user_id=user_id
    )
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=["company_id", "email"], set_={"user_id": stmt.excluded.user_id}
        )
    )
