"""Sign-up, withdrawal, confirmation, admin enrollment and status changes (R-ENR-3..8)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, NoReturn, Protocol

from sqlalchemy import and_, bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from registration import readmodel
from registration.access.service import (
    grant_access,
    has_access,
    known_emails,
    remember_users,
)
from registration.binding import Unseen, bind_one, look_for, merge_into, normalise_email
from registration.enrollments import rules
from registration.enrollments.schemas import (
    AdminEnrollmentOut,
    AdminEnrollmentPage,
    AttendanceOut,
    HistoryOut,
    SeatsOut,
)
from registration.enrollments.statuses import (
    SessionFull,
    change_status,
    count_waitlisted,
    create_enrollment,
    lock_sessions,
)
from registration.models import (
    Access,
    Attendance,
    Enrollment,
    EnrollmentHistory,
    EventReplica,
    KnownUser,
    PendingAttendance,
    SessionReplica,
)
from te_shared import contracts as c
from te_shared.auth import Principal
from te_shared.db import is_postgres, statements_alone, utcnow
from te_shared.errors import Conflict, NotFound

S = c.EnrollmentStatus


_access = aliased(Access)
_live = aliased(Enrollment)

#: Everything a sign-up decides on, in one round trip: the session, its event, the user's access
#: and the user's live enrollment in the event (at most one: the partial unique index). Built
#: once; the profile of the sign-up storm showed four separate reads, each built anew, as the
#: largest part of a sign-up. Plain columns, read on the session's connection: loading them as
#: ORM objects (identity map, instance state) was a tenth of a refused sign-up's CPU, and a
#: sign-up changes none of them.
SIGN_UP_FACTS = (
    select(
        SessionReplica.session_id,
        SessionReplica.deleted.label("session_deleted"),
        SessionReplica.registration_end,
        SessionReplica.limit_enabled,
        SessionReplica.participant_limit,
        SessionReplica.taken,
        SessionReplica.waitlist_enabled,
        EventReplica.event_id,
        EventReplica.deleted.label("event_deleted"),
        EventReplica.state,
        EventReplica.dated,
        EventReplica.requires_approval,
        _access.user_id.label("access"),
        _live.id.label("live_id"),
        _live.session_id.label("live_session_id"),
    )
    .select_from(SessionReplica)
    .outerjoin(
        EventReplica,
        and_(
            EventReplica.event_id == SessionReplica.event_id,
            EventReplica.company_id == SessionReplica.company_id,
        ),
    )
    .outerjoin(
        _access,
        and_(
            _access.company_id == SessionReplica.company_id,
            _access.event_id == SessionReplica.event_id,
            _access.user_id == bindparam("user_id"),
        ),
    )
    .outerjoin(
        _live,
        and_(
            _live.company_id == SessionReplica.company_id,
            _live.event_id == SessionReplica.event_id,
            _live.user_id == bindparam("user_id"),
            _live.status != S.CANCELLED,
        ),
    )
    .where(
        SessionReplica.session_id == bindparam("session_id"),
        SessionReplica.company_id == bindparam("company_id"),
    )
)


class Facts(Protocol):
    """A row of :data:`SIGN_UP_FACTS`, by column name: SQLAlchemy's mapping of it or the
    driver's record (the sign-up's fast path reads it without the ORM)."""

    def __getitem__(self, name: str, /) -> Any: ...


def facts_params(principal: Principal, session_id: uuid.UUID) -> dict[str, Any]:
    """:data:`SIGN_UP_FACTS`' values."""
    return {
        "session_id": session_id,
        "company_id": principal.company_id,
        "user_id": principal.user_id,
    }


