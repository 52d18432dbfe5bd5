"""Input types shared by the catalog's request bodies: nothing a client sends may cause a 500."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, field_validator

EARLIEST = dt.datetime(1971, 1, 1, tzinfo=dt.UTC)
LATEST = dt.datetime(2999, 1, 1, tzinfo=dt.UTC)


def _in_range(value: dt.datetime) -> dt.datetime:
    if not EARLIEST <= value <= LATEST:
        raise ValueError("the time must be between 1971 and 2999")
    return value


#: An ISO 8601 time with an offset, in a range where day arithmetic cannot overflow.
Instant = Annotated[AwareDatetime, AfterValidator(_in_range)]


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(_has_nul(v) for v in value)
    return False


class Body(BaseModel):
    """A request body: unknown fields and NUL characters (which PostgreSQL cannot store) refused."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="before")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        if _has_nul(value):
            raise ValueError("text may not contain NUL characters")
        return value
