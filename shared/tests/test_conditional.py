"""te_shared.conditional's pure parts (RFC 9110 section 13)."""

from __future__ import annotations

import pytest

from te_shared.conditional import not_modified

TAG = 'W/"abc"'


@pytest.mark.parametrize(
    ("if_none_match", "held"),
    [
        (None, False),
        ('W/"abc"', True),
        ('"abc"', True),  # If-None-Match compares weakly
        ('W/"x", W/"abc"', True),
        (' W/"x" ,"abc" ', True),
        ("*", True),
        ('W/"x"', False),
        ("", False),
        ("abc", False),  # not a quoted tag
    ],
)
def test_if_none_match_holds_the_current_representation(
    if_none_match: str | None, held: bool
) -> None:
    assert not_modified(if_none_match, TAG) is held
