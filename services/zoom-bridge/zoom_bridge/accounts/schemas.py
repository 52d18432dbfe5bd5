from __future__ import annotations

import datetime as dt
import uuid

from pydantic import BaseModel, Field, model_validator

from te_shared.contracts import ZoomAccountRole


class AccountOut(BaseModel):
    """A connected account; tokens are never part of it."""

    id: uuid.UUID
    role: ZoomAccountRole
    kind: str
    zoom_user_email: str
    connected_at: dt.datetime


class AccountPatch(BaseModel):
    """What an admin changes on a connection (at least one field): its role, and for a
    Server-to-Server connection its app's webhook secret token (after it was regenerated at
    Zoom; stored encrypted, never returned)."""

    role: ZoomAccountRole | None = None
    webhook_secret_token: str | None = Field(default=None, min_length=1, max_length=500)

    @model_validator(mode="after")
    def _something_to_change(self) -> AccountPatch:
        if self.role is None and self.webhook_secret_token is None:
            raise ValueError("give role, webhook_secret_token or both")
        return self


class ServerToServerIn(BaseModel):
    """A Server-to-Server OAuth app of the company's Zoom account."""

    zoom_account_id: str = Field(min_length=1, max_length=100)
    client_id: str = Field(min_length=1, max_length=200)
    client_secret: str = Field(min_length=1, max_length=500)
    role: ZoomAccountRole
    #: the app's own webhook secret token (Feature > Event Subscriptions); it verifies the
    #: webhooks of this Zoom account. Stored encrypted, never returned.
    webhook_secret_token: str | None = Field(default=None, min_length=1, max_length=500)
