"""Pytest fixtures shared by every service's tests (loaded by the root ``conftest.py``).

Real infrastructure: ``TEST_AMQP_URL`` (or ``AMQP_URL``) and ``TEST_POSTGRES_URL`` (or
``POSTGRES_URL``) name a running RabbitMQ and PostgreSQL; when unset, testcontainers starts them
where Docker exists. Each test run is isolated: its own exchange and queue prefix on RabbitMQ, and
fresh databases (``CREATE DATABASE``) on PostgreSQL, dropped at the end.
``TEST_DB=sqlite`` runs the database-backed tests on SQLite files instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import aio_pika
import asyncpg
import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from te_shared.auth import make_token
from te_shared.settings import ServiceSettings
from te_shared.topology import Topology

RUN_ID = uuid.uuid4().hex[:8]
S = TypeVar("S", bound=ServiceSettings)


def _env(*names: str) -> str | None:
    for name in names:
        value = os.environ.get(name)
        if value:
            return value
    return None


@pytest.fixture(scope="session")
def amqp_url() -> Iterator[str]:
    url = _env("TEST_AMQP_URL", "AMQP_URL")
    if url:
        yield url
        return
    try:
        from testcontainers.rabbitmq import RabbitMqContainer

        with RabbitMqContainer("rabbitmq:3.13-management") as rabbit:
            host = rabbit.get_container_host_ip()
            port = rabbit.get_exposed_port(5672)
            yield f"amqp://guest:guest@{host}:{port}/"
    except Exception as exc:  # no Docker engine: no test that needs the broker can run
        pytest.exit(
            f"No RabbitMQ for the tests: none on 127.0.0.1:5672, TEST_AMQP_URL not set, and "
            f"testcontainers cannot start one ({type(exc).__name__}). "
            "`python deploy/local/infra.py` says what to start.",
            returncode=2,
        )


@pytest.fixture(scope="session")
def postgres_admin_url() -> Iterator[str]:
    """A URL (plain ``postgresql://``) of a server where the tests may create databases."""
    url = _env("TEST_POSTGRES_URL", "POSTGRES_URL")
    if url:
        yield url
        return
    try:
        from testcontainers.postgres import PostgresContainer

        with PostgresContainer("postgres:16-alpine", driver=None) as pg:
            yield pg.get_connection_url()
    except Exception as exc:  # no Docker engine: no test that needs a database can run
        pytest.exit(
            f"No PostgreSQL for the tests: none on 127.0.0.1:5432, TEST_POSTGRES_URL not set, "
            f"and testcontainers cannot start one ({type(exc).__name__}). "
            "`python deploy/local/infra.py` says what to start.",
            returncode=2,
        )


def _plain(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


@dataclass
class DatabaseFactory:
    """Creates one fresh database per call; all are dropped when the session ends."""

    admin_url: str | None
    tmp_dir: Path
    created: list[str]

    async def create(self, hint: str = "db") -> str:
        name = f"te_{hint}_{RUN_ID}_{uuid.uuid4().hex[:6]}".lower().replace("-", "_")
        if self.admin_url is None:
            return f"sqlite+aiosqlite:///{self.tmp_dir / (name + '.db')}"
        conn = await asyncpg.connect(_plain(self.admin_url))
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        self.created.append(name)
        base = _plain(self.admin_url).rsplit("/", 1)[0]
        return f"{base.replace('postgresql://', 'postgresql+asyncpg://', 1)}/{name}"

    async def drop_all(self) -> None:
        if self.admin_url is None or not self.created:
            return
        conn = await asyncpg.connect(_plain(self.admin_url))
        try:
            for name in self.created:
                await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()


def use_sqlite() -> bool:
    return os.environ.get("TEST_DB", "postgres").lower() == "sqlite"


@pytest.fixture(scope="session")
async def databases(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[DatabaseFactory]:
    admin = None if use_sqlite() else request.getfixturevalue("postgres_admin_url")
    factory = DatabaseFactory(admin, tmp_path_factory.mktemp("db"), [])
    yield factory
    await factory.drop_all()


@dataclass(frozen=True)
class RabbitNamespace:
    """An exchange and queue prefix no other test run uses."""

    amqp_url: str
    exchange: str
    queue_prefix: str

    @property
    def topology(self) -> Topology:
        return Topology(exchange_name=self.exchange, queue_prefix=self.queue_prefix)

    def env(self) -> dict[str, str]:
        return {
            "AMQP_URL": self.amqp_url,
            "AMQP_EXCHANGE": self.exchange,
            "AMQP_QUEUE_PREFIX": self.queue_prefix,
        }


async def delete_namespace(ns: RabbitNamespace) -> None:
    connection = await aio_pika.connect(ns.amqp_url)
    async with connection:
        for name in ns.topology.all_queue_names():
            channel = await connection.channel()
            with contextlib.suppress(Exception):
                await channel.queue_delete(name)
        for exchange in (ns.exchange, f"{ns.exchange}.dlx"):
            channel = await connection.channel()
            with contextlib.suppress(Exception):
                await channel.exchange_delete(exchange)


@contextlib.asynccontextmanager
async def namespace(amqp_url: str) -> AsyncIterator[RabbitNamespace]:
    """An exchange and queue prefix of its own, deleted afterwards. Consumers in one namespace
    compete for its messages, so every running app or process set gets its own."""
    tag = uuid.uuid4().hex[:8]
    ns = RabbitNamespace(amqp_url, f"te-test-{RUN_ID}-{tag}", f"t{RUN_ID}{tag}.")
    try:
        yield ns
    finally:
        await delete_namespace(ns)


@pytest.fixture(scope="module")
async def rabbit(amqp_url: str) -> AsyncIterator[RabbitNamespace]:
    """A namespace per test module."""
    async with namespace(amqp_url) as ns:
        yield ns


@pytest.fixture
async def fresh_rabbit(amqp_url: str) -> AsyncIterator[RabbitNamespace]:
    """A namespace for one test (for tests that inspect queues)."""
    async with namespace(amqp_url) as ns:
        yield ns


def settings_for(cls: type[S], database_url: str, ns: RabbitNamespace, **overrides: Any) -> S:
    values: dict[str, Any] = {
        "database_url": database_url,
        "amqp_url": ns.amqp_url,
        "amqp_exchange": ns.exchange,
        "amqp_queue_prefix": ns.queue_prefix,
        "log_json": False,
        "outbox_poll_interval": 0.1,
        **overrides,
    }
    settings: S = cls.model_validate(values)
    return settings


@contextlib.asynccontextmanager
async def running_app(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """Run ``app``'s lifespan and give an HTTP client bound to it (in-process)."""
    async with LifespanManager(app, startup_timeout=60, shutdown_timeout=30) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client


TokenFactory = Callable[..., str]


@pytest.fixture(scope="session")
def token() -> TokenFactory:
    """``token(role="admin", company="acme", user="u1", email=None)`` → a valid dev JWT."""

    def make(
        role: str = "admin",
        company: str = "acme",
        user: str = "u1",
        email: str | None = None,
        **extra: Any,
    ) -> str:
        return str(
            make_token(
                secret="dev-secret",
                company_id=company,
                user_id=user,
                role=role,
                email=email,
                **extra,
            )
        )

    return make


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# --- real service processes ------------------------------------------------------------------


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class ServiceProcess:
    """A service started as its own process (``python -m <module>``), as ``make run`` does."""

    module: str
    env: dict[str, str]
    port: int
    log_path: Path
    process: Any = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self, timeout: float = 60.0) -> None:
        import asyncio
        import subprocess
        import sys

        env = {**os.environ, **self.env, "PORT": str(self.port), "HOST": "127.0.0.1"}
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(  # noqa: ASYNC220, S603 - a long-lived child process
            [sys.executable, "-m", self.module], env=env, stdout=log, stderr=subprocess.STDOUT
        )
        deadline = asyncio.get_running_loop().time() + timeout
        async with httpx.AsyncClient(base_url=self.url, timeout=2) as client:
            while True:
                if self.process.poll() is not None:
                    raise RuntimeError(f"{self.module} exited: {self.log_path.read_text()[-3000:]}")
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get("/health/ready")).status_code == 200:
                        return
                if asyncio.get_running_loop().time() > deadline:
                    raise TimeoutError(
                        f"{self.module} not ready: {self.log_path.read_text()[-3000:]}"
                    )
                await asyncio.sleep(0.2)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def stop(self, timeout: float = 30.0) -> int:
        import signal

        if self.process is None:
            return 0
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except Exception:
                self.process.kill()
                self.process.wait(10)
        return int(self.process.returncode)


# --- a webhook receiver ------------------------------------------------------------------------


@dataclass(frozen=True)
class ReceivedWebhook:
    path: str
    headers: dict[str, str]
    body: bytes
    #: ``time.monotonic()`` when the request arrived
    at: float


class WebhookReceiver:
    """An HTTP server in the test process that receives webhooks (uvicorn on a free port of
    127.0.0.1, in the test's event loop). Every request is kept in :attr:`received`; each path
    answers 200 unless told otherwise: :meth:`answer` queues statuses (a ``Location`` goes with
    3xx), :meth:`delay` makes it slow."""

    def __init__(self) -> None:
        self.port = free_port()
        self.received: list[ReceivedWebhook] = []
        self._statuses: dict[str, list[int]] = {}
        self._delays: dict[str, float] = {}
        self._bodies: dict[str, bytes] = {}
        self._rules: list[tuple[Callable[[ReceivedWebhook], bool], list[int]]] = []
        self._server: Any = None
        self._task: asyncio.Task[None] | None = None

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def answer(self, path: str, *statuses: int, body: bytes = b"") -> None:
        """Answer the next requests to ``path`` with ``statuses`` in turn (then 200)."""
        self._statuses.setdefault(path, []).extend(statuses)
        if body:
            self._bodies[path] = body

    def answer_matching(self, match: Callable[[ReceivedWebhook], bool], *statuses: int) -> None:
        """Answer the next requests ``match`` accepts with ``statuses`` in turn (before any
        status queued for their path)."""
        self._rules.append((match, list(statuses)))

    def delay(self, path: str, seconds: float) -> None:
        self._delays[path] = seconds

    def at(self, path: str = "/hook") -> list[ReceivedWebhook]:
        return [r for r in self.received if r.path == path]

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        import time

        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        path = scope["path"]
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        received = ReceivedWebhook(path, headers, body, time.monotonic())
        self.received.append(received)
        await asyncio.sleep(self._delays.get(path, 0))
        matched = next((s for match, s in self._rules if s and match(received)), None)
        queued = matched or self._statuses.get(path) or []
        status = queued.pop(0) if queued else 200
        extra = [(b"location", f"{path}/moved".encode())] if 300 <= status < 400 else []
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"text/plain"), *extra],
            }
        )
        await send({"type": "http.response.body", "body": self._bodies.get(path, b"ok")})

    async def start(self) -> None:
        import uvicorn

        config = uvicorn.Config(
            self,
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            lifespan="off",
            timeout_graceful_shutdown=1,
        )
        self._server = uvicorn.Server(config)
        self._task = asyncio.create_task(self._server.serve())
        while not self._server.started:
            if self._task.done():
                self._task.result()
            await asyncio.sleep(0.05)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._task is not None:
            await self._task
            self._task = None


