"""Text a client sends: trimmed, bounded, and free of characters a database cannot store.

PostgreSQL refuses NUL in text, a lone surrogate (which ``json.loads`` lets through from a
``\\ud800`` escape) cannot be encoded as UTF-8, and other control characters are never part of a
name, an id or an email. Nothing a client sends may reach the database as a 500 (R-ERR-1), so a
service declares its text fields with :class:`CleanText`::

    UserId = Annotated[str, CleanText(MAX_USER_ID)]
    Reason = Annotated[str, CleanText(2000, multiline=True)]

and checks text that does not pass through pydantic (the cells of an uploaded file) with
:func:`clean_text`, which raises :class:`ValueError` with a reason fit for the user. Text given
for every locale or by locale code (an event title, a session name) is :class:`ByLocale`, whose
keys are :data:`LocaleCode` and whose texts are :class:`CleanText` too.

The platform's identifiers have one size everywhere: a user id (a token's ``sub``, an id an admin
names, a Zoom organizer) at most :data:`MAX_USER_ID`, a company id :data:`MAX_COMPANY_ID`, an
email :data:`MAX_EMAIL` characters, as every service stores them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import AfterValidator, GetCoreSchemaHandler, GetJsonSchemaHandler, WithJsonSchema
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, PydanticCustomError, core_schema

#: a token's ``sub`` and any user id a client names (every service stores at most 100)
MAX_USER_ID = 100
#: a token's ``company_id`` (every service stores at most 100)
MAX_COMPANY_ID = 100
#: an email address (RFC 5321's 64 + 1 + 255, as stored)
MAX_EMAIL = 320

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
    trimming, no control characters (tab and line breaks allowed when ``multiline``). Its JSON
    Schema's ``maxLength`` counts the white space around too: a client that keeps to it is
    never refused for the length."""

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
        json_schema["pattern"] = text_pattern(multiline=self.multiline, blank=self.min_length == 0)
        return json_schema


#: :data:`_CONTROL` and :data:`_CONTROL_MULTILINE` as JSON Schema (ECMA-262) character ranges
CONTROL_RANGES = r"\u0000-\u001f\u007f-\u009f"
_CONTROL_MULTILINE_RANGES = r"\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f"


def text_pattern(*, multiline: bool = False, blank: bool = False) -> str:
    """The JSON Schema ``pattern`` of what :func:`clean_text` accepts: no control character
    once the surrounding white space is trimmed, and (unless ``blank``) not only white space.
    (Lone surrogates cannot be sent as UTF-8 JSON, so the pattern need not name them.)"""
    c = _CONTROL_MULTILINE_RANGES if multiline else CONTROL_RANGES
    if blank:
        return rf"^\s*[^{c}]*\s*$"
    return rf"^\s*[^{c}]*[^\s{c}][^{c}]*\s*$"


UserId = Annotated[str, CleanText(MAX_USER_ID)]

#: a BCP 47 language tag as the platform uses them: a language, then up to three subtags
_LOCALE = re.compile(r"[a-z]{2,3}(?:-[A-Za-z0-9]{2,8}){0,3}")
MAX_LOCALE = 30


def _locale(value: str) -> str:
    if not _LOCALE.fullmatch(value):
        raise ValueError(f"{value!r} is not a locale code like 'en' or 'pt-BR'")
    return value


#: A locale code like ``en`` or ``pt-BR``.
LocaleCode = Annotated[
    str,
    CleanText(MAX_LOCALE),
    AfterValidator(_locale),
    WithJsonSchema(
        {  # the pattern bounds the length (white space around is trimmed)
            "type": "string",
            "minLength": 2,
            "pattern": rf"^\s*{_LOCALE.pattern}\s*$",
            "description": "A locale code like `en` or `pt-BR`.",
        }
    ),
]


@dataclass(frozen=True, slots=True)
class ByLocale:
    """Annotation for a ``dict[str, str] | str`` field: one text for every locale, or texts by
    locale code (``{"en": "...", "ru": "..."}``, at most ``max_locales``). Every text goes
    through ``text`` and every key is a :data:`LocaleCode`.

    A plain union would let the texts through unchecked or, once checked, report every branch
    that failed (``body.name.str``, ``body.name.dict[...]``); here the input's own shape picks the
    branch, so an error names the text itself: ``body.name`` or ``body.name.en``."""

    text: CleanText
    max_locales: int = 50

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        text = handler.generate_schema(Annotated[str, self.text])
        by_locale = core_schema.dict_schema(
            handler.generate_schema(LocaleCode), text, max_length=self.max_locales
        )

        def validate(value: Any, inner: core_schema.ValidatorFunctionWrapHandler) -> Any:
            if isinstance(value, str):
                return self.text.clean(value)
            if isinstance(value, dict):
                return inner(value)
            raise PydanticCustomError(
                "text_or_texts_by_locale",
                "Input should be a text or an object of texts by locale code",
            )

        # an empty object is refused by the service ("a name is required"), so documented so
        documented = core_schema.dict_schema(
            handler.generate_schema(LocaleCode), text, min_length=1, max_length=self.max_locales
        )
        return core_schema.no_info_wrap_validator_function(
            validate,
            by_locale,
            json_schema_input_schema=core_schema.union_schema([documented, text]),
            serialization=core_schema.simple_ser_schema("any"),
        )

    def __get_pydantic_json_schema__(
        self, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        """Pydantic writes a dict whose keys have a ``pattern`` as ``patternProperties``, which
        leaves every other key unconstrained: name the keys with ``propertyNames`` instead."""
        json_schema = handler(schema)
        for branch in json_schema.get("anyOf", []):
            patterns = branch.pop("patternProperties", None)
            if patterns:
                [(pattern, texts)] = patterns.items()
                branch["propertyNames"] = {**branch.get("propertyNames", {}), "pattern": pattern}
                branch["additionalProperties"] = texts
        return json_schema
