"""What each consumed message becomes as a webhook: type, subject, data."""

from __future__ import annotations

import datetime as dt
import json
import uuid

import pytest

from integrations.delivery import events
from te_shared import contracts as c
from te_shared.topology import CONSUMES, INTEGRATIONS

AT = dt.datetime(2026, 12, 3, 9, 30, tzinfo=dt.UTC)
IDS = {name: uuid.uuid4() for name in ("enrollment", "event", "session", "day")}


def test_every_consumed_message_has_a_webhook_and_only_those() -> None:
    assert set(events.DESCRIBERS) == set(CONSUMES[INTEGRATIONS])


def enrollment() -> c.EnrollmentChanged:
    return c.EnrollmentChanged(
        company_id="acme",
        occurred_at=AT,
        enrollment_id=IDS["enrollment"],
        event_id=IDS["event"],
        session_id=IDS["session"],
        user_id="u1",
        email="u1@acme.io",
        status=c.EnrollmentStatus.APPROVED,
        previous_status=c.EnrollmentStatus.WAITLISTED,
        version=3,
        by="system",
        reason="R-ENR-7 promoted from the waitlist",
    )


def test_enrollment_changed_carries_the_status_and_the_history_entry() -> None:
    described = events.describe(enrollment())
    assert described.event_type == "enrollment.changed"
    assert described.subject == f"enrollment:{IDS['enrollment']}"
    assert described.subject_version == 3
    assert described.data["status"] == "approved"
    assert described.data["previous_status"] == "waitlisted"
    assert described.data["history_entry"] == {
        "from_status": "waitlisted",
        "to_status": "approved",
        "at": "2026-12-03T09:30:00Z",
        "by": "system",
        "reason": "R-ENR-7 promoted from the waitlist",
    }
    assert described.data["session_id"] == str(IDS["session"])


def day(cls: type[c.DayData]) -> c.DayData:
    return cls(
        company_id="acme",
        day_id=IDS["day"],
        session_id=IDS["session"],
        event_id=IDS["event"],
        version=4,
        format=c.DayFormat.OFFLINE,
        start=dt.datetime(2026, 12, 10, 7, tzinfo=dt.UTC),
        end=dt.datetime(2026, 12, 10, 9, tzinfo=dt.UTC),
        timezone="Europe/Moscow",
        topic="Negotiation",
        address="Room 4",
        zoom=None,
    )


@pytest.mark.parametrize(
    ("cls", "action"), [(c.DayScheduled, "scheduled"), (c.DayRescheduled, "rescheduled")]
)
def test_day_changed_carries_the_new_times(cls: type[c.DayData], action: str) -> None:
    described = events.describe(day(cls))
    assert described.event_type == "day.changed"
    assert described.subject == f"day:{IDS['day']}"
    assert described.data["action"] == action
    assert described.data["start"] == "2026-12-10T07:00:00Z"
    assert described.data["end"] == "2026-12-10T09:00:00Z"
    assert described.data["address"] == "Room 4"
    assert described.data["deleted"] is False


def test_a_cancelled_day_is_a_day_changed_with_its_last_times() -> None:
    described = events.describe(
        c.DayCancelled(
            company_id="acme",
            day_id=IDS["day"],
            session_id=IDS["session"],
            event_id=IDS["event"],
            version=5,
            format=c.DayFormat.ZOOM,
            start=dt.datetime(2026, 12, 10, 7, tzinfo=dt.UTC),
        )
    )
    assert (described.event_type, described.subject, described.subject_version) == (
        "day.changed",
        f"day:{IDS['day']}",
        5,
    )
    assert described.data["action"] == "cancelled"
    assert described.data["deleted"] is True
    assert described.data["start"] == "2026-12-10T07:00:00Z"
    assert described.data["end"] is None


def session(cls: type[c.SessionData]) -> c.SessionData:
    return cls(
        company_id="acme",
        session_id=IDS["session"],
        event_id=IDS["event"],
        version=2,
        name={"en": "Evening"},
        timezone="Europe/Moscow",
        registration_end=None,
        limit_enabled=True,
        participant_limit=10,
        waitlist_enabled=False,
    )


def test_session_messages_are_one_session_changed_type() -> None:
    created = events.describe(session(c.SessionCreated))
    updated = events.describe(session(c.SessionUpdated))
    deleted = events.describe(
        c.SessionDeleted(
            company_id="acme", session_id=IDS["session"], event_id=IDS["event"], version=3
        )
    )
    assert {created.event_type, updated.event_type, deleted.event_type} == {"session.changed"}
    assert {created.subject, updated.subject, deleted.subject} == {f"session:{IDS['session']}"}
    assert [d.data["action"] for d in (created, updated, deleted)] == [
        "created",
        "updated",
        "deleted",
    ]
    assert created.data["participant_limit"] == 10
    assert deleted.data == {
        "action": "deleted",
        "session_id": str(IDS["session"]),
        "event_id": str(IDS["event"]),
        "version": 3,
        "deleted": True,
    }


def test_event_changed_and_attendance_recorded() -> None:
    event = events.describe(
        c.EventChanged(
            company_id="acme",
            event_id=IDS["event"],
            version=7,
            title={"en": "Negotiation", "ru": "Переговоры"},
            state=c.EventState.ACTIVE,
            dated=True,
            requires_approval=False,
        )
    )
    assert (event.event_type, event.subject, event.subject_version) == (
        "event.changed",
        f"event:{IDS['event']}",
        7,
    )
    assert event.data["state"] == "active"
    attendance = events.describe(
        c.AttendanceRecorded(
            company_id="acme",
            day_id=IDS["day"],
            user_id=None,
            email="guest@x.io",
            joined=True,
            minutes=42,
        )
    )
    assert attendance.event_type == "attendance.recorded"
    assert attendance.subject == f"attendance:{IDS['day']}:email:guest@x.io"
    assert attendance.subject_version == 0  # ordered by time
    assert (attendance.data["joined"], attendance.data["minutes"]) == (True, 42)


