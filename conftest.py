"""Every test suite's set-up: the fixtures of the test kit (``te_testing.fixtures``, the workspace
package in ``testing/``), with RabbitMQ and PostgreSQL found as ``make test`` finds them
(``deploy/local/infra.py``): the ``TEST_*`` URLs when set, else the servers on their default local
ports, else testcontainers."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

import pytest

# the kit's own asserts (in connect_zoom, ok, the builders) report like the tests' asserts
pytest.register_assert_rewrite("te_testing")
pytest_plugins = ["te_testing.fixtures"]


def _infra() -> ModuleType:
    path = Path(__file__).resolve().parent / "deploy" / "local" / "infra.py"
    spec = importlib.util.spec_from_file_location("deploy_local_infra", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def pytest_configure(config: pytest.Config) -> None:  # noqa: ARG001 - pytest's hook signature
    os.environ.update(_infra().local_test_urls())
