"""Webhook rules that need no I/O: the timestamp window against Zoom's retry schedule, the
recording play link with its passcode and the kinds of recording files."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from te_shared import contracts as c
from te_shared.errors import Unauthorized
from zoom_bridge.settings import ZoomBridgeSettings
from zoom_bridge.webhooks import rules
from zoom_bridge.webhooks.rules import Signer
from zoom_bridge.webhooks.service import digest

SECRET = "s3cret"
BODY = b'{"event":"meeting.ended","payload":{}}'
#: Zoom retries a failed delivery 5 minutes after the first attempt, 20 after the first retry
#: and 60 after the second, each with the first attempt's timestamp and signature
LAST_RETRY = (5 + 20 + 60) * 60


def verify(timestamp: int, now: float, settings: ZoomBridgeSettings) -> rules.Signer:
    signature = rules.expected_signature(SECRET, str(timestamp), BODY)
    return rules.verify(
        [rules.Candidate(SECRET)],
        BODY,
        str(timestamp),
        signature,
        now=now,
        max_age=settings.zoom_webhook_max_age_seconds,
        max_future=settings.zoom_webhook_max_future_seconds,
    )


class TestTimestampWindow:
    settings = ZoomBridgeSettings()
    sent = 1_790_000_000

    def test_every_retry_of_zoom_is_in_the_window(self) -> None:
        for delay in (0, 5 * 60, 25 * 60, LAST_RETRY, LAST_RETRY + 60):
            assert verify(self.sent, self.sent + delay, self.settings).app
        assert verify(self.sent * 1000, self.sent + LAST_RETRY, self.settings).app  # ms

    def test_far_off_timestamps_stay_refused(self) -> None:
        for now in (self.sent + 2 * 3600, self.sent - 3600):
            with pytest.raises(Unauthorized) as refused:
                verify(self.sent, now, self.settings)
            assert refused.value.code == "stale_timestamp"

    def test_replays_within_it_are_recognised_for_longer_than_it_lasts(self) -> None:
        window_days = self.settings.zoom_webhook_max_age_seconds / 86400
        assert self.settings.zoom_webhook_max_age_seconds >= LAST_RETRY
        assert self.settings.zoom_webhook_retention_days > window_days


class TestPlayLink:
    def test_the_passcode_is_appended_as_pwd(self) -> None:
        url = "https://us06web.zoom.us/rec/play/abc.def"
        assert rules.play_link(url, "p@ss w/rd") == f"{url}?pwd=p%40ss+w%2Frd"

    def test_an_existing_query_is_kept(self) -> None:
        url = "https://zoom.us/rec/play/abc?startTime=1"
        assert rules.play_link(url, "x") == f"{url}&pwd=x"

    def test_a_link_that_carries_a_pwd_or_a_recording_without_passcode_is_kept(self) -> None:
        url = "https://zoom.us/rec/play/abc?pwd=mine"
        assert rules.play_link(url, "other") == url
        assert rules.play_link("https://zoom.us/rec/play/abc", None) == (
            "https://zoom.us/rec/play/abc"
        )


class TestRecordingKind:
    @pytest.mark.parametrize(
        ("file_type", "recording_type", "kind"),
        [
            ("MP4", "shared_screen_with_speaker_view", c.RecordingKind.VIDEO),
            ("MP4", "active_speaker", c.RecordingKind.VIDEO),
            ("M4A", "audio_only", c.RecordingKind.AUDIO),
            ("MP4", "audio_only", c.RecordingKind.AUDIO),
            ("CHAT", "chat_file", c.RecordingKind.CHAT),
            ("TRANSCRIPT", "audio_transcript", c.RecordingKind.TRANSCRIPT),
            ("CC", "closed_caption", c.RecordingKind.CAPTIONS),
            ("TIMELINE", "timeline", c.RecordingKind.OTHER),
            ("SOMETHING_NEW", None, c.RecordingKind.OTHER),
        ],
    )
    def test_kinds(self, file_type: str, recording_type: str | None, kind: c.RecordingKind) -> None:
        assert c.recording_kind(file_type, recording_type) is kind

    def test_a_message_from_an_older_bridge_gets_the_kind_of_its_file_type(self) -> None:
        older = {"file_type": "M4A", "play_url": "https://zoom.us/rec/play/a"}
        assert c.RecordingFile.model_validate(older).kind is c.RecordingKind.AUDIO


@pytest.mark.parametrize(
    ("event", "payload", "distinct"),
    [
        ("meeting.deleted", {"object": {"id": 81, "uuid": "u=="}}, True),
        ("meeting.recovered", {"object": {"id": 81, "uuid": "u=="}}, True),
        ("recording.trashed", {"object": {"id": 81, "recording_files": [{"id": "v"}]}}, True),
        ("recording.batch_recovered", {"object": {"meetings": [{"meeting_uuid": "u=="}]}}, True),
        ("meeting.participant_joined", {"object": {"id": 81, "participant": {"id": "p"}}}, False),
    ],
)
def test_a_second_change_with_the_same_payload_is_not_a_duplicate(
    event: str, payload: dict[str, Any], distinct: bool
) -> None:
    """R-ZOOM-4: a change whose payload carries no time (a file trashed again after its
    recovery, a meeting deleted again) is told from the first by Zoom's ``event_ts``; a retry
    re-sends the request as it was, ``event_ts`` included, and stays one notification. Other
    events keep their payload as their identity (Zoom may notify a join twice)."""
    signer = Signer(app=True)
    first = {"event": event, "event_ts": 1000, "payload": payload}
    again = {**first, "event_ts": 2000}
    # a retry: the same request again, parsed afresh (its keys in another order, say)
    retry = json.loads(json.dumps(dict(reversed(list(first.items())))))
    assert digest(first, signer) == digest(retry, signer)
    # the same notification signed by someone else is never Zoom's own one again
    assert digest(first, signer) != digest(first, Signer(account_ids=frozenset({uuid.uuid4()})))
    assert (digest(first, signer) != digest(again, signer)) is distinct
