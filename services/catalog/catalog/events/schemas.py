from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from catalog.sessions.schemas import SessionOut
from te_shared.body import Body
from te_shared.text import ByLocale, CleanText

TITLE_MAX = 500
#: one title for every locale, or titles by locale code; each trimmed, 1-500 characters
Title = Annotated[dict[str, str] | str, ByLocale(CleanText(TITLE_MAX))]


class EventIn(Body):
    title: Title = Field(description="A plain string (all locales) or `{locale: text}`.")
    dated: bool = True
    requires_approval: bool = False


class EventPatch(Body):
    """``dated`` is fixed at creation (it decides whether sessions have a registration end)."""

    title: Title | None = None
    state: Literal["hidden", "active"] | None = None
    requires_approval: bool | None = None


class EventOut(BaseModel):
    id: uuid.UUID
    title: dict[str, str]
    dated: bool
    requires_approval: bool
    state: Literal["hidden", "active"]
    version: int
    created_at: dt.datetime


class EventDetail(EventOut):
    sessions: list[SessionOut]


class EventPage(BaseModel):
    items: list[EventOut]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null at the end."
    )
