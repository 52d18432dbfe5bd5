"""The enrollment status machine, in one place (R-ENR-6, R-ENR-12).

Allowed transitions are data (``registration.enrollments.rules.TRANSITIONS``).
:func:`change_status` is the only code that changes an enrollment's status: it checks the
transition, takes or frees a seat through the conditional seat counter, writes the history row
and publishes ``EnrollmentChanged``.

Lock order. Every writer takes its row locks in this order, so two transactions never wait on
each other in a cycle (PostgreSQL would abort one with a deadlock):

1. ``known_user`` rows (emails remembered), by email;
2. existing enrollment rows (``FOR UPDATE``), by user id, then unbound ones (no user yet) by
   e-mail;
3. ``session_replica`` rows (the seat counters), by session id (:func:`lock_sessions`);
4. ``access`` rows, by user id;
5. new enrollment rows (the live-enrollment unique indexes), by user id, then by e-mail.

A writer touching several rows of one kind (an import) takes them sorted; waitlist promotion
locks waitlisted rows after the session but with ``SKIP LOCKED``, so it never waits on them.
"""

from __future__ import annotations

import datetime as dt
import functools
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, bindparam, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import make_transient_to_detached

from registration.enrollments import rules as enrollment_rules
from registration.models import Enrollment, EnrollmentHistory, OutboxRecord, SessionReplica
from te_shared import contracts as c
from te_shared import rules
from te_shared.db import in_one_transaction, is_postgres, utcnow
from te_shared.errors import Conflict, NotFound
from te_shared.outbox import OutboxRelay, add_message, mark_written, outbox_values

S = c.EnrollmentStatus


class SessionFull(Conflict):
    code = "session_full"


#: a second live enrollment of the user in the event (the partial unique index)
ALREADY_ENROLLED = "The user already has an enrollment in this event."


def forbidden_transition(current: S | None, target: S) -> Conflict:
    return Conflict(
        f"An enrollment cannot go from {current or 'new'} to {target}.",
        code="transition_not_allowed",
        extra={"from": current, "to": target},
    )


async def take_seat(session: AsyncSession, session_id: uuid.UUID) -> bool:
    """One conditional UPDATE: True when a seat was taken, False when the session is full (or
    deleted: a sign-up that read the session before its deletion committed takes no seat)."""
    t = SessionReplica
    result = await session.execute(
        update(t)
        .where(
            t.session_id == session_id,
            t.deleted.is_(False),
            (t.limit_enabled.is_(False))
            | (t.participant_limit.is_(None))
            | (t.taken < t.participant_limit),
        )
        .values(taken=t.taken + 1)
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0) == 1)


async def _still_there(session: AsyncSession, session_id: uuid.UUID) -> None:
    """No seat was taken: :class:`NotFound` when that is because the session was deleted.
    Reading it ``FOR SHARE`` orders this writer with the deletion (which updates the row), so
    an enrollment is either seen and ended by the deletion, or refused here (R-SES deletion
    ruling)."""
    if (await session.scalar(_session_deleted(session_id))) is not False:
        raise NotFound("No such session.", code="session_not_found")


def _session_deleted(session_id: Any) -> Select[bool]:
    """The session's ``deleted`` flag, read ``FOR SHARE`` (see :func:`_still_there`; the lock
    is rendered only where supported, PostgreSQL)."""
    return (
        select(SessionReplica.deleted)
        .where(SessionReplica.session_id == session_id)
        .with_for_update(read=True)
    )


async def lock_sessions(session: AsyncSession, session_ids: Iterable[uuid.UUID]) -> None:
    """Lock the seat counters of ``session_ids`` in a stable order (by id), before any seat is
    taken, so writers touching several sessions cannot deadlock (PostgreSQL only; SQLite
    serialises writers)."""
    ids = sorted(set(session_ids))
    if not ids or not is_postgres(session):
        return
    await session.execute(
        select(SessionReplica.session_id)
        .where(SessionReplica.session_id.in_(ids))
        .order_by(SessionReplica.session_id)
        .with_for_update()
    )


async def free_seat(session: AsyncSession, session_id: uuid.UUID) -> None:
    t = SessionReplica
    await session.execute(
        update(t)
        .where(t.session_id == session_id, t.taken > 0)
        .values(taken=t.taken - 1)
        .execution_options(synchronize_session=False)
    )


