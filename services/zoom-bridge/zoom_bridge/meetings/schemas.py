from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, Field, model_validator

from te_shared.contracts import MeetingStatus, RecordingKind, recording_kind


class RecordingOut(BaseModel):
    id: str
    file_type: str
    #: R-ZOOM-7: what the file is (only ``video`` is a video: audio-only M4A, chat and
    #: transcripts are typed as such)
    kind: RecordingKind
    play_url: str = Field(description="Zoom's play link, with the passcode (``pwd``) in it.")
    recording_start: dt.datetime | None = None
    recording_end: dt.datetime | None = None

    @model_validator(mode="before")
    @classmethod
    def _kind_of_older_files(cls, data: Any) -> Any:
        """A recording stored before files were typed gets the kind its types name."""
        if isinstance(data, dict) and not data.get("kind"):
            kind = recording_kind(data.get("file_type"), data.get("recording_type"))
            return {**data, "kind": kind}
        return data


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
    #: for admins and the organizer, once the day's attendance was reconciled after the
    #: meeting ended: ``report`` when Zoom's participants report covered every instance,
    #: ``webhooks`` when it was unavailable (then ``report_unavailable_reason`` says why)
    attendance_source: Literal["report", "webhooks"] | None = None
    report_unavailable_reason: str | None = None
