from __future__ import annotations

import datetime as dt
import uuid
from typing import Any, Literal

from pydantic import BaseModel, Field, model_validator

from catalog.validation import Address, Instant, WebLink
from te_shared.body import Body
from te_shared.contracts import DayFormat, RecordingKind, ZoomAccountRole, recording_kind
from te_shared.text import UserId


class ZoomIn(Body):
    """R-DAY-9: the Zoom settings of a zoom day. The account's role is the one the zoom bridge
    announced for it (``account_role`` in the answer), never the client's."""

    account_id: uuid.UUID = Field(
        description="A connected Zoom account of the company (as the zoom bridge announced it)."
    )
    account_role: ZoomAccountRole | None = Field(
        default=None,
        deprecated=True,
        description="Ignored: the role is the account's own, as the zoom bridge announced it.",
    )
    organizer_user_id: UserId = Field(
        description="The organizer's user id (a token's `sub`), at most 100 characters."
    )
    auto_recording: bool = False


class DayIn(Body):
    format: DayFormat
    start: Instant | None = None
    end: Instant | None = None
    address: Address | None = Field(
        default=None,
        description="Offline days (R-DAY-2): plain text, links kept as text; script, data and "
        "file links and HTML markup (`<` followed by a letter, `/`, `!` or `?`) are refused.",
    )
    url: WebLink | None = Field(
        default=None,
        description="Online days (R-DAY-2): an absolute http or https URL with a valid host.",
    )
    zoom: ZoomIn | None = None


class DayPatch(Body):
    format: DayFormat | None = None
    start: Instant | None = None
    end: Instant | None = None
    address: Address | None = Field(
        default=None,
        description="Offline days (R-DAY-2): plain text, links kept as text; script, data and "
        "file links and HTML markup (`<` followed by a letter, `/`, `!` or `?`) are refused.",
    )
    url: WebLink | None = Field(
        default=None,
        description="Online days (R-DAY-2): an absolute http or https URL with a valid host.",
    )
    zoom: ZoomIn | None = None


class MeetingOut(BaseModel):
    status: Literal["pending", "created", "failed", "deleted"]
    join_url: str | None = None
    error: str | None = None


class RecordingOut(BaseModel):
    file_type: str
    #: R-ZOOM-7: what the file is, as the zoom bridge typed it (only ``video`` is a video)
    kind: RecordingKind
    play_url: str
    recording_start: dt.datetime | None = None
    recording_end: dt.datetime | None = None

    @model_validator(mode="before")
    @classmethod
    def _kind_of_older_files(cls, data: Any) -> Any:
        """A file attached before the bridge typed them gets the kind its file type names."""
        if isinstance(data, dict) and not data.get("kind"):
            return {**data, "kind": recording_kind(data.get("file_type"))}
        return data


class ZoomOut(BaseModel):
    account_id: uuid.UUID
    account_role: ZoomAccountRole = Field(
        description="The account's role when the day got these Zoom settings (from the zoom "
        "bridge); a later role change of the account does not rewrite the day."
    )
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
