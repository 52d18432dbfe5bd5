"""The Makefile's set-up commands (README "Two commands", API.md's `make token`), run as a user
runs them: through `make`, in a subprocess."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
MAKE = shutil.which("make")
pytestmark = pytest.mark.skipif(MAKE is None, reason="make is not installed")


def claims(token: str) -> dict[str, Any]:
    payload = token.strip().split(".")[1]
    decoded: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    )
    return decoded


def make_token(*args: str, env: dict[str, str]) -> dict[str, Any]:
    """`make token ...`, without re-syncing the shared environment (`-o env`: taken as done)."""
    assert MAKE is not None
    out = subprocess.run(
        [MAKE, "-s", "--no-print-directory", "-o", "env", "token", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return claims(out.stdout)


def test_make_token_defaults_to_u1_even_though_the_shell_sets_user() -> None:
    """A login shell always exports USER (the login name); `USER ?= u1` used to issue
    sub=<login name>."""
    got = make_token(env={**os.environ, "USER": "some-login-name"})
    assert got["sub"] == "u1"
    assert got["company_id"] == "acme"
    assert got["role"] == "admin"
    assert "email" not in got


def test_make_token_takes_the_variables_api_md_documents() -> None:
    got = make_token(
        "COMPANY=globex",
        "USER=u2",
        "ROLE=user",
        "EMAIL=a@x.io",
        env={**os.environ, "USER": "some-login-name"},
    )
    assert (got["company_id"], got["sub"], got["role"], got["email"]) == (
        "globex",
        "u2",
        "user",
        "a@x.io",
    )
    assert got["aud"] == "training-events"


SYSTEM_PYTHON = Path("/usr/bin/python3")


@pytest.mark.skipif(not SYSTEM_PYTHON.exists(), reason="no system python3 at /usr/bin")
def test_make_tools_installs_uv_without_touching_the_system_python(tmp_path: Path) -> None:
    """Without uv on PATH, `make tools` (run by `make env`, hence by `make run` and `make test`)
    installs uv into .tools/, also where the system Python refuses `pip install` (PEP 668)."""
    assert MAKE is not None
    shutil.copy(ROOT / "Makefile", tmp_path / "Makefile")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python3").symlink_to(SYSTEM_PYTHON)  # the distribution's Python, not a venv's
    path = f"{bin_dir}:/usr/bin:/bin"
    assert shutil.which("uv", path=path) is None, "uv is on the restricted PATH"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "UV_"))}
    env |= {"PATH": path, "HOME": str(tmp_path)}  # no ~/.local from a previous run
    run = subprocess.run(
        [MAKE, "-s", "tools"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
    )
    assert run.returncode == 0, run.stderr
    uv = tmp_path / ".tools" / "bin" / "uv"
    version = subprocess.run([uv, "--version"], capture_output=True, text=True, check=True)
    assert version.stdout.startswith("uv ")
    again = subprocess.run(  # idempotent: a second run installs nothing
        [MAKE, "-s", "tools"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert again.returncode == 0
    assert "installing uv" not in again.stderr


def test_make_images_builds_what_compose_builds() -> None:
    """`make images` (docker build per service, dry run here) passes each service the build
    arguments docker-compose.yml passes: one recipe, deploy/Dockerfile, for every image."""
    import shlex

    import yaml

    assert MAKE is not None
    out = subprocess.run(
        [MAKE, "-n", "--no-print-directory", "images", "REGISTRY=r.example/te", "TAG=1.2"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    script = out.replace("\\\n", " ")
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    built = {name: s["build"] for name, s in compose.items() if "build" in s}
    for name, build in built.items():
        assert build["dockerfile"] == "deploy/Dockerfile"
        args = build["args"]
        assert f"{name}:{args['PACKAGE']}:{args['PORT']}" in script, name
        assert args["SERVICE"] == name
    run = subprocess.run(  # the loop itself, with docker replaced by echo
        ["bash", "-c", script.replace("docker build", "echo docker build")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    commands = [shlex.split(line) for line in run.stdout.splitlines()]
    assert len(commands) == len(built)
    for command in commands:
        tag = command[command.index("-t") + 1]
        service = tag.removeprefix("r.example/te/").removesuffix(":1.2")
        args = built[service]["args"]
        for key in ("SERVICE", "PACKAGE", "PORT"):
            assert f"{key}={args[key]}" in command, (service, key)
        assert command[command.index("-f") + 1] == "deploy/Dockerfile"


# --- a newcomer's `make test`: RabbitMQ and PostgreSQL found, or one message -------------------

LOCAL_AMQP = "amqp://guest:guest@127.0.0.1:5672/"
LOCAL_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"
NAMING = ("TEST_AMQP_URL", "AMQP_URL", "TEST_POSTGRES_URL", "POSTGRES_URL")


def bare_env(**extra: str) -> dict[str, str]:
    """The environment of a fresh machine: no server named, no Docker engine to ask."""
    env = {k: v for k, v in os.environ.items() if k not in NAMING and not k.startswith("TE_")}
    return env | {"DOCKER_HOST": "unix:///nonexistent/docker.sock"} | extra


def closed_port() -> int:
    """A port nothing listens on."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def listening(port: int) -> bool:
    import socket

    try:
        with socket.create_connection(("127.0.0.1", port), 1):
            return True
    except OSError:
        return False


