"""The README documents every endpoint the simulator serves, and every setting."""

from __future__ import annotations

import re
from pathlib import Path

from zoom_sim.app import create_app
from zoom_sim.settings import Settings

README = Path(__file__).parents[1] / "README.md"
#: pages behind the links the simulator hands out (not in its OpenAPI)
PAGES = {("GET", "/j/{}"), ("GET", "/s/{}"), ("GET", "/rec/play/{}"), ("GET", "/rec/download/{}")}


def _norm(path: str) -> str:
    return re.sub(r"\{[^}]*\}", "{}", path.split("?", 1)[0])


def test_readme_lists_every_endpoint() -> None:
    documented: set[tuple[str, str]] = set()
    for line in README.read_text().splitlines():
        if not line.startswith("| `"):
            continue
        first_cell = line.split(" | ", 1)[0]
        for method, path in re.findall(r"`(GET|POST|PUT|PATCH|DELETE) (/[^`]*)`", first_cell):
            documented.add((method, _norm(path)))
    served = {
        (method.upper(), _norm(path))
        for path, operations in create_app().openapi()["paths"].items()
        for method in operations
    }
    assert served - documented == set(), "served but not in the README"
    assert documented - served - PAGES == set(), "in the README but not served"


def test_readme_lists_every_setting() -> None:
    text = README.read_text()
    for name, field in Settings.model_fields.items():
        assert f"`{field.validation_alias}`" in text, name
