"""The base of every request body of every service: one policy for what a client may send.

Unknown fields are refused (422 naming the field, ``extra_forbidden``), not silently ignored: a
misspelt optional field would otherwise look accepted and change nothing. NUL characters, which
PostgreSQL cannot store, are refused in any field, nested values and keys included; the text
fields themselves are :class:`te_shared.text.CleanText`, which refuses every control character.
A value must have the JSON type its schema states: pydantic's lax mode would take ``0`` for
``false``, ``"5"`` for ``5`` and a number of seconds for a time, which the documented schema does
not allow, so a client generated from it could not rely on either. The OpenAPI schemas show
``additionalProperties: false``.
"""

from __future__ import annotations

import datetime as dt
import enum
import types
import uuid
from functools import cache
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    FutureDatetime,
    NaiveDatetime,
    PastDatetime,
    ValidationInfo,
    field_validator,
)
from pydantic_core import PydanticCustomError


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(_has_nul(v) for v in value)
    return False


#: Python type of a field -> (the JSON type it is written as, the values that are that type)
_JSON_TYPES: dict[type, tuple[str, tuple[type, ...]]] = {
    bool: ("boolean", (bool,)),
    int: ("integer", (int,)),
    float: ("number", (int, float)),
    str: ("string", (str,)),
    dt.datetime: ("string", (str, dt.datetime)),
    dt.date: ("string", (str, dt.date)),
    dt.time: ("string", (str, dt.time)),
    uuid.UUID: ("string", (str, uuid.UUID)),
}
for _time in (AwareDatetime, NaiveDatetime, FutureDatetime, PastDatetime):
    _JSON_TYPES[_time] = _JSON_TYPES[dt.datetime]


def _json_type(annotation: Any) -> tuple[str, tuple[type, ...]] | None:
    """The JSON type(s) a field of ``annotation`` takes (``null`` as ``type(None)``), or None
    when pydantic's own validation is exact already (models, lists, literals, ...)."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _json_type(get_args(annotation)[0])
    if origin is Union or origin is types.UnionType:
        names: list[str] = []
        accepted: list[type] = []
        for member in get_args(annotation):
            if member is type(None):
                names.append("null")
                accepted.append(type(None))
                continue
            found = _json_type(member)
            if found is None:
                return None
            names.append(found[0])
            accepted.extend(found[1])
        return " or ".join(dict.fromkeys(names)), tuple(dict.fromkeys(accepted))
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        if issubclass(annotation, str):
            return "string", (str,)
        return None
    return _JSON_TYPES.get(annotation)


@cache
def _field_json_type(model: type[BaseModel], name: str) -> tuple[str, tuple[type, ...]] | None:
    field = model.model_fields.get(name)
    return None if field is None else _json_type(field.annotation)


class Body(BaseModel):
    """A request body: unknown fields and NUL characters refused, JSON types as stated."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="before")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        if _has_nul(value):
            raise ValueError("text may not contain NUL characters")
        return value

    @field_validator("*", mode="before")
    @classmethod
    def _as_stated(cls, value: Any, info: ValidationInfo) -> Any:
        expected = None if info.field_name is None else _field_json_type(cls, info.field_name)
        if expected is None:
            return value
        name, accepted = expected
        if isinstance(value, float) and int in accepted and value.is_integer():
            return value  # 5.0 is an integer in JSON (and pydantic makes it 5)
        # bool is an int in Python, never a number in JSON
        if not isinstance(value, accepted) or (isinstance(value, bool) and bool not in accepted):
            raise PydanticCustomError(
                "json_type", "Input should be a JSON {expected}", {"expected": name}
            )
        return value
