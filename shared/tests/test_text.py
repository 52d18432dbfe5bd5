"""Client text (CleanText, ByLocale, LocaleCode) and the request-body base (Body): what every
service's schemas refuse, and how the refusal names the field."""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Annotated, Any

import pytest
from pydantic import ValidationError

from te_shared.body import Body
from te_shared.text import ByLocale, CleanText, LocaleCode, UserId, text_pattern

Title = Annotated[dict[str, str] | str, ByLocale(CleanText(10))]


class Model(Body):
    title: Title
    subtitle: Title | None = None
    locales: list[LocaleCode] = []
    owner: UserId = "u1"


def errors(payload: bytes) -> list[tuple[str, str]]:
    """``(dotted field, error type)`` of a body parsed as FastAPI parses it (``json.loads``,
    which lets a lone surrogate through from its escape)."""
    with pytest.raises(ValidationError) as caught:
        Model.model_validate(json.loads(payload))
    return [(".".join(map(str, e["loc"])), e["type"]) for e in caught.value.errors()]


class TestByLocale:
    @pytest.mark.parametrize(
        ("value", "expected"),
        [(" Go ", "Go"), ({"en": " Go ", "pt-BR": "Vai"}, {"en": "Go", "pt-BR": "Vai"})],
    )
    def test_a_text_or_texts_by_locale_are_trimmed(self, value: Any, expected: Any) -> None:
        assert Model(title=value).title == expected

    @pytest.mark.parametrize(
        ("payload", "expected"),
        [
            (b'{"title": "a\\ud800b"}', [("title", "value_error")]),
            (b'{"title": {"en": "a\\udfffb"}}', [("title.en", "value_error")]),
            (b'{"title": {"en": "a\\u0007"}}', [("title.en", "value_error")]),
            (b'{"title": "   "}', [("title", "value_error")]),
            (b'{"title": "12345678901"}', [("title", "value_error")]),
            (b'{"title": {"en": ""}}', [("title.en", "value_error")]),
            (b'{"title": 5}', [("title", "text_or_texts_by_locale")]),
            (b'{"title": ["x"]}', [("title", "text_or_texts_by_locale")]),
            (b'{"title": {"en": 5}}', [("title.en", "string_type")]),
            (b'{"title": "x", "subtitle": {"en": "a\\ud800"}}', [("subtitle.en", "value_error")]),
        ],
    )
    def test_refusals_name_the_text_not_a_union_branch(
        self, payload: bytes, expected: list[tuple[str, str]]
    ) -> None:
        assert errors(payload) == expected

    @pytest.mark.parametrize(
        "key", ["\\ud800", "e\\u0001", "EN", "en_US", "x" * 31, "", " "], ids=repr
    )
    def test_keys_are_locale_codes(self, key: str) -> None:
        payload = b'{"title": {"%s": "x"}}' % key.encode()
        [(field, kind)] = errors(payload)
        assert field.startswith("title."), field
        assert field.endswith(".[key]"), field
        assert kind == "value_error"

    def test_at_most_max_locales(self) -> None:
        many = {f"l{chr(97 + i // 26)}{chr(97 + i % 26)}": "x" for i in range(51)}
        assert errors(json.dumps({"title": many}).encode()) == [("title", "too_long")]

    def test_json_schema_is_a_text_or_an_object_of_texts(self) -> None:
        schema = Model.model_json_schema()["properties"]["title"]
        text = {"type": "string", "minLength": 1, "maxLength": 10, "pattern": text_pattern()}
        assert schema["anyOf"] == [
            {
                "type": "object",
                "additionalProperties": text,
                "propertyNames": {
                    "minLength": 2,
                    "pattern": r"^\s*[a-z]{2,3}(?:-[A-Za-z0-9]{2,8}){0,3}\s*$",
                    "description": "A locale code like `en` or `pt-BR`.",
                },
                "minProperties": 1,
                "maxProperties": 50,
            },
            text,
        ]


