"""Fixtures for integrations' tests: the app in this process (its worker delivering to
receivers served from this process), real PostgreSQL and RabbitMQ."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select

from integrations.app import create_app
from integrations.handlers import consumers
from integrations.models import InboxRecord, WebhookDelivery
from integrations.settings import IntegrationsSettings
from te_shared import contracts as c
from te_shared.db import unit_of_work
from te_shared.inbox import claim
from te_testing import messages
from te_testing.api import auth
from te_testing.infra import (
    DatabaseFactory,
    RabbitNamespace,
    TokenFactory,
    delete_namespace,
    namespace,
    running_app,
    settings_for,
)
from te_testing.polling import eventually

#: a local run's settings, with the schedule shrunk 500 times (5 s -> 10 ms, 5 min -> 0.6 s)
LENIENT: dict[str, Any] = {
    "webhook_allow_http": True,
    "webhook_allow_private_networks": ["127.0.0.0/8", "::1/128"],
    "webhook_retry_scale": 0.002,
    "webhook_worker_poll_seconds": 0.05,
    "webhook_timeout_seconds": 1.0,
    "webhook_lease_seconds": 5.0,
}


@dataclass
class Integ:
    app: FastAPI
    client: httpx.AsyncClient
    token: TokenFactory
    settings: IntegrationsSettings
    versions: messages.Versions = field(default_factory=messages.Versions)

    @staticmethod
    async def wait(probe: Callable[[], Awaitable[Any]], timeout: float = 15.0) -> Any:
        """:func:`eventually` ``probe`` returns something truthy (polled every 50 ms)."""
        return await eventually(probe, timeout=timeout, interval=0.05)

    def admin(self, company: str = "acme", user: str = "admin1") -> dict[str, str]:
        return auth(self.token(role="admin", company=company, user=user))

    def user(self, company: str = "acme", user: str = "u1") -> dict[str, str]:
        return auth(self.token(role="user", company=company, user=user))

    async def register(
        self, url: str, events: list[str] | None = None, company: str = "acme"
    ) -> dict[str, Any]:
        r = await self.client.post(
            "/v1/webhooks/endpoints",
            json={"url": url, "events": events or ["*"]},
            headers=self.admin(company),
        )
        assert r.status_code == 201, r.text
        body: dict[str, Any] = r.json()
        return body

    async def apply(self, *messages: c.Message) -> None:
        """Consume ``messages`` as the broker's consumers do: inbox and effect in one
        transaction, then the commit hooks (which wake the worker)."""
        runtime = self.app.state.runtime
        for message in messages:
            async with unit_of_work(runtime.session_factory()) as session:
                consumer = f"integrations:{message.routing_key}"
                if await claim(session, InboxRecord, message.message_id, consumer):
                    await consumers.handlers[type(message)](session, message)
            runtime.after_commit(session)

    async def apply_together(self, *messages: c.Message) -> None:
        """Consume ``messages`` in one transaction: the worker sees them queued at once."""
        runtime = self.app.state.runtime
        async with unit_of_work(runtime.session_factory()) as session:
            for message in messages:
                consumer = f"integrations:{message.routing_key}"
                if await claim(session, InboxRecord, message.message_id, consumer):
                    await consumers.handlers[type(message)](session, message)
        runtime.after_commit(session)

    async def deliveries(self, endpoint_id: str, company: str = "acme") -> list[dict[str, Any]]:
        r = await self.client.get(
            f"/v1/webhooks/endpoints/{endpoint_id}/deliveries",
            params={"limit": 200},
            headers=self.admin(company),
        )
        assert r.status_code == 200, r.text
        items: list[dict[str, Any]] = r.json()["items"]
        return items

    async def rows(self) -> list[WebhookDelivery]:
        factory = self.app.state.runtime.session_factory()
        async with factory() as session:
            return list(await session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id)))

    async def metrics(self) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
        text = (await self.client.get("/metrics")).text
        return {
            (sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        }

    def next_version(self, key: uuid.UUID) -> int:
        return self.versions.next(key)

    def enrollment(
        self,
        *,
        company: str = "acme",
        enrollment_id: uuid.UUID | None = None,
        status: c.EnrollmentStatus = c.EnrollmentStatus.APPROVED,
        previous: c.EnrollmentStatus | None = None,
        version: int | None = None,
        by: str | None = None,
        reason: str | None = None,
    ) -> c.EnrollmentChanged:
        enrollment_id = enrollment_id or uuid.uuid4()
        return messages.enrollment_changed(
            company=company,
            enrollment_id=enrollment_id,
            status=status,
            previous=previous,
            version=version if version is not None else self.next_version(enrollment_id),
            by=by,
            reason=reason,
        )

    def day(self, *, company: str = "acme", day_id: uuid.UUID | None = None) -> c.DayScheduled:
        day_id = day_id or uuid.uuid4()
        day = messages.day_data(
            company=company,
            day_id=day_id,
            version=self.next_version(day_id),
            url="https://meet.example.com/x",
        )
        assert isinstance(day, c.DayScheduled)
        return day


@pytest.fixture(scope="module")
async def integ_rabbit(amqp_url: str) -> AsyncIterator[RabbitNamespace]:
    tag = uuid.uuid4().hex[:8]
    ns = RabbitNamespace(amqp_url, f"te-test-int-{tag}", f"tint{tag}.")
    yield ns
    await delete_namespace(ns)


async def _running(
    databases: DatabaseFactory,
    ns: RabbitNamespace,
    token: TokenFactory,
    overrides: dict[str, Any],
) -> AsyncIterator[Integ]:
    url = await databases.create("integ")
    settings = settings_for(IntegrationsSettings, url, ns, **overrides)
    app = create_app(settings)
    async with running_app(app) as client:
        yield Integ(app, client, token, settings)


@pytest.fixture(scope="module")
async def integ(
    request: pytest.FixtureRequest,
    databases: DatabaseFactory,
    integ_rabbit: RabbitNamespace,
    token: TokenFactory,
) -> AsyncIterator[Integ]:
    """The service as a local run configures it (http and loopback allowed), one per test
    module; a module's ``SETTINGS`` (a dict) overrides its settings."""
    overrides = {**LENIENT, **getattr(request.module, "SETTINGS", {})}
    async for running in _running(databases, integ_rabbit, token, overrides):
        yield running


@pytest.fixture(scope="module")
async def strict(
    databases: DatabaseFactory, amqp_url: str, token: TokenFactory
) -> AsyncIterator[Integ]:
    """The service with production defaults: https only, public addresses only (in a
    namespace of its own: it must not compete for ``integ``'s messages)."""
    async with namespace(amqp_url) as ns:
        async for running in _running(databases, ns, token, {}):
            yield running
