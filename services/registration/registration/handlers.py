"""Messages registration consumes: catalog's read model (events, sessions, days), attendance."""

from __future__ import annotations

import functools
import uuid
from typing import Any

from sqlalchemy import and_, bindparam, case, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from registration import readmodel
from registration.access.service import grant_access
from registration.binding import normalise_email
from registration.enrollments import rules
from registration.enrollments.service import resolve_emails
from registration.enrollments.statuses import (
    change_status,
    end_for_deleted_session,
    promote_waitlisted,
)
from registration.models import (
    Attendance,
    CompanyReplica,
    DayReplica,
    Enrollment,
    EventReplica,
    MeetingLink,
    PendingAttendance,
    SessionReplica,
)
from te_shared import contracts as c
from te_shared.db import is_postgres
from te_shared.inbox import Consumers
from te_shared.replica import follow_company_settings, tombstone_if_newer, upsert_if_newer
from te_shared.rules import meeting_join_link
from te_shared.topology import REGISTRATION

consumers = Consumers(REGISTRATION)
S = c.EnrollmentStatus


follow_company_settings(consumers, CompanyReplica)


@consumers.handler(c.EventChanged)
async def on_event_changed(session: AsyncSession, msg: c.EventChanged) -> None:
    await readmodel.hold_timeline(session, msg.event_id)
    written = await upsert_if_newer(
        session,
        EventReplica,
        key={"event_id": msg.event_id},
        version=msg.version,
        values={
            "company_id": msg.company_id,
            "title": msg.title,
            "state": msg.state.value,
            "dated": msg.dated,
            "requires_approval": msg.requires_approval,
            "deleted": msg.deleted,
        },
    )
    if written:  # its sessions may have come first
        await readmodel.refresh_event_times(session, msg.event_id)


async def _upsert_session(session: AsyncSession, msg: c.SessionData) -> None:
    """Keep the newest session; R-ENR-7: when catalog raised or disabled the limit, seats may
    have appeared, and the earliest waitlisted users take them."""
    await readmodel.hold_timeline(session, msg.event_id)
    written = await upsert_if_newer(
        session,
        SessionReplica,
        key={"session_id": msg.session_id},
        version=msg.version,
        values={
            "company_id": msg.company_id,
            "event_id": msg.event_id,
            "name": msg.name,
            "timezone": msg.timezone,
            "registration_end": msg.registration_end,
            "limit_enabled": msg.limit_enabled,
            "participant_limit": msg.participant_limit,
            "waitlist_enabled": msg.waitlist_enabled,
            "deleted": False,
        },
    )
    if written:
        event = await session.get(EventReplica, msg.event_id)
        requires_approval = event is not None and event.requires_approval
        await promote_waitlisted(session, msg.session_id, requires_approval)
        # days may have come first
        await readmodel.refresh_timeline(session, msg.session_id, msg.event_id)


@consumers.handler(c.SessionCreated)
async def on_session_created(session: AsyncSession, msg: c.SessionCreated) -> None:
    await _upsert_session(session, msg)


@consumers.handler(c.SessionUpdated)
async def on_session_updated(session: AsyncSession, msg: c.SessionUpdated) -> None:
    await _upsert_session(session, msg)


@consumers.handler(c.SessionDeleted)
async def on_session_deleted(session: AsyncSession, msg: c.SessionDeleted) -> None:
    """The session is gone: its enrollments end (cancelled, "session deleted"), so nobody is
    left in a session that no longer exists (ruling, see the README)."""
    await readmodel.hold_timeline(session, msg.event_id)
    deleted = await tombstone_if_newer(
        session,
        SessionReplica,
        key={"session_id": msg.session_id},
        version=msg.version,
        values={
            "company_id": msg.company_id,
            "event_id": msg.event_id,
            "name": {},
            "timezone": "UTC",
            "registration_end": None,
            "limit_enabled": False,
            "participant_limit": None,
            "waitlist_enabled": False,
        },
    )
    if deleted:
        await end_for_deleted_session(session, msg.session_id)
        await readmodel.refresh_event_times(session, msg.event_id)


async def _upsert_day(session: AsyncSession, msg: c.DayData) -> bool:
    await readmodel.hold_timeline(session, msg.event_id)
    written = await upsert_if_newer(
        session,
        DayReplica,
        key={"day_id": msg.day_id},
        version=msg.version,
        values={
            "company_id": msg.company_id,
            "session_id": msg.session_id,
            "event_id": msg.event_id,
            "format": msg.format.value,
            "start": msg.start,
            "end": msg.end,
            "address": msg.address,
            "url": msg.url,
            "deleted": False,
        },
    )
    if written:
        await settle_attendance(session, msg)
    if written and msg.zoom is not None:
        # R-ZOOM-6: the organizer gets access to the event if they lacked it.
        await grant_access(
            session, msg.company_id, msg.event_id, [msg.zoom.organizer_user_id], by="system"
        )
    return written


