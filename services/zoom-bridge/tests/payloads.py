"""Zoom webhook bodies as Zoom documents them, for the bridge's tests.

Built from the fields of Zoom's own SDK types (zoom/rivet-javascript, ``meetings.d.ts``):
``MeetingParticipantJoinedEvent``, ``MeetingParticipantLeftEvent``, ``MeetingEndedEvent`` and
``RecordingCompletedEvent``. What matters about them:

- ``object.id`` is a **string** in ``meeting.*`` events and a **number** in
  ``recording.completed``; ``object.uuid`` names the meeting instance.
- ``participant.user_id`` is Zoom's participant number, counted per instance from 16778240;
  ``participant_uuid`` stays the same for a person; ``id`` is the Zoom user id of someone signed
  in. A guest (not signed in) has ``"email": ""`` and ``"id": ""``.
- The waiting-room events carry ``date_time``, not ``join_time``.
- ``recording.completed`` has a top-level ``download_token`` and, in ``object``,
  ``recording_play_passcode`` and files of several kinds (``recording_type``).

Loaded by ``conftest.py`` (the ``zoom_payloads`` fixture); test modules import it only for
type checking.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from typing import Any

from te_testing.clock import zoom_time

ACCOUNT_ID = "zoomSimAccount00000001"
HOST_ID = "zoomHostUser0000000001"
FIRST_USER_ID = 16778240


@dataclass(frozen=True)
class Participant:
    """Who joins: ``email`` and ``id`` are empty for a guest."""

    user_name: str
    participant_uuid: str
    email: str = ""
    id: str = ""
    registrant_id: str = ""

    def fields(self, user_id: str) -> dict[str, Any]:
        found: dict[str, Any] = {
            "user_id": user_id,
            "user_name": self.user_name,
            "id": self.id,
            "participant_uuid": self.participant_uuid,
            "email": self.email,
            "registrant_id": self.registrant_id,
            "customer_key": "",
            "phone_number": "",
        }
        if self.id:
            found["participant_user_id"] = self.id
        return found


def member(email: str, name: str, *, zoom_user_id: str | None = None) -> Participant:
    """A signed-in Zoom user."""
    key = email.split("@", 1)[0]
    return Participant(
        user_name=name,
        participant_uuid=f"PU{key:0<20}"[:22],
        email=email,
        id=zoom_user_id or f"ZU{key:0<20}"[:22],
    )


def guest(name: str, participant_uuid: str) -> Participant:
    """Someone not signed in: no e-mail, no Zoom user id."""
    return Participant(user_name=name, participant_uuid=participant_uuid)


def user_id(n: int) -> str:
    """The ``n``-th participant number of an instance (0 for the first)."""
    return str(FIRST_USER_ID + 1024 * n)


def _iso(value: dt.datetime | str) -> str:
    if isinstance(value, str):
        return value
    return zoom_time(value)


def _body(event: str, obj: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "event": event,
        "event_ts": int(time.time() * 1000),
        "payload": {"account_id": ACCOUNT_ID, "object": obj},
        **extra,
    }


def _meeting(meeting_id: str, instance: str, start: dt.datetime | str) -> dict[str, Any]:
    return {
        "id": str(meeting_id),  # a string in meeting.* events
        "uuid": instance,
        "host_id": HOST_ID,
        "topic": "Onboarding day",
        "type": 2,
        "start_time": _iso(start),
        "timezone": "Europe/Berlin",
        "duration": 60,
    }


def participant_joined(
    meeting_id: str,
    instance: str,
    who: Participant,
    *,
    user_id: str,
    at: dt.datetime | str,
    start: dt.datetime | str | None = None,
) -> dict[str, Any]:
    """``meeting.participant_joined`` (``MeetingParticipantJoinedEvent``)."""
    participant = {**who.fields(user_id), "join_time": _iso(at)}
    obj = {**_meeting(meeting_id, instance, start or at), "participant": participant}
    return _body("meeting.participant_joined", obj)


def participant_left(
    meeting_id: str,
    instance: str,
    who: Participant,
    *,
    user_id: str,
    at: dt.datetime | str,
    start: dt.datetime | str | None = None,
    reason: str = "left the meeting",
) -> dict[str, Any]:
    """``meeting.participant_left`` (``MeetingParticipantLeftEvent``)."""
    participant = {**who.fields(user_id), "leave_time": _iso(at), "leave_reason": reason}
    obj = {**_meeting(meeting_id, instance, start or at), "participant": participant}
    return _body("meeting.participant_left", obj)


def participant_breakout_room(
    meeting_id: str,
    instance: str,
    room: str,
    who: Participant,
    *,
    user_id: str,
    parent_user_id: str,
    at: dt.datetime | str,
    joined: bool,
    start: dt.datetime | str | None = None,
) -> dict[str, Any]:
    """``meeting.participant_joined_breakout_room`` or ``_left_breakout_room``
    (``MeetingParticipantJoinedBreakoutRoomEvent``, ``...LeftBreakoutRoomEvent``): the
    meeting's object with ``breakout_room_uuid``; the room's ``user_id`` and, as
    ``parent_user_id``, the participant's in the main room."""
    when = {"join_time": _iso(at)} if joined else {"leave_time": _iso(at), "leave_reason": ""}
    participant = {**who.fields(user_id), "parent_user_id": parent_user_id, **when}
    obj = {
        **_meeting(meeting_id, instance, start or at),
        "breakout_room_uuid": room,
        "participant": participant,
    }
    event = "joined" if joined else "left"
    return _body(f"meeting.participant_{event}_breakout_room", obj)


