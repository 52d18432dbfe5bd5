"""Client text (CleanText, ByLocale, LocaleCode) and the request-body base (Body): what every
service's schemas refuse, and how the refusal names the field."""

from __future__ import annotations

import json
from typing import Annotated, Any

import pytest
from pydantic import ValidationError

from te_shared.body import Body
from te_shared.text import ByLocale, CleanText, LocaleCode, UserId

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
        text = {"type": "string", "minLength": 1, "maxLength": 10}
        assert schema["anyOf"] == [
            {
                "type": "object",
                "additionalProperties": text,
                "propertyNames": {"minLength": 1, "maxLength": 30},
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
