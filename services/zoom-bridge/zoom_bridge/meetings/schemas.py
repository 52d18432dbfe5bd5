from __future__ import annotations

import datetime as dt

from pydantic import BaseModel

from te_shared.contracts import MeetingStatus


class RecordingOut(BaseModel):
    id: str
    file_type: str
    play_url: str
    recording_start: dt.datetime | None = None
    recording_end: dt.datetime | None = None


class MeetingOut(BaseModel):
    status: MeetingStatus
    zoom_meeting_id: str | None
    join_url: str | None
    start_url: str | None = None
    recordings: list[RecordingOut] | None = None
    error: str | None = None