@consumers.handler(c.DayScheduled)
async def on_day_scheduled(session: AsyncSession, msg: c.DayScheduled) -> None:
    if await _upsert_day(session, msg):
        await _reopen_once(session, msg)
        await readmodel.refresh_timeline(session, msg.session_id, msg.event_id)


@consumers.handler(c.DayRescheduled)
async def on_day_rescheduled(session: AsyncSession, msg: c.DayRescheduled) -> None:
    """An edit may overtake the day's ``DayScheduled`` (then stale when it comes): it carries
    the R-DAY-8 confirmation too, so R-ENR-9 does not depend on the order of messages."""
    if await _upsert_day(session, msg):
        await _reopen_once(session, msg)
        await readmodel.refresh_timeline(session, msg.session_id, msg.event_id)


async def _reopen_once(session: AsyncSession, msg: c.DayData) -> None:
    """R-ENR-9 for a day added to an ended session with confirmation, once per day: the first
    of its messages to be written applies it (a later edit of the day, after users took part
    in it, must not send them back to approved)."""
    if not rules.reopens_session(msg.confirmed_after_session_end, msg.start, msg.occurred_at):
        return
    marked = await session.execute(
        update(DayReplica)
        .where(DayReplica.day_id == msg.day_id, DayReplica.reopened.is_(False))
        .values(reopened=True)
        .execution_options(synchronize_session=False)
    )
    if getattr(marked, "rowcount", 0) == 1:
        await reopen_session(session, msg)


@consumers.handler(c.DayCancelled)
async def on_day_cancelled(session: AsyncSession, msg: c.DayCancelled) -> None:
    await readmodel.hold_timeline(session, msg.event_id)
    if await tombstone_if_newer(
        session,
        DayReplica,
        key={"day_id": msg.day_id},
        version=msg.version,
        values={
            "company_id": msg.company_id,
            "session_id": msg.session_id,
            "event_id": msg.event_id,
            "format": msg.format.value,
            "start": None,
            "end": None,
        },
    ):
        await readmodel.refresh_timeline(session, msg.session_id, msg.event_id)


async def reopen_session(session: AsyncSession, msg: c.DayData) -> None:
    """R-ENR-9: a confirmed future day was added to an ended session."""
    stmt = select(Enrollment).where(
        Enrollment.company_id == msg.company_id,
        Enrollment.session_id == msg.session_id,
        Enrollment.status.in_(sorted(rules.REOPENED_BY_NEW_DAY)),
    )
    stmt = stmt.order_by(Enrollment.user_id)  # the lock order of enrollments.statuses
    if is_postgres(session):
        stmt = stmt.with_for_update()
    for enrollment in await session.scalars(stmt):
        await change_status(
            session,
            enrollment,
            S.APPROVED,
            by="system",
            reason="R-ENR-9 a future day was added to the ended session",
        )


def _settling(model: type[Attendance] | type[PendingAttendance], who: str) -> Any:
    """Attendance of one kind kept before its day came, attached to the day's event: one
    ``UPDATE ... RETURNING`` on the table, built once (two ORM reads per day message, nearly
    always of nothing, were a tenth of a day consumer's CPU)."""
    table: Any = model.__table__
    return (
        update(table)
        .where(
            table.c.day_id == bindparam("settle_day"),
            table.c.company_id == bindparam("settle_company"),
            table.c.event_id.is_(None),
        )
        .values(event_id=bindparam("settle_event"))
        .returning(table.c[who], table.c.joined)
    )


_SETTLE_USERS = _settling(Attendance, "user_id")
_SETTLE_EMAILS = _settling(PendingAttendance, "email")


async def settle_attendance(session: AsyncSession, day: c.DayData) -> None:
    """Attendance that arrived before its day: attach it to the event and apply R-ENR-11."""
    values = {
        "settle_day": day.day_id,
        "settle_company": day.company_id,
        "settle_event": day.event_id,
    }
    for user_id, joined in (await session.execute(_SETTLE_USERS, values)).all():
        if joined:
            await _participated(session, day.company_id, day.session_id, user_id=user_id)
    for email, joined in (await session.execute(_SETTLE_EMAILS, values)).all():
        if joined:
            await _participated(session, day.company_id, day.session_id, email=email)


#: R-ENR-12: the reasons attendance gives for a status change
ATTENDANCE_REPORTED = "R-ENR-11 attendance reported"
ATTENDANCE_MATCHED = "R-ENR-11 attendance credited: an admin matched a Zoom participant to the user"


