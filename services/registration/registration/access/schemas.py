from __future__ import annotations

from pydantic import BaseModel, Field

from te_shared.body import Body
from te_shared.text import UserId


class AccessIn(Body):
    user_ids: list[UserId] = Field(min_length=1, max_length=5000)


class AccessOut(BaseModel):
    granted: list[str] = Field(description="Users who lacked access and now have it.")
