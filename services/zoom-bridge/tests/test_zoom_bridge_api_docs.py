"""The README's API table and the OpenAPI document list the same endpoints."""

from __future__ import annotations

import re
from pathlib import Path

from zoom_bridge.app import create_app

README = Path(__file__).parents[1] / "README.md"


def test_readme_api_section_matches_openapi() -> None:
    documented = set(
        re.findall(r"^\| `(GET|POST|PUT|PATCH|DELETE) (/v1/[^`]+)`", README.read_text(), re.M)
    )
    spec = create_app().openapi()
    served = {
        (method.upper(), path)
        for path, ops in spec["paths"].items()
        if path.startswith("/v1/")
        for method in ops
    }
    assert documented == served