async def _participated(
    session: AsyncSession,
    company_id: str,
    session_id: uuid.UUID,
    *,
    user_id: str | None = None,
    email: str | None = None,
    matched_by: str | None = None,
) -> None:
    """R-ENR-11 for the user's enrollment in the session, or (``email``) for the one made for
    an e-mail not bound to a user yet. R-ENR-12: the history names the zoom bridge, or the
    admin who matched a Zoom participant to the user (``matched_by``) when that match is what
    the attendance comes from."""
    stmt = select(Enrollment).where(
        Enrollment.company_id == company_id,
        Enrollment.session_id == session_id,
        Enrollment.status.in_(sorted(rules.MOVED_BY_ATTENDANCE)),
    )
    if user_id is not None:
        stmt = stmt.where(Enrollment.user_id == user_id)
    else:
        stmt = stmt.where(Enrollment.user_id.is_(None), Enrollment.email == email)
    if is_postgres(session):
        stmt = stmt.with_for_update()
    enrollment = (await session.scalars(stmt)).one_or_none()
    if enrollment is not None:
        await change_status(
            session,
            enrollment,
            S.PARTICIPATED,
            by=matched_by or "zoom-bridge",
            reason=ATTENDANCE_MATCHED if matched_by else ATTENDANCE_REPORTED,
        )


@consumers.handler(c.AttendanceRecorded)
async def on_attendance(session: AsyncSession, msg: c.AttendanceRecorded) -> None:
    """R-ENR-11: keep attendance per user and day; joined moves the enrollment to participated.
    A participant matched to an enrollment not bound to a user yet (``user_id`` null) is kept
    under their e-mail until they sign in (:mod:`registration.binding`); if they signed in
    meanwhile, it is the user's. An admin's match (``matched_by``) is the change's author in
    the history (R-ENR-12)."""
    day = await session.get(DayReplica, msg.day_id)
    if day is not None and day.company_id != msg.company_id:
        return
    user_id, email = msg.user_id, normalise_email(msg.email) if msg.email else None
    if user_id is None and email is None:
        return
    if user_id is None and email is not None:
        user_id = (await resolve_emails(session, msg.company_id, [email])).get(email)
    row: Attendance | PendingAttendance | None
    if user_id is not None:
        row = await session.get(Attendance, (msg.day_id, user_id))
        if row is None:
            row = Attendance(day_id=msg.day_id, user_id=user_id, company_id=msg.company_id)
            session.add(row)
    else:
        row = await session.get(PendingAttendance, (msg.company_id, msg.day_id, email))
        if row is None:
            row = PendingAttendance(company_id=msg.company_id, day_id=msg.day_id, email=email)
            session.add(row)
    if row.recorded_at is not None:
        if row.final and not msg.final:
            return  # a reconciled figure is never overwritten by a live one
        if row.final == msg.final and row.recorded_at > msg.occurred_at:
            return  # an older figure delivered late: keep the newer one
    row.event_id = day.event_id if day is not None else None
    row.joined = msg.joined
    row.minutes = msg.minutes
    row.final = msg.final
    row.recorded_at = msg.occurred_at
    if msg.joined and day is not None:
        await _participated(
            session,
            msg.company_id,
            day.session_id,
            user_id=user_id,
            email=email if user_id is None else None,
            matched_by=msg.matched_by,
        )


@functools.cache
def _link_statement(dialect: str) -> Any:
    """:func:`_meeting_link`'s upsert, built once per dialect (every value bound)."""
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    table: Any = MeetingLink.__table__
    row = table.c
    names = ("day_id", "company_id", "join_url", "version", "seq")
    stmt = insert(table).values({**{name: bindparam(name) for name in names}, "changes": 1})
    new = stmt.excluded
    return stmt.on_conflict_do_update(
        index_elements=[row.day_id],
        set_={
            "join_url": new.join_url,
            "version": new.version,
            "seq": new.seq,
            "changes": row.changes
            + case((row.join_url.is_distinct_from(new.join_url), 1), else_=0),
        },
        where=and_(
            row.company_id == new.company_id,
            or_(
                row.version < new.version,
                and_(row.version == new.version, row.seq <= new.seq),
            ),
        ),
    )


def _meeting_link(msg: c.MeetingData) -> tuple[Any, dict[str, Any]]:
    """A zoom day's shared join link (for the calendar feed) as catalog shows it, while a
    meeting stands at Zoom (a failed change keeps it, :func:`te_shared.rules.meeting_join_link`):
    the newest day version wins, and within one the later announcement (``seq``: each kind of
    message comes on a queue of its own); ``changes`` counts the link's changes (the calendar's
    SEQUENCE). One upsert, with the inbox record one statement on PostgreSQL: a duplicate is
    not newer than itself, and changes nothing."""
    params = {
        "day_id": msg.day_id,
        "company_id": msg.company_id,
        "join_url": meeting_join_link(msg.state, msg.join_url),
        "version": msg.version,
        "seq": msg.seq,
    }
    return _link_statement("postgresql"), params


async def _meeting_link_in_a_transaction(session: AsyncSession, msg: c.MeetingData) -> None:
    _, params = _meeting_link(msg)
    await session.execute(_link_statement(session.get_bind().dialect.name), params)


for _state in c.MEETING_STATES:
    consumers.statement(_state, gated=False, in_transaction=_meeting_link_in_a_transaction)(
        _meeting_link
    )
