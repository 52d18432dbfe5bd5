from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    WithJsonSchema,
    model_validator,
)
from pydantic_core import PydanticCustomError

from registration.enrollments import rules
from te_shared.body import Body
from te_shared.contracts import EnrollmentStatus
from te_shared.text import CONTROL_RANGES, CleanText
from te_shared.text import MAX_EMAIL as MAX_EMAIL
from te_shared.text import MAX_USER_ID as MAX_USER_ID
from te_shared.text import UserId as UserId

# A user id and an email have one size in every service (te_shared.text): the bridge stores what
# registration accepts, and a token's ``sub`` is capped alike.


def _email(value: str) -> str:
    """Only the ``@`` is checked (providers vary); an address as mail programs copy it
    (``Ann Smith <ann@x.io>``) is that address, as in an import
    (:func:`registration.enrollments.rules.cell_address`): stored as written it would never
    match the e-mail its person signs in with."""
    if "@" not in value:
        raise ValueError("not an email address")
    return rules.cell_address(value) or value


#: An email address (only the ``@`` is checked, providers vary).
Email = Annotated[
    str,
    CleanText(MAX_EMAIL),
    AfterValidator(_email),
    WithJsonSchema(
        {
            "type": "string",
            "minLength": 1,
            "maxLength": MAX_EMAIL,
            "pattern": rf"^\s*[^{CONTROL_RANGES}]*@[^{CONTROL_RANGES}]*\s*$",
            "description": "An email address: only the `@` is checked, providers vary; "
            "`Ann Smith <ann@x.io>`, as mail programs copy it, is read as `ann@x.io`.",
        }
    ),
]


class EnrollmentOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    session_id: uuid.UUID
    event_id: uuid.UUID
    user_id: str | None = Field(
        description="Null while the enrollment waits for its person: an admin enrolled an "
        "e-mail nobody has signed in with yet; it becomes the user's when a token with that "
        "e-mail is first seen."
    )
    status: EnrollmentStatus


class AdminEnrollmentIn(Body):
    """R-ENR-4: the person by ``user_id``, by ``email``, or both (at least one)."""

    model_config = ConfigDict(
        json_schema_extra={
            "anyOf": [
                {"required": [name], "properties": {name: {"type": "string"}}}
                for name in ("user_id", "email")
            ]
        }
    )

    user_id: UserId | None = None
    email: Email | None = None
    session_id: uuid.UUID

    @model_validator(mode="after")
    def _someone(self) -> AdminEnrollmentIn:
        if self.user_id is None and self.email is None:
            raise PydanticCustomError("missing", "a user_id or an email is required")
        return self


class StatusChangeIn(Body):
    status: EnrollmentStatus
    reason: Annotated[str, CleanText(2000, min_length=0, multiline=True)] | None = None


class HistoryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    at: dt.datetime
    by: str
    from_status: EnrollmentStatus | None
    to_status: EnrollmentStatus
    reason: str | None


class AttendanceOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    day_id: uuid.UUID
    joined: bool
    minutes: int | None
    final: bool


class AdminEnrollmentOut(EnrollmentOut):
    email: str | None
    created_at: dt.datetime
    updated_at: dt.datetime
    history: list[HistoryOut]
    attendance: list[AttendanceOut]


class AdminEnrollmentPage(BaseModel):
    items: list[AdminEnrollmentOut]
    next_cursor: str | None


class SeatsOut(BaseModel):
    limit_enabled: bool
    participant_limit: int | None
    taken: int
    left: int | None
    waitlisted: int


class ImportResult(BaseModel):
    imported: int
    unchanged: int
