from __future__ import annotations

import datetime as dt
import uuid
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

from te_shared.contracts import EnrollmentStatus


class Tab(StrEnum):
    AVAILABLE = "available"
    PARTICIPATING = "participating"
    COMPLETED = "completed"


class DayView(BaseModel):
    id: uuid.UUID
    format: str
    start: dt.datetime | None
    end: dt.datetime | None
    address: str | None = Field(description="Offline days: where to go (R-DAY-2).")
    url: str | None = Field(description="Online days: the link to join (R-DAY-2).")


class SessionView(BaseModel):
    id: uuid.UUID
    name: dict[str, str]
    timezone: str
    registration_end: dt.datetime | None
    registration_open: bool
    ended: bool
    limit_enabled: bool
    participant_limit: int | None = None
    taken: int | None = None
    left: int | None = None
    waitlist_enabled: bool
    days: list[DayView]


class MyEnrollment(BaseModel):
    id: uuid.UUID
    session_id: uuid.UUID
    status: EnrollmentStatus


class MyEventView(BaseModel):
    id: uuid.UUID
    title: Any
    state: str
    dated: bool
    requires_approval: bool
    tab: Tab | None
    sessions: list[SessionView]
    enrollment: MyEnrollment | None


class MyEventsPage(BaseModel):
    items: list[MyEventView]
    next_cursor: str | None


class CalendarFeedOut(BaseModel):
    url: str = Field(description="The feed's URL, with its token: keep it secret.")
