"""Retry-After (RFC 9110, section 10.2.3) in an answer from a server the services call: Zoom's
API, a company's webhook receiver. Read once here for both."""

from __future__ import annotations

import datetime as dt
from email.utils import parsedate_to_datetime

from te_shared.db import utcnow


def parse_retry_at(value: str | None, now: dt.datetime | None = None) -> dt.datetime | None:
    """When a Retry-After value says to come back: after delay-seconds, at an HTTP date (RFC
    9110), or at the ISO 8601 time Zoom sends for daily limits (``2020-05-31T00:00:00Z``)."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    now = now or utcnow()
    try:
        return now + dt.timedelta(seconds=max(0.0, float(value)))
    except (ValueError, OverflowError):
        pass
    when: dt.datetime | None = None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        try:
            when = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max(when, now)


def parse_retry_after(value: str | None, now: dt.datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After value (see :func:`parse_retry_at`)."""
    now = now or utcnow()
    when = parse_retry_at(value, now)
    return None if when is None else max(0.0, (when - now).total_seconds())
