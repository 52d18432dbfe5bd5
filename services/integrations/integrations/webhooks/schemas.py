from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    WithJsonSchema,
    model_validator,
)

from integrations.delivery.events import ALL, EVENT_TYPES
from integrations.delivery.targets import MAX_URL_LENGTH
from te_shared.body import Body
from te_shared.text import CONTROL_RANGES, CleanText


def _event_type(value: str) -> str:
    if value != ALL and value not in EVENT_TYPES:
        raise ValueError(f"unknown event type {value!r}; one of {', '.join(EVENT_TYPES)} or '*'")
    return value


#: the schema states the known types (a client generated from it offers them, and a fuzzer
#: sends only those); the validator's message names them for one that is not
EventType = Annotated[
    str,
    CleanText(50),
    AfterValidator(_event_type),
    WithJsonSchema({"type": "string", "enum": [*EVENT_TYPES, ALL]}),
]
DeliveryState = Literal["pending", "delivered", "failed", "discarded"]
#: an absolute http(s) URL with a host, without credentials, a fragment, spaces or control
#: characters (ECMA 262: no flags, so the scheme's case is spelt out)
_NOT_IN_URL = rf"\s{CONTROL_RANGES}"
TARGET_PATTERN = rf"^[Hh][Tt][Tt][Pp][Ss]?://[^/?#@{_NOT_IN_URL}]+(?:[/?][^#{_NOT_IN_URL}]*)?$"


#: an endpoint's URL as a body carries it
TargetUrl = Annotated[str, CleanText(MAX_URL_LENGTH)]
URL_DESCRIPTION: dict[str, Any] = {
    "description": "Where deliveries are POSTed: an `https://` URL whose host resolves to "
    "public addresses only (`http://` and private networks only where the service's "
    "settings allow them, as in a local run); no credentials, no fragment.",
    # what a schema can state of it: an absolute http(s) URL with a host and no credentials
    # (the scheme the settings allow and where the host resolves, it cannot)
    "json_schema_extra": {"pattern": TARGET_PATTERN},
}
EVENTS_DESCRIPTION = (
    "Event types to receive: " + ", ".join(f"`{e}`" for e in EVENT_TYPES) + "; `*` for all."
)
Description = Annotated[str, CleanText(500, min_length=0, multiline=True)]


class EndpointIn(Body):
    url: TargetUrl = Field(**URL_DESCRIPTION)
    events: list[EventType] = Field(min_length=1, max_length=20, description=EVENTS_DESCRIPTION)
    description: Description | None = None


#: what a PATCH may change; a null ``description`` clears it, any other null changes nothing
PATCHABLE = ("url", "events", "description", "enabled")


class EndpointPatch(Body):
    """What an admin changes on an endpoint (at least one field). ``enabled: true`` turns a
    disabled endpoint (its receiver answered 410 Gone, or an admin disabled it) on again:
    changes from then on are delivered (the recovery endpoint queues earlier ones again);
    ``enabled: false`` stops deliveries and discards what was still pending."""

    # the rule below, stated in the schema too: at least one of them (only description null)
    model_config = ConfigDict(
        json_schema_extra={
            "anyOf": [
                {"required": [name], "properties": {name: {"not": {"type": "null"}}}}
                if name != "description"
                else {"required": [name]}
                for name in PATCHABLE
            ]
        }
    )

    url: TargetUrl | None = Field(default=None, **URL_DESCRIPTION)
    events: list[EventType] | None = Field(
        default=None, min_length=1, max_length=20, description=EVENTS_DESCRIPTION
    )
    description: Description | None = None
    enabled: bool | None = None

    @model_validator(mode="after")
    def _something_to_change(self) -> EndpointPatch:
        # null leaves url, events and enabled as they are; it clears the description
        given = {name for name in ("url", "events", "enabled") if getattr(self, name) is not None}
        if not given and "description" not in self.model_fields_set:
            raise ValueError(f"give at least one of {', '.join(PATCHABLE)}")
        return self


class RecoverIn(Body):
    """Which given-up or discarded deliveries to queue again: those of changes that happened
    from ``since`` (to ``until``, when given)."""

    since: AwareDatetime = Field(description="Changes that happened at or after this time.")
    until: AwareDatetime | None = Field(
        default=None, description="... and before this time (default: up to now)."
    )

    @model_validator(mode="after")
    def _a_time_span(self) -> RecoverIn:
        if self.until is not None and self.until <= self.since:
            raise ValueError("until must come after since")
        return self


class RecoverOut(BaseModel):
    recovered: int = Field(description="Deliveries queued again.")


class EndpointOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    url: str
    description: str | None
    events: list[str]
    enabled: bool = Field(
        description="False once the receiver answered 410 Gone, or an admin disabled it."
    )
    disabled_reason: str | None
    disabled_at: dt.datetime | None
    created_at: dt.datetime
    secret_rotated_at: dt.datetime | None
    previous_secret_expires_at: dt.datetime | None = Field(
        description="While set, a rotated-out secret still signs beside the current one."
    )


class EndpointWithSecret(EndpointOut):
    secret: str = Field(
        description="The signing secret (`whsec_...`, Standard Webhooks). Shown only in this "
        "answer (and its replay to the same Idempotency-Key): store it now."
    )


class AttemptOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    attempt: int
    attempted_at: dt.datetime
    duration_ms: int
    status_code: int | None = Field(description="The receiver's status; null without an answer.")
    error: str | None = Field(description="Why it failed without a 2xx: timeout, refused, ...")
    response_excerpt: str | None = Field(description="The first bytes of the answer (at most 512).")


class DeliveryOut(BaseModel):
    webhook_id: str = Field(description="The `webhook-id` header: the same on every attempt.")
    message_id: uuid.UUID
    event_type: str
    state: DeliveryState
    occurred_at: dt.datetime
    created_at: dt.datetime
    next_attempt_at: dt.datetime | None = Field(description="Pending deliveries only.")
    finished_at: dt.datetime | None
    attempts: list[AttemptOut]


class DeliveryPage(BaseModel):
    items: list[DeliveryOut]
    next_cursor: str | None
