from __future__ import annotations

import datetime as dt
from typing import Literal

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
    error: str | None = None
    #: for admins and the organizer, once the day's attendance was reconciled after the
    #: meeting ended: ``report`` when Zoom's participants report covered every instance,
    #: ``webhooks`` when it was unavailable (then ``report_unavailable_reason`` says why)
    attendance_source: Literal["report", "webhooks"] | None = None
    report_unavailable_reason: str | None = None