def decide(
    found: Facts | None, principal: Principal, now: dt.datetime
) -> rules.Refusal | Literal["replay"] | None:
    """R-ENR-3: what a sign-up answers, from what :data:`SIGN_UP_FACTS` found: a refusal, a
    replay of the live enrollment, or None to take a seat. Raises NotFound for a session or
    event that is not there. Pure: the route and its fast path decide with it."""
    if found is None or found["session_id"] is None or found["session_deleted"]:
        raise NotFound("No such session.", code="session_not_found")
    if found["event_id"] is None or found["event_deleted"]:
        raise NotFound("No such event.", code="event_not_found")
    return rules.sign_up_decision(
        rules.SignUpFacts(
            is_admin=principal.is_admin,
            event_active=rules.visible_to_users(found["state"], found["event_deleted"]),
            has_access=found["access"] is not None,
            enrolled_in=found["live_session_id"],
            session=found["session_id"],
            registration_open=rules.registration_open(
                found["dated"], found["registration_end"], found["session_deleted"], now
            ),
            # a cheap early answer from the row just read; the conditional UPDATE in
            # take_seat stays the guarantee (R-ENR-6) when the last seats go concurrently
            full=rules.full(found["limit_enabled"], found["participant_limit"], found["taken"]),
            waitlist_enabled=found["waitlist_enabled"],
        )
    )


async def sign_up(
    session: AsyncSession,
    principal: Principal,
    session_id: uuid.UUID,
    caller: Unseen | None,
) -> tuple[Enrollment, bool]:
    """R-ENR-3: self sign-up, by users and admins alike. Returns the enrollment and whether
    it was created now.

    Signing up again for the session one is already in answers that enrollment instead of a
    conflict, so a client that retries after losing the response (a dropped connection, a
    restarted replica) learns the sign-up took place.

    On PostgreSQL its statements run each alone (:func:`statements_alone`): the facts are one
    read and the seat-taking write one statement, so the seat counter's lock ends with that
    statement, inside PostgreSQL (with ``BEGIN`` and ``COMMIT`` it lasted until the event loop
    sent the ``COMMIT``, and a storm's sign-ups queued behind it)."""
    await statements_alone(session)
    # what waits for the caller's e-mail is bound first (R-ENR-5 ruling), as the other routes'
    # dependency does; here as a call, not a dependency of the route: FastAPI solved the
    # route's dependencies again under each that named them, a twentieth of a refused sign-up
    if caller is not None and await look_for(session, caller):
        await statements_alone(session)  # commits the binding; the sign-up's statements alone
    connection = await session.connection()
    facts = (await connection.execute(SIGN_UP_FACTS, facts_params(principal, session_id))).first()
    decision = decide(None if facts is None else facts._mapping, principal, utcnow())
    assert facts is not None  # else decide raised NotFound
    # the live enrollment as an object only when the answer is about it (a replay, or the
    # user is in another session of the event): rare, and one read by primary key
    existing = await session.get(Enrollment, facts.live_id) if facts.live_id is not None else None
    if decision == rules.REPLAY and existing is not None:
        return existing, False
    if isinstance(decision, rules.Refusal):
        refuse(decision, existing)
    enrollment = await create_enrollment(
        session,
        company_id=principal.company_id,
        event_id=facts.event_id,
        session_id=facts.session_id,
        user_id=principal.user_id,
        email=principal.email,
        status=rules.first_status(facts.requires_approval),
        by=principal.user_id,
        reason="sign-up",
        waitlist_when_full=facts.waitlist_enabled,
    )
    return enrollment, True


def refuse(refusal: rules.Refusal, existing: Enrollment | None) -> NoReturn:
    """Raise ``refusal`` as its problem (``existing``: the live enrollment it is about)."""
    if refusal.status == 404:
        raise NotFound(refusal.detail, code=refusal.code)
    if refusal.code == "session_full":
        raise SessionFull(refusal.detail)
    extra = (
        {"enrollment_id": existing.id, "session_id": existing.session_id}
        if refusal.code == "already_enrolled" and existing is not None
        else None
    )
    raise Conflict(refusal.detail, code=refusal.code, extra=extra)


async def _locked(session: AsyncSession, company_id: str, enrollment_id: uuid.UUID) -> Enrollment:
    stmt = select(Enrollment).where(
        Enrollment.id == enrollment_id, Enrollment.company_id == company_id
    )
    if is_postgres(session):
        stmt = stmt.with_for_update()
    enrollment = (await session.scalars(stmt)).one_or_none()
    if enrollment is None:
        raise NotFound("No such enrollment.", code="enrollment_not_found")
    return enrollment


