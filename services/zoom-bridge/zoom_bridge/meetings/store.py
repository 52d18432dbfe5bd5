"""What the meeting jobs read and write, each method one transaction of its own: the Zoom
calls happen between them, never inside one (a slow Zoom never holds a row lock or a
connection), and what a method commits is what the next attempt starts from."""

from __future__ import annotations

import datetime as dt
import functools
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, bindparam, case, delete, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from te_shared import contracts as c
from te_shared import rules
from te_shared.db import alone, read_only, utcnow
from te_shared.logging import get_logger
from te_shared.outbox import add_message
from zoom_bridge.crypto import TokenCipher
from zoom_bridge.meetings import jobs
from zoom_bridge.meetings.plan import Marker, Registered, RegistrantSnapshot, Seat, Snapshot
from zoom_bridge.models import (
    CompanyReplica,
    Enrollment,
    MeetingRegistrant,
    OutboxRecord,
    ZoomAccount,
    ZoomJob,
    ZoomMeeting,
)
from zoom_bridge.settings import ZoomBridgeSettings
from zoom_bridge.zoom.api import Meeting, Registration
from zoom_bridge.zoom.client import read_with_job

log = get_logger(__name__)


@functools.cache
def _snapshot_statement() -> Any:
    """:func:`read_snapshot`'s statement, built once (``day_id`` bound)."""
    return (
        select(ZoomMeeting, ZoomAccount, CompanyReplica)
        .outerjoin(ZoomAccount, ZoomAccount.id == ZoomMeeting.account_id)
        .outerjoin(CompanyReplica, CompanyReplica.company_id == ZoomMeeting.company_id)
        .where(ZoomMeeting.day_id == bindparam("day_id"))
    )


@functools.cache
def _registrant_statements() -> tuple[Any, Any, Any]:
    """:meth:`MeetingStore.registrant_snapshot`'s three reads, built once (``day_id``, and
    ``company_id`` and ``session_id`` for the seats, bound): the day's meeting with the
    account that holds it, the session's seat holders with an e-mail, the registrants."""
    holder = func.coalesce(ZoomMeeting.meeting_account_id, ZoomMeeting.account_id)
    meeting = (
        select(ZoomMeeting, ZoomAccount)
        .outerjoin(ZoomAccount, ZoomAccount.id == holder)
        .where(ZoomMeeting.day_id == bindparam("day_id"))
    )
    seats = select(Enrollment.enrollment_id, Enrollment.email).where(
        Enrollment.company_id == bindparam("company_id"),
        Enrollment.session_id == bindparam("session_id"),
        Enrollment.status.in_(sorted(rules.JOIN_LINK)),
        Enrollment.email.is_not(None),
    )
    registered = select(
        MeetingRegistrant.enrollment_id,
        MeetingRegistrant.zoom_meeting_id,
        MeetingRegistrant.zoom_registrant_id,
        MeetingRegistrant.email,
    ).where(MeetingRegistrant.day_id == bindparam("day_id"))
    return meeting, seats, registered


@functools.cache
def _marker_statement() -> Any:
    """:meth:`MeetingStore.set_marker`'s statement, built once (``marked_day`` and the three
    ``create_*`` columns bound)."""
    return (
        update(ZoomMeeting)
        .where(ZoomMeeting.day_id == bindparam("marked_day"))
        .values(
            create_account_id=bindparam("create_account_id"),
            create_sent_at=bindparam("create_sent_at"),
            create_settles_at=bindparam("create_settles_at"),
        )
        .execution_options(synchronize_session=False)
    )


#: what a day message says of the day's meeting (the values of :func:`record_day`)
DAY_COLUMNS = ("day_id", "company_id", "session_id", "event_id", "version", "desired")
#: ... and, for a zoom day, what Zoom's meeting is made of (kept as they were for another day)
MEETING_COLUMNS = (
    "account_id",
    "organizer_user_id",
    "auto_recording",
    "topic",
    "start",
    "end",
    "timezone",
)


@dataclass(frozen=True)
class DayRecorded:
    """The day's meeting as a newer day message left it: what :func:`record_day` returns."""

    desired: str
    zoom_meeting_id: str | None
    #: the unanswered create's account and settle time, when one is marked
    create_account_id: uuid.UUID | None
    create_settles_at: dt.datetime | None


