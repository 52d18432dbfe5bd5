from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated

from pydantic import BaseModel, Field

from catalog.days.schemas import DayOut
from catalog.validation import Instant
from te_shared.body import Body
from te_shared.text import ByLocale, CleanText

NAME_MAX = 180
#: R-SES-1: one name for every locale, or names by locale code; each trimmed, 1-180 characters
Name = Annotated[dict[str, str] | str, ByLocale(CleanText(NAME_MAX))]
#: an IANA time zone name (checked against the known zones by the service)
TimeZoneName = Annotated[str, CleanText(64)]


class SessionIn(Body):
    name: Name = Field(
        description="R-SES-2: a string sets every company locale; or `{locale: text}`."
    )
    timezone: TimeZoneName | None = Field(
        default=None, description="IANA name; the company's by default."
    )
    registration_end: Instant | None = None
    limit_enabled: bool = False
    participant_limit: int | None = Field(default=None, gt=0, le=1_000_000)
    waitlist_enabled: bool = False


class SessionPatch(Body):
    """Only the fields sent are changed; ``registration_end: null`` is refused for dated events."""

    name: Name | None = None
    timezone: TimeZoneName | None = None
    registration_end: Instant | None = None
    limit_enabled: bool | None = None
    participant_limit: int | None = Field(default=None, gt=0, le=1_000_000)
    waitlist_enabled: bool | None = None


class SessionOut(BaseModel):
    id: uuid.UUID
    event_id: uuid.UUID
    name: dict[str, str]
    timezone: str
    registration_end: dt.datetime | None
    limit_enabled: bool
    participant_limit: int | None = Field(description="R-SES-8: only when the limit is enabled.")
    seats_taken: int | None = Field(
        default=None, description="R-SES-8: with the limit only (as registration reported it)."
    )
    seats_left: int | None = Field(default=None, description="R-SES-8: with the limit only.")
    waitlist_enabled: bool
    version: int
    days: list[DayOut] = Field(default_factory=list)
    warnings: list[str] = Field(
        default_factory=list,
        description="R-ZOOM-2: after a change of the limit, when the session allows more people "
        "than its participant-role Zoom days' meetings take (100).",
    )
