"""Catalog's tables."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from te_shared.db import UTCDateTime, make_metadata, new_id, utcnow
from te_shared.idempotency import IdempotencyRecordMixin
from te_shared.inbox import InboxRecordMixin
from te_shared.outbox import OutboxRecordMixin


class Base(DeclarativeBase):
    metadata = make_metadata()


class OutboxRecord(OutboxRecordMixin, Base):
    pass


class InboxRecord(InboxRecordMixin, Base):
    pass


class IdempotencyRecord(IdempotencyRecordMixin, Base):
    pass


class CompanySettings(Base):
    """R-CO-1: one row per company; absent means the defaults."""

    __tablename__ = "company_settings"

    company_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    timezone: Mapped[str] = mapped_column(String(64))
    locales: Mapped[list[str]] = mapped_column(JSON())
    zoom_enabled: Mapped[bool] = mapped_column(Boolean())
    training_module_enabled: Mapped[bool] = mapped_column(Boolean())
    version: Mapped[int] = mapped_column(Integer(), default=1)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Event(Base):
    """A training; ``title`` is stored per locale."""

    __tablename__ = "events"

    id: Mapped[uuid.UUID] = mapped_column(Uuid(), primary_key=True, default=new_id)
    company_id: Mapped[str] = mapped_column(String(100), index=True)
    title: Mapped[dict[str, str]] = mapped_column(JSON())
    state: Mapped[str] = mapped_column(String(16), default="hidden")
    dated: Mapped[bool] = mapped_column(Boolean())
    requires_approval: Mapped[bool] = mapped_column(Boolean())
    version: Mapped[int] = mapped_column(Integer(), default=1)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class TrainingSession(Base):
    """A session of an event (an alternative schedule)."""

    __tablename__ = "sessions"

    id: Mapped[uuid.UUID] = mapped_column(Uuid(), primary_key=True, default=new_id)
    company_id: Mapped[str] = mapped_column(String(100), index=True)
    event_id: Mapped[uuid.UUID] = mapped_column(
        Uuid(), ForeignKey("events.id", ondelete="CASCADE"), index=True
    )
    timezone: Mapped[str] = mapped_column(String(64))
    registration_end: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    limit_enabled: Mapped[bool] = mapped_column(Boolean(), default=False)
    participant_limit: Mapped[int | None] = mapped_column(Integer(), nullable=True)
    waitlist_enabled: Mapped[bool] = mapped_column(Boolean(), default=False)
    version: Mapped[int] = mapped_column(Integer(), default=1)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class SessionName(Base):
    """R-SES-2/3: one name per locale; ``name_key`` (trimmed, case-folded) is unique per event."""

    __tablename__ = "session_names"
    __table_args__ = (UniqueConstraint("event_id", "locale", "name_key"),)

    session_id: Mapped[uuid.UUID] = mapped_column(
        Uuid(), ForeignKey("sessions.id", ondelete="CASCADE"), primary_key=True
    )
    locale: Mapped[str] = mapped_column(String(40), primary_key=True)
    event_id: Mapped[uuid.UUID] = mapped_column(Uuid())
    name: Mapped[str] = mapped_column(String(180))
    #: case folding may lengthen a name (180 x "ß" folds to 360 characters; a character folds to at
    #: most 3), so the key has no length limit of its own: any valid name fits
    name_key: Mapped[str] = mapped_column(Text())


class Day(Base):
    """One meeting of a session; zoom days also keep the bridge's meeting state."""

    __tablename__ = "days"

    id: Mapped[uuid.UUID] = mapped_column(Uuid(), primary_key=True, default=new_id)
    company_id: Mapped[str] = mapped_column(String(100), index=True)
    session_id: Mapped[uuid.UUID] = mapped_column(
        Uuid(), ForeignKey("sessions.id", ondelete="CASCADE"), index=True
    )
    format: Mapped[str] = mapped_column(String(16))
    start: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    end: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    address: Mapped[str | None] = mapped_column(Text(), nullable=True)
    url: Mapped[str | None] = mapped_column(Text(), nullable=True)
    zoom_account_id: Mapped[uuid.UUID | None] = mapped_column(Uuid(), nullable=True)
    zoom_account_role: Mapped[str | None] = mapped_column(String(16), nullable=True)
    zoom_organizer_user_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    zoom_auto_recording: Mapped[bool] = mapped_column(Boolean(), default=False)
    meeting_status: Mapped[str | None] = mapped_column(String(16), nullable=True)
    meeting_join_url: Mapped[str | None] = mapped_column(Text(), nullable=True)
    meeting_error: Mapped[str | None] = mapped_column(Text(), nullable=True)
    meeting_zoom_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    meeting_version: Mapped[int] = mapped_column(Integer(), default=0)
    #: the ``seq`` of the bridge's announcement shown (orders those of one day version)
    meeting_seq: Mapped[int] = mapped_column(Integer(), default=0, server_default="0")
    recordings: Mapped[list[dict[str, Any]]] = mapped_column(JSON(), default=list)
    #: the bridge's ``RecordingsChanged.version`` shown (0: none yet)
    recordings_version: Mapped[int] = mapped_column(Integer(), default=0, server_default="0")
    version: Mapped[int] = mapped_column(Integer(), default=1)
    #: R-DAY-8: added, in the future, to an ended session with confirmation (R-ENR-9)
    reopens_session: Mapped[bool] = mapped_column(Boolean(), default=False)


class EnrollmentSeat(Base):
    """Registration's enrollments as catalog needs them (R-SES-8 seats, R-SES-9), from
    ``EnrollmentChanged`` messages; the newest ``version`` of each enrollment wins."""

    __tablename__ = "enrollment_seats"

    enrollment_id: Mapped[uuid.UUID] = mapped_column(Uuid(), primary_key=True)
    company_id: Mapped[str] = mapped_column(String(100))
    session_id: Mapped[uuid.UUID] = mapped_column(Uuid(), index=True)
    status: Mapped[str] = mapped_column(String(32))
    version: Mapped[int] = mapped_column(Integer())


class ZoomAccountReplica(Base):
    """The zoom bridge's accounts as catalog needs them (R-DAY-9, R-ZOOM-2), from
    ``ZoomAccountChanged`` messages; the newest ``version`` of each account wins. A removed
    account stays as a row with ``connected`` false."""

    __tablename__ = "zoom_account_replica"

    account_id: Mapped[uuid.UUID] = mapped_column(Uuid(), primary_key=True)
    company_id: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(16))
    connected: Mapped[bool] = mapped_column(Boolean())
    #: Zoom no longer accepts the connection until it is connected again: no new zoom day
    needs_reconnect: Mapped[bool] = mapped_column(Boolean(), default=False)
    #: microseconds since the epoch (the bridge's), beyond a 32-bit integer
    version: Mapped[int] = mapped_column(BigInteger())