@functools.cache
def _day_statement(dialect: str) -> Any:
    """:func:`record_day`'s upsert, built once per dialect (every column of
    :data:`DAY_COLUMNS` and :data:`MEETING_COLUMNS` bound)."""
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    table: Any = ZoomMeeting.__table__
    row = table.c
    stmt = insert(table).values(
        {
            **{name: bindparam(name) for name in (*DAY_COLUMNS, *MEETING_COLUMNS)},
            "status": c.MeetingStatus.PENDING.value,
            "synced_version": 0,
            "ended": False,
        }
    )
    new = stmt.excluded
    present = new.desired == "present"
    # R-ZOOM-8: a meeting Zoom never made (a failed create too) is pending again
    again = and_(present, row.zoom_meeting_id.is_(None))
    return stmt.on_conflict_do_update(
        index_elements=[row.day_id],
        set_={
            "version": new.version,
            "desired": new.desired,
            **{name: case((present, new[name]), else_=row[name]) for name in MEETING_COLUMNS},
            "status": case((again, c.MeetingStatus.PENDING.value), else_=row.status),
            "error": case((again, None), else_=row.error),
        },
        where=row.version < new.version,
    ).returning(row.desired, row.zoom_meeting_id, row.create_account_id, row.create_settles_at)


async def record_day(session: AsyncSession, values: dict[str, Any]) -> DayRecorded | None:
    """Keep what a day message says of the day's meeting (``values``: every column of
    :data:`DAY_COLUMNS` and :data:`MEETING_COLUMNS`) when it is newer than what is kept, and
    return the meeting as it is now; None for a stale message (nothing changed). One statement
    (an upsert, ``RETURNING``), on the path of every new meeting's join link: a new day's row
    is inserted, a known one changed under its row lock, and two deliveries of one day cannot
    both insert it. A day that is no zoom day any more keeps its meeting's fields (the meeting
    still to delete is made of them)."""
    statement = _day_statement(session.get_bind().dialect.name)
    found = (await session.execute(statement, values)).one_or_none()
    if found is None:
        return None
    return DayRecorded(*found)


async def read_snapshot(session: AsyncSession, day_id: uuid.UUID) -> Snapshot | None:
    """The day's meeting as the planner sees it (within the caller's transaction): the
    meeting, its account and its company's settings in one statement (a sync's first step)."""
    found = (await session.execute(_snapshot_statement(), {"day_id": day_id})).one_or_none()
    if found is None:
        return None
    meeting, account, company = found
    connected = account is not None and account.company_id == meeting.company_id
    role = account.role if account is not None and connected else None
    if account is not None and role:
        read_with_job(account)  # the job's calls on it need not read its token again
    marker = None
    if meeting.create_account_id is not None:
        marker = Marker(
            meeting.create_account_id, meeting.create_sent_at, meeting.create_settles_at
        )
    return Snapshot(
        day_id=meeting.day_id,
        company_id=meeting.company_id,
        version=meeting.version,
        desired=meeting.desired,
        account_id=account.id if account is not None and role else None,
        account_role=role,
        needs_reconnect=bool(account is not None and account.needs_reconnect),
        zoom_meeting_id=meeting.zoom_meeting_id,
        meeting_account_id=meeting.meeting_account_id or meeting.account_id,
        linked=meeting.zoom_meeting_id is None or meeting.join_url is not None,
        synced_version=meeting.synced_version,
        unanswered=marker,
        topic=meeting.topic,
        start=meeting.start,
        end=meeting.end,
        timezone=meeting.timezone,
        auto_recording=meeting.auto_recording,
        training_module=rules.training_module(company.training_module_enabled if company else None),
    )


@dataclass(frozen=True)
class VerifyState:
    """For the ``verify`` job: the unanswered create to verify, the stored meeting on its
    account (to keep) and whether a sync of the day is pending."""

    unanswered: Marker | None
    keep: str | None
    syncing: bool


