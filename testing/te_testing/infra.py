"""Real infrastructure for the tests, isolated per test run: fresh databases
(``CREATE DATABASE``, dropped at the end; SQLite files with ``TEST_DB=sqlite``), a RabbitMQ
exchange and queue prefix of their own, and the apps run in-process against them."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import aio_pika
import asyncpg
import httpx
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from te_shared.auth import make_token
from te_shared.settings import ServiceSettings
from te_shared.topology import Topology

RUN_ID = uuid.uuid4().hex[:8]
S = TypeVar("S", bound=ServiceSettings)


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


def dev_token(
    role: str = "admin",
    company: str = "acme",
    user: str = "u1",
    email: str | None = None,
    **extra: Any,
) -> str:
    """A JWT the services accept with their development settings (``JWT_SECRET=dev-secret``);
    ``extra`` goes to :func:`te_shared.auth.make_token` (e.g. ``ttl_seconds``)."""
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
