"""People named only by an e-mail (R-ENR-4, R-ENR-5 ruling): enrollments an admin made for an
e-mail no user of the company has signed in with are *unbound* (``user_id`` null); they are
bound to the first user whose token of that company carries the e-mail (case-insensitively),
in the transaction of the first request that shows it. From then on they are that user's
enrollments: their tabs, their join link, their attendance; the admin's list shows their id.

Two first requests at once are safe: the unbound rows are read ``FOR UPDATE`` with the
``user_id IS NULL`` condition, so the second waits, reads them again and finds them bound.

When the user already holds a live enrollment in the same event (they signed up, or were
enrolled by id, before their first token with that e-mail), the two are the same person
(ruling): the user's enrollment stands, the unbound one ends (``cancelled``, "merged …", its
seat freed); if both are in the same session, the user's is approved as the admin's was
(pending and waitlisted move to approved, as admin enrollment does).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends
from sqlalchemy import String, bindparam, cast, exists, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from registration.access.service import grant_access, remember_user
from registration.enrollments.statuses import (
    change_status,
    end_enrollment,
    promote_waitlisted,
    record,
)
from registration.models import (
    Attendance,
    Enrollment,
    EventReplica,
    KnownUser,
    PendingAttendance,
)
from te_shared import contracts as c
from te_shared.auth import CurrentPrincipal, Principal
from te_shared.db import in_one_transaction, is_alone, is_postgres, utcnow
from te_shared.service import Runtime, RuntimeDep, SessionDep

S = c.EnrollmentStatus

#: the admin's e-mail enrollment moves the user's own one in the same session to approved
#: from these (as admin enrollment does, R-ENR-4)
APPROVED_BY_ADMIN = frozenset({S.PENDING, S.WAITLISTED})
MERGED = "merged: the person already has an enrollment in this event"
SEEN_CAPACITY = 100_000


def normalise_email(email: str) -> str:
    return email.strip().lower()


@dataclass(frozen=True)
class Bound:
    """What binding did for one user and e-mail."""

    bound: int = 0
    merged: int = 0
    attendance: int = 0

    @property
    def anything(self) -> bool:
        return bool(self.bound or self.merged or self.attendance)


#: built once (the sign-up storm's profile showed building these reads per request as a cost
#: of its own): the user the e-mail points at, and whether anything waits for the e-mail
_WAITING = select(
    select(KnownUser.user_id)
    .where(KnownUser.company_id == bindparam("company_id"), KnownUser.email == bindparam("email"))
    .scalar_subquery(),
    exists().where(
        Enrollment.company_id == bindparam("company_id"),
        Enrollment.email == bindparam("email"),
        Enrollment.user_id.is_(None),
        Enrollment.status != S.CANCELLED,
    ),
    exists().where(
        PendingAttendance.company_id == bindparam("company_id"),
        PendingAttendance.email == bindparam("email"),
    ),
)


def _waiting_and_remembering() -> Any:
    """PostgreSQL: :data:`_WAITING`, and in the same statement (a data-modifying CTE) the
    remembering of the e-mail when nothing waits for it and it points at someone else or no
    one: a first sign-in's whole binding in one round trip, not two."""
    found = (
        select(
            _WAITING.selected_columns[0].label("user_id"),
            _WAITING.selected_columns[1].label("enrollments"),
            _WAITING.selected_columns[2].label("attendance"),
        )
    ).cte("waiting")
    user_id = cast(bindparam("user_id"), String)
    remember = pg_insert(KnownUser).from_select(
        ["company_id", "email", "user_id"],
        select(cast(bindparam("company_id"), String), cast(bindparam("email"), String), user_id)
        .select_from(found)
        .where(
            ~found.c.enrollments, ~found.c.attendance, found.c.user_id.is_distinct_from(user_id)
        ),
    )
    remember = remember.on_conflict_do_update(
        index_elements=["company_id", "email"], set_={"user_id": remember.excluded.user_id}
    )
    return select(found.c.user_id, found.c.enrollments, found.c.attendance).add_cte(
        remember.cte("remembered")
    )


WAITING_AND_REMEMBERING = _waiting_and_remembering()