class MeetingStore:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        settings: ZoomBridgeSettings,
        cipher: TokenCipher,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.settings = settings
        self.cipher = cipher

    # ---- jobs ----------------------------------------------------------------------------------

    async def snapshot(self, day_id: uuid.UUID) -> Snapshot | None:
        async with read_only(self.sessionmaker) as session:
            return await read_snapshot(session, day_id)

    async def finish(self, claimed: jobs.Claimed) -> None:
        await jobs.finish_alone(self.sessionmaker, claimed)

    async def wait(self, claimed: jobs.Claimed, delay: float, reason: str) -> None:
        """Run the job again after ``delay``: a wait, not a failure (neither an attempt nor
        part of the retry budget)."""
        async with self.sessionmaker() as session, session.begin():
            await jobs.retry_later(session, claimed, delay, reason, waited_as_asked=True)

    async def retry(self, claimed: jobs.Claimed, delay: float, error: str) -> bool:
        """Run the job again after ``delay``, within the retry budget; False once it is spent
        (the job is left alone)."""
        async with self.sessionmaker() as session, session.begin():
            return await jobs.retry_later(
                session,
                claimed,
                delay,
                error,
                budget_seconds=self.settings.zoom_retry_budget_seconds,
            )

    async def park(self, claimed: jobs.Claimed, delay: float, reason: str) -> None:
        """Zoom accepts nothing of the kind before a time it named (its daily limit): run the
        job again then, outside the retry budget (the wait moves the budget's end on, and is
        no attempt). A ``sync`` job's meeting keeps its status (pending while Zoom never made
        it) and says why and until when in its ``error``; one not at Zoom is announced so
        (``MeetingPending``), or catalog would show it as deleted or pending without a word."""
        async with self.sessionmaker() as session, session.begin():
            await jobs.retry_later(
                session,
                claimed,
                delay,
                reason,
                budget_seconds=self.settings.zoom_retry_budget_seconds,
                waited_as_asked=True,
            )
            meeting = await locked(session, claimed.day_id)
            if meeting is not None and claimed.kind == jobs.SYNC:
                meeting.error = reason
                if meeting.zoom_meeting_id is None and meeting.desired == "present":
                    # nothing at Zoom yet: the day shows why it has no link, and until when
                    _announce(session, meeting, c.MeetingPending, meeting.version, reason=reason)

    async def fail(self, claimed: jobs.Claimed, reason: str) -> None:
        """The job ends; a ``sync`` job's meeting is failed with the reason, visibly
        (R-ZOOM-8). A later change of the day, or the admin's retry, arms it again."""
        async with self.sessionmaker() as session, session.begin():
            meeting = await locked(session, claimed.day_id)
            if meeting is not None and claimed.kind == jobs.SYNC:
                meeting.status = c.MeetingStatus.FAILED.value
                meeting.error = reason
                _announce(
                    session,
                    meeting,
                    c.MeetingFailed,
                    meeting.version,
                    zoom_meeting_id=meeting.zoom_meeting_id,
                    join_url=meeting.join_url,
                    start_time=meeting.start,
                    error=reason,
                )
            await jobs.finish(session, claimed)

    # ---- the day's meeting ---------------------------------------------------------------------

    async def set_marker(self, day_id: uuid.UUID, marker: Marker | None) -> None:
        """Mark (or unmark) a create that may be made without its answer reaching us: one
        statement, committed before the POST it guards (it is on the path of every new
        meeting's join link)."""
        await alone(
            self.sessionmaker,
            _marker_statement(),
            {
                "marked_day": day_id,
                "create_account_id": marker.account_id if marker else None,
                "create_sent_at": marker.sent_at if marker else None,
                "create_settles_at": marker.settles_at if marker else None,
            },
        )

    async def forget_meeting(self, day_id: uuid.UUID, *, deleted_at_zoom: bool = False) -> None:
        """The stored Zoom meeting is gone (deleted, or on another account): forget it. One
        Zoom says it deleted (its host did, the notification lost) is remembered as gone, as
        :func:`forget_gone` does."""
        async with self.sessionmaker() as session, session.begin():
            meeting = await locked(session, day_id)
            if meeting is not None:
                if deleted_at_zoom:
                    _remember_gone(session, meeting)
                _forget_links(meeting)

    async def meeting_gone(self, day_id: uuid.UUID, zoom_meeting_id: str) -> None:
        """Zoom says the day's meeting does not exist (deleted at Zoom): forget it and arm the
        day's sync, which creates it again."""
        async with self.sessionmaker() as session, session.begin():
            meeting = await locked(session, day_id)
            if meeting is None or meeting.zoom_meeting_id != zoom_meeting_id:
                return
            await forget_gone(session, meeting)

    async def save(
        self,
        claimed: jobs.Claimed,
        snap: Snapshot,
        *,
        created: Meeting | None = None,
        updated: bool = False,
        deleted: bool = False,
        uncertain: Marker | None = None,
    ) -> None:
        """Store what Zoom now holds and announce it. After a meeting was created (or deleted)
        with an unanswered create behind it (``uncertain``), that create stays marked and the
        ``verify`` job is armed to delete any second meeting it makes later."""
        async with self.sessionmaker() as session, session.begin():
            meeting = await locked(session, claimed.day_id)
            if meeting is None:
                return
            meeting.error = None
            # the jobs are armed once the meeting's row is all set: arming is a statement of
            # its own, which flushes the row, and a change after it would be a second UPDATE
            arm: list[tuple[str, float]] = []
            if created is not None or deleted:
                meeting.create_account_id = uncertain.account_id if uncertain else None
                meeting.create_sent_at = uncertain.sent_at if uncertain else None
                meeting.create_settles_at = uncertain.settles_at if uncertain else None
                if uncertain is not None:
                    arm.append((jobs.VERIFY, self.settings.zoom_create_verify_delay_seconds))
            if deleted:
                # the meeting's registrants went with it
                await session.execute(
                    delete(MeetingRegistrant).where(MeetingRegistrant.day_id == meeting.day_id)
                )
                meeting.status = c.MeetingStatus.DELETED.value
                message = _announce(
                    session,
                    meeting,
                    c.MeetingDeleted,
                    snap.version,
                    zoom_meeting_id=snap.zoom_meeting_id,
                )
                _forget_links(meeting)
            else:
                if created is not None:
                    meeting.zoom_meeting_id = created.id
                    meeting.meeting_account_id = snap.account_id
                    meeting.join_url = created.join_url
                    meeting.start_url_enc = (
                        self.cipher.encrypt(created.start_url) if created.start_url else None
                    )
                # R-ZOOM-3: the body switched registration as the role says; a new meeting,
                # or one whose registration changed, needs its registrants seen to
                changed = meeting.registration != snap.administrator
                meeting.registration = snap.administrator
                if (created is not None and snap.administrator) or changed:
                    arm.append((jobs.REGISTRANTS, 0.0))
                meeting.status = c.MeetingStatus.CREATED.value
                kind = c.MeetingCreated if created is not None else c.MeetingUpdated
                message = _announce(
                    session,
                    meeting,
                    kind,
                    snap.version,
                    zoom_meeting_id=meeting.zoom_meeting_id,
                    join_url=meeting.join_url,
                    start_time=meeting.start,
                )
            meeting.synced_version = snap.version
            for job, delay in arm:
                await jobs.arm(session, meeting.day_id, job, delay=delay)
            await jobs.finish(session, claimed)
        log.info("zoom_meeting_synced", day_id=str(claimed.day_id), kind=type(message).__name__)

    # ---- verification of an unanswered create --------------------------------------------------

    async def verify_state(self, day_id: uuid.UUID) -> VerifyState:
        async with self.sessionmaker() as session, session.begin():
            meeting = await session.get(ZoomMeeting, day_id)
            syncing = await session.get(ZoomJob, (day_id, jobs.SYNC)) is not None
            if meeting is None or meeting.create_account_id is None:
                return VerifyState(None, None, syncing)
            marker = Marker(
                meeting.create_account_id, meeting.create_sent_at, meeting.create_settles_at
            )
            on_account = meeting.meeting_account_id == meeting.create_account_id
            keep = meeting.zoom_meeting_id if on_account else None
            return VerifyState(marker, keep, syncing)

    async def verified(
        self, claimed: jobs.Claimed, unanswered: Marker, *, again_in: float | None
    ) -> None:
        """A verification pass is done: the next one runs ``again_in`` seconds later, or (the
        last pass) the mark is cleared, unless the day's create was marked anew meanwhile."""
        async with self.sessionmaker() as session, session.begin():
            if again_in is not None:
                await jobs.next_step(session, claimed, again_in)
                return
            meeting = await locked(session, claimed.day_id)
            job = await session.get(ZoomJob, (claimed.day_id, claimed.kind))
            current = job is not None and job.generation == claimed.generation
            if meeting is not None and current and meeting.create_sent_at == unanswered.sent_at:
                meeting.create_account_id = None
                meeting.create_sent_at = None
                meeting.create_settles_at = None
            await jobs.finish(session, claimed)

    # ---- registrants ---------------------------------------------------------------------------

    async def registrant_snapshot(self, day_id: uuid.UUID) -> RegistrantSnapshot | None:
        """Reads only (no transaction: under READ COMMITTED each statement sees its own
        snapshot either way): the meeting with the account that holds it, the seat holders,
        the registrants."""
        meeting_of, seats_of, registered_of = _registrant_statements()
        async with read_only(self.sessionmaker) as session:
            found = (await session.execute(meeting_of, {"day_id": day_id})).one_or_none()
            if found is None:
                return None
            meeting, account = found
            usable = (
                account is not None
                and account.company_id == meeting.company_id
                and not account.needs_reconnect
            )
            if account is not None and usable:
                read_with_job(account)
            seats = await session.execute(
                seats_of, {"company_id": meeting.company_id, "session_id": meeting.session_id}
            )
            registered = await session.execute(registered_of, {"day_id": day_id})
            return RegistrantSnapshot(
                day_id=day_id,
                present=meeting.desired == "present",
                zoom_meeting_id=meeting.zoom_meeting_id,
                account_id=account.id if account is not None and usable else None,
                administrator=account is not None
                and account.role == c.ZoomAccountRole.ADMINISTRATOR,
                registration=meeting.registration,
                seats=tuple(Seat(e_id, str(email)) for e_id, email in seats.all()),
                registered=tuple(Registered(*row) for row in registered),
            )

    async def set_registration(self, day_id: uuid.UUID, zoom_meeting_id: str, on: bool) -> None:
        """The meeting takes registrants (or no longer does), as Zoom was just told."""
        async with self.sessionmaker() as session, session.begin():
            meeting = await locked(session, day_id)
            if meeting is not None and meeting.zoom_meeting_id == zoom_meeting_id:
                meeting.registration = on

    async def save_registrant(
        self, day_id: uuid.UUID, seat: Seat, zoom_meeting_id: str, registration: Registration
    ) -> bool:
        """Keep a registration Zoom just made, with the personal link encrypted; not when the
        day's meeting changed meanwhile (the new one registers everyone again)."""
        async with self.sessionmaker() as session, session.begin():
            meeting = await session.get(ZoomMeeting, day_id)
            if meeting is None or meeting.zoom_meeting_id != zoom_meeting_id:
                return False
            row = await session.get(MeetingRegistrant, (day_id, seat.enrollment_id))
            if row is None:
                row = MeetingRegistrant(day_id=day_id, enrollment_id=seat.enrollment_id)
                session.add(row)
            row.company_id = meeting.company_id
            row.zoom_meeting_id = zoom_meeting_id
            row.zoom_registrant_id = registration.registrant_id
            row.join_url_enc = self.cipher.encrypt(registration.join_url)
            row.email = seat.email
            row.registered_at = utcnow()
            return True

    async def drop_registrants(
        self, day_id: uuid.UUID, gone: tuple[Registered, ...] | list[Registered]
    ) -> None:
        """Forget registrations (removed at Zoom, or their meeting is gone); a row registered
        again meanwhile (another registrant id) stays."""
        async with self.sessionmaker() as session, session.begin():
            for item in gone:
                await session.execute(
                    delete(MeetingRegistrant).where(
                        MeetingRegistrant.day_id == day_id,
                        MeetingRegistrant.enrollment_id == item.enrollment_id,
                        MeetingRegistrant.zoom_registrant_id == item.registrant_id,
                    )
                )


