from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated

from pydantic import BaseModel, ConfigDict, model_validator

from te_shared.body import Body
from te_shared.contracts import ZoomAccountRole
from te_shared.text import CleanText

#: a Zoom app's secret (client secret, webhook secret token), as pasted from Zoom's app page
Secret = Annotated[str, CleanText(500)]


class AccountOut(BaseModel):
    """A connected account; tokens are never part of it."""

    id: uuid.UUID
    role: ZoomAccountRole
    kind: str
    zoom_user_email: str
    connected_at: dt.datetime
    #: Zoom no longer accepts the connection's refresh token (``invalid_grant``, e.g. after
    #: Zoom rotated it and its answer was lost): nothing can be done through it until an admin
    #: connects the same Zoom user again; its days' meetings fail meanwhile
    needs_reconnect: bool = False


class AccountPatch(Body):
    """What an admin changes on a connection (at least one field): its role, and for a
    Server-to-Server connection its app's webhook secret token (after it was regenerated at
    Zoom; stored encrypted, never returned)."""

    # the rule below, stated in the schema too: at least one of them, and not null
    model_config = ConfigDict(
        json_schema_extra={
            "anyOf": [
                {"required": [name], "properties": {name: {"not": {"type": "null"}}}}
                for name in ("role", "webhook_secret_token")
            ]
        }
    )

    role: ZoomAccountRole | None = None
    webhook_secret_token: Secret | None = None

    @model_validator(mode="after")
    def _something_to_change(self) -> AccountPatch:
        if self.role is None and self.webhook_secret_token is None:
            raise ValueError("give role, webhook_secret_token or both")
        return self


class ServerToServerIn(Body):
    """A Server-to-Server OAuth app of the company's Zoom account."""

    zoom_account_id: Annotated[str, CleanText(100)]
    client_id: Annotated[str, CleanText(200)]
    client_secret: Secret
    role: ZoomAccountRole
    #: the app's own webhook secret token (Feature > Event Subscriptions); it verifies the
    #: webhooks of this Zoom account. Stored encrypted, never returned.
    webhook_secret_token: Secret | None = None