async def _own(session: AsyncSession, principal: Principal, enrollment_id: uuid.UUID) -> Enrollment:
    enrollment = await _locked(session, principal.company_id, enrollment_id)
    if enrollment.user_id != principal.user_id:
        raise NotFound("No such enrollment.", code="enrollment_not_found")
    return enrollment


async def cancel(
    session: AsyncSession, principal: Principal, enrollment_id: uuid.UUID
) -> Enrollment:
    """R-ENR-8: withdraw before registration ends; the seat frees (and R-ENR-7 promotes)."""
    enrollment = await _own(session, principal, enrollment_id)
    row = await readmodel.get_session(session, principal.company_id, enrollment.session_id)
    event = await readmodel.get_event(session, principal.company_id, enrollment.event_id)
    if not readmodel.registration_open(event, row, utcnow()):
        raise Conflict(
            "Registration has ended; you can no longer withdraw.", code="registration_ended"
        )
    await change_status(
        session,
        enrollment,
        S.CANCELLED,
        by=principal.user_id,
        reason="withdrawn by the user",
        requires_approval=event.requires_approval,
    )
    return enrollment


async def confirm_participation(
    session: AsyncSession, principal: Principal, enrollment_id: uuid.UUID
) -> Enrollment:
    """The user says they took part: ``approved`` → ``awaiting_confirmation``, once the session
    has started."""
    enrollment = await _own(session, principal, enrollment_id)
    timeline = (await readmodel.timelines(session, [enrollment.session_id]))[enrollment.session_id]
    first = timeline.first_start
    if first is None or first > utcnow():
        raise Conflict("The session has not started yet.", code="session_not_started")
    await change_status(
        session,
        enrollment,
        S.AWAITING_CONFIRMATION,
        by=principal.user_id,
        reason="the user confirmed participation",
    )
    return enrollment


@dataclass(frozen=True)
class AdminRequest:
    """One person an admin enrolls into ``target`` (one POST, or one row of an import file):
    by ``user_id``, or only by ``email`` when no user has signed in with it yet (the
    enrollment is then unbound until one does, :mod:`registration.binding`)."""

    user_id: str | None
    email: str | None
    target: SessionReplica
    row: int | None = None


@dataclass
class AdminBatch:
    """What :func:`prepare_admin_enrollment` locked and learned for a set of requests."""

    existing: dict[str, Enrollment] = field(default_factory=dict)
    #: live enrollments in the event not bound to a user yet, by e-mail
    unbound: dict[str, Enrollment] = field(default_factory=dict)
    known_emails: dict[str, str] = field(default_factory=dict)


async def resolve_emails(
    session: AsyncSession, company_id: str, emails: Iterable[str]
) -> dict[str, str]:
    """The users the service knows for these e-mails (lowercased): an e-mail a user signed in
    with, or an admin gave beside a user id, names that user."""
    wanted = sorted({normalise_email(e) for e in emails if e})
    if not wanted:
        return {}
    rows = await session.execute(
        select(KnownUser.email, KnownUser.user_id).where(
            KnownUser.company_id == company_id, KnownUser.email.in_(wanted)
        )
    )
    return {str(email): str(user_id) for email, user_id in rows}


async def prepare_admin_enrollment(
    session: AsyncSession,
    company_id: str,
    event_id: uuid.UUID,
    requests: Sequence[AdminRequest],
    *,
    by: str,
) -> AdminBatch:
    """Everything before the enrollments themselves, in the lock order of
    :mod:`registration.enrollments.statuses`: remember the emails given with a user id, lock
    the users' live enrollments in the event and the unbound ones of the e-mails named, lock
    the target sessions' seat counters, grant the users access."""
    users = sorted({r.user_id for r in requests if r.user_id})
    given = {normalise_email(r.email): r.user_id for r in requests if r.email and r.user_id}
    await remember_users(session, company_id, given)
    stmt = (
        select(Enrollment)
        .where(
            Enrollment.company_id == company_id,
            Enrollment.event_id == event_id,
            Enrollment.user_id.in_(users),
            Enrollment.status != S.CANCELLED,
        )
        .order_by(Enrollment.user_id)
    )
    if is_postgres(session):
        stmt = stmt.with_for_update()
    existing = {str(e.user_id): e for e in await session.scalars(stmt)}
    emails = sorted({normalise_email(r.email) for r in requests if r.email})
    unbound: dict[str, Enrollment] = {}
    if emails:
        stmt = (
            select(Enrollment)
            .where(
                Enrollment.company_id == company_id,
                Enrollment.event_id == event_id,
                Enrollment.email.in_(emails),
                Enrollment.user_id.is_(None),
                Enrollment.status != S.CANCELLED,
            )
            .order_by(Enrollment.email)
        )
        if is_postgres(session):
            stmt = stmt.with_for_update()
        unbound = {str(e.email): e for e in await session.scalars(stmt)}
    await lock_sessions(session, (r.target.session_id for r in requests))
    await grant_access(session, company_id, event_id, users, by=by)
    lacking = sorted({u for u in users if u not in given.values()})
    return AdminBatch(existing, unbound, await known_emails(session, company_id, lacking))


