"""Text a client sends: trimmed, bounded, and free of characters a database cannot store.

PostgreSQL refuses NUL in text, a lone surrogate (which ``json.loads`` lets through from a
``\\ud800`` escape) cannot be encoded as UTF-8, and other control characters are never part of a
name, an id or an email. Nothing a client sends may reach the database as a 500 (R-ERR-1), so a
service declares its text fields with :class:`CleanText`::

    UserId = Annotated[str, CleanText(200)]
    Reason = Annotated[str, CleanText(2000, multiline=True)]

and checks text that does not pass through pydantic (the cells of an uploaded file) with
:func:`clean_text`, which raises :class:`ValueError` with a reason fit for the user.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, core_schema

#: C0 controls (NUL included), DEL, C1 controls and lone surrogates.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
#: The same, but tab, line feed and carriage return are allowed (free text over several lines).
_CONTROL_MULTILINE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")


def text_problem(
    value: str, *, max_length: int, min_length: int = 1, multiline: bool = False
) -> str | None:
    """Why ``value`` (already trimmed) is refused, or None when it is fine."""
    if (_CONTROL_MULTILINE if multiline else _CONTROL).search(value):
        return "control characters (such as NUL) are not allowed"
    if len(value) < min_length:
        return "must not be empty" if min_length == 1 else f"at least {min_length} characters"
    if len(value) > max_length:
        return f"at most {max_length} characters"
    return None


def clean_text(value: str, *, max_length: int, min_length: int = 1, multiline: bool = False) -> str:
    """``value`` trimmed; :class:`ValueError` when it is too short, too long or has control
    characters."""
    trimmed = value.strip()
    problem = text_problem(
        trimmed, max_length=max_length, min_length=min_length, multiline=multiline
    )
    if problem is not None:
        raise ValueError(problem)
    return trimmed


@dataclass(frozen=True, slots=True)
class CleanText:
    """Annotation for a ``str`` field: trimmed, ``min_length``..``max_length`` characters after
    trimming, no control characters (tab and line breaks allowed when ``multiline``)."""

    max_length: int
    min_length: int = 1
    multiline: bool = False

    def clean(self, value: str) -> str:
        return clean_text(
            value,
            max_length=self.max_length,
            min_length=self.min_length,
            multiline=self.multiline,
        )

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        return core_schema.no_info_after_validator_function(self.clean, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        json_schema = handler(schema)
        json_schema["maxLength"] = self.max_length
        if self.min_length:
            json_schema["minLength"] = self.min_length
        return json_schema
