"""The whole system as `make run` starts it: four real processes, real RabbitMQ and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from te_shared.testing import (
    DatabaseFactory,
    RabbitNamespace,
    ServiceProcess,
    System,
    TokenFactory,
    free_port,
)


@pytest.fixture(scope="session")
async def system(
    databases: DatabaseFactory,
    rabbit: RabbitNamespace,
    token: TokenFactory,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[System]:
    logs = Path(tmp_path_factory.mktemp("system-logs"))
    ports = {name: free_port() for name in ("catalog", "registration", "bridge", "sim")}
    dbs = {
        name: await databases.create(f"sys_{name}")
        for name in ("catalog", "registration", "bridge")
    }
    bridge_url = f"http://127.0.0.1:{ports['bridge']}"
    sim_url = f"http://127.0.0.1:{ports['sim']}"
    common: dict[str, Any] = {**rabbit.env(), "LOG_JSON": "true", "OUTBOX_POLL_INTERVAL": "0.2"}
    sim = ServiceProcess(
        "zoom_sim",
        {
            "ZOOM_SIM_PORT": str(ports["sim"]),
            "ZOOM_SIM_PUBLIC_URL": sim_url,
            "ZOOM_SIM_WEBHOOK_URL": f"{bridge_url}/v1/zoom/webhooks",
        },
        ports["sim"],
        logs / "zoom-sim.log",
    )
    catalog = ServiceProcess(
        "catalog",
        {**common, "DATABASE_URL": dbs["catalog"]},
        ports["catalog"],
        logs / "catalog.log",
    )
    registration = ServiceProcess(
        "registration",
        {**common, "DATABASE_URL": dbs["registration"]},
        ports["registration"],
        logs / "registration.log",
    )
    bridge = ServiceProcess(
        "zoom_bridge",
        {
            **common,
            "DATABASE_URL": dbs["bridge"],
            "ZOOM_API_BASE_URL": f"{sim_url}/v2",
            "ZOOM_OAUTH_BASE_URL": sim_url,
            "ZOOM_REDIRECT_URL": f"{bridge_url}/v1/zoom/oauth/callback",
            "ZOOM_RETURN_ORIGINS": '["http://127.0.0.1:5173", "http://admin.test"]',
            "ZOOM_RECONCILE_DELAY_SECONDS": "0.5",
            "ZOOM_RETRY_BASE_SECONDS": "0.2",
            "ZOOM_RETRY_MAX_SECONDS": "2",
            "ZOOM_WORKER_POLL_SECONDS": "0.2",
        },
        ports["bridge"],
        logs / "zoom-bridge.log",
    )
    procs = [sim, catalog, registration, bridge]
    await asyncio.gather(*(p.start() for p in procs))
    try:
        yield System(catalog, registration, bridge, sim, dbs, token)
    finally:
        for proc in procs:
            proc.stop()
