"""What each consumed message becomes as a webhook: its event type, its subject (the aggregate
it is about, which orders deliveries) and its ``data``. Pure functions.

- ``enrollment.changed`` from ``EnrollmentChanged``: the enrollment's status, its previous
  status and the history entry the change made, with who made it and why (subject: the
  enrollment);
- ``attendance.recorded`` from ``AttendanceRecorded``: joined, minutes (subject: the day and
  the person);
- ``session.changed`` from ``SessionCreated/Updated/Deleted``: ``action`` and the session
  (subject: the session);
- ``day.changed`` from ``DayScheduled/Rescheduled/Cancelled``: ``action`` and the day with its
  new times (subject: the day);
- ``event.changed`` from ``EventChanged``: the event's title, state and flags (subject: the
  event);
- ``meeting.changed`` from ``MeetingCreated/Updated/Failed/Deleted/Pending``: a zoom day's
  meeting, its status and join link (subject: the day's meeting);
- ``recordings.changed`` from ``RecordingsChanged``: a zoom day's cloud recordings as they are
  now, the whole list (subject: the day's recordings).
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from te_shared import contracts as c
from te_shared.rules import meeting_join_link

ENROLLMENT_CHANGED = "enrollment.changed"
ATTENDANCE_RECORDED = "attendance.recorded"
SESSION_CHANGED = "session.changed"
DAY_CHANGED = "day.changed"
EVENT_CHANGED = "event.changed"
MEETING_CHANGED = "meeting.changed"
RECORDINGS_CHANGED = "recordings.changed"
#: every event type, present and future
ALL = "*"

EVENT_TYPES: tuple[str, ...] = (
    ENROLLMENT_CHANGED,
    ATTENDANCE_RECORDED,
    SESSION_CHANGED,
    DAY_CHANGED,
    EVENT_CHANGED,
    MEETING_CHANGED,
    RECORDINGS_CHANGED,
)


@dataclass(frozen=True, slots=True)
class Described:
    """A message as a webhook."""

    event_type: str
    subject: str
    #: the aggregate's version (0 when the message has none: attendance is ordered by time)
    subject_version: int
    data: dict[str, Any]


def _time(value: dt.datetime | None) -> str | None:
    return None if value is None else iso(value)


def _id(value: uuid.UUID | None) -> str | None:
    return None if value is None else str(value)


def iso(value: dt.datetime) -> str:
    """UTC, ISO 8601 with ``Z`` (``2026-12-03T10:00:00.123456Z``)."""
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _enrollment(msg: c.EnrollmentChanged) -> Described:
    return Described(
        ENROLLMENT_CHANGED,
        f"enrollment:{msg.enrollment_id}",
        msg.version,
        {
            "enrollment_id": str(msg.enrollment_id),
            "event_id": str(msg.event_id),
            "session_id": str(msg.session_id),
            "user_id": msg.user_id,
            "email": msg.email,
            "status": msg.status.value,
            "previous_status": msg.previous_status.value if msg.previous_status else None,
            "version": msg.version,
            # R-ENR-12's entry: who, when, from, to, why
            "history_entry": {
                "from_status": msg.previous_status.value if msg.previous_status else None,
                "to_status": msg.status.value,
                "at": iso(msg.occurred_at),
                "by": msg.by,
                "reason": msg.reason,
            },
        },
    )


def _attendance(msg: c.AttendanceRecorded) -> Described:
    person = f"user:{msg.user_id}" if msg.user_id is not None else f"email:{msg.email}"
    return Described(
        ATTENDANCE_RECORDED,
        f"attendance:{msg.day_id}:{person}",
        0,
        {
            "day_id": str(msg.day_id),
            "user_id": msg.user_id,
            "email": msg.email,
            "joined": msg.joined,
            "minutes": msg.minutes,
            "final": msg.final,
            "matched_by": msg.matched_by,
        },
    )


def _session(action: str) -> Callable[[c.SessionData], Described]:
    def describe(msg: c.SessionData) -> Described:
        return Described(
            SESSION_CHANGED,
            f"session:{msg.session_id}",
            msg.version,
            {
                "action": action,
                "session_id": str(msg.session_id),
                "event_id": str(msg.event_id),
                "version": msg.version,
                "deleted": False,
                "name": msg.name,
                "timezone": msg.timezone,
                "registration_end": _time(msg.registration_end),
                "limit_enabled": msg.limit_enabled,
                "participant_limit": msg.participant_limit,
                "waitlist_enabled": msg.waitlist_enabled,
            },
        )

    return describe


def _session_deleted(msg: c.SessionDeleted) -> Described:
    return Described(
        SESSION_CHANGED,
        f"session:{msg.session_id}",
        msg.version,
        {
            "action": "deleted",
            "session_id": str(msg.session_id),
            "event_id": str(msg.event_id),
            "version": msg.version,
            "deleted": True,
        },
    )


def _day(action: str) -> Callable[[c.DayData], Described]:
    def describe(msg: c.DayData) -> Described:
        return Described(
            DAY_CHANGED,
            f"day:{msg.day_id}",
            msg.version,
            {
                "action": action,
                "day_id": str(msg.day_id),
                "session_id": str(msg.session_id),
                "event_id": str(msg.event_id),
                "version": msg.version,
                "deleted": False,
                "format": msg.format.value,
                "start": iso(msg.start),
                "end": iso(msg.end),
                "timezone": msg.timezone,
                "topic": msg.topic,
                "address": msg.address,
                "url": msg.url,
            },
        )

    return describe


def _day_cancelled(msg: c.DayCancelled) -> Described:
    return Described(
        DAY_CHANGED,
        f"day:{msg.day_id}",
        msg.version,
        {
            "action": "cancelled",
            "day_id": str(msg.day_id),
            "session_id": str(msg.session_id),
            "event_id": str(msg.event_id),
            "version": msg.version,
            "deleted": True,
            "format": msg.format.value,
            "start": _time(msg.start),
            "end": _time(msg.end),
            "timezone": msg.timezone,
            "topic": msg.topic,
        },
    )


def _event(msg: c.EventChanged) -> Described:
    return Described(
        EVENT_CHANGED,
        f"event:{msg.event_id}",
        msg.version,
        {
            "event_id": str(msg.event_id),
            "version": msg.version,
            "title": msg.title,
            "state": msg.state.value,
            "dated": msg.dated,
            "requires_approval": msg.requires_approval,
            "deleted": msg.deleted,
        },
    )


def _meeting(msg: c.MeetingData) -> Described:
    error = msg.error if isinstance(msg, c.MeetingFailed) else None
    error = msg.reason if isinstance(msg, c.MeetingPending) else error
    status = c.MeetingStatus(msg.status)  # type: ignore[attr-defined]
    return Described(
        MEETING_CHANGED,
        f"meeting:{msg.day_id}",
        # the day's version, then the bridge's announcement of it: one integer, in that order
        (msg.version << 32) + msg.seq,
        {
            "day_id": str(msg.day_id),
            "session_id": _id(msg.session_id),
            "event_id": _id(msg.event_id),
            "version": msg.version,
            "seq": msg.seq,
            "status": status.value,
            "zoom_meeting_id": msg.zoom_meeting_id,
            "join_url": meeting_join_link(status, msg.join_url),
            "start": _time(msg.start_time),
            "error": error,
        },
    )


def _recordings(msg: c.RecordingsChanged) -> Described:
    return Described(
        RECORDINGS_CHANGED,
        f"recordings:{msg.day_id}",
        msg.version,
        {
            "day_id": str(msg.day_id),
            "session_id": _id(msg.session_id),
            "event_id": _id(msg.event_id),
            "zoom_meeting_id": msg.zoom_meeting_id,
            "version": msg.version,
            "recordings": [
                {
                    "file_type": f.file_type,
                    "kind": f.kind.value,
                    "play_url": f.play_url,
                    "recording_start": _time(f.recording_start),
                    "recording_end": _time(f.recording_end),
                }
                for f in msg.recordings
            ],
        },
    )


#: Every message the service turns into webhooks, and how.
DESCRIBERS: dict[type[c.Message], Callable[[Any], Described]] = {
    c.EnrollmentChanged: _enrollment,
    c.AttendanceRecorded: _attendance,
    c.SessionCreated: _session("created"),
    c.SessionUpdated: _session("updated"),
    c.SessionDeleted: _session_deleted,
    c.DayScheduled: _day("scheduled"),
    c.DayRescheduled: _day("rescheduled"),
    c.DayCancelled: _day_cancelled,
    c.EventChanged: _event,
    c.MeetingCreated: _meeting,
    c.MeetingUpdated: _meeting,
    c.MeetingFailed: _meeting,
    c.MeetingDeleted: _meeting,
    c.MeetingPending: _meeting,
    c.RecordingsChanged: _recordings,
}


def describe(message: c.Message) -> Described:
    return DESCRIBERS[type(message)](message)


def subscribed(events: list[str], event_type: str) -> bool:
    return ALL in events or event_type in events


def unknown_event_types(events: list[str]) -> list[str]:
    return [e for e in events if e != ALL and e not in EVENT_TYPES]


def body(described: Described, occurred_at: dt.datetime) -> str:
    """Standard Webhooks' payload ``{type, timestamp, data}`` as the exact text that is signed
    and sent (compact JSON, keys sorted)."""
    payload = {"type": described.event_type, "timestamp": iso(occurred_at), "data": described.data}
    return json.dumps(payload, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
