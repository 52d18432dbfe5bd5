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
    #: with ``start_url``: true when Zoom handed it out just now; false when Zoom could not be
    #: asked and the stored one is served (it may have expired: Zoom's last about 2 hours)
    start_url_fresh: bool | None = None
    recordings: list[RecordingOut] | None = None
    #: why the meeting failed (``failed``), or why Zoom has not got the day's latest version
    #: yet and when it is tried again (Zoom's daily limit reached, for instance)
    error: str | None = None
