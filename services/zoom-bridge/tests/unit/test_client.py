"""How Zoom's answers are classified for the retry policy (R-ZOOM-8): pure, no network."""

from __future__ import annotations

import datetime as dt

import httpx

from zoom_bridge.meetings import jobs
from zoom_bridge.settings import ZoomBridgeSettings
from zoom_bridge.zoom.client import (
    ZoomDailyLimit,
    ZoomFatal,
    ZoomNotFound,
    ZoomRetryable,
    classify,
    next_utc_midnight,
)


def answer(status: int, headers: dict[str, str] | None = None, **body: object) -> httpx.Response:
    return httpx.Response(status, headers=headers or {}, json=body or {"code": status})


def test_r_zoom_8_a_daily_limit_429_names_the_time_zoom_accepts_again() -> None:
    error = classify(
        answer(
            429,
            {"X-RateLimit-Type": "Daily-limit", "Retry-After": "2030-05-31T00:00:00Z"},
            code=429,
            message="You have exceeded the daily rate limit (100)",
        )
    )
    assert isinstance(error, ZoomDailyLimit)
    assert error.until == dt.datetime(2030, 5, 31, tzinfo=dt.UTC)
    assert "daily rate limit" in str(error)


def test_r_zoom_8_a_daily_limit_without_retry_after_waits_for_the_next_utc_day() -> None:
    error = classify(answer(429, {"X-RateLimit-Type": "Daily-limit"}))
    assert isinstance(error, ZoomDailyLimit)
    assert error.until == next_utc_midnight(dt.datetime.now(dt.UTC))


def test_r_zoom_8_a_qps_429_is_an_ordinary_retryable_error() -> None:
    error = classify(answer(429, {"X-RateLimit-Type": "QPS", "Retry-After": "1"}))
    assert type(error) is ZoomRetryable
    assert error.retry_after == 1.0
    assert type(classify(answer(429))) is ZoomRetryable  # no type named: not a daily limit


def test_r_zoom_8_zooms_own_code_is_kept() -> None:
    gone = classify(answer(404, code=3001, message="Meeting does not exist"))
    assert isinstance(gone, ZoomNotFound)
    assert gone.code == 3001
    refused = classify(answer(400, code=300, message="Invalid field"))
    assert type(refused) is ZoomFatal
    assert refused.code == 300


def test_r_zoom_8_backoff_is_never_shorter_than_retry_after() -> None:
    settings = ZoomBridgeSettings(zoom_retry_base_seconds=1.0, zoom_retry_max_seconds=300.0)
    assert all(jobs.backoff(settings, 1, 5.0) >= 5.0 for _ in range(50))
    assert all(0.5 <= jobs.backoff(settings, 1, None) <= 1.0 for _ in range(50))
    assert all(150 <= jobs.backoff(settings, 12, 1.0) <= 300 for _ in range(50))  # grows
    capped = jobs.backoff(settings, 1, 10 * 24 * 3600.0)
    assert capped == settings.zoom_retry_after_max_seconds