async def locked(session: AsyncSession, day_id: uuid.UUID) -> ZoomMeeting | None:
    """The day's meeting, its row locked until the transaction ends (``FOR UPDATE`` on
    PostgreSQL). Every change of what the bridge holds of a meeting (its links, status, the
    ``seq`` of its announcements) is read and written under this lock, whichever worker or
    replica makes it: a job storing what Zoom did, a webhook telling what someone did at Zoom.
    Unlocked, two of them read the same row, and the second to commit wrote over the first
    (two announcements with one ``seq``, of which catalog keeps whichever it consumes last)."""
    return await session.get(ZoomMeeting, day_id, with_for_update=True)


async def lock(session: AsyncSession, meeting: ZoomMeeting) -> None:
    """``meeting``, read before without a lock, read again locked (see :func:`locked`); what
    the session changed so far is written first, or the read would drop it."""
    await session.flush()
    await session.refresh(meeting, with_for_update=True)


async def forget_gone(session: AsyncSession, meeting: ZoomMeeting) -> None:
    """``meeting`` no longer exists at Zoom: forget it (its links too) and, while the day wants
    a meeting, arm the day's sync, which makes a new one (and the registrants job, once it is
    stored, registers the seat holders for it). It is remembered as gone: recovered from
    Zoom's trash before the new one is made, it is the day's again (:func:`take_back`)."""
    _remember_gone(session, meeting)
    _forget_links(meeting)
    if meeting.desired == "present":
        meeting.status = c.MeetingStatus.PENDING.value
        await jobs.arm(session, meeting.day_id, jobs.SYNC)


