"""Input types shared by the catalog's request bodies: nothing a client sends may cause a 500."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime

EARLIEST = dt.datetime(1971, 1, 1, tzinfo=dt.UTC)
LATEST = dt.datetime(2999, 1, 1, tzinfo=dt.UTC)


def _in_range(value: dt.datetime) -> dt.datetime:
    if not EARLIEST <= value <= LATEST:
        raise ValueError("the time must be between 1971 and 2999")
    return value


#: An ISO 8601 time with an offset, in a range where day arithmetic cannot overflow.
Instant = Annotated[AwareDatetime, AfterValidator(_in_range)]