def record(
    session: AsyncSession,
    enrollment: Enrollment,
    previous: S | None,
    by: str,
    reason: str | None,
    now: dt.datetime,
) -> None:
    """History row and ``EnrollmentChanged`` for a status just set on ``enrollment``."""
    session.add(
        EnrollmentHistory(
            enrollment_id=enrollment.id,
            company_id=enrollment.company_id,
            at=now,
            by=by,
            from_status=previous,
            to_status=enrollment.status,
            reason=reason,
        )
    )
    add_message(session, OutboxRecord, _enrollment_changed(enrollment, previous, by, reason))


def _new(
    company_id: str,
    event_id: uuid.UUID,
    session_id: uuid.UUID,
    user_id: str | None,
    email: str | None,
    status: S,
    now: dt.datetime,
) -> Enrollment:
    """A new enrollment, in no session yet: version 1, created now."""
    return Enrollment(
        id=uuid.uuid4(),
        company_id=company_id,
        event_id=event_id,
        session_id=session_id,
        user_id=user_id,
        email=email,
        status=status,
        version=1,
        created_at=now,
        updated_at=now,
    )


async def create_enrollment(
    session: AsyncSession,
    *,
    company_id: str,
    event_id: uuid.UUID,
    session_id: uuid.UUID,
    user_id: str | None,
    email: str | None,
    status: S,
    by: str,
    reason: str | None,
    waitlist_when_full: bool = False,
) -> Enrollment:
    """Insert a new enrollment in ``status`` (taking a seat if it holds one).

    When the session is full: ``waitlisted`` if ``waitlist_when_full``, else :class:`SessionFull`.
    A second live enrollment of the user in the event is refused by the partial unique index;
    so is a second unbound one (``user_id`` None) of the e-mail."""
    if not enrollment_rules.may_change(None, status):
        raise forbidden_transition(None, status)
    if status in rules.SEAT_TAKING:
        if is_postgres(session):  # the hot path: one statement while the seat is locked
            write = seat_and_enroll(
                company_id=company_id,
                event_id=event_id,
                session_id=session_id,
                user_id=user_id,
                email=email,
                status=status,
                by=by,
                reason=reason,
                now=utcnow(),
            )
            made = await _take_seat_and_enroll(session, write)
            if made is not None:
                return made
            took = False  # and the session is there: _take_seat_and_enroll read it
            if await in_one_transaction(session):
                # that read's FOR SHARE lock ended with its statement: read it again in the
                # transaction that writes the waitlisted enrollment (the deletion ruling)
                await _still_there(session, session_id)
        else:
            took = await take_seat(session, session_id)
            if not took:
                await _still_there(session, session_id)
        if not took:
            if not waitlist_when_full:
                raise SessionFull("The session has no free seat.")
            status = S.WAITLISTED
    else:
        await in_one_transaction(session)
    # several rows, written by the ORM: one transaction (the caller's), even after a sign-up's
    # statements ran alone
    now = utcnow()
    enrollment = _new(company_id, event_id, session_id, user_id, email, status, now)
    session.add(enrollment)
    try:
        await session.flush()
    except IntegrityError as exc:
        raise Conflict(ALREADY_ENROLLED, code="already_enrolled") from exc
    record(session, enrollment, None, by, reason, now)
    return enrollment


def _enrollment_changed(
    enrollment: Enrollment, previous: S | None, by: str, reason: str | None
) -> c.EnrollmentChanged:
    return c.EnrollmentChanged(
        company_id=enrollment.company_id,
        enrollment_id=enrollment.id,
        event_id=enrollment.event_id,
        session_id=enrollment.session_id,
        user_id=enrollment.user_id,
        email=enrollment.email,
        status=S(enrollment.status),
        previous_status=previous,
        version=enrollment.version,
        by=by,
        reason=reason,
    )