@pytest.fixture
async def webhook_receiver() -> AsyncIterator[WebhookReceiver]:
    """A :class:`WebhookReceiver` for one test."""
    receiver = WebhookReceiver()
    await receiver.start()
    try:
        yield receiver
    finally:
        await receiver.stop()


# --- the whole system ------------------------------------------------------------------------

T = TypeVar("T")


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


def assert_readme_lists_the_api(readme: Path, app: FastAPI) -> None:
    """A service README's endpoint table (rows starting ``| `METHOD /v1/...` ``) names exactly
    the ``/v1`` endpoints the app serves, so the README cannot drift from the OpenAPI."""
    documented = set(
        re.findall(r"^\| `(GET|POST|PUT|PATCH|DELETE) (/v1/[^`]+)`", readme.read_text(), re.M)
    )
    served = {
        (method.upper(), path)
        for path, operations in app.openapi()["paths"].items()
        if path.startswith("/v1/")
        for method in operations
    }
    assert documented == served, {
        "in the README only": sorted(documented - served),
        "served only": sorted(served - documented),
    }


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


async def eventually(
    probe: Callable[[], Awaitable[T]],
    accept: Callable[[T], bool],
    *,
    timeout: float = 30.0,
    what: str = "condition",
) -> T:
    """Poll ``probe`` until ``accept`` holds (messages cross services asynchronously)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await probe()
        if accept(value):
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{what} not reached in {timeout}s; last value: {value!r}")
        await asyncio.sleep(0.2)


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


# --- hand-made workbooks (import tests) ------------------------------------------------------

_XLSX_PARTS = {
    "[Content_Types].xml": (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" '
        'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        '<Override PartName="/xl/workbook.xml" ContentType="application/'
        'vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
        '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/'
        'vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
        '<Override PartName="/xl/sharedStrings.xml" ContentType="application/'
        'vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/>'
        "</Types>"
    ),
    "_rels/.rels": (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        '<Relationship Id="rId1" Target="xl/workbook.xml" Type="http://schemas.openxmlformats.org'
        '/officeDocument/2006/relationships/officeDocument"/>'
        "</Relationships>"
    ),
    "xl/workbook.xml": (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
        'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
        '<sheets><sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>'
    ),
    "xl/_rels/workbook.xml.rels": (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        '<Relationship Id="rId1" Target="worksheets/sheet1.xml" Type="http://schemas.'
        'openxmlformats.org/officeDocument/2006/relationships/worksheet"/>'
        '<Relationship Id="rId2" Target="sharedStrings.xml" Type="http://schemas.'
        'openxmlformats.org/officeDocument/2006/relationships/sharedStrings"/>'
        "</Relationships>"
    ),
}


def xlsx_cell(ref: str, text: str) -> str:
    """An inline-string cell ``ref`` holding ``text``."""
    from xml.sax.saxutils import escape

    return f'<c r="{ref}" t="inlineStr"><is><t>{escape(text)}</t></is></c>'


def xlsx_row(number: int, *texts: str) -> str:
    """Row ``number`` with ``texts`` in columns A, B, ... (inline strings)."""
    cells = "".join(xlsx_cell(f"{chr(ord('A') + i)}{number}", t) for i, t in enumerate(texts))
    return f'<row r="{number}">{cells}</row>'


def handmade_xlsx(
    sheet_data: str,
    *,
    shared_strings: list[str] | tuple[str, ...] = (),
    before_data: str = "",
    parts: Mapping[str, str | bytes | None] | None = None,
) -> bytes:
    """An XLSX workbook written by hand with :mod:`zipfile`, so that a test controls every
    ``r=`` attribute openpyxl would write for it: one sheet, ``xl/worksheets/sheet1.xml``, whose
    ``<sheetData>`` holds ``sheet_data`` (after ``before_data``, e.g. a ``<dimension>``), and a
    shared-strings table. ``parts`` adds or replaces parts by name (``None`` leaves one out)."""
    import io
    import zipfile
    from xml.sax.saxutils import escape

    sheet = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
        f"{before_data}<sheetData>{sheet_data}</sheetData></worksheet>"
    )
    strings = "".join(f"<si><t>{escape(s)}</t></si>" for s in shared_strings)
    every: dict[str, str | bytes | None] = {
        **_XLSX_PARTS,
        "xl/worksheets/sheet1.xml": sheet,
        "xl/sharedStrings.xml": (
            '<?xml version="1.0" encoding="UTF-8"?>'
            '<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
            f"{strings}</sst>"
        ),
        **(parts or {}),
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, content in every.items():
            if content is not None:
                archive.writestr(name, content)
    return buffer.getvalue()
