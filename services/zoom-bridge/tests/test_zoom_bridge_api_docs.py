"""The README's API table and the OpenAPI document list the same endpoints."""

from __future__ import annotations

from pathlib import Path

from te_testing.api import assert_readme_lists_the_api
from zoom_bridge.app import create_app

README = Path(__file__).parents[1] / "README.md"


def test_readme_api_section_matches_openapi() -> None:
    assert_readme_lists_the_api(README, create_app())
