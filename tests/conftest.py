"""`system`: the whole system as `make run` starts it (four real processes, real RabbitMQ and
PostgreSQL), shared by the end-to-end, security and operations tests of one run."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from te_testing.infra import DatabaseFactory, TokenFactory, namespace
from te_testing.system import System, start_system


@pytest.fixture(scope="session")
async def system(
    databases: DatabaseFactory,
    amqp_url: str,
    token: TokenFactory,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[System]:
    async with (
        namespace(amqp_url) as ns,
        start_system(databases, ns, token, tmp_path_factory) as running,
    ):
        yield running
