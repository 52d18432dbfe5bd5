"""Fixtures: the Zoom simulator and the bridge as real HTTP servers (uvicorn on free ports),
the bridge on a real database and RabbitMQ; day messages go through the broker."""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib.util
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from faststream.rabbit import RabbitBroker
from prometheus_client.parser import text_string_to_metric_families

from te_shared import contracts as c
from te_testing import messages
from te_testing.api import auth
from te_testing.infra import DatabaseFactory, RabbitNamespace, TokenFactory
from te_testing.infra import settings_for as _settings_for
from te_testing.polling import eventually
from te_testing.processes import free_port
from te_testing.servers import InProcessServer
from zoom_bridge.app import create_app
from zoom_bridge.models import OutboxRecord, ZoomMeeting
from zoom_bridge.settings import ZoomBridgeSettings
from zoom_sim.app import create_app as create_sim
from zoom_sim.settings import Settings as SimSettings

WEBHOOK_SECRET = "test-webhook-secret"


def _helper(name: str) -> ModuleType:
    """A helper module next to this file (the tests here are no package to import from)."""
    spec = importlib.util.spec_from_file_location(
        f"zoom_bridge_tests_{name}", Path(__file__).with_name(f"{name}.py")
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


PAYLOADS = _helper("payloads")


@pytest.fixture
def zoom_payloads() -> ModuleType:
    """Zoom's webhook bodies as Zoom documents them (``payloads.py``)."""
    return PAYLOADS


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


@dataclass
class Env:
    """The simulator, the bridge and helpers."""

    ns: RabbitNamespace
    db_url: str
    token: TokenFactory
    bridge_port: int
    sim_port: int
    broker: RabbitBroker
    bridge: InProcessServer | None = None
    app: Any = None
    versions: messages.Versions = field(default_factory=messages.Versions)
    overrides: dict[str, Any] = field(default_factory=dict)
    tracer_provider: Any = None

    @property
    def sim_url(self) -> str:
        return f"http://127.0.0.1:{self.sim_port}"

    @property
    def bridge_url(self) -> str:
        return f"http://127.0.0.1:{self.bridge_port}"

    def settings(self) -> ZoomBridgeSettings:
        values: dict[str, Any] = {
            "zoom_api_base_url": f"{self.sim_url}/v2",
            "zoom_oauth_base_url": self.sim_url,
            "zoom_redirect_url": f"{self.bridge_url}/v1/zoom/oauth/callback",
            "zoom_webhook_secret": WEBHOOK_SECRET,
            "zoom_client_id": "dev-client-id",
            "zoom_client_secret": "dev-client-secret",
            "zoom_retry_base_seconds": 0.2,
            "zoom_retry_max_seconds": 2.0,
            "zoom_retry_budget_seconds": 6.0,
            "zoom_webhook_retry_base_seconds": 0.2,
            "zoom_worker_poll_seconds": 0.1,
            "zoom_http_timeout": 1.5,
            "zoom_create_settle_seconds": 3.0,
            "zoom_create_verify_delay_seconds": 1.0,
            "zoom_create_verify_again_seconds": 1.0,
            "zoom_reconcile_delay_seconds": 0,
            "port": self.bridge_port,
        }
        values.update({k: v for k, v in self.overrides.items() if not k.startswith("_")})
        return _settings_for(ZoomBridgeSettings, self.db_url, self.ns, **values)

    async def start_bridge(self, before_serve: Callable[[], None] | None = None) -> None:
        """``before_serve`` runs once the app is built (its logging configured) and before it
        starts, e.g. to attach a log capture that should see the start-up."""
        self.app = create_app(self.settings(), tracer_provider=self.tracer_provider)
        if before_serve is not None:
            before_serve()
        self.bridge = InProcessServer(self.app, self.bridge_port, lifespan="on")
        await self.bridge.start()

    async def stop_bridge(self) -> None:
        if self.bridge is not None:
            await self.bridge.stop()
            self.bridge = None

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.bridge_url, timeout=10)

    def sim(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.sim_url, timeout=10)

    def admin(self, company: str = "acme", user: str = "admin1") -> dict[str, str]:
        headers: dict[str, str] = auth(str(self.token(role="admin", company=company, user=user)))
        return headers

    def user(self, user: str, company: str = "acme") -> dict[str, str]:
        headers: dict[str, str] = auth(str(self.token(role="user", company=company, user=user)))
        return headers

    async def publish(self, message: c.Message) -> None:
        await messages.publish(self.ns, message, broker=self.broker)

    async def connect(
        self, role: str = "administrator", company: str = "acme", sim_user: str | None = None
    ) -> str:
        """Run the OAuth flow end to end; returns the new account id."""
        async with self.client() as bridge, self.sim() as sim:
            r = await bridge.get(
                "/v1/zoom/oauth/authorize",
                params={"role": role, "return_to": "/admin/zoom"},
                headers=self.admin(company),
            )
            assert r.status_code == 302, r.text
            location = r.headers["location"]
            if sim_user:
                location += f"&sim_user={sim_user}"
            r = await sim.get(location)
            assert r.status_code == 302, r.text
            r = await bridge.get(r.headers["location"])
            assert r.status_code == 302, r.text
            assert r.headers["location"] == "/admin/zoom"
            r = await bridge.get("/v1/zoom/accounts", headers=self.admin(company))
            accounts = r.json()
            wanted = sim_user or "host@zoom-sim.local"
            return str(next(a["id"] for a in accounts if a["zoom_user_email"] == wanted))

    @staticmethod
    async def wait(predicate: Callable[[], Awaitable[Any]], timeout: float = 20.0) -> Any:
        """:func:`eventually` ``predicate`` returns something truthy (polled every 0.1 s)."""
        return await eventually(predicate, timeout=timeout, interval=0.1)

    @staticmethod
    def query(url: str) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}

    def next_version(self, day_id: uuid.UUID) -> int:
        return self.versions.next(day_id)

    def approved(self, day: c.DayData, user_id: str, email: str) -> c.EnrollmentChanged:
        """Registration's message that ``user_id`` (known by ``email``) is approved in the
        day's session: how the bridge learns whose attendance a meeting's joins are."""
        return messages.enrollment_in(day, user_id, email)

    def cancelled(self, day: c.DayData) -> c.DayCancelled:
        """Catalog's message that ``day`` was deleted, one version on."""
        return messages.day_cancelled(day, self.next_version(day.day_id))

    def day(
        self,
        account_id: str,
        *,
        day_id: uuid.UUID | None = None,
        session_id: uuid.UUID | None = None,
        company: str = "acme",
        start: dt.datetime | None = None,
        minutes: int = 60,
        organizer: str = "org1",
        auto_recording: bool = True,
        cls: type[c.DayData] = c.DayScheduled,
        version: int | None = None,
    ) -> c.DayData:
        day_id = day_id or uuid.uuid4()
        return messages.day_data(
            company=company,
            session_id=session_id,
            day_id=day_id,
            version=version if version is not None else self.next_version(day_id),
            start=start or now() + dt.timedelta(days=2),
            length=dt.timedelta(minutes=minutes),
            timezone="Europe/Berlin",
            topic="Onboarding day",
            zoom=c.ZoomDaySettings(
                account_id=uuid.UUID(account_id),
                organizer_user_id=organizer,
                auto_recording=auto_recording,
            ),
            cls=cls,
        )

    async def meeting_row(self, day_id: uuid.UUID) -> ZoomMeeting | None:
        factory = self.app.state.runtime.session_factory()
        async with factory() as session:
            row: ZoomMeeting | None = await session.get(ZoomMeeting, day_id)
            return row

    async def outbox(
        self, routing_key: str, day_id: uuid.UUID | None = None
    ) -> list[dict[str, Any]]:
        payloads = await messages.outbox(self.app, OutboxRecord, routing_key)
        if day_id is not None:
            payloads = [p for p in payloads if p.get("day_id") == str(day_id)]
        return payloads

    async def metrics(self) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
        """The bridge's /metrics, by sample name and labels."""
        async with self.client() as bridge:
            text = (await bridge.get("/metrics")).text
        return {
            (sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        }

    async def sim_meeting(self, zoom_id: str) -> dict[str, Any]:
        async with self.sim() as sim:
            meetings = (await sim.get("/_sim/meetings")).json()
        return next(m for m in meetings if str(m["id"]) == zoom_id)

    async def created(self, day_id: uuid.UUID, timeout: float = 20.0) -> ZoomMeeting:
        async def check() -> ZoomMeeting | None:
            row = await self.meeting_row(day_id)
            return row if row is not None and row.status == "created" else None

        result: ZoomMeeting = await self.wait(check, timeout)
        return result


@pytest.fixture(scope="module")
async def env(
    request: pytest.FixtureRequest, databases: DatabaseFactory, amqp_url: str, token: TokenFactory
) -> AsyncIterator[Env]:
    """One simulator and bridge per test module; a module's ``BRIDGE_SETTINGS`` (a dict)
    overrides the bridge's settings, its ``SIM_SETTINGS`` the simulator's."""
    tag = uuid.uuid4().hex[:8]
    ns = RabbitNamespace(amqp_url, f"te-test-zb-{tag}", f"zb{tag}.")
    bridge_port, sim_port = free_port(), free_port()
    sim_settings = SimSettings(
        public_url=f"http://127.0.0.1:{sim_port}",
        webhook_url=f"http://127.0.0.1:{bridge_port}/v1/zoom/webhooks",
        webhook_secret=WEBHOOK_SECRET,
        client_id="dev-client-id",
        client_secret="dev-client-secret",
        **getattr(request.module, "SIM_SETTINGS", {}),
    )
    sim = InProcessServer(create_sim(sim_settings), sim_port, lifespan="on")
    await sim.start()
    broker = RabbitBroker(amqp_url)
    await broker.connect()
    db_url = await databases.create("zoom")
    environment = Env(ns, db_url, token, bridge_port, sim_port, broker)
    environment.overrides.update(getattr(request.module, "BRIDGE_SETTINGS", {}))
    await environment.start_bridge()
    try:
        yield environment
    finally:
        await environment.stop_bridge()
        await sim.stop()
        await broker.stop()
        from te_testing.infra import delete_namespace

        with contextlib.suppress(Exception):
            await delete_namespace(ns)
