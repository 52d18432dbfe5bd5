"""`make run`'s supervisor (deploy/local/run.py): a crash fails the command, naming the service;
a requested stop (Ctrl-C, SIGTERM) exits 0."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import re
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


def load_run() -> ModuleType:
    spec = importlib.util.spec_from_file_location("deploy_local_run", ROOT / "deploy/local/run.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


run = load_run()
#: a process that runs until SIGTERM and then exits the way uvicorn does (by the signal)
SERVER = [sys.executable, "-c", "import time; print('up', flush=True); time.sleep(120)"]


async def test_a_service_that_crashes_fails_make_run_and_is_named(
    capsys: pytest.CaptureFixture[str],
) -> None:
    crasher = [sys.executable, "-c", "import time; time.sleep(0.5); raise SystemExit(3)"]
    code = await run.supervise(
        [("catalog", SERVER, ""), ("zoom-bridge", crasher, ""), ("registration", SERVER, "")],
        dict(os.environ),
        grace=10,
    )
    assert code == 1
    err = capsys.readouterr().err
    assert "make run failed: zoom-bridge exited with 3" in err
    assert "catalog exited" not in err  # the others were stopped, not crashed


async def test_a_service_that_exits_zero_on_its_own_still_fails_make_run(
    capsys: pytest.CaptureFixture[str],
) -> None:
    quitter = [sys.executable, "-c", "pass"]
    code = await run.supervise([("catalog", SERVER, ""), ("zoom-sim", quitter, "")], {}, grace=10)
    assert code == 1
    assert "zoom-sim exited with 0" in capsys.readouterr().err


async def test_a_requested_stop_exits_zero_and_stops_everything(
    capsys: pytest.CaptureFixture[str],
) -> None:
    stop = asyncio.Event()
    supervisor = asyncio.create_task(
        run.supervise([("catalog", SERVER, ""), ("registration", SERVER, "")], {}, stop=stop)
    )
    await asyncio.sleep(0.5)
    assert not supervisor.done()
    stop.set()  # what SIGINT / SIGTERM do
    assert await asyncio.wait_for(supervisor, timeout=30) == 0
    captured = capsys.readouterr()
    assert "failed" not in captured.err
    assert re.search(r"^catalog +\| up$", captured.out, re.MULTILINE), captured.out