@dataclass(frozen=True)
class Waiting:
    """What one read finds for an e-mail: the user it points at, and what waits for it."""

    user_id: str | None
    enrollments: bool
    attendance: bool

    @classmethod
    def of(cls, row: Any) -> Waiting:
        """From a row of :data:`_WAITING` (or of :data:`WAITING_AND_REMEMBERING`)."""
        return cls(row[0], bool(row[1]), bool(row[2]))

    @property
    def nothing_waits(self) -> bool:
        return not (self.enrollments or self.attendance)


async def waiting_for(session: AsyncSession, company_id: str, email: str) -> Waiting:
    """One read: whom ``email`` points at and whether enrollments or attendance wait for it."""
    row = (await session.execute(_WAITING, {"company_id": company_id, "email": email})).one()
    return Waiting.of(row)


async def waiting_for_remembering(
    session: AsyncSession, company_id: str, email: str, user_id: str
) -> Waiting:
    """:func:`waiting_for`, and when nothing waits, ``email`` remembered as ``user_id``'s (unless
    it already was): one statement on PostgreSQL, two elsewhere."""
    if not is_postgres(session):
        found = await waiting_for(session, company_id, email)
        if found.nothing_waits and found.user_id != user_id:
            await remember_user(session, company_id, user_id, email)
        return found
    params = {"company_id": company_id, "email": email, "user_id": user_id}
    # on the session's connection: a Core statement, and the ORM's execution path (autoflush,
    # its compile state) cost a third of it; it runs before the request writes anything
    connection = await session.connection()
    return Waiting.of((await connection.execute(WAITING_AND_REMEMBERING, params)).one())


async def bind(session: AsyncSession, company_id: str, user_id: str, email: str) -> Bound:
    """Bind what waits for ``email`` to ``user_id`` (the caller's transaction)."""
    email = normalise_email(email)
    await remember_user(session, company_id, user_id, email)  # lock order: known users first
    stmt = (
        select(Enrollment)
        .where(
            Enrollment.company_id == company_id,
            Enrollment.email == email,
            Enrollment.user_id.is_(None),
            Enrollment.status != S.CANCELLED,
        )
        .order_by(Enrollment.event_id)
    )
    if is_postgres(session):
        stmt = stmt.with_for_update()
    unbound = list(await session.scalars(stmt))
    now = utcnow()
    bound = merged = 0
    if unbound:
        mine_stmt = (
            select(Enrollment)
            .where(
                Enrollment.company_id == company_id,
                Enrollment.user_id == user_id,
                Enrollment.event_id.in_(sorted({e.event_id for e in unbound})),
                Enrollment.status != S.CANCELLED,
            )
            .order_by(Enrollment.event_id)
        )
        if is_postgres(session):
            mine_stmt = mine_stmt.with_for_update()
        mine = {e.event_id: e for e in await session.scalars(mine_stmt)}
        granted: set[uuid.UUID] = set()
        for enrollment in unbound:
            own = mine.get(enrollment.event_id)
            if own is None:
                bind_one(session, enrollment, user_id, now)
                granted.add(enrollment.event_id)
                bound += 1
            else:
                await merge_into(session, enrollment, own, now)
                merged += 1
        for event_id in sorted(granted):
            await grant_access(session, company_id, event_id, [user_id], by="system")
        await session.flush()
    moved = await _move_attendance(session, company_id, email, user_id)
    return Bound(bound, merged, moved)


def bind_one(session: AsyncSession, enrollment: Enrollment, user_id: str, now: dt.datetime) -> None:
    status = S(enrollment.status)
    enrollment.user_id = user_id
    enrollment.version += 1
    enrollment.updated_at = now
    record(
        session,
        enrollment,
        status,
        "system",
        f"bound to user {user_id}, who signed in with the e-mail it was made for",
        now,
    )


async def merge_into(
    session: AsyncSession, unbound: Enrollment, own: Enrollment, now: dt.datetime
) -> None:
    event = await session.get(EventReplica, unbound.event_id)
    requires_approval = event is not None and event.requires_approval
    await end_enrollment(session, unbound, by="system", reason=MERGED, now=now)
    if own.session_id == unbound.session_id and own.status in APPROVED_BY_ADMIN:
        await change_status(
            session,
            own,
            S.APPROVED,
            by="system",
            reason="enrolled by an admin by e-mail before the user signed in",
        )
    await promote_waitlisted(session, unbound.session_id, requires_approval)


