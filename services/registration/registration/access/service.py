"""Access: the right of a user to see an event."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import bindparam, select
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


def _granting(insert: Callable[[Any], Any]) -> Any:
    table: Any = Access.__table__
    stmt = insert(table).values(
        company_id=bindparam("company_id"),
        event_id=bindparam("event_id"),
        user_id=bindparam("user_id"),
        granted_at=bindparam("granted_at"),
        granted_by=bindparam("granted_by"),
    )
    return stmt.on_conflict_do_nothing().returning(table.c.user_id)


#: built once per dialect, on the table (no ORM bulk insert): a zoom day's message grants its
#: organizer access, and a statement built per call (its rows as literal VALUES) was compiled
#: anew every time, a sixth of that consumer's CPU. Many users go as one executemany, which
#: SQLAlchemy sends as multi-row INSERTs with RETURNING, a page of rows at a time.
_GRANT = {"postgresql": _granting(pg_insert), "sqlite": _granting(sqlite_insert)}


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
    now = utcnow()
    rows = [
        {
            "company_id": company_id,
            "event_id": event_id,
            "user_id": u,
            "granted_at": now,
            "granted_by": by,
        }
        for u in wanted
    ]
    result = await session.execute(_GRANT["postgresql" if is_postgres(session) else "sqlite"], rows)
    added = sorted(result.scalars().all())
    if added:
        add_message(
            session,
            OutboxRecord,
            c.AccessGranted(company_id=company_id, event_id=event_id, user_ids=added),
        )
    return added


def _remember(insert: Callable[[type[KnownUser]], Any]) -> Any:
    stmt = insert(KnownUser).values(
        company_id=bindparam("company_id"), email=bindparam("email"), user_id=bindparam("user_id")
    )
    return stmt.on_conflict_do_update(
        index_elements=["company_id", "email"], set_={"user_id": stmt.excluded.user_id}
    )


#: built once per dialect (every first sign-in runs it; the sign-up storm's profile)
_REMEMBER = {"postgresql": _remember(pg_insert), "sqlite": _remember(sqlite_insert)}


async def remember_user(session: AsyncSession, company_id: str, user_id: str, email: str) -> None:
    """Remember a user's email so an import may name them by email."""
    await remember_users(session, company_id, {email: user_id})


async def remember_users(session: AsyncSession, company_id: str, users: dict[str, str]) -> None:
    """Remember ``{email: user_id}`` (emails trimmed and lowercased), by email (the lock order
    of :mod:`registration.enrollments.statuses`). A known email is re-pointed at the newer
    user."""
    normalised = {email.strip().lower(): user_id for email, user_id in users.items()}
    if not normalised:
        return
    await session.execute(
        _REMEMBER["postgresql" if is_postgres(session) else "sqlite"],
        [
            {"company_id": company_id, "email": email, "user_id": user_id}
            for email, user_id in sorted(normalised.items())
        ],
    )


async def known_emails(
    session: AsyncSession, company_id: str, user_ids: Sequence[str]
) -> dict[str, str]:
    """An email the service knows for each of ``user_ids`` that has one (the first by sort
    order when a user has several), so messages about them carry it for attendance matching."""
    if not user_ids:
        return {}
    found: dict[str, str] = {}
    rows = await session.execute(
        select(KnownUser.user_id, KnownUser.email)
        .where(KnownUser.company_id == company_id, KnownUser.user_id.in_(sorted(set(user_ids))))
        .order_by(KnownUser.user_id, KnownUser.email)
    )
    for user_id, email in rows:
        found.setdefault(user_id, email)
    return found
