"""Faults over the real processes, for the fault tests (``tests/faults``) and the soak
(``bench/soak.py``): a client that retries through an outage (:func:`until_answered`), raw SQL
on a service's database (:func:`rows`), the dead-letter count of a namespace, and the machine's
RabbitMQ and PostgreSQL stopped, started, restarted and waited for.

The commands are overridable: FAULTS_RABBIT_STOP / FAULTS_RABBIT_START / FAULTS_PG_RESTART.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import shlex
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aio_pika
import asyncpg
import httpx
from sqlalchemy import Uuid, bindparam, text

from te_shared.db import create_engine
from te_testing.system import System

#: the statuses that hold a seat (R-ENR-6), as SQL
SEAT_HOLDING = "('pending','approved','awaiting_confirmation','participated','missed')"


def _is_uuid(value: Any) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True


def uid(value: Any) -> str:
    """One spelling of a UUID: SQLite returns raw ``Uuid`` columns as 32 hex digits."""
    return str(uuid.UUID(str(value)))


def instant(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(dt.UTC)


async def rows(db_url: str, sql: str, **params: Any) -> list[Any]:
    """Raw SQL on a service's database; UUID parameters are bound as ``Uuid`` so they match on
    PostgreSQL (uuid) and SQLite (32 hex digits) alike."""
    statement = text(sql).bindparams(
        *(bindparam(name, type_=Uuid()) for name, value in params.items() if _is_uuid(value))
    )
    values = {k: uuid.UUID(str(v)) if _is_uuid(v) else v for k, v in params.items()}
    engine = create_engine(db_url)
    try:
        async with engine.connect() as conn:
            return list((await conn.execute(statement, values)).all())
    finally:
        await engine.dispose()


@dataclass(frozen=True)
class Answer:
    response: httpx.Response
    #: how many times the request went unanswered (process or database down) before this answer
    retries: int


async def until_answered(
    send: Callable[[], Awaitable[httpx.Response]], attempts: int = 600
) -> Answer:
    """A client that retries while a service or its database is down, until it gets an answer
    that is not a server error (every 0.2 s, ``attempts`` times)."""
    retries = 0
    for _ in range(attempts):
        try:
            response = await send()
        except httpx.TransportError:
            retries += 1
            await asyncio.sleep(0.2)
            continue
        if response.status_code < 500:
            return Answer(response, retries)
        retries += 1
        await asyncio.sleep(0.2)
    raise AssertionError("the service never answered")


async def dead_lettered(system: System) -> int:
    """Messages in the namespace's dead-letter queues (passive declares; an optional
    service's, integrations', exists only once it ran)."""
    connection = await aio_pika.connect(system.rabbit.amqp_url)
    total = 0
    async with connection:
        for name in system.rabbit.topology.all_queue_names():
            if name.endswith("dead-letter"):
                channel = await connection.channel()
                try:
                    queue = await channel.declare_queue(name, passive=True)
                except aio_pika.exceptions.ChannelNotFoundEntity:
                    continue
                total += queue.declaration_result.message_count or 0
    return total


# --- the machine's RabbitMQ and PostgreSQL ----------------------------------------------------


def _pg_cluster() -> str:
    versions = sorted(os.listdir("/etc/postgresql")) if Path("/etc/postgresql").exists() else []
    version = versions[-1] if versions else "15"
    return f"pg_ctlcluster --skip-systemctl-redirect {version} main"


RABBIT_STOP = os.environ.get("FAULTS_RABBIT_STOP", "rabbitmqctl stop_app")
RABBIT_START = os.environ.get("FAULTS_RABBIT_START", "rabbitmqctl start_app")
PG_RESTART = os.environ.get("FAULTS_PG_RESTART", f"{_pg_cluster()} restart")
#: PostgreSQL started when it is down (a restart interrupted); an error while it runs, ignored
PG_START = os.environ.get("FAULTS_PG_START", f"{_pg_cluster()} start")


async def sh(command: str, timeout: float = 120.0) -> None:
    """Run ``command``; an ``AssertionError`` with the end of its output when it fails."""
    proc = await asyncio.create_subprocess_exec(
        *shlex.split(command), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        raise
    assert proc.returncode == 0, f"{command}: {out.decode()[-500:]}"


async def rabbit_back(amqp_url: str, timeout: float = 120.0) -> None:
    """Wait until RabbitMQ accepts a connection again."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            connection = await aio_pika.connect(amqp_url, timeout=5)
        except Exception:
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.5)
            continue
        await connection.close()
        return


async def postgres_back(postgres_url: str, timeout: float = 120.0) -> None:
    """Wait until PostgreSQL answers a query again."""
    deadline = asyncio.get_running_loop().time() + timeout
    plain = postgres_url.replace("postgresql+asyncpg://", "postgresql://")
    while True:
        try:
            conn = await asyncpg.connect(plain, timeout=5)
            try:
                await conn.fetchval("SELECT 1")
            finally:
                await conn.close()
        except Exception:
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.5)
            continue
        return


async def infrastructure_up(amqp_url: str, postgres_url: str) -> None:
    """RabbitMQ's app and PostgreSQL running again, whatever a fault left behind (both starts
    are harmless when they already run), and both answering."""
    with contextlib.suppress(Exception):
        await sh(RABBIT_START)
    with contextlib.suppress(Exception):
        await sh(PG_START)
    await asyncio.gather(rabbit_back(amqp_url), postgres_back(postgres_url))
