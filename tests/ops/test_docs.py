"""The configuration reference in docs/ is generated from the settings classes: it cannot drift."""

from __future__ import annotations

from pathlib import Path

from te_shared.docs import configuration_reference, write_docs

ROOT = Path(__file__).resolve().parents[2]


def test_configuration_reference_matches_the_settings_classes() -> None:
    committed = (ROOT / "docs" / "configuration.md").read_text()
    assert committed == configuration_reference(), "run `make docs` and commit docs/"


def test_every_service_variable_is_documented() -> None:
    text = (ROOT / "docs" / "configuration.md").read_text()
    for variable in ("DATABASE_URL", "AMQP_URL", "JWT_SECRET", "ZOOM_WEBHOOK_SECRET"):
        assert f"`{variable}`" in text


def test_committed_api_documents_are_current(tmp_path: Path) -> None:
    """docs/openapi/*.json and docs/asyncapi/*.json are what `make docs` writes today."""
    for path in write_docs(tmp_path):
        relative = path.relative_to(tmp_path)
        committed = ROOT / relative
        assert committed.exists(), f"{relative} is missing: run `make docs`"
        assert committed.read_text() == path.read_text(), f"{relative} is stale: run `make docs`"