async def enroll_as_admin(
    session: AsyncSession,
    company_id: str,
    event_id: uuid.UUID,
    request: AdminRequest,
    batch: AdminBatch,
    *,
    by: str,
    reason: str,
) -> tuple[Enrollment, bool]:
    """R-ENR-4 for one prepared request: ``approved`` in the target session. Returns the
    enrollment and whether anything changed: a person already approved, awaiting
    confirmation, participated, missed or denied there is left as is (ruling). A request by
    user id whose e-mail has an unbound enrollment in the event is that person's: it is bound
    to the user now (an e-mail bound to a user and that user's id are the same person)."""
    email = normalise_email(request.email) if request.email else None
    existing = batch.existing.get(request.user_id) if request.user_id else None
    unbound = batch.unbound.pop(email, None) if email else None
    if unbound is not None and request.user_id is not None:
        now = utcnow()
        if existing is None:
            bind_one(session, unbound, request.user_id, now)
            existing = batch.existing[request.user_id] = unbound
        else:  # the user's own enrollment and the e-mail's: one person, one enrollment
            await merge_into(session, unbound, existing, now)
        await session.flush()
    elif unbound is not None:
        existing = unbound
    if request.user_id is not None:
        email = email or (existing.email if existing else None)
        email = email or batch.known_emails.get(request.user_id)
    if existing is not None:
        if existing.session_id != request.target.session_id:
            raise Conflict(
                "The person is already enrolled in another session of this event.",
                code="already_enrolled",
                extra={"enrollment_id": existing.id, "session_id": existing.session_id},
            )
        if existing.status not in rules.MOVED_BY_ADMIN_ENROLLMENT:
            return existing, False
        if email and not existing.email:
            existing.email = email
        await change_status(session, existing, S.APPROVED, by=by, reason=reason)
        return existing, True
    enrollment = await create_enrollment(
        session,
        company_id=company_id,
        event_id=event_id,
        session_id=request.target.session_id,
        user_id=request.user_id,
        email=email,
        status=S.APPROVED,
        by=by,
        reason=reason,
    )
    if request.user_id is None and email is not None:
        batch.unbound[email] = enrollment
    elif request.user_id is not None:
        batch.existing[request.user_id] = enrollment
    return enrollment, True


async def admin_enroll(
    session: AsyncSession,
    company_id: str,
    event_id: uuid.UUID,
    target: SessionReplica,
    user_id: str | None,
    email: str | None,
    *,
    by: str,
    reason: str,
) -> tuple[Enrollment, bool]:
    """R-ENR-4 for one person: ``approved`` in ``target``, with access. Named by user id, by
    e-mail (the user who signed in with it, or, when nobody has yet, an enrollment bound to
    the first user who does), or both. Returns the enrollment and whether anything changed."""
    if user_id is None and email is not None:
        user_id = (await resolve_emails(session, company_id, [email])).get(normalise_email(email))
    request = AdminRequest(user_id, email, target)
    batch = await prepare_admin_enrollment(session, company_id, event_id, [request], by=by)
    return await enroll_as_admin(
        session, company_id, event_id, request, batch, by=by, reason=reason
    )


