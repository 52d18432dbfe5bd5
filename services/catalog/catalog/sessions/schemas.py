from __future__ import annotations

import datetime as dt
import uuid

from pydantic import BaseModel, Field

from catalog.days.schemas import DayOut
from catalog.validation import Body, Instant

Name = dict[str, str] | str


class SessionIn(Body):
    name: Name = Field(
        description="R-SES-2: a string sets every company locale; or `{locale: text}`."
    )
    timezone: str | None = Field(default=None, description="IANA name; the company's by default.")
    registration_end: Instant | None = None
    limit_enabled: bool = False
    participant_limit: int | None = Field(default=None, gt=0, le=1_000_000)
    waitlist_enabled: bool = False


class SessionPatch(Body):
    """Only the fields sent are changed; ``registration_end: null`` is refused for dated events."""

    name: Name | None = None
    timezone: str | None = None
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
