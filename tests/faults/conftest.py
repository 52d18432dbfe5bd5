"""A fresh whole system per fault test: faults kill processes, so nothing is shared."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from te_shared.testing import (
    DatabaseFactory,
    RabbitNamespace,
    System,
    TokenFactory,
    start_system,
)


@pytest.fixture
async def fault_system(
    databases: DatabaseFactory,
    fresh_rabbit: RabbitNamespace,
    token: TokenFactory,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[System]:
    async with start_system(databases, fresh_rabbit, token, tmp_path_factory) as system:
        yield system
