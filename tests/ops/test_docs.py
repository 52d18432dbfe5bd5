"""The configuration reference in docs/ is generated from the settings classes: it cannot drift."""

from __future__ import annotations

import re
from pathlib import Path

import te_shared.observability
from te_shared.docs import configuration_reference, configuration_rows, write_docs

ROOT = Path(__file__).resolve().parents[2]


def test_configuration_reference_matches_the_settings_classes() -> None:
    committed = (ROOT / "docs" / "configuration.md").read_text()
    assert committed == configuration_reference(), "run `make docs` and commit docs/"


def test_every_service_variable_is_documented() -> None:
    text = (ROOT / "docs" / "configuration.md").read_text()
    for variable in (
        "DATABASE_URL",
        "AMQP_URL",
        "JWT_SECRET",
        "ZOOM_WEBHOOK_SECRET",
        "WEBHOOK_ALLOW_PRIVATE_NETWORKS",
    ):
        assert f"`{variable}`" in text


def test_the_reference_is_one_table_naming_the_service_of_each_variable() -> None:
    """Issue 7: every variable of every service in one table."""
    text = configuration_reference()
    assert text.count("| variable | service | default | description |") == 1
    assert "\n## " not in text
    rows = {(env, tuple(services)) for env, services, _, _ in configuration_rows()}
    assert ("ZOOM_WEBHOOK_SECRET", ("zoom-bridge",)) in rows
    assert ("PORT", ("catalog",)) in rows
    assert ("JWT_SECRET", ("catalog", "registration", "zoom-bridge", "integrations")) in rows
    assert ("WEBHOOK_SECRET_KEY", ("integrations",)) in rows
    assert "| `PORT` | registration | `8002` |" in text


def test_every_otel_variable_the_services_read_is_documented() -> None:
    source = Path(te_shared.observability.__file__).read_text()
    read = set(re.findall(r"""(?:get\(|\[)\s*["'](OTEL_[A-Z_]+)["']""", source))  # env lookups
    assert {"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_TRACES_EXPORTER", "OTEL_SERVICE_NAME"} <= read
    documented = {env for env, _, _, _ in configuration_rows()}
    assert read <= documented, read - documented


def test_committed_api_documents_are_current(tmp_path: Path) -> None:
    """docs/openapi/*.json and docs/asyncapi/*.json are what `make docs` writes today."""
    for path in write_docs(tmp_path):
        relative = path.relative_to(tmp_path)
        committed = ROOT / relative
        assert committed.exists(), f"{relative} is missing: run `make docs`"
        assert committed.read_text() == path.read_text(), f"{relative} is stale: run `make docs`"
