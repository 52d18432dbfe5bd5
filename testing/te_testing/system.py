"""The whole system as ``make run`` starts it: zoom-sim, catalog, registration, zoom-bridge and
integrations as processes wired together on fresh databases and a RabbitMQ namespace, and what
the tests set up in it through the APIs alone: a Zoom account connected, days, an active event
known to registration."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from te_testing.api import auth, ok
from te_testing.clock import iso
from te_testing.infra import DatabaseFactory, RabbitNamespace, TokenFactory
from te_testing.polling import eventually
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


async def zoom_company(system: System, company: str, **settings: Any) -> str:
    """Zoom enabled for ``company`` (``settings``: more of its settings) and an administrator
    account connected by its admin through the simulator (:func:`connect_zoom`); the
    account's id."""
    admin = system.admin(company)
    async with system.client(system.catalog, admin) as cat:
        await ok(await cat.put("/v1/company/settings", json={"zoom_enabled": True, **settings}))
    return await connect_zoom(system, admin)


def zoom_account_known(response: httpx.Response) -> bool:
    """False while catalog answers that a zoom day's Zoom account is not known yet: the
    bridge's ``ZoomAccountChanged`` for an account connected moments ago is still on its way
    (a retryable 422, R-DAY-9); the client asks again."""
    return not (response.status_code == 422 and response.json().get("retryable") is True)


async def create_day(
    catalog: httpx.AsyncClient, session_id: str, body: Mapping[str, Any]
) -> dict[str, Any]:
    """POST a day to catalog (again while its Zoom account is not known there yet, see
    :func:`zoom_account_known`); the day as catalog answered it (201)."""
    created = await eventually(
        lambda: catalog.post(f"/v1/sessions/{session_id}/days", json=dict(body)),
        zoom_account_known,
        what="the Zoom account known to catalog",
    )
    day: dict[str, Any] = await ok(created, 201)
    return day


def offline_day(start: dt.datetime, end: dt.datetime, address: str = "HQ") -> dict[str, Any]:
    """A day's body for catalog: in a room."""
    return {"format": "offline", "start": iso(start), "end": iso(end), "address": address}


def online_day(
    start: dt.datetime, end: dt.datetime, url: str = "https://meet.example.com/x"
) -> dict[str, Any]:
    """A day's body for catalog: behind a link of the company's own."""
    return {"format": "online", "start": iso(start), "end": iso(end), "url": url}


def zoom_day(
    start: dt.datetime,
    end: dt.datetime,
    account_id: str,
    organizer: str = "admin-1",
    **zoom: Any,
) -> dict[str, Any]:
    """A day's body for catalog: a Zoom meeting on ``account_id`` (``zoom``: more of its Zoom
    settings, e.g. ``auto_recording``)."""
    settings = {"account_id": account_id, "organizer_user_id": organizer, **zoom}
    return {"format": "zoom", "start": iso(start), "end": iso(end), "zoom": settings}


@dataclass(frozen=True)
class BuiltEvent:
    """What :func:`create_event` or :func:`active_event` built, as catalog answered."""

    id: str
    #: session name -> id
    sessions: dict[str, str]
    #: session name -> its days, in the order given (``id``, ``start``, ...)
    days: dict[str, list[dict[str, Any]]]

    @property
    def session_id(self) -> str:
        """The id of the event's only session."""
        [only] = self.sessions.values()
        return only


async def create_event(
    system: System,
    company: str,
    *,
    sessions: Sequence[Mapping[str, Any]] = (),
    **event: Any,
) -> BuiltEvent:
    """An event of ``company`` created through catalog as its admin would (``event``: the
    event's body, e.g. ``title``, ``dated``, ``requires_approval``), with ``sessions`` (each a
    session's body, e.g. ``name`` and ``registration_end``, plus ``days``: the bodies of its
    days, see :func:`offline_day`, :func:`online_day`, :func:`zoom_day`). Hidden, as catalog
    creates events; see :func:`active_event`."""
    event.setdefault("title", "Training")
    async with system.client(system.catalog, system.admin(company)) as cat:
        event_id = str((await ok(await cat.post("/v1/events", json=event), 201))["id"])
        ids: dict[str, str] = {}
        days: dict[str, list[dict[str, Any]]] = {}
        for spec in sessions:
            body = {k: v for k, v in spec.items() if k != "days"}
            created = await ok(await cat.post(f"/v1/events/{event_id}/sessions", json=body), 201)
            name = str(body["name"])
            ids[name] = str(created["id"])
            days[name] = [await create_day(cat, ids[name], day) for day in spec.get("days", ())]
    return BuiltEvent(event_id, ids, days)


async def active_event(
    system: System,
    company: str,
    *,
    sessions: Sequence[Mapping[str, Any]],
    access: Sequence[str] = (),
    **event: Any,
) -> BuiltEvent:
    """:func:`create_event`, then activated and known to registration: every session there and
    the event active. ``access`` is granted last."""
    built = await create_event(system, company, sessions=sessions, **event)
    event_id, ids = built.id, built.sessions
    async with (
        system.client(system.catalog, system.admin(company)) as cat,
        system.client(system.registration, system.admin(company)) as reg,
    ):
        await ok(await cat.patch(f"/v1/events/{event_id}", json={"state": "active"}))
        for name, session_id in ids.items():
            await eventually(
                functools.partial(reg.get, f"/v1/sessions/{session_id}/seats"),
                lambda r: r.status_code == 200,
                what=f"session {name!r} in registration",
            )
        await eventually(  # the activation travels apart from the sessions
            lambda: reg.get(f"/v1/me/events/{event_id}"),
            lambda r: r.status_code == 200 and r.json()["state"] == "active",
            what="the event active in registration",
        )
        if access:
            await ok(await reg.put(f"/v1/events/{event_id}/access", json={"user_ids": access}))
    return built


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