def test_meeting_changed_carries_the_status_and_the_join_link_in_announcement_order() -> None:
    """R-ZOOM-2: an LMS hears each zoom day's meeting; ordered per day by the day's version,
    then the bridge's ``seq`` (a meeting deleted at Zoom and made again in one version)."""
    created = events.describe(
        c.MeetingCreated(
            company_id="acme",
            day_id=IDS["day"],
            session_id=IDS["session"],
            event_id=IDS["event"],
            version=2,
            seq=1,
            zoom_meeting_id="85012345678",
            join_url="https://zoom.us/j/85012345678?pwd=x",
            start_time=AT,
        )
    )
    assert (created.event_type, created.subject) == ("meeting.changed", f"meeting:{IDS['day']}")
    assert created.data == {
        "day_id": str(IDS["day"]),
        "session_id": str(IDS["session"]),
        "event_id": str(IDS["event"]),
        "version": 2,
        "seq": 1,
        "status": "created",
        "zoom_meeting_id": "85012345678",
        "join_url": "https://zoom.us/j/85012345678?pwd=x",
        "start": "2026-12-03T09:30:00Z",
        "error": None,
    }
    deleted = events.describe(
        c.MeetingDeleted(company_id="acme", day_id=IDS["day"], version=2, seq=2)
    )
    held = events.describe(
        c.MeetingPending(
            company_id="acme", day_id=IDS["day"], version=2, seq=3, reason="daily limit"
        )
    )
    failed = events.describe(
        c.MeetingFailed(company_id="acme", day_id=IDS["day"], version=3, error="gave up")
    )
    assert [d.data["status"] for d in (deleted, held, failed)] == ["deleted", "pending", "failed"]
    assert deleted.data["session_id"] is None  # from a bridge older than the field
    assert (deleted.data["join_url"], held.data["error"], failed.data["error"]) == (
        None,
        "daily limit",
        "gave up",
    )
    # R-ZOOM-8: a change Zoom refused leaves the meeting standing, and its link with it
    refused = events.describe(
        c.MeetingFailed(
            company_id="acme",
            day_id=IDS["day"],
            version=3,
            seq=1,
            zoom_meeting_id="85012345678",
            join_url="https://zoom.us/j/85012345678?pwd=x",
            error="refused",
        )
    )
    assert refused.data["join_url"] == "https://zoom.us/j/85012345678?pwd=x"
    order = [created, deleted, held, failed]
    given = [failed, held, deleted, created]  # only the seq puts version 2's three in order
    assert sorted(given, key=lambda d: d.subject_version) == order


def test_recordings_changed_is_the_whole_list_as_it_is_now() -> None:
    files = [
        c.RecordingFile(
            file_type="MP4",
            kind=c.RecordingKind.VIDEO,
            play_url="https://zoom.us/rec/play/1?pwd=y",
            recording_start=AT,
            recording_end=AT + dt.timedelta(hours=1),
        ),
        c.RecordingFile(file_type="TRANSCRIPT", play_url="https://zoom.us/rec/play/2"),
    ]
    described = events.describe(
        c.RecordingsChanged(
            company_id="acme",
            day_id=IDS["day"],
            zoom_meeting_id="85012345678",
            version=4,
            recordings=files,
        )
    )
    assert (described.event_type, described.subject, described.subject_version) == (
        "recordings.changed",
        f"recordings:{IDS['day']}",
        4,
    )
    assert described.data["recordings"] == [
        {
            "file_type": "MP4",
            "kind": "video",
            "play_url": "https://zoom.us/rec/play/1?pwd=y",
            "recording_start": "2026-12-03T09:30:00Z",
            "recording_end": "2026-12-03T10:30:00Z",
        },
        {
            "file_type": "TRANSCRIPT",
            "kind": "transcript",
            "play_url": "https://zoom.us/rec/play/2",
            "recording_start": None,
            "recording_end": None,
        },
    ]
    emptied = events.describe(
        c.RecordingsChanged(
            company_id="acme",
            day_id=IDS["day"],
            zoom_meeting_id="85012345678",
            version=5,
            recordings=[],
        )
    )
    assert emptied.data["recordings"] == []  # trashed at Zoom: the links lead nowhere


def test_subscriptions_and_unknown_types() -> None:
    assert events.subscribed(["*"], "day.changed")
    assert events.subscribed(["day.changed"], "day.changed")
    assert not events.subscribed(["event.changed"], "day.changed")
    assert events.unknown_event_types(["day.changed", "*", "user.deleted"]) == ["user.deleted"]


def test_the_body_is_standard_webhooks_json_signed_as_sent() -> None:
    text = events.body(events.describe(enrollment()), AT)
    assert json.loads(text)["type"] == "enrollment.changed"
    assert json.loads(text)["timestamp"] == "2026-12-03T09:30:00Z"
    assert set(json.loads(text)) == {"type", "timestamp", "data"}
    assert text == events.body(events.describe(enrollment()), AT)  # stable bytes
    assert " " not in text.split('"data"')[0]
