from __future__ import annotations

import datetime as dt
import uuid

from pydantic import BaseModel, ConfigDict, Field

from te_shared.contracts import EnrollmentStatus


class EnrollmentOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    session_id: uuid.UUID
    event_id: uuid.UUID
    user_id: str
    status: EnrollmentStatus


class AdminEnrollmentIn(BaseModel):
    user_id: str = Field(min_length=1, max_length=200)
    email: str | None = Field(default=None, max_length=320)
    session_id: uuid.UUID


class StatusChangeIn(BaseModel):
    status: EnrollmentStatus
    reason: str | None = Field(default=None, max_length=2000)


class HistoryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    at: dt.datetime
    by: str
    from_status: EnrollmentStatus | None
    to_status: EnrollmentStatus
    reason: str | None


class AttendanceOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    day_id: uuid.UUID
    joined: bool
    minutes: int | None
    final: bool


class AdminEnrollmentOut(EnrollmentOut):
    email: str | None
    created_at: dt.datetime
    updated_at: dt.datetime
    history: list[HistoryOut]
    attendance: list[AttendanceOut]


class AdminEnrollmentPage(BaseModel):
    items: list[AdminEnrollmentOut]
    next_cursor: str | None


class SeatsOut(BaseModel):
    limit_enabled: bool
    participant_limit: int | None
    taken: int
    left: int | None
    waitlisted: int


class ImportResult(BaseModel):
    imported: int
    unchanged: int
