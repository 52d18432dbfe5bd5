"""The real processes for the scenarios, started as `make run` starts them.

Reuses the test kit (te_testing: ServiceProcess, System, DatabaseFactory, RabbitNamespace), but
unlike ``start_system`` keeps every *timing* setting at its production default (outbox poll 0.5 s,
zoom worker poll 0.5 s, retry and reconcile delays): the figures are what a deployment would see.
Each run gets fresh databases and its own exchange and queue prefix, removed at the end.

``BENCH_PROFILE=<service>`` (catalog, registration, bridge) runs that service under pyinstrument
and writes ``bench/profiles/<scenario>-<service>.{txt,html}`` when it stops (see bench/profile.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from bench.common import AMQP_URL, POSTGRES_URL
from te_testing.infra import DatabaseFactory, RabbitNamespace, delete_namespace, dev_token
from te_testing.processes import ServiceProcess, free_port
from te_testing.system import System

ROOT = Path(__file__).resolve().parents[1]
#: the settings of the scenarios' companies (with ``te_testing.system.zoom_company``)
COMPANY_SETTINGS: dict[str, Any] = {
    "timezone": "UTC",
    "locales": ["en"],
    "training_module_enabled": True,
}
PROFILES = ROOT / "bench" / "profiles"


def token(
    role: str = "admin", company: str = "acme", user: str = "u1", email: str | None = None
) -> str:
    """A dev token that outlives the longest scenario."""
    return dev_token(role, company, user, email, ttl_seconds=6 * 3600)


class ProfiledProcess(ServiceProcess):
    """A service under ``pyinstrument`` (sampling, async-aware); output written on SIGTERM."""

    scenario: str = "bench"

    def command(self) -> list[str]:
        PROFILES.mkdir(exist_ok=True)
        name = f"{self.scenario}-{self.module}"
        return [
            sys.executable,
            "-m",
            "pyinstrument",
            "--interval=0.001",
            "-r",
            "pyisession",
            "-o",
            str(PROFILES / f"{name}.pyisession"),
            "-c",
            # uvicorn re-raises SIGTERM after its graceful shutdown; turn it into SystemExit so
            # pyinstrument gets to write the session instead of the process dying by the signal
            "import runpy, signal, sys; "
            "signal.signal(signal.SIGTERM, lambda *_: sys.exit(0)); "
            f"runpy.run_module({self.module!r}, run_name='__main__', alter_sys=True)",
        ]


def _process(
    module: str, env: dict[str, str], port: int, log: Path, scenario: str
) -> ServiceProcess:
    wanted = os.environ.get("BENCH_PROFILE", "")
    short = {"zoom_bridge": "bridge"}.get(module, module)
    if (
        wanted
        and wanted in (module, short)
        and os.environ.get("BENCH_PROFILE_SCENARIO", scenario) == scenario
    ):
        proc = ProfiledProcess(module, env, port, log)
        proc.scenario = scenario
        return proc
    return ServiceProcess(module, env, port, log)


@contextlib.asynccontextmanager
async def bench_system(
    scenario: str, services: tuple[str, ...] = ("catalog", "registration", "bridge", "sim")
) -> AsyncIterator[System]:
    """Start the wanted processes (default: the four the benchmarks measure; ``integrations``
    too when named) on free ports with fresh databases; their logs go to a temporary directory
    that outlives the run (``System.catalog.log_path.parent``)."""
    tag = uuid.uuid4().hex[:8]
    logs = Path(tempfile.mkdtemp(prefix=f"bench-{scenario}-"))
    databases = DatabaseFactory(POSTGRES_URL, logs, [])
    rabbit = RabbitNamespace(AMQP_URL, f"te-bench-{tag}", f"b{tag}.")
    ports = {
        name: free_port() for name in ("catalog", "registration", "bridge", "integrations", "sim")
    }
    dbs: dict[str, str] = {
        name: await databases.create(f"bench_{name}")
        for name in ("catalog", "registration", "bridge", "integrations")
        if name in services
    }
    bridge_url = f"http://127.0.0.1:{ports['bridge']}"
    sim_url = f"http://127.0.0.1:{ports['sim']}"
    common: dict[str, str] = {**rabbit.env(), "LOG_JSON": "true"}
    procs: dict[str, ServiceProcess] = {
        "sim": _process(
            "zoom_sim",
            {
                "ZOOM_SIM_PORT": str(ports["sim"]),
                "ZOOM_SIM_PUBLIC_URL": sim_url,
                "ZOOM_SIM_WEBHOOK_URL": f"{bridge_url}/v1/zoom/webhooks",
                "ZOOM_SIM_LOG_LEVEL": "warning",
            },
            ports["sim"],
            logs / "zoom-sim.log",
            scenario,
        ),
        "catalog": _process(
            "catalog",
            {**common, "DATABASE_URL": dbs.get("catalog", "")},
            ports["catalog"],
            logs / "catalog.log",
            scenario,
        ),
        "registration": _process(
            "registration",
            {**common, "DATABASE_URL": dbs.get("registration", "")},
            ports["registration"],
            logs / "registration.log",
            scenario,
        ),
        "bridge": _process(
            "zoom_bridge",
            {
                **common,
                "DATABASE_URL": dbs.get("bridge", ""),
                "ZOOM_API_BASE_URL": f"{sim_url}/v2",
                "ZOOM_OAUTH_BASE_URL": sim_url,
                "ZOOM_REDIRECT_URL": f"{bridge_url}/v1/zoom/oauth/callback",
                "ZOOM_RETURN_ORIGINS": '["http://127.0.0.1:5173"]',
            },
            ports["bridge"],
            logs / "zoom-bridge.log",
            scenario,
        ),
        "integrations": _process(
            "integrations",
            {
                **common,
                "DATABASE_URL": dbs.get("integrations", ""),
                # receivers are servers in the scenario's own process
                "WEBHOOK_ALLOW_HTTP": "true",
                "WEBHOOK_ALLOW_PRIVATE_NETWORKS": '["127.0.0.0/8", "::1/128"]',
            },
            ports["integrations"],
            logs / "integrations.log",
            scenario,
        ),
    }
    order = ("sim", "catalog", "registration", "bridge", "integrations")
    running = [procs[name] for name in order if name in services]
    try:
        await asyncio.gather(*(p.start() for p in running))
        yield System(
            procs["catalog"],
            procs["registration"],
            procs["bridge"],
            procs["sim"],
            dbs,
            lambda **kw: token(**kw),
            rabbit,
            procs["integrations"] if "integrations" in services else None,
        )
    finally:
        for proc in running:
            proc.stop()
        with contextlib.suppress(Exception):
            await databases.drop_all()
        with contextlib.suppress(Exception):
            await delete_namespace(rabbit)


def plain_url(database_url: str) -> str:
    return database_url.replace("postgresql+asyncpg://", "postgresql://")