@functools.cache
def _seat_and_enroll_statement(
    enrollment: tuple[str, ...], history: tuple[str, ...], message: tuple[str, ...]
) -> Select[Any, Any, Any]:
    """The statement of :func:`_take_seat_and_enroll`, built once per shape of its rows: every
    value is a bind parameter (``e_``: the enrollment's columns, ``h_``: its history row's,
    ``m_``: its outbox row's; ``seat_session_id``: a name no column has, or
    the ORM would read it as a value to SET). Built per request it cost 1.2 ms of CPU, a
    third of a sign-up's; built once, its compiled form and cache key are reused."""
    t = SessionReplica
    seat = (
        update(t)
        .where(
            t.session_id == bindparam("seat_session_id"),
            t.deleted.is_(False),
            (t.limit_enabled.is_(False))
            | (t.participant_limit.is_(None))
            | (t.taken < t.participant_limit),
        )
        .values(taken=t.taken + 1)
        .returning(t.session_id)
        .cte("seat")
    )

    def values(table: Any, prefix: str, keys: Sequence[str]) -> Select[Any]:
        return select(*(bindparam(f"{prefix}{k}", type_=table.c[k].type) for k in keys))

    enrolled = (
        insert(Enrollment)
        .from_select(
            list(enrollment), values(Enrollment.__table__, "e_", enrollment).select_from(seat)
        )
        .returning(Enrollment.id)
        .cte("enrolled")
    )
    written_history = (
        insert(EnrollmentHistory)
        .from_select(
            list(history),
            values(EnrollmentHistory.__table__, "h_", history).select_from(enrolled),
        )
        .cte("history")
    )
    written_message = (
        insert(OutboxRecord)
        .from_select(
            list(message), values(OutboxRecord.__table__, "m_", message).select_from(enrolled)
        )
        .returning(OutboxRecord.id)
        .cte("message")
    )
    # and whether the session is there, read FOR SHARE as _still_there does: a refused sign-up
    # (most of a storm) learns why in the same round trip
    deleted = _session_deleted(bindparam("seat_session_id")).scalar_subquery()
    return select(
        select(func.count()).select_from(enrolled).scalar_subquery(),
        deleted,
        select(written_message.c.id).scalar_subquery(),
    ).add_cte(written_history)


@dataclass(frozen=True)
class SeatAndEnroll:
    """The seat-taking write of one new enrollment, built and not yet run: the enrollment (not
    in any session), the statement and its values, and its outbox row's values."""

    enrollment: Enrollment
    statement: Select[Any, Any, Any]
    params: dict[str, Any]
    message: dict[str, Any]


def seat_and_enroll(
    *,
    company_id: str,
    event_id: uuid.UUID,
    session_id: uuid.UUID,
    user_id: str | None,
    email: str | None,
    status: S,
    by: str,
    reason: str | None,
    now: dt.datetime,
    leased_to: OutboxRelay | None = None,
) -> SeatAndEnroll:
    """The write of :func:`_take_seat_and_enroll` (and of the sign-up's fast path, which runs
    it on a driver connection): take a seat with the conditional UPDATE, and only if it took
    one insert the enrollment, its history row and its outbox row (data-modifying CTEs); its
    row reads how many enrollments it made, whether the session is deleted (:func:`seat_taken`)
    and the outbox row's id. Run alone on a driver connection, the outbox row is written
    ``leased_to`` the process's relay, to be handed to it once committed
    (:meth:`~te_shared.outbox.OutboxRelay.hand_written`)."""
    enrollment = _new(company_id, event_id, session_id, user_id, email, status, now)
    row = {c.key: getattr(enrollment, c.key) for c in Enrollment.__table__.columns}
    history = {
        "enrollment_id": enrollment.id,
        "company_id": company_id,
        "at": now,
        "by": by,
        "from_status": None,
        "to_status": status.value,
        "reason": reason,
    }
    message = outbox_values(_enrollment_changed(enrollment, None, by, reason))
    if leased_to is not None:
        message = leased_to.leased(message)
    params: dict[str, Any] = {"seat_session_id": session_id}
    params.update({f"e_{k}": v for k, v in row.items()})
    params.update({f"h_{k}": v for k, v in history.items()})
    params.update({f"m_{k}": v for k, v in message.items()})
    statement = _seat_and_enroll_statement(tuple(row), tuple(history), tuple(message))
    return SeatAndEnroll(enrollment, statement, params, message)


def seat_taken(made: int, gone: bool | None) -> bool:
    """From :func:`seat_and_enroll`'s row: whether it took a seat; :class:`NotFound` when it
    did not because the session is deleted (or gone)."""
    if not made and gone is not False:
        raise NotFound("No such session.", code="session_not_found")
    return bool(made)


async def _take_seat_and_enroll(session: AsyncSession, write: SeatAndEnroll) -> Enrollment | None:
    """The seat-taking write in ONE statement (PostgreSQL, :func:`seat_and_enroll`). A sign-up
    runs it alone (its own transaction, see :func:`te_shared.db.statements_alone`), so the
    seat counter's row lock lasts as long as the statement, inside PostgreSQL; in an admin's
    transaction it lasts until that commits. The lock order is the one above (seat counters,
    then the new enrollment). None when no seat was free (nothing written); the caller decides
    what then; :class:`NotFound` when that is because the session was deleted."""
    try:
        made, gone, _ = (await session.execute(write.statement, write.params)).one()
    except IntegrityError as exc:
        raise Conflict(ALREADY_ENROLLED, code="already_enrolled") from exc
    if not seat_taken(made, gone):
        return None
    make_transient_to_detached(write.enrollment)
    session.add(write.enrollment)
    mark_written(session)
    return write.enrollment