def _remember_gone(session: AsyncSession, meeting: ZoomMeeting) -> None:
    """The day's meeting was deleted at Zoom: remembered (:func:`take_back`), and announced
    gone while the day wants one, so that catalog and the calendar feed stop showing a link
    that leads nowhere until the day has a meeting again (made at once, or held back by
    Zoom's daily limit until the next UTC day)."""
    if meeting.zoom_meeting_id is None:
        return
    meeting.gone_zoom_meeting_id = meeting.zoom_meeting_id
    meeting.gone_account_id = meeting.meeting_account_id or meeting.account_id
    if meeting.desired == "present":
        _announce(
            session,
            meeting,
            c.MeetingDeleted,
            meeting.version,
            zoom_meeting_id=meeting.zoom_meeting_id,
        )


def _announce(
    session: AsyncSession,
    meeting: ZoomMeeting,
    kind: type[c.MeetingData],
    version: int,
    **fields: Any,
) -> c.MeetingData:
    """Put a ``Meeting*`` message of the day in the outbox, with the next ``seq`` (one higher
    each time: each kind comes on a queue of its own, and consumers order those of one day
    version by it). Every announcement of a day's meeting goes through here."""
    meeting.announced = (meeting.announced or 0) + 1
    message = kind(
        company_id=meeting.company_id,
        day_id=meeting.day_id,
        session_id=meeting.session_id,
        event_id=meeting.event_id,
        version=version,
        seq=meeting.announced,
        **fields,
    )
    add_message(session, OutboxRecord, message)
    return message


