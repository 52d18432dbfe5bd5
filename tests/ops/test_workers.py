"""WORKERS=N runs N server processes: migrations once before they start, each with its own
consumers and outbox relay, all stopped gracefully by one SIGTERM."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from te_shared.db import create_engine
from te_testing.infra import DatabaseFactory, RabbitNamespace
from te_testing.processes import ServiceProcess, free_port

pytestmark = pytest.mark.e2e


async def test_two_workers_serve_and_stop_together(
    databases: DatabaseFactory, fresh_rabbit: RabbitNamespace, tmp_path: Path
) -> None:
    env = {**fresh_rabbit.env(), "DATABASE_URL": await databases.create("workers"), "WORKERS": "2"}
    proc = ServiceProcess("registration", env, free_port(), tmp_path / "registration.log")
    await proc.start()
    try:
        async with httpx.AsyncClient(base_url=proc.url) as client:
            for _ in range(10):
                assert (await client.get("/health/ready")).status_code == 200
    finally:
        proc.stop()
    log = proc.log_path.read_text()
    assert log.count("service_started") == 2
    assert log.count("service_stopped") == 2
    engine = create_engine(env["DATABASE_URL"])
    async with engine.connect() as conn:  # migrated (by the parent, before the workers)
        version = (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar()
    await engine.dispose()
    assert version is not None
