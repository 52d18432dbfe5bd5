"""The pytest fixtures of every test suite (loaded by the root ``conftest.py``).

Real infrastructure: ``TEST_AMQP_URL`` (or ``AMQP_URL``) and ``TEST_POSTGRES_URL`` (or
``POSTGRES_URL``) name a running RabbitMQ and PostgreSQL; when unset, testcontainers starts them
where Docker exists. Each test run is isolated: its own exchange and queue prefix on RabbitMQ, and
fresh databases (``CREATE DATABASE``) on PostgreSQL, dropped at the end.
``TEST_DB=sqlite`` runs the database-backed tests on SQLite files instead.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator

import pytest

from te_testing.infra import (
    DatabaseFactory,
    RabbitNamespace,
    TokenFactory,
    dev_token,
    namespace,
    use_sqlite,
)
from te_testing.system import System, start_system
from te_testing.webhooks import WebhookReceiver


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


@pytest.fixture(scope="session")
async def databases(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[DatabaseFactory]:
    admin = None if use_sqlite() else request.getfixturevalue("postgres_admin_url")
    factory = DatabaseFactory(admin, tmp_path_factory.mktemp("db"), [])
    yield factory
    await factory.drop_all()


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


@pytest.fixture(scope="session")
def token() -> TokenFactory:
    """``token(role="admin", company="acme", user="u1", email=None)`` → a valid dev JWT."""
    return dev_token


@pytest.fixture
async def fresh_system(
    databases: DatabaseFactory,
    fresh_rabbit: RabbitNamespace,
    token: TokenFactory,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[System]:
    """The whole system for one test alone: for a test that kills its processes, or whose
    Zoom meetings the tests sharing a system would count."""
    async with start_system(databases, fresh_rabbit, token, tmp_path_factory) as system:
        yield system


@pytest.fixture
async def webhook_receiver() -> AsyncIterator[WebhookReceiver]:
    """A :class:`~te_testing.webhooks.WebhookReceiver` for one test."""
    receiver = WebhookReceiver()
    await receiver.start()
    try:
        yield receiver
    finally:
        await receiver.stop()
