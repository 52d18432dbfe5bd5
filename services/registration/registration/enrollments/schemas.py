from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict

from te_shared.contracts import EnrollmentStatus
from te_shared.text import CleanText

#: A user id as tokens and admins name users (the ``sub`` claim), as stored (String(200)).
MAX_USER_ID = 200
UserId = Annotated[str, CleanText(MAX_USER_ID)]
#: An email address as stored (String(320)); only the ``@`` is checked, providers vary.
MAX_EMAIL = 320


def _email(value: str) -> str:
    if "@" not in value:
        raise ValueError("not an email address")
    return value


Email = Annotated[str, CleanText(MAX_EMAIL), AfterValidator(_email)]


class EnrollmentOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    session_id: uuid.UUID
    event_id: uuid.UUID
    user_id: str
    status: EnrollmentStatus


class AdminEnrollmentIn(BaseModel):
    user_id: UserId
    email: Email | None = None
    session_id: uuid.UUID


class StatusChangeIn(BaseModel):
    status: EnrollmentStatus
    reason: Annotated[str, CleanText(2000, min_length=0, multiline=True)] | None = None


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
