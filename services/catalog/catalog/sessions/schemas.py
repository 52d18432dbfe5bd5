from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any

from pydantic import BaseModel, Field

from catalog.days.schemas import DayOut
from catalog.validation import Instant, TimeZoneName
from te_shared.body import Body
from te_shared.text import ByLocale, CleanText

NAME_MAX = 180
#: R-SES-1: one name for every locale, or names by locale code; each trimmed, 1-180 characters
Name = Annotated[dict[str, str] | str, ByLocale(CleanText(NAME_MAX))]


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


def _not_null(schema: dict[str, Any]) -> None:
    """A field the service refuses ``null`` for (a name, a time zone: required), though leaving
    it out is fine: the schema shows no ``null``."""
    schema.pop("default", None)
    branches = [b for b in schema.pop("anyOf", []) if b != {"type": "null"}]
    if len(branches) == 1:
        schema.update(branches[0])
    else:
        schema["anyOf"] = branches


class SessionPatch(Body):
    """Only the fields sent are changed; ``registration_end: null`` is refused for dated events."""

    name: Name | None = Field(default=None, json_schema_extra=_not_null)
    timezone: TimeZoneName | None = Field(default=None, json_schema_extra=_not_null)
    registration_end: Instant | None = Field(
        default=None, description="null only for the sessions of an undated event."
    )
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