async def take_back(session: AsyncSession, meeting: ZoomMeeting) -> None:
    """The meeting remembered as gone (:func:`forget_gone`) was recovered from Zoom's trash
    and the day has no other: it is the day's meeting again. Its links were forgotten, so the
    day's sync patches it to the day and reads it back (:class:`.plan.TakeBack`), and announces
    it as a new meeting."""
    meeting.zoom_meeting_id = meeting.gone_zoom_meeting_id
    meeting.meeting_account_id = meeting.gone_account_id
    meeting.gone_zoom_meeting_id = meeting.gone_account_id = None
    meeting.status = c.MeetingStatus.PENDING.value
    meeting.error = None
    await jobs.arm(session, meeting.day_id, jobs.SYNC)


async def forget_registration(
    session: AsyncSession, meeting: ZoomMeeting, registrant_id: str
) -> bool:
    """A registration of ``meeting`` ended at Zoom (cancelled or denied there): its personal
    link admits nobody, so it is forgotten and the day's registrants job armed, which registers
    the seat holder again (a new registrant, a new link, Zoom's e-mail). False when no stored
    registration of this meeting has that id: the bridge's own removal, or a registration
    already made again."""
    if meeting.zoom_meeting_id is None or not registrant_id:
        return False
    forgotten = await session.execute(
        delete(MeetingRegistrant).where(
            MeetingRegistrant.day_id == meeting.day_id,
            MeetingRegistrant.zoom_meeting_id == meeting.zoom_meeting_id,
            MeetingRegistrant.zoom_registrant_id == registrant_id,
        )
    )
    if not getattr(forgotten, "rowcount", 0):
        return False
    await jobs.arm(session, meeting.day_id, jobs.REGISTRANTS)
    return True


def _forget_links(meeting: ZoomMeeting) -> None:
    """The stored Zoom meeting is no more (deleted, gone at Zoom, or on another account)."""
    meeting.zoom_meeting_id = None
    meeting.meeting_account_id = None
    meeting.join_url = None
    meeting.start_url_enc = None
