"""Webhook rules that need no I/O: the timestamp window against Zoom's retry schedule."""

from __future__ import annotations

import pytest

from te_shared.errors import Unauthorized
from zoom_bridge.settings import ZoomBridgeSettings
from zoom_bridge.webhooks import rules

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