async def _move_attendance(session: AsyncSession, company_id: str, email: str, user_id: str) -> int:
    """Attendance recorded for the e-mail before it was bound becomes the user's (a final
    figure, or the newer one, wins where the user already has one for that day)."""
    pending = list(
        await session.scalars(
            select(PendingAttendance).where(
                PendingAttendance.company_id == company_id, PendingAttendance.email == email
            )
        )
    )
    for row in pending:
        target = await session.get(Attendance, (row.day_id, user_id))
        if target is None:
            target = Attendance(day_id=row.day_id, user_id=user_id, company_id=company_id)
            session.add(target)
        elif (target.final and not row.final) or (
            target.final == row.final and target.recorded_at > row.recorded_at
        ):
            await session.delete(row)
            continue
        target.event_id = row.event_id
        target.joined = row.joined
        target.minutes = row.minutes
        target.final = row.final
        target.recorded_at = row.recorded_at
        await session.delete(row)
    return len(pending)


#: the process's :class:`SeenEmails`, in the runtime's extras
_SEEN = "seen_emails"


class SeenEmails:
    """(company, e-mail, user) already bound and pointing at that user, so later requests skip
    even the one read. Bounded (oldest forgotten first); per service process. Only read-only
    findings are remembered, never what a transaction that may still roll back wrote."""

    def __init__(self, capacity: int = SEEN_CAPACITY) -> None:
        self._seen: OrderedDict[tuple[str, str, str], None] = OrderedDict()
        self._capacity = capacity

    def __contains__(self, key: tuple[str, str, str]) -> bool:
        if key in self._seen:
            self._seen.move_to_end(key)
            return True
        return False

    def add(self, key: tuple[str, str, str]) -> None:
        self._seen[key] = None
        self._seen.move_to_end(key)
        while len(self._seen) > self._capacity:
            self._seen.popitem(last=False)


@dataclass(frozen=True)
class Unseen:
    """A caller whose e-mail this process has not found bound to them yet: what to look for."""

    company_id: str
    email: str
    user_id: str
    seen: SeenEmails


def unseen(principal: Principal, runtime: Runtime) -> Unseen | None:
    """The caller's e-mail to look for, or None: the token carries none, or this process found
    it bound to the caller before."""
    if not principal.email:
        return None
    email = normalise_email(principal.email)
    seen = runtime.extras.get(_SEEN)
    if not isinstance(seen, SeenEmails):  # made once (``setdefault`` made one every request)
        seen = runtime.extras[_SEEN] = SeenEmails()
    if (principal.company_id, email, principal.user_id) in seen:
        return None
    return Unseen(principal.company_id, email, principal.user_id, seen)


def settled(caller: Unseen, found: Waiting, *, committed: bool) -> bool:
    """After the read that found what waits for the caller's e-mail: True when nothing does,
    so there is nothing to bind. The caller is then seen from now on once what the read
    remembered is ``committed`` (a statement that ran alone), or when the e-mail already
    pointed at them; a first sign-in's remembering in a transaction that may still roll back
    is not cached."""
    if not found.nothing_waits:
        return False
    if committed or found.user_id == caller.user_id:
        caller.seen.add((caller.company_id, caller.email, caller.user_id))
    return True


async def look_for(session: AsyncSession, caller: Unseen) -> bool:
    """Bind what waits for the caller's e-mail (in one transaction), after the one read that
    finds it (and remembers the e-mail when nothing waits). True when it bound something:
    the session's statements no longer run each alone (:func:`in_one_transaction`)."""
    found = await waiting_for_remembering(session, caller.company_id, caller.email, caller.user_id)
    if settled(caller, found, committed=is_alone(session)):
        return False
    await in_one_transaction(session)  # binding writes several rows: one transaction
    await bind(session, caller.company_id, caller.user_id, caller.email)
    return True


async def bind_principal(
    principal: CurrentPrincipal, session: SessionDep, runtime: RuntimeDep
) -> None:
    """A request dependency of every registration endpoint but self sign-up (which calls
    :func:`look_for` itself, its statements each alone): the caller's token e-mail binds what
    waits for it, in the request's own transaction."""
    caller = unseen(principal, runtime)
    if caller is not None:
        await look_for(session, caller)


BindsEmail = Annotated[None, Depends(bind_principal)]
