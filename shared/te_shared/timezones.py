"""IANA time zone validation and local-time arithmetic."""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

_KNOWN = frozenset(available_timezones())


def validate_timezone(name: str) -> str:
    """Return ``name`` if it is a known IANA zone; raise ValueError otherwise."""
    cleaned = name.strip()
    if cleaned not in _KNOWN:
        raise ValueError(f"unknown time zone {name!r}; use an IANA name like 'Europe/Moscow'")
    return cleaned


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {name!r}") from exc
