"""Pure rules of sessions (SPEC section 3): names, time zone, registration end, limit. No
session, no HTTP; time is passed in."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from catalog.sessions.schemas import NAME_MAX, Name
from te_shared.errors import field_error
from te_shared.timezones import validate_timezone

R_SES_7 = (
    'The value of "Registration end" should be less than the value of "Start of the first day"'
)


def clean_names(value: Name, locales: list[str], *, all_locales: bool) -> dict[str, str]:
    """R-SES-1/2: trimmed, non-empty, at most 180 characters, only the company's locales.

    A plain string names every locale. On create (``all_locales``) a dict must name some locale
    of the company, and the locales it leaves out get its first name, so every locale is set.
    """
    raw = dict.fromkeys(locales, value) if isinstance(value, str) else dict(value)
    if not raw:
        raise field_error("body.name", "Name is required.", code="name_required")
    names: dict[str, str] = {}
    for locale, text in raw.items():
        field = "body.name" if isinstance(value, str) else f"body.name.{locale}"
        if locale not in locales:
            raise field_error(field, f"{locale!r} is not one of the company's locales {locales}.")
        cleaned = text.strip()
        if not cleaned:
            raise field_error(field, "Name is required.", code="name_required")
        if len(cleaned) > NAME_MAX:
            raise field_error(
                field, f"Name must be at most {NAME_MAX} characters.", code="name_too_long"
            )
        names[locale] = cleaned
    if all_locales:
        first = next(iter(names.values()))
        names = {locale: names.get(locale, first) for locale in locales}
    return names


def timezone(value: str) -> str:
    try:
        return validate_timezone(value)
    except ValueError as exc:
        raise field_error("body.timezone", str(exc), code="unknown_timezone") from exc


def check_limit(enabled: bool, limit: int | None) -> None:
    if enabled and limit is None:
        raise field_error(
            "body.participant_limit",
            "A participant limit (a positive number) is required when the limit is enabled.",
        )


def check_limit_against_taken(limit_enabled: bool, limit: int | None, taken: int) -> None:
    """R-SES-9 ruling: a limit below the seats already taken (as registration reported them)
    is refused."""
    if limit_enabled and limit is not None and limit < taken:
        raise field_error(
            "body.participant_limit",
            f"The limit cannot be lower than the {taken} seats already taken.",
            code="limit_below_seats_taken",
        )


def check_registration_end(
    registration_end: dt.datetime | None, first_start: dt.datetime | None, field: str
) -> None:
    """R-SES-7: the registration end is earlier than the start of the session's first day."""
    if registration_end is None or first_start is None:
        return
    if registration_end >= first_start:
        raise field_error(field, R_SES_7, code="registration_end_after_first_day")


def default_registration_end(now: dt.datetime, tz_name: str) -> dt.datetime:
    """R-SES-6: the next calendar day at 11:59 in the session's time zone."""
    tz = ZoneInfo(tz_name)
    tomorrow = now.astimezone(tz).date() + dt.timedelta(days=1)
    return dt.datetime.combine(tomorrow, dt.time(11, 59), tzinfo=tz).astimezone(dt.UTC)