async def admin_set_status(
    session: AsyncSession,
    principal: Principal,
    enrollment_id: uuid.UUID,
    target: S,
    reason: str | None,
) -> Enrollment:
    enrollment = await _locked(session, principal.company_id, enrollment_id)
    if target not in rules.ADMIN_TARGETS:
        raise Conflict(
            f"An admin cannot set {target}.",
            code="transition_not_allowed",
            extra={"from": enrollment.status, "to": target},
        )
    event = await readmodel.get_event(session, principal.company_id, enrollment.event_id)
    await change_status(
        session,
        enrollment,
        target,
        by=principal.user_id,
        reason=reason,
        requires_approval=event.requires_approval,
    )
    return enrollment


async def list_for_event(
    session: AsyncSession, company_id: str, event_id: uuid.UUID, limit: int, offset: int
) -> AdminEnrollmentPage:
    """The "Applications and visits" list: three queries whatever the page size."""
    await readmodel.get_event(session, company_id, event_id)
    rows = list(
        await session.scalars(
            select(Enrollment)
            .where(Enrollment.company_id == company_id, Enrollment.event_id == event_id)
            .order_by(Enrollment.created_at, Enrollment.id)
            .offset(offset)
            .limit(limit + 1)
        )
    )
    more = len(rows) > limit
    rows = rows[:limit]
    ids = [r.id for r in rows]
    history: dict[uuid.UUID, list[HistoryOut]] = {i: [] for i in ids}
    if ids:
        for h in await session.scalars(
            select(EnrollmentHistory)
            .where(EnrollmentHistory.enrollment_id.in_(ids))
            .order_by(EnrollmentHistory.id)
        ):
            history[h.enrollment_id].append(HistoryOut.model_validate(h))
    attendance: dict[str, list[AttendanceOut]] = {}
    users = sorted({r.user_id for r in rows if r.user_id is not None})
    if users:
        for a in await session.scalars(
            select(Attendance).where(
                Attendance.company_id == company_id,
                Attendance.event_id == event_id,
                Attendance.user_id.in_(users),
            )
        ):
            attendance.setdefault(a.user_id, []).append(AttendanceOut.model_validate(a))
    emails = sorted({r.email for r in rows if r.user_id is None and r.email})
    if emails:  # people not bound to a user yet: their attendance waits under their e-mail
        for p in await session.scalars(
            select(PendingAttendance).where(
                PendingAttendance.company_id == company_id,
                PendingAttendance.event_id == event_id,
                PendingAttendance.email.in_(emails),
            )
        ):
            attendance.setdefault(f"email:{p.email}", []).append(AttendanceOut.model_validate(p))

    def attended(r: Enrollment) -> list[AttendanceOut]:
        if r.status == S.CANCELLED:
            return []
        return attendance.get(r.user_id if r.user_id is not None else f"email:{r.email}", [])

    items = [
        AdminEnrollmentOut(
            id=r.id,
            session_id=r.session_id,
            event_id=r.event_id,
            user_id=r.user_id,
            status=S(r.status),
            email=r.email,
            created_at=r.created_at,
            updated_at=r.updated_at,
            history=history[r.id],
            attendance=attended(r),
        )
        for r in rows
    ]
    return AdminEnrollmentPage(items=items, next_cursor=str(offset + limit) if more else None)


async def seats(session: AsyncSession, principal: Principal, session_id: uuid.UUID) -> SeatsOut:
    """R-SES-8: the limit and the seats taken/left."""
    row = await readmodel.get_session(session, principal.company_id, session_id)
    if not principal.is_admin:
        event = await readmodel.get_event(session, principal.company_id, row.event_id)
        if not readmodel.visible_to_users(event) or not await has_access(
            session, principal.company_id, row.event_id, principal.user_id
        ):
            raise NotFound("No such session.", code="session_not_found")
    return seats_of(row, await count_waitlisted(session, session_id))


def seats_of(row: SessionReplica, waitlisted: int) -> SeatsOut:
    limited = row.limit_enabled and row.participant_limit is not None
    return SeatsOut(
        limit_enabled=row.limit_enabled,
        participant_limit=row.participant_limit if limited else None,
        taken=row.taken,
        left=max((row.participant_limit or 0) - row.taken, 0) if limited else None,
        waitlisted=waitlisted,
    )
