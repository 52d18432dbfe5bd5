"""Message contracts: every message that crosses the broker, with its routing key.

Routing keys follow ``<service>.<entity>.<verb>``. Every message carries ``message_id`` (the
idempotency key), ``occurred_at``, ``company_id`` and ``schema_version``; aggregate messages also
carry a per-aggregate ``version`` so consumers can ignore stale ones (order is not guaranteed).
"""

from __future__ import annotations

import datetime as dt
import uuid
from enum import StrEnum
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Message(BaseModel):
    """Envelope fields common to every message."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    routing_key: ClassVar[str]
    message_id: uuid.UUID = Field(default_factory=uuid.uuid4)
    occurred_at: dt.datetime = Field(default_factory=_now)
    company_id: str
    schema_version: int = 1


# --- catalog ---------------------------------------------------------------------------------


class EventState(StrEnum):
    HIDDEN = "hidden"
    ACTIVE = "active"


class DayFormat(StrEnum):
    OFFLINE = "offline"
    ONLINE = "online"
    ZOOM = "zoom"


class ZoomAccountRole(StrEnum):
    ADMINISTRATOR = "administrator"
    PARTICIPANT = "participant"


class CompanySettingsChanged(Message):
    routing_key: ClassVar[str] = "catalog.company.settings_changed"
    version: int
    timezone: str
    locales: list[str]
    zoom_enabled: bool
    training_module_enabled: bool


class EventChanged(Message):
    """An event was created or changed (title, state, flags)."""

    routing_key: ClassVar[str] = "catalog.event.changed"
    event_id: uuid.UUID
    version: int
    title: dict[str, str] | str
    state: EventState
    dated: bool
    requires_approval: bool
    deleted: bool = False


class SessionData(Message):
    session_id: uuid.UUID
    event_id: uuid.UUID
    version: int
    name: dict[str, str]
    timezone: str
    registration_end: dt.datetime | None
    limit_enabled: bool
    participant_limit: int | None
    waitlist_enabled: bool


class SessionCreated(SessionData):
    routing_key: ClassVar[str] = "catalog.session.created"


class SessionUpdated(SessionData):
    routing_key: ClassVar[str] = "catalog.session.updated"


class SessionDeleted(Message):
    routing_key: ClassVar[str] = "catalog.session.deleted"
    session_id: uuid.UUID
    event_id: uuid.UUID
    version: int


class ZoomDaySettings(BaseModel):
    model_config = ConfigDict(frozen=True)

    account_id: uuid.UUID
    organizer_user_id: str
    auto_recording: bool = False


class DayData(Message):
    """A day as catalog holds it: what consumers need to show it (place, link) and to keep a
    Zoom meeting in step (times, time zone, topic, zoom settings)."""

    day_id: uuid.UUID
    session_id: uuid.UUID
    event_id: uuid.UUID
    version: int
    format: DayFormat
    start: dt.datetime
    end: dt.datetime
    timezone: str
    topic: str
    zoom: ZoomDaySettings | None = None
    address: str | None = Field(default=None, description="offline days: the venue (R-DAY-2)")
    url: str | None = Field(default=None, description="online days: the link (R-DAY-2)")
    confirmed_after_session_end: bool = Field(
        default=False,
        description="R-DAY-8: the day was added, in the future, to an ended session with "
        "confirmation (R-ENR-9). Every message of the day carries it, so a consumer that sees a "
        "later change of the day first still knows.",
    )


class DayScheduled(DayData):
    routing_key: ClassVar[str] = "catalog.day.scheduled"


class DayRescheduled(DayData):
    """The day changed: its times, or anything else it carries (address, link, zoom settings,
    the topic through the event's title). Consumers keep the newest ``version``."""

    routing_key: ClassVar[str] = "catalog.day.rescheduled"


class DayCancelled(Message):
    """The day was deleted (alone or with its session). It carries the day as it last was, so a
    consumer that never saw it scheduled still knows what went away."""

    routing_key: ClassVar[str] = "catalog.day.cancelled"
    day_id: uuid.UUID
    session_id: uuid.UUID
    event_id: uuid.UUID
    version: int
    format: DayFormat
    start: dt.datetime | None = None
    end: dt.datetime | None = None
    timezone: str | None = None
    topic: str | None = None
    zoom: ZoomDaySettings | None = None


# --- registration ----------------------------------------------------------------------------


class EnrollmentStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    WAITLISTED = "waitlisted"
    DENIED = "denied"
    CANCELLED = "cancelled"
    AWAITING_CONFIRMATION = "awaiting_confirmation"
    PARTICIPATED = "participated"
    MISSED = "missed"


class EnrollmentChanged(Message):
    routing_key: ClassVar[str] = "registration.enrollment.changed"
    enrollment_id: uuid.UUID
    event_id: uuid.UUID
    session_id: uuid.UUID
    user_id: str | None = Field(
        description="Null while the enrollment is not bound to a user yet: an admin enrolled an "
        "e-mail nobody has signed in with (``email`` then names the person). A later version "
        "of the same enrollment carries the user once they sign in."
    )
    email: str | None
    status: EnrollmentStatus
    previous_status: EnrollmentStatus | None
    version: int
    by: str | None = Field(
        default=None,
        description="Who made the change (R-ENR-12's history): the user id of the user or admin "
        "whose request it was, or ``system`` (a waitlist promotion, a binding at sign-in, a "
        "deleted session). Null only in messages from before it was added.",
    )
    reason: str | None = Field(
        default=None,
        description="Why, as the history keeps it: ``sign-up``, ``import``, an admin's reason, "
        "``R-ENR-7 promoted from the waitlist`` ...; null when none was given.",
    )


class AccessGranted(Message):
    routing_key: ClassVar[str] = "registration.access.granted"
    event_id: uuid.UUID
    user_ids: list[str]


# --- zoom-bridge -----------------------------------------------------------------------------


class MeetingStatus(StrEnum):
    PENDING = "pending"
    CREATED = "created"
    FAILED = "failed"
    DELETED = "deleted"


class MeetingData(Message):
    day_id: uuid.UUID
    version: int = Field(description="The day version this meeting state reflects.")
    seq: int = Field(
        default=0,
        ge=0,
        description="Orders the bridge's announcements of the day's meeting: one higher each "
        "time. Each kind of message comes on a queue of its own, so two of one day version "
        "(a meeting deleted at Zoom, then made again) may be consumed in either order: the "
        "higher wins. 0 from a bridge older than it.",
    )
    zoom_meeting_id: str | None = None
    join_url: str | None = None
    start_time: dt.datetime | None = None
    session_id: uuid.UUID | None = Field(
        default=None, description="The day's session. None from a bridge older than it."
    )
    event_id: uuid.UUID | None = Field(
        default=None, description="The day's event. None from a bridge older than it."
    )

    @property
    def state(self) -> MeetingStatus:
        """The meeting state this message announces: each kind fixes its own ``status``."""
        return MeetingStatus(getattr(self, "status", MeetingStatus.CREATED))


class MeetingCreated(MeetingData):
    routing_key: ClassVar[str] = "zoom-bridge.meeting.created"
    status: Literal[MeetingStatus.CREATED] = MeetingStatus.CREATED


class MeetingUpdated(MeetingData):
    routing_key: ClassVar[str] = "zoom-bridge.meeting.updated"
    status: Literal[MeetingStatus.CREATED] = MeetingStatus.CREATED


class MeetingFailed(MeetingData):
    routing_key: ClassVar[str] = "zoom-bridge.meeting.failed"
    status: Literal[MeetingStatus.FAILED] = MeetingStatus.FAILED
    error: str


class MeetingDeleted(MeetingData):
    routing_key: ClassVar[str] = "zoom-bridge.meeting.deleted"
    status: Literal[MeetingStatus.DELETED] = MeetingStatus.DELETED


class MeetingPending(MeetingData):
    """The day has no meeting at Zoom yet and the bridge waits before making it: Zoom's daily
    limit for the day's Zoom user is reached (R-ZOOM-8). The day shows no join link; the
    meeting is made when Zoom accepts again, and announced then (``MeetingCreated``)."""

    routing_key: ClassVar[str] = "zoom-bridge.meeting.pending"
    status: Literal[MeetingStatus.PENDING] = MeetingStatus.PENDING
    reason: str = Field(description="Why, and when the bridge tries again.")


#: the messages that announce a day's meeting state, one queue each (``seq`` orders them)
MEETING_STATES: tuple[type[MeetingData], ...] = (
    MeetingCreated,
    MeetingUpdated,
    MeetingFailed,
    MeetingDeleted,
    MeetingPending,
)


class AttendanceRecorded(Message):
    """R-ZOOM-5: one user's attendance of one day (minutes only with the administrator role)."""

    routing_key: ClassVar[str] = "zoom-bridge.attendance.recorded"
    day_id: uuid.UUID
    user_id: str | None = Field(
        description="Null when the participant matched an enrollment not bound to a user yet "
        "(by its ``email``)."
    )
    email: str | None
    joined: bool
    minutes: int | None
    final: bool = Field(default=False, description="True once reconciled after the meeting ended.")
    matched_by: str | None = Field(
        default=None,
        description="The admin who credited a Zoom participant (a guest, an unknown e-mail) to "
        "this user, when the attendance comes from such a match alone; null when Zoom's "
        "registrant id or e-mail matched it.",
    )


class ZoomAccountChanged(Message):
    """A Zoom account of the company was connected (either OAuth type), its role changed, it
    was removed (deauthorized or deleted: ``connected`` false), or it needs reconnecting (or
    was reconnected). No personal data (the Zoom user's email stays in the bridge)."""

    routing_key: ClassVar[str] = "zoom-bridge.account.changed"
    account_id: uuid.UUID
    role: ZoomAccountRole
    connected: bool
    needs_reconnect: bool = Field(
        default=False,
        description="Zoom no longer accepts the connection (its refresh token was refused): "
        "nothing can be done through it until an admin connects the same Zoom user again. A "
        "new zoom day on such an account is refused.",
    )
    version: int = Field(
        description="Monotonic per account: microseconds since the epoch of the change, taken "
        "when it was written (changes to one account are human-paced); consumers keep the newest."
    )


class RecordingKind(StrEnum):
    """What a recording file is (R-ZOOM-7): only ``video`` files are videos."""

    VIDEO = "video"
    AUDIO = "audio"
    CHAT = "chat"
    TRANSCRIPT = "transcript"
    CAPTIONS = "captions"
    OTHER = "other"


#: Zoom's ``recording_type`` values that are not videos, whatever the file's type says.
_KIND_BY_RECORDING_TYPE = {
    "audio_only": RecordingKind.AUDIO,
    "chat_file": RecordingKind.CHAT,
    "audio_transcript": RecordingKind.TRANSCRIPT,
    "closed_caption": RecordingKind.CAPTIONS,
}
#: Zoom's ``file_type`` values (its OpenAPI: MP4, M4A, CHAT, TRANSCRIPT, CSV, TB, CC, CHAT_MESSAGE,
#: SUMMARY, TIMELINE).
_KIND_BY_FILE_TYPE = {
    "MP4": RecordingKind.VIDEO,
    "M4A": RecordingKind.AUDIO,
    "CHAT": RecordingKind.CHAT,
    "CHAT_MESSAGE": RecordingKind.CHAT,
    "TRANSCRIPT": RecordingKind.TRANSCRIPT,
    "CC": RecordingKind.CAPTIONS,
}


def recording_kind(file_type: str | None, recording_type: str | None = None) -> RecordingKind:
    """The kind of a Zoom recording file from its ``recording_type`` (``audio_only``,
    ``chat_file``, ...) or else its ``file_type`` (``MP4``, ``M4A``, ``CHAT``, ...); anything
    Zoom adds later is ``other``, never a video."""
    by_recording = _KIND_BY_RECORDING_TYPE.get((recording_type or "").lower())
    if by_recording is not None:
        return by_recording
    return _KIND_BY_FILE_TYPE.get((file_type or "").upper(), RecordingKind.OTHER)


class RecordingFile(BaseModel):
    model_config = ConfigDict(frozen=True)

    file_type: str
    play_url: str = Field(
        description="Zoom's play link, with the recording's passcode (``pwd``) when it has one."
    )
    kind: RecordingKind = Field(
        default=RecordingKind.OTHER,
        description="What the file is; only ``video`` is a video. A message without it (from a "
        "bridge older than the field) gets the kind its ``file_type`` names.",
    )
    recording_start: dt.datetime | None = None
    recording_end: dt.datetime | None = None

    @model_validator(mode="before")
    @classmethod
    def _kind_from_file_type(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("kind") is None:
            return {**data, "kind": recording_kind(data.get("file_type"))}
        return data


class RecordingAvailable(Message):
    """New files of a day's recordings. Superseded by :class:`RecordingsChanged`, which the
    bridge publishes instead; catalog still applies one queued before an upgrade, to a day
    that never had a :class:`RecordingsChanged`."""

    routing_key: ClassVar[str] = "zoom-bridge.recording.available"
    day_id: uuid.UUID
    zoom_meeting_id: str
    recordings: list[RecordingFile]


class RecordingsChanged(Message):
    """R-ZOOM-7: a day's cloud recording files at Zoom as they are now, after a file came
    (``recording.completed``, ``.recovered``) or went (``recording.trashed``, ``.deleted``: its
    links lead nowhere). The whole list, so a consumer replaces what it shows; ``version``
    grows with each change of the day's recordings: keep the newest, ignore an older one
    delivered late."""

    routing_key: ClassVar[str] = "zoom-bridge.recordings.changed"
    day_id: uuid.UUID
    zoom_meeting_id: str
    version: int = Field(ge=1)
    recordings: list[RecordingFile]
    session_id: uuid.UUID | None = Field(
        default=None, description="The day's session. None from a bridge older than it."
    )
    event_id: uuid.UUID | None = Field(
        default=None, description="The day's event. None from a bridge older than it."
    )


ALL_MESSAGES: tuple[type[Message], ...] = (
    CompanySettingsChanged,
    EventChanged,
    SessionCreated,
    SessionUpdated,
    SessionDeleted,
    DayScheduled,
    DayRescheduled,
    DayCancelled,
    EnrollmentChanged,
    AccessGranted,
    MeetingCreated,
    MeetingUpdated,
    MeetingFailed,
    MeetingDeleted,
    MeetingPending,
    AttendanceRecorded,
    RecordingAvailable,
    RecordingsChanged,
    ZoomAccountChanged,
)

BY_ROUTING_KEY: dict[str, type[Message]] = {m.routing_key: m for m in ALL_MESSAGES}


def parse(routing_key: str, body: bytes | str | dict[str, Any]) -> Message:
    model = BY_ROUTING_KEY[routing_key]
    if isinstance(body, dict):
        return model.model_validate(body)
    return model.model_validate_json(body)
