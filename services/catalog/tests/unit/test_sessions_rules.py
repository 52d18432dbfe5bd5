"""catalog.sessions.rules and catalog.events.rules, tested directly."""

from __future__ import annotations

import datetime as dt

import pytest

from catalog.events import rules as event_rules
from catalog.sessions import rules
from te_shared.errors import ProblemError


def test_r_ses_6_default_registration_end() -> None:
    created = dt.datetime(2024, 1, 1, 5, 59, tzinfo=dt.UTC)  # 08:59 in Moscow (the seed)
    got = rules.default_registration_end(created, "Europe/Moscow")
    assert got == dt.datetime(2024, 1, 2, 11, 59, tzinfo=dt.timezone(dt.timedelta(hours=3)))


def test_r_ses_7_registration_end_before_the_first_day() -> None:
    first = dt.datetime(2030, 1, 5, 9, tzinfo=dt.UTC)
    rules.check_registration_end(first - dt.timedelta(seconds=1), first, "body.x")
    rules.check_registration_end(first, None, "body.x")  # no days yet
    with pytest.raises(ProblemError) as caught:
        rules.check_registration_end(first, first, "body.x")
    assert caught.value.detail == rules.R_SES_7


def test_r_ses_1_2_clean_names() -> None:
    assert rules.clean_names("  Day ", ["en", "de"], all_locales=True) == {"en": "Day", "de": "Day"}
    assert rules.clean_names({"de": "Tag"}, ["en", "de"], all_locales=True) == {
        "en": "Tag",
        "de": "Tag",
    }
    assert rules.clean_names({"de": "Tag"}, ["en", "de"], all_locales=False) == {"de": "Tag"}
    for bad in ("   ", "x" * 181, {"fr": "Jour"}, {}):
        with pytest.raises(ProblemError):
            rules.clean_names(bad, ["en", "de"], all_locales=True)


def test_r_ses_8_9_limits() -> None:
    rules.check_limit(False, None)
    with pytest.raises(ProblemError):
        rules.check_limit(True, None)
    rules.check_limit_against_taken(True, 5, 5)
    rules.check_limit_against_taken(False, 1, 5)
    with pytest.raises(ProblemError):
        rules.check_limit_against_taken(True, 4, 5)


def test_r_ses_4_timezone() -> None:
    assert rules.timezone("Europe/Berlin") == "Europe/Berlin"
    with pytest.raises(ProblemError):
        rules.timezone("Mars/Olympus")


def test_meeting_topic_is_at_most_200_characters() -> None:
    assert event_rules.topic({"en": "Python"}, {"en": "Evening"}) == "Python — Evening"
    assert event_rules.topic({"en": "Python"}, {}) == "Python"
    assert len(event_rules.topic({"en": "x" * 300}, {"en": "y"})) == 200
