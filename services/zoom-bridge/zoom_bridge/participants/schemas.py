from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, Field

from te_shared.body import Body
from te_shared.text import UserId


class ParticipantOut(BaseModel):
    """One person in the day's meeting, matched to a platform user or not."""

    id: str = Field(description="Stable id of the participant in this day.")
    name: str | None = Field(description="The name they showed in Zoom.")
    email: str | None = Field(description="The e-mail Zoom gave (none for a guest).")
    user_id: str | None = Field(
        description="The platform user their attendance is credited to; null while unmatched "
        "(or matched to an enrollment that waits for its person: see ``match``)."
    )
    match: Literal["registrant", "email", "admin"] | None = Field(
        description="How they were matched: by the registrant id of their personal link, by "
        "e-mail, or by an admin; null: unmatched."
    )
    matched_by: str | None = Field(
        default=None, description="The admin who matched them (``match: admin``)."
    )
    minutes: int | None = Field(
        description="Time in the meeting, every stay and instance (administrator role only)."
    )
    joined_at: dt.datetime | None
    left_at: dt.datetime | None = Field(description="Null while they are in the meeting.")


class MatchIn(Body):
    """The platform user a participant's attendance is credited to: they must hold a live
    enrollment in the day's session."""

    user_id: UserId
