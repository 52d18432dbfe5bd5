"""When a failed delivery is tried again. Pure functions.

Standard Webhooks' suggested schedule: at once, then 5 seconds, 5 minutes, 30 minutes, 2 hours,
5 hours, 10 hours, and every 10 hours after that, until the attempt that falls at or past the
retry window (72 hours): 13 attempts over about 77.5 hours. Each wait is jittered by ±20 % so
a receiver that comes back is not hit by every delivery at the same moment. ``scale``
multiplies the waits and the window alike (tests run the whole schedule in seconds).
"""

from __future__ import annotations

import random

#: seconds to wait after the 1st, 2nd, ... failed attempt; the last one repeats
DELAYS: tuple[float, ...] = (5, 5 * 60, 30 * 60, 2 * 3600, 5 * 3600, 10 * 3600)
JITTER = 0.2
#: the longest a receiver's Retry-After holds the next attempt back: the schedule's longest wait
MAX_RETRY_AFTER = DELAYS[-1]


def nominal_delay(attempt: int) -> float:
    """The wait after attempt number ``attempt`` (1-based) failed, before jitter and scale."""
    return DELAYS[min(max(attempt, 1), len(DELAYS)) - 1]


def nominal_offset(attempt: int) -> float:
    """When attempt number ``attempt`` is due, in seconds after the first (no jitter, no scale)."""
    return sum(nominal_delay(n) for n in range(1, attempt))


def next_delay(
    attempts: int,
    *,
    window_seconds: float = 72 * 3600,
    scale: float = 1.0,
    rng: random.Random | None = None,
    retry_after: float | None = None,
) -> float | None:
    """Seconds until the next attempt after ``attempts`` attempts failed, or None: give up
    (the last one was due at or past the window). A receiver that said when to come back
    (``retry_after``, from a 429 or 503) is not tried sooner, nor later than the schedule's
    longest wait (:data:`MAX_RETRY_AFTER`): its wait does not stretch the window."""
    if nominal_offset(attempts) >= window_seconds:
        return None
    jitter = (rng or random).uniform(1 - JITTER, 1 + JITTER)
    delay = nominal_delay(attempts) * scale * jitter
    if retry_after is not None:
        delay = max(delay, min(retry_after, MAX_RETRY_AFTER))
    return delay


def attempts_in_window(window_seconds: float = 72 * 3600) -> int:
    """How many attempts a delivery that always fails gets."""
    attempt = 1
    while nominal_offset(attempt) < window_seconds:
        attempt += 1
    return attempt