def probe(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "deploy/local/infra.py"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.skipif(
    not (listening(5672) and listening(5432)), reason="no RabbitMQ and PostgreSQL on this machine"
)
def test_with_no_environment_the_local_servers_are_used() -> None:
    found = probe(bare_env())
    assert found.returncode == 0, found.stderr
    assert found.stdout.splitlines() == [
        f"TEST_AMQP_URL={LOCAL_AMQP}",
        f"TEST_POSTGRES_URL={LOCAL_POSTGRES}",
    ]
    # and a bare `pytest` takes them too: the root conftest asks the same probe
    configured = subprocess.run(
        [
            sys.executable,
            "-c",
            "import os, conftest; conftest.pytest_configure(None); "
            "print(os.environ['TEST_AMQP_URL'], os.environ['TEST_POSTGRES_URL'])",
        ],
        cwd=ROOT,
        env=bare_env(),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert configured.stdout.split() == [LOCAL_AMQP, LOCAL_POSTGRES]


def test_named_servers_win_over_the_local_ones() -> None:
    named = "amqp://someone:secret@rabbit.example:5672/"
    found = probe(bare_env(TEST_AMQP_URL=named, TE_PROBE_POSTGRES=f"127.0.0.1:{closed_port()}"))
    assert "TEST_AMQP_URL" not in found.stdout  # kept as given, not replaced
    assert found.returncode == 2
    assert "PostgreSQL" in found.stderr
    assert "RabbitMQ" not in found.stderr


def test_with_nothing_to_test_against_make_test_stops_at_once_with_one_message() -> None:
    """Neither server answers and no Docker engine runs: `make test` says what to start before
    it lints, type-checks or collects a single test."""
    assert MAKE is not None
    env = bare_env(
        TE_PROBE_AMQP=f"127.0.0.1:{closed_port()}", TE_PROBE_POSTGRES=f"127.0.0.1:{closed_port()}"
    )
    started = time.monotonic()
    run = subprocess.run(
        [MAKE, "--no-print-directory", "-o", "env", "test"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode != 0
    assert time.monotonic() - started < 30
    assert run.stderr.count("The tests need RabbitMQ and PostgreSQL") == 1, run.stderr
    for hint in (
        "rabbitmq-server -detached",
        "pg_ctlcluster",
        "docker compose up -d rabbitmq postgres",
        "TEST_AMQP_URL=<url>",
    ):
        assert hint in run.stderr, hint
    assert "pytest" not in run.stdout + run.stderr  # nothing ran after the probe
    assert "ruff" not in run.stdout + run.stderr


def test_make_test_runs_the_unit_layer_first_and_not_twice() -> None:
    assert MAKE is not None
    out = subprocess.run(
        [MAKE, "-n", "--no-print-directory", "-o", "env", "test"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.replace("\\\n", " ")
    steps = [line for line in out.splitlines() if line.strip()]
    pytest_runs = [i for i, line in enumerate(steps) if " pytest " in line]
    assert len(pytest_runs) == 2
    unit, rest = (steps[i] for i in pytest_runs)
    assert "infra.py" in steps[0], "the probe comes first"
    assert pytest_runs[0] < next(i for i, line in enumerate(steps) if "ruff check" in line)
    assert "services/catalog/tests/unit" in unit
    assert "unit-tests-use-no-broker.invalid" in unit, "the unit layer has no broker"
    assert "--ignore=services/catalog/tests/unit" in rest