class TestLocaleCodeAndUserId:
    def test_locale_codes_like_en_and_pt_br(self) -> None:
        assert Model(title="x", locales=[" en ", "pt-BR", "zh-Hant-TW"]).locales == [
            "en",
            "pt-BR",
            "zh-Hant-TW",
        ]
        assert errors(b'{"title": "x", "locales": ["en", "r\\ud800u"]}') == [
            ("locales.1", "value_error")
        ]

    def test_user_ids_are_at_most_100_characters(self) -> None:
        assert Model(title="x", owner="u" * 100).owner == "u" * 100
        assert errors(b'{"title": "x", "owner": "%s"}' % (b"u" * 101)) == [("owner", "value_error")]


class TestBody:
    def test_unknown_fields_are_refused_by_name(self) -> None:
        assert errors(b'{"title": "x", "titel": "y", "extra": {}}') == [
            ("titel", "extra_forbidden"),
            ("extra", "extra_forbidden"),
        ]

    def test_nul_is_refused_anywhere(self) -> None:
        assert errors(b'{"title": {"en": "a\\u0000"}}') == [("title", "value_error")]

    def test_json_schema_forbids_additional_properties(self) -> None:
        assert Model.model_json_schema()["additionalProperties"] is False


class TestTheSchemaSaysWhatIsAccepted:
    """The JSON Schema of a text is what :class:`CleanText` accepts (a client generated from the
    OpenAPI can rely on it: schemathesis checks both ways against the running services)."""

    @pytest.mark.parametrize(
        ("text", "multiline", "blank"),
        [
            ("x", False, False),
            ("  x y  ", False, False),
            ("\tx\n", False, False),  # white space around is trimmed, so it may be anything
            ("a\tb", False, False),
            ("a\nb", True, False),
            ("a\u0085b", False, False),
            ("   ", False, False),
            ("", False, False),
            ("", False, True),
            ("  ", True, True),
            ("a\u0000", True, True),
            ("é \u3000 ü", False, False),
        ],
    )
    def test_the_pattern_is_the_rule(self, text: str, multiline: bool, blank: bool) -> None:
        annotation = CleanText(100, min_length=0 if blank else 1, multiline=multiline)
        try:
            annotation.clean(text)
        except ValueError:
            accepted = False
        else:
            accepted = True
        assert bool(re.fullmatch(text_pattern(multiline=multiline, blank=blank), text)) == accepted


class Typed(Body):
    flag: bool = False
    count: int | None = None
    ratio: float = 0.0
    at: dt.datetime | None = None


class TestJsonTypes:
    """A value has the JSON type the schema states: no ``0`` for ``false``, ``"5"`` for ``5``
    or a number of seconds for a time (pydantic's lax mode takes all three)."""

    @pytest.mark.parametrize(
        ("payload", "field"),
        [
            ({"flag": 0}, "flag"),
            ({"flag": "true"}, "flag"),
            ({"count": "5"}, "count"),
            ({"count": True}, "count"),
            ({"ratio": "0.5"}, "ratio"),
            ({"ratio": False}, "ratio"),
            ({"at": 1700000000}, "at"),
        ],
        ids=repr,
    )
    def test_other_json_types_are_refused(self, payload: dict[str, Any], field: str) -> None:
        with pytest.raises(ValidationError) as caught:
            Typed.model_validate(payload)
        assert [(e["loc"], e["type"]) for e in caught.value.errors()] == [((field,), "json_type")]

    def test_the_stated_types_are_taken(self) -> None:
        typed = Typed.model_validate(
            {"flag": True, "count": 5.0, "ratio": 1, "at": "2030-01-01T00:00:00Z"}
        )
        assert (typed.flag, typed.count, typed.ratio) == (True, 5, 1.0)
        assert typed.at == dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
        assert Typed.model_validate({"count": None}).count is None
