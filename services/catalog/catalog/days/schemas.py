from __future__ import annotations

import datetime as dt
import uuid
from typing import Literal

from pydantic import BaseModel, Field

from catalog.validation import Body, Instant
from te_shared.contracts import DayFormat, ZoomAccountRole


class ZoomIn(Body):
    """R-DAY-9: the Zoom settings of a zoom day."""

    account_id: uuid.UUID
    account_role: ZoomAccountRole = ZoomAccountRole.ADMINISTRATOR
    organizer_user_id: str = Field(min_length=1, max_length=200)
    auto_recording: bool = False


class DayIn(Body):
    format: DayFormat
    start: Instant | None = None
    end: Instant | None = None
    address: str | None = Field(default=None, max_length=2000)
    url: str | None = Field(default=None, max_length=2000)
    zoom: ZoomIn | None = None


class DayPatch(Body):
    format: DayFormat | None = None
    start: Instant | None = None
    end: Instant | None = None
    address: str | None = Field(default=None, max_length=2000)
    url: str | None = Field(default=None, max_length=2000)
    zoom: ZoomIn | None = None


class MeetingOut(BaseModel):
    status: Literal["pending", "created", "failed", "deleted"]
    join_url: str | None = None
    error: str | None = None


class RecordingOut(BaseModel):
    file_type: str
    play_url: str
    recording_start: dt.datetime | None = None
    recording_end: dt.datetime | None = None


class ZoomOut(BaseModel):
    account_id: uuid.UUID
    account_role: ZoomAccountRole
    organizer_user_id: str
    auto_recording: bool
    meeting: MeetingOut | None = None
    recordings: list[RecordingOut] = Field(default_factory=list)


class DayOut(BaseModel):
    id: uuid.UUID
    session_id: uuid.UUID
    format: DayFormat
    start: dt.datetime
    end: dt.datetime
    duration_minutes: int
    address: str | None
    url: str | None
    zoom: ZoomOut | None
    version: int
    warnings: list[str] = Field(default_factory=list)