async def change_status(
    session: AsyncSession,
    enrollment: Enrollment,
    target: S,
    *,
    by: str,
    reason: str | None,
    requires_approval: bool = False,
) -> None:
    """Move ``enrollment`` (locked by the caller) to ``target``; 409 when not allowed or full."""
    current = S(enrollment.status)
    if not enrollment_rules.may_change(current, target):
        raise forbidden_transition(current, target)
    takes, held = target in rules.SEAT_TAKING, current in rules.SEAT_TAKING
    if takes and not held and not await take_seat(session, enrollment.session_id):
        raise SessionFull("The session has no free seat.")
    now = utcnow()
    enrollment.status = target
    enrollment.version += 1
    enrollment.updated_at = now
    record(session, enrollment, current, by, reason, now)
    if held and not takes:
        await free_seat(session, enrollment.session_id)
        await promote_waitlisted(session, enrollment.session_id, requires_approval)


async def promote_waitlisted(
    session: AsyncSession, session_id: uuid.UUID, requires_approval: bool
) -> int:
    """R-ENR-7: the earliest waitlisted users take the free seats, in order, each through
    :func:`change_status` like every other change. Called when a seat frees and when catalog
    raises or disables the limit. Returns how many were promoted."""
    target = S.PENDING if requires_approval else S.APPROVED
    promoted = 0
    while True:
        stmt = (
            select(Enrollment)
            .where(Enrollment.session_id == session_id, Enrollment.status == S.WAITLISTED)
            .order_by(Enrollment.created_at, Enrollment.id)
            .limit(1)
        )
        if is_postgres(session):
            stmt = stmt.with_for_update(skip_locked=True)
        waiting = (await session.scalars(stmt)).one_or_none()
        if waiting is None:
            return promoted
        try:
            await change_status(
                session, waiting, target, by="system", reason="R-ENR-7 promoted from the waitlist"
            )
        except SessionFull:  # no free seat: nothing was written for this one
            return promoted
        promoted += 1
        await session.flush()


#: why the enrollments of a deleted session ended (history and ``EnrollmentChanged``)
SESSION_DELETED = "session deleted"


async def end_enrollment(
    session: AsyncSession,
    enrollment: Enrollment,
    *,
    by: str,
    reason: str,
    now: dt.datetime,
    free: bool = True,
) -> None:
    """End ``enrollment`` (locked by the caller) as ``cancelled`` whatever its status, outside
    the transition table: what the system does when the enrollment can no longer stand (its
    session deleted, its person already enrolled in the event). History and
    ``EnrollmentChanged`` are written; a seat it held is freed when ``free`` (the caller
    promotes the waitlist if it should)."""
    previous = S(enrollment.status)
    enrollment.status = S.CANCELLED
    enrollment.version += 1
    enrollment.updated_at = now
    record(session, enrollment, previous, by, reason, now)
    if free and previous in rules.SEAT_TAKING:
        await free_seat(session, enrollment.session_id)


async def end_for_deleted_session(session: AsyncSession, session_id: uuid.UUID) -> int:
    """The session was deleted (its replica row is already a tombstone, locked by this
    transaction): every live enrollment in it ends as ``cancelled`` with the reason "session
    deleted", whatever its status (a deleted session leaves nothing to be pending, waitlisted,
    denied or to have taken part in), with history and ``EnrollmentChanged``. Seats are freed
    and the waitlist ends with them; the users see the event's other sessions again (R-ENR-2).
    Returns how many ended."""
    stmt = (
        select(Enrollment)
        .where(Enrollment.session_id == session_id, Enrollment.status != S.CANCELLED)
        .order_by(Enrollment.user_id, Enrollment.id)  # the lock order above
    )
    if is_postgres(session):
        stmt = stmt.with_for_update()
    ended = 0
    now = utcnow()
    for enrollment in await session.scalars(stmt):
        await end_enrollment(
            session, enrollment, by="system", reason=SESSION_DELETED, now=now, free=False
        )
        ended += 1
    await session.execute(
        update(SessionReplica)
        .where(SessionReplica.session_id == session_id)
        .values(taken=0)
        .execution_options(synchronize_session=False)
    )
    return ended


async def count_waitlisted(session: AsyncSession, session_id: uuid.UUID) -> int:
    return int(
        await session.scalar(
            select(func.count())
            .select_from(Enrollment)
            .where(Enrollment.session_id == session_id, Enrollment.status == S.WAITLISTED)
        )
        or 0
    )
