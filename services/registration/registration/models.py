"""registration's tables."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Index, Integer, String, Text, Uuid, false, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from te_shared.db import UTCDateTime, make_metadata
from te_shared.idempotency import IdempotencyRecordMixin
from te_shared.inbox import InboxRecordMixin
from te_shared.outbox import OutboxRecordMixin
from te_shared.replica import CompanyReplicaMixin


class Base(DeclarativeBase):
    metadata = make_metadata()


class OutboxRecord(OutboxRecordMixin, Base):
    pass


class InboxRecord(InboxRecordMixin, Base):
    pass


class IdempotencyRecord(IdempotencyRecordMixin, Base):
    pass


class CompanyReplica(CompanyReplicaMixin, Base):
    pass


class EventReplica(Base):
    """An event as catalog last announced it (R-ENR-1)."""

    __tablename__ = "event_replica"

    event_id: Mapped[uuid.UUID] = mapped_column(Uuid(), primary_key=True)
    company_id: Mapped[str] = mapped_column(String(100), index=True)
    title: Mapped[Any] = mapped_column(JSON())
    state: Mapped[str] = mapped_column(String(20))
    dated: Mapped[bool] = mapped_column(Boolean())
    requires_approval: Mapped[bool] = mapped_column(Boolean())
    deleted: Mapped[bool] = mapped_column(Boolean(), default=False)
    version: Mapped[int] = mapped_column(Integer())
    #: kept from its sessions (not deleted) by the handlers of events, sessions and days, so
    #: "my events" picks and orders the Available tab in SQL without a subquery per event
    #: (R-ENR-10, R-SES-10): the first start of its sessions ...
    first_start: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    #: ... and when registration closes in the last of them to close (the far future when one
    #: has no end); None when it has no session
    registration_closes: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class SessionReplica(Base):
    """A session as catalog announced it, plus this service's seat counter (R-ENR-6).

    ``taken`` is only ever changed by one conditional UPDATE (see enrollments.seats), so the
    limit holds whatever the number of replicas of this service."""

    __tablename__ = "session_replica"

    session_id: Mapped[uuid.UUID] = mapped_column(Uuid(), primary_key=True)
    company_id: Mapped[str] = mapped_column(String(100))
    event_id: Mapped[uuid.UUID] = mapped_column(Uuid(), index=True)
    name: Mapped[dict[str, str]] = mapped_column(JSON())
    timezone: Mapped[str] = mapped_column(String(64))
    registration_end: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    limit_enabled: Mapped[bool] = mapped_column(Boolean())
    participant_limit: Mapped[int | None] = mapped_column(Integer(), nullable=True)
    waitlist_enabled: Mapped[bool] = mapped_column(Boolean())
    deleted: Mapped[bool] = mapped_column(Boolean(), default=False)
    version: Mapped[int] = mapped_column(Integer())
    taken: Mapped[int] = mapped_column(Integer(), default=0, server_default="0")
    #: the start of its first day and the end of its last (days not deleted), kept by the day
    #: handlers, so "my events" picks and orders a tab's events in SQL (R-ENR-10, R-SES-10)
    first_start: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_end: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class DayReplica(Base):
    __tablename__ = "day_replica"

    day_id: Mapped[uuid.UUID] = mapped_column(Uuid(), primary_key=True)
    company_id: Mapped[str] = mapped_column(String(100))
    session_id: Mapped[uuid.UUID] = mapped_column(Uuid(), index=True)
    event_id: Mapped[uuid.UUID] = mapped_column(Uuid(), index=True)
    format: Mapped[str] = mapped_column(String(20))
    start: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    end: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    #: where to go: the venue of an offline day, the link of an online one (R-DAY-2)
    address: Mapped[str | None] = mapped_column(Text(), nullable=True)
    url: Mapped[str | None] = mapped_column(Text(), nullable=True)
    deleted: Mapped[bool] = mapped_column(Boolean(), default=False)
    version: Mapped[int] = mapped_column(Integer())
    #: R-ENR-9 was applied for this day (it reopens its session once, whichever of its
    #: messages arrives first)
    reopened: Mapped[bool] = mapped_column(Boolean(), default=False, server_default=false())


class MeetingLink(Base):
    """A zoom day's shared join link as the bridge last announced it (``Meeting*`` messages,
    the newest day version wins), for the calendar feed's LOCATION of seat holders. Kept apart
    from :class:`DayReplica` so a meeting message that overtakes its day is not lost."""

    __tablename__ = "meeting_link"

    day_id: Mapped[uuid.UUID] = mapped_column(Uuid(), primary_key=True)
    company_id: Mapped[str] = mapped_column(String(100))
    join_url: Mapped[str | None] = mapped_column(Text(), nullable=True)
    version: Mapped[int] = mapped_column(Integer())
    #: the announcement's ``seq``: orders the bridge's messages of one day version
    seq: Mapped[int] = mapped_column(Integer(), default=0, server_default="0")
    #: how many times the link changed (the calendar's SEQUENCE grows with it)
    changes: Mapped[int] = mapped_column(Integer(), default=0)


class CalendarFeed(Base):
    """A user's calendar subscription: the token is shown once and only its SHA-256 kept."""

    __tablename__ = "calendar_feed"

    company_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class Access(Base):
    """The right of a user to see an event."""

    __tablename__ = "access"
    #: "my events" looks access up by user: without it a user's view scans the company's access
    __table_args__ = (Index("ix_access_user", "company_id", "user_id", "event_id"),)

    company_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    event_id: Mapped[uuid.UUID] = mapped_column(Uuid(), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    granted_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    granted_by: Mapped[str] = mapped_column(String(200))


class KnownUser(Base):
    """Emails seen in tokens and admin input, so an import may name users by email (and a
    message about a user named by id carries their email)."""

    __tablename__ = "known_user"
    #: by user id first: led by the company, a database without planner statistics looked up
    #: e-mails on it and scanned the company's every known user (migration 0011)
    __table_args__ = (Index("ix_known_user_user", "user_id", "company_id"),)

    company_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    email: Mapped[str] = mapped_column(String(320), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(200))


LIVE_FILTER = "status <> 'cancelled'"
#: an enrollment made for an e-mail no user has signed in with yet (R-ENR-5 ruling)
UNBOUND_LIVE_FILTER = "user_id IS NULL AND status <> 'cancelled'"


class Enrollment(Base):
    """A person's place in one session. At most one live (not cancelled) per user and event.

    ``user_id`` is null while the enrollment is *unbound*: an admin enrolled (or imported) an
    e-mail no user of the company has signed in with yet. ``email`` (lowercased) then names the
    person, at most one live unbound enrollment per e-mail and event, and the enrollment is
    bound to the first user whose token carries that e-mail (``registration.binding``)."""

    __tablename__ = "enrollment"
    __table_args__ = (
        Index(
            "uq_enrollment_live",
            "company_id",
            "event_id",
            "user_id",
            unique=True,
            postgresql_where=text(LIVE_FILTER),
            sqlite_where=text(LIVE_FILTER),
        ),
        Index(
            "uq_enrollment_live_unbound",
            "company_id",
            "event_id",
            "email",
            unique=True,
            postgresql_where=text(UNBOUND_LIVE_FILTER),
            sqlite_where=text(UNBOUND_LIVE_FILTER),
        ),
        Index("ix_enrollment_unbound_email", "company_id", "email"),
        Index("ix_enrollment_session_status", "session_id", "status", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid(), primary_key=True, default=uuid.uuid4)
    company_id: Mapped[str] = mapped_column(String(100))
    event_id: Mapped[uuid.UUID] = mapped_column(Uuid())
    session_id: Mapped[uuid.UUID] = mapped_column(Uuid())
    user_id: Mapped[str | None] = mapped_column(String(200), index=True, nullable=True)
    email: Mapped[str | None] = mapped_column(String(320), nullable=True)
    status: Mapped[str] = mapped_column(String(30))
    version: Mapped[int] = mapped_column(Integer())
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class EnrollmentHistory(Base):
    """R-ENR-12: who, when, from, to, why."""

    __tablename__ = "enrollment_history"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    enrollment_id: Mapped[uuid.UUID] = mapped_column(Uuid(), index=True)
    company_id: Mapped[str] = mapped_column(String(100))
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    by: Mapped[str] = mapped_column(String(200))
    from_status: Mapped[str | None] = mapped_column(String(30), nullable=True)
    to_status: Mapped[str] = mapped_column(String(30))
    reason: Mapped[str | None] = mapped_column(Text(), nullable=True)


class PendingAttendance(Base):
    """R-ENR-11 for a person not bound yet: attendance matched by e-mail to an unbound
    enrollment (they joined Zoom without ever signing in here). Moved into
    :class:`Attendance` when the e-mail is bound to a user."""

    __tablename__ = "pending_attendance"

    company_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    day_id: Mapped[uuid.UUID] = mapped_column(Uuid(), primary_key=True)
    email: Mapped[str] = mapped_column(String(320), primary_key=True)
    event_id: Mapped[uuid.UUID | None] = mapped_column(Uuid(), nullable=True, index=True)
    joined: Mapped[bool] = mapped_column(Boolean())
    minutes: Mapped[int | None] = mapped_column(Integer(), nullable=True)
    final: Mapped[bool] = mapped_column(Boolean())
    recorded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class Attendance(Base):
    """R-ENR-11: one user's attendance of one day."""

    __tablename__ = "attendance"

    day_id: Mapped[uuid.UUID] = mapped_column(Uuid(), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    company_id: Mapped[str] = mapped_column(String(100))
    event_id: Mapped[uuid.UUID | None] = mapped_column(Uuid(), nullable=True, index=True)
    joined: Mapped[bool] = mapped_column(Boolean())
    minutes: Mapped[int | None] = mapped_column(Integer(), nullable=True)
    final: Mapped[bool] = mapped_column(Boolean())
    recorded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