def participant_joined_waiting_room(
    meeting_id: str, instance: str, who: Participant, *, user_id: str, at: dt.datetime | str
) -> dict[str, Any]:
    """``meeting.participant_joined_waiting_room``: ``date_time``, not ``join_time``."""
    participant = {**who.fields(user_id), "date_time": _iso(at)}
    obj = {**_meeting(meeting_id, instance, at), "participant": participant}
    return _body("meeting.participant_joined_waiting_room", obj)


def meeting_ended(
    meeting_id: str, instance: str, *, start: dt.datetime | str, end: dt.datetime | str
) -> dict[str, Any]:
    """``meeting.ended`` (``MeetingEndedEvent``)."""
    obj = {**_meeting(meeting_id, instance, start), "end_time": _iso(end)}
    return _body("meeting.ended", obj)


def recording_file(
    file_id: str,
    *,
    file_type: str,
    file_extension: str,
    recording_type: str,
    play_url: str,
    start: dt.datetime | str,
    end: dt.datetime | str,
    instance: str,
) -> dict[str, Any]:
    return {
        "id": file_id,
        "meeting_id": instance,
        "recording_start": _iso(start),
        "recording_end": _iso(end),
        "file_type": file_type,
        "file_size": 1234,
        "file_extension": file_extension,
        "play_url": play_url,
        "download_url": play_url.replace("/rec/play/", "/rec/download/"),
        "status": "completed",
        "recording_type": recording_type,
    }


def recording_completed(
    meeting_id: str,
    instance: str,
    *,
    host: str,
    start: dt.datetime | str,
    end: dt.datetime | str,
    passcode: str = "pAss-c0de_1",
) -> dict[str, Any]:
    """``recording.completed`` (``RecordingCompletedEvent``): ``object.id`` a number; an MP4,
    an audio-only M4A and the chat file, on ``host`` (e.g. ``https://us06web.zoom.us``)."""
    files = [
        recording_file(
            f"{instance}-{kind}",
            file_type=file_type,
            file_extension=extension,
            recording_type=kind,
            play_url=f"{host}/rec/play/{kind}-token.part2",
            start=start,
            end=end,
            instance=instance,
        )
        for file_type, extension, kind in (
            ("MP4", "MP4", "shared_screen_with_speaker_view"),
            ("M4A", "M4A", "audio_only"),
            ("CHAT", "TXT", "chat_file"),
        )
    ]
    obj = {
        "id": int(meeting_id),  # a number in recording.completed
        "uuid": instance,
        "host_id": HOST_ID,
        "account_id": ACCOUNT_ID,
        "topic": "Onboarding day",
        "type": 2,
        "start_time": _iso(start),
        "password": "rec-pass",
        "timezone": "Europe/Berlin",
        "host_email": "host@zoom-sim.local",
        "duration": 60,
        "share_url": f"{host}/rec/share/share-token",
        "total_size": 1234 * len(files),
        "recording_count": len(files),
        "recording_play_passcode": passcode,
        "recording_files": files,
    }
    return _body("recording.completed", obj, download_token="download-token")
