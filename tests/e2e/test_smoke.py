"""Smoke: the real service processes start against real RabbitMQ and a message crosses services.

Catalog publishes ``CompanySettingsChanged`` (through its outbox) when an admin replaces the
company settings; registration and zoom-bridge consume it into their own databases.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from te_shared.db import create_engine
from te_testing.api import auth
from te_testing.infra import DatabaseFactory, RabbitNamespace
from te_testing.polling import eventually
from te_testing.processes import ServiceProcess, free_port

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
async def smoke_system(
    databases: DatabaseFactory, rabbit: RabbitNamespace, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[dict[str, tuple[ServiceProcess, str]]]:
    logs = tmp_path_factory.mktemp("logs")
    started: dict[str, tuple[ServiceProcess, str]] = {}
    for module in ("catalog", "registration", "zoom_bridge"):
        db_url = await databases.create(module)
        env = {**rabbit.env(), "DATABASE_URL": db_url, "LOG_JSON": "true"}
        started[module] = (
            ServiceProcess(module, env, free_port(), Path(logs / f"{module}.log")),
            db_url,
        )
    await asyncio.gather(*(proc.start() for proc, _ in started.values()))
    try:
        yield started
    finally:
        for proc, _ in started.values():
            proc.stop()


async def replica_version(db_url: str, company: str) -> int | None:
    engine = create_engine(db_url)
    try:
        async with engine.connect() as conn:
            return (
                await conn.execute(
                    text("SELECT version FROM company_replica WHERE company_id = :c"),
                    {"c": company},
                )
            ).scalar()
    finally:
        await engine.dispose()


async def test_company_settings_cross_from_catalog_to_consumers(
    smoke_system: dict[str, tuple[ServiceProcess, str]], token: object
) -> None:
    catalog, _ = smoke_system["catalog"]
    admin = token(role="admin", company="smoke-co")  # type: ignore[operator]
    async with httpx.AsyncClient(base_url=catalog.url, headers=auth(admin)) as client:
        for tz in ("Europe/Berlin", "Asia/Tokyo"):
            response = await client.put(
                "/v1/company/settings",
                json={"timezone": tz, "locales": ["en", "ru"], "zoom_enabled": True},
            )
            assert response.status_code == 200, response.text
        assert (await client.get("/v1/company/settings")).json()["timezone"] == "Asia/Tokyo"

    for module in ("registration", "zoom_bridge"):
        _, db_url = smoke_system[module]
        await eventually(
            functools.partial(replica_version, db_url, "smoke-co"),
            lambda version: version == 2,
            timeout=20,
            interval=0.1,
            what=f"version 2 in {module}",
        )


async def test_each_process_serves_health_and_openapi(
    smoke_system: dict[str, tuple[ServiceProcess, str]],
) -> None:
    for proc, _ in smoke_system.values():
        async with httpx.AsyncClient(base_url=proc.url) as client:
            assert (await client.get("/health/live")).status_code == 200
            ready = await client.get("/health/ready")
            assert ready.json()["checks"] == {"database": "ok", "rabbitmq": "ok"}
            assert (await client.get("/openapi.json")).json()["info"][
                "title"
            ] == proc.module.replace("_", "-")
