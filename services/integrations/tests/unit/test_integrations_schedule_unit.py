"""The retry schedule: Standard Webhooks' suggestion, jittered, for at least three days."""

from __future__ import annotations

import random

import pytest

from integrations.delivery import schedule

HOUR = 3600.0
WINDOW = 72 * HOUR


def test_the_waits_follow_the_suggested_schedule() -> None:
    waits = [schedule.nominal_delay(n) for n in range(1, 10)]
    assert waits == [5, 300, 1800, 7200, 18000, 36000, 36000, 36000, 36000]


def test_a_failing_delivery_is_tried_for_at_least_three_days_then_given_up() -> None:
    attempts = schedule.attempts_in_window(WINDOW)
    assert attempts == 13
    assert schedule.nominal_offset(attempts) >= WINDOW  # the last attempt is past 72 h
    assert schedule.nominal_offset(attempts - 1) < WINDOW
    for done in range(1, attempts):
        assert schedule.next_delay(done, window_seconds=WINDOW) is not None, done
    assert schedule.next_delay(attempts, window_seconds=WINDOW) is None


@pytest.mark.parametrize("attempt", [1, 2, 3, 6, 7, 12])
def test_each_wait_is_jittered_within_20_percent(attempt: int) -> None:
    rng = random.Random(attempt)
    nominal = schedule.nominal_delay(attempt)
    waits = [schedule.next_delay(attempt, rng=rng) for _ in range(200)]
    assert all(w is not None and 0.8 * nominal <= w <= 1.2 * nominal for w in waits)
    assert len(set(waits)) > 100  # not one fixed moment for every delivery


def test_the_scale_shrinks_the_waits_and_the_window_alike() -> None:
    scale = 0.001
    delay = schedule.next_delay(1, scale=scale, rng=random.Random(1))
    assert delay is not None
    assert 0.8 * 5 * scale <= delay <= 1.2 * 5 * scale
    # the number of attempts does not depend on the scale
    assert schedule.next_delay(12, scale=scale) is not None
    assert schedule.next_delay(13, scale=scale) is None


def test_a_short_window_gives_up_early() -> None:
    assert schedule.next_delay(1, window_seconds=1) is not None  # the first is always retried
    assert schedule.next_delay(2, window_seconds=1) is None


def test_a_receivers_retry_after_holds_the_next_attempt_back_within_the_longest_wait() -> None:
    rng = random.Random(7)
    assert schedule.next_delay(1, retry_after=60, rng=rng) == 60  # not the 5 s of the schedule
    scheduled = schedule.next_delay(3, retry_after=1, rng=rng)
    assert scheduled is not None
    assert scheduled >= 30 * 60 * 0.8  # never sooner than the schedule
    longest = schedule.next_delay(1, retry_after=7 * 24 * 3600, rng=rng)
    assert longest == schedule.MAX_RETRY_AFTER == 10 * 3600  # a week is held to 10 hours
    assert schedule.next_delay(13, retry_after=60) is None  # nor does it stretch the window
