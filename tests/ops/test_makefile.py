"""The Makefile's set-up commands (README "Two commands", API.md's `make token`), run as a user
runs them: through `make`, in a subprocess."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
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
