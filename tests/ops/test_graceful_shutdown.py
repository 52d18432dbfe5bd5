"""SIGTERM mid-stream: a service stops taking work, finishes what is in flight, flushes its outbox
and exits; nothing confirmed is lost and nothing is applied twice."""

from __future__ import annotations

import asyncio
import re
import signal
from pathlib import Path

import httpx
import pytest
from faststream.rabbit import RabbitBroker
from sqlalchemy import text

from te_shared import contracts as c
from te_shared.db import create_engine
from te_testing import messages
from te_testing.api import auth
from te_testing.infra import DatabaseFactory, RabbitNamespace
from te_testing.polling import eventually
from te_testing.processes import ServiceProcess, free_port

pytestmark = pytest.mark.e2e


async def scalar(db_url: str, sql: str) -> int:
    engine = create_engine(db_url)
    try:
        async with engine.connect() as conn:
            return int((await conn.execute(text(sql))).scalar() or 0)
    finally:
        await engine.dispose()


async def count_reaches(db_url: str, sql: str, expected: int) -> int:
    """The count ``sql`` gives once it is ``expected`` (polled; a minute at most)."""
    return await eventually(
        lambda: scalar(db_url, sql), lambda n: n == expected, timeout=60, what=f"{sql} = {expected}"
    )


def stopped_gracefully(proc: ServiceProcess) -> bool:
    """uvicorn re-raises the SIGTERM it handled once shutdown completed, hence -15."""
    return proc.process.returncode in (0, -signal.SIGTERM) and "service_stopped" in (
        proc.log_path.read_text()
    )


def process(module: str, db_url: str, ns: RabbitNamespace, logs: Path) -> ServiceProcess:
    env = {**ns.env(), "DATABASE_URL": db_url, "GRACEFUL_TIMEOUT": "10"}
    return ServiceProcess(module, env, free_port(), logs / f"{module}.log")


async def test_sigterm_on_the_publisher_loses_no_confirmed_change(
    databases: DatabaseFactory,
    fresh_rabbit: RabbitNamespace,
    token: object,
    tmp_path: Path,
) -> None:
    catalog_db = await databases.create("gs_cat")
    registration_db = await databases.create("gs_reg")
    catalog = process("catalog", catalog_db, fresh_rabbit, tmp_path)
    registration = process("registration", registration_db, fresh_rabbit, tmp_path)
    await asyncio.gather(catalog.start(), registration.start())
    confirmed: list[str] = []
    try:
        limiter = asyncio.Semaphore(16)

        async def change(client: httpx.AsyncClient, i: int) -> None:
            company = f"gs-{i}"
            headers = auth(token(role="admin", company=company))  # type: ignore[operator]
            async with limiter:
                try:
                    response = await client.put(
                        "/v1/company/settings", json={"timezone": "UTC"}, headers=headers
                    )
                except httpx.HTTPError:
                    return  # not confirmed: the server was going away
                if response.status_code == 200:
                    confirmed.append(company)
                if len(confirmed) == 80:
                    catalog.process.send_signal(signal.SIGTERM)

        async with httpx.AsyncClient(base_url=catalog.url, timeout=30) as client:
            await asyncio.gather(*(change(client, i) for i in range(300)))
        catalog.process.wait(30)
        assert stopped_gracefully(catalog)
        assert len(confirmed) >= 80
        # Every confirmed change reached registration, without a catalog restart.
        got = await count_reaches(
            registration_db, "SELECT count(*) FROM company_replica", len(confirmed)
        )
        assert got == len(confirmed)
        assert await scalar(catalog_db, "SELECT count(*) FROM outbox WHERE sent_at IS NULL") == 0
    finally:
        catalog.kill()
        registration.stop()


async def test_sigterm_on_the_consumer_finishes_in_flight_and_redelivers_nothing_processed(
    databases: DatabaseFactory, fresh_rabbit: RabbitNamespace, tmp_path: Path
) -> None:
    registration_db = await databases.create("gs_cons")
    first = process("registration", registration_db, fresh_rabbit, tmp_path)
    await first.start()
    total = 600
    broker = RabbitBroker(fresh_rabbit.amqp_url)
    await broker.connect()
    try:
        await asyncio.gather(
            *(
                broker.publish(
                    messages.company_settings_changed(company=f"cons-{i}").model_dump(mode="json"),
                    exchange=fresh_rabbit.topology.exchange,
                    routing_key=c.CompanySettingsChanged.routing_key,
                    persist=True,
                )
                for i in range(total)
            )
        )
    finally:
        await broker.stop()
    sql = "SELECT count(*) FROM company_replica"
    await eventually(
        lambda: scalar(registration_db, sql), lambda n: n >= 50, timeout=60, interval=0.05
    )
    first.stop()  # SIGTERM, mid-stream
    assert stopped_gracefully(first)
    processed_before = await scalar(registration_db, sql)
    assert processed_before < total, "the stream ended before SIGTERM; nothing was proven"

    second = process("registration", registration_db, fresh_rabbit, tmp_path)
    await second.start()
    try:
        assert await count_reaches(registration_db, sql, total) == total
        assert await scalar(registration_db, "SELECT count(*) FROM inbox") == total
        async with httpx.AsyncClient(base_url=second.url) as client:
            metrics = (await client.get("/metrics")).text
        duplicates = re.findall(r'messages_consumed_total\{outcome="duplicate".*\} (\S+)', metrics)
        assert sum(float(v) for v in duplicates) == 0.0  # nothing processed came back
    finally:
        second.stop()
