"""The base of every request body of every service: one policy for what a client may send.

Unknown fields are refused (422 naming the field, ``extra_forbidden``), not silently ignored: a
misspelt optional field would otherwise look accepted and change nothing. NUL characters, which
PostgreSQL cannot store, are refused in any field, nested values and keys included; the text
fields themselves are :class:`te_shared.text.CleanText`, which refuses every control character.
The OpenAPI schemas show ``additionalProperties: false``.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(_has_nul(v) for v in value)
    return False


class Body(BaseModel):
    """A request body: unknown fields and NUL characters refused."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="before")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        if _has_nul(value):
            raise ValueError("text may not contain NUL characters")
        return value
