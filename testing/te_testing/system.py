"""The whole system as ``make run`` starts it: zoom-sim, catalog, registration, zoom-bridge and
integrations as processes wired together on fresh databases and a RabbitMQ namespace, and what
the tests do to it through the APIs alone."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from te_testing.api import auth
from te_testing.infra import DatabaseFactory, RabbitNamespace, TokenFactory
from te_testing.processes import ServiceProcess, free_port


@dataclass
class System:
    catalog: ServiceProcess
    registration: ServiceProcess
    bridge: ServiceProcess
    sim: ServiceProcess
    databases: dict[str, str]
    token: TokenFactory
    rabbit: RabbitNamespace
    #: outbound webhooks (services/integrations); loopback and plain http allowed as targets,
    #: the retry schedule shrunk (``WEBHOOK_RETRY_SCALE``)
    integrations: ServiceProcess | None = None

    def client(self, proc: ServiceProcess, token: str | None = None) -> httpx.AsyncClient:
        headers = auth(token) if token else {}
        return httpx.AsyncClient(base_url=proc.url, headers=headers, timeout=30)

    def admin(self, company: str, user: str = "admin-1") -> str:
        return self.token(role="admin", company=company, user=user, email=f"{user}@{company}.io")

    def user(self, company: str, user: str) -> str:
        return self.token(role="user", company=company, user=user, email=f"{user}@{company}.io")


async def connect_zoom(
    system: System, admin: str, *, role: str = "administrator", return_to: str = "/admin/zoom"
) -> str:
    """R-ZOOM-1 through the simulator's auto-approving OAuth, as an admin's browser does it:
    the bridge's authorize redirect, Zoom's approval, the bridge's callback back to
    ``return_to``. Returns the id of the account just connected."""
    async with system.client(system.bridge, admin) as bridge, httpx.AsyncClient() as browser:
        # the admin's browser starts the flow: the bridge binds it to that browser's cookie
        start = await browser.get(
            f"{system.bridge.url}/v1/zoom/oauth/authorize",
            params={"role": role, "return_to": return_to},
            headers=auth(admin),
        )
        assert start.status_code == 302, start.text
        at_zoom = await browser.get(start.headers["location"])  # the simulator approves
        assert at_zoom.status_code == 302, at_zoom.text
        back = await browser.get(at_zoom.headers["location"])  # the bridge's callback
        assert back.status_code == 302, back.text
        assert back.headers["location"] == return_to
        listed = await bridge.get("/v1/zoom/accounts")
        assert listed.status_code == 200, listed.text
        newest = max(listed.json(), key=lambda a: str(a["connected_at"]))
        return str(newest["id"])


def zoom_account_known(response: httpx.Response) -> bool:
    """False while catalog answers that a zoom day's Zoom account is not known yet: the
    bridge's ``ZoomAccountChanged`` for an account connected moments ago is still on its way
    (a retryable 422, R-DAY-9); the client asks again."""
    return not (response.status_code == 422 and response.json().get("retryable") is True)


@contextlib.asynccontextmanager
async def start_system(
    databases: DatabaseFactory,
    rabbit: RabbitNamespace,
    token: TokenFactory,
    tmp_path_factory: pytest.TempPathFactory,
    extra_env: Mapping[str, str] | None = None,
) -> AsyncIterator[System]:
    """Start zoom-sim, catalog, registration, zoom-bridge and integrations as processes wired
    together; ``extra_env`` goes to the four services (e.g. ``OTEL_*`` to trace them)."""
    logs = Path(tmp_path_factory.mktemp("system-logs"))
    ports = {
        name: free_port() for name in ("catalog", "registration", "bridge", "integrations", "sim")
    }
    dbs = {
        name: await databases.create(f"sys_{name}")
        for name in ("catalog", "registration", "bridge", "integrations")
    }
    bridge_url = f"http://127.0.0.1:{ports['bridge']}"
    sim_url = f"http://127.0.0.1:{ports['sim']}"
    common: dict[str, Any] = {
        **rabbit.env(),
        "LOG_JSON": "true",
        "OUTBOX_POLL_INTERVAL": "0.2",
        **(extra_env or {}),
    }
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
    integrations = ServiceProcess(
        "integrations",
        {
            **common,
            "DATABASE_URL": dbs["integrations"],
            # the receivers are servers in the test process
            "WEBHOOK_ALLOW_HTTP": "true",
            "WEBHOOK_ALLOW_PRIVATE_NETWORKS": '["127.0.0.0/8", "::1/128"]',
            "WEBHOOK_RETRY_SCALE": "0.002",
            "WEBHOOK_WORKER_POLL_SECONDS": "0.1",
            "WEBHOOK_TIMEOUT_SECONDS": "3",
            "WEBHOOK_LEASE_SECONDS": "10",
        },
        ports["integrations"],
        logs / "integrations.log",
    )
    procs = [sim, catalog, registration, bridge, integrations]
    await asyncio.gather(*(p.start() for p in procs))
    try:
        yield System(catalog, registration, bridge, sim, dbs, token, rabbit, integrations)
    finally:
        for proc in procs:
            proc.stop()
