"""Faults, with nothing lost (R-ERR-2, R-ERR-3, R-ENR-6): each service is killed with SIGKILL
mid-stream and restarted; afterwards every confirmed change has reached every service that needs
it, nothing took effect twice, no session is overbooked and the dead-letter queues are empty."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import aio_pika
import httpx
import pytest
from sqlalchemy import text

from te_shared.db import create_engine
from te_shared.testing import ServiceProcess, System, eventually

pytestmark = pytest.mark.e2e

USERS = 500
SESSIONS = 5
LIMIT = 40
DAYS = 50


def at(days: float, hour: int = 10) -> str:
    base = dt.datetime.now(dt.UTC).replace(hour=hour, minute=0, second=0, microsecond=0)
    return (base + dt.timedelta(days=days)).isoformat()


async def rows(db_url: str, sql: str, **params: Any) -> list[Any]:
    engine = create_engine(db_url)
    try:
        async with engine.connect() as conn:
            return list((await conn.execute(text(sql), params)).all())
    finally:
        await engine.dispose()


async def until_answered(send: Any, *, attempts: int = 200) -> httpx.Response:
    """A client that retries while the service is down, until it gets an HTTP answer."""
    for _ in range(attempts):
        try:
            response: httpx.Response = await send()
        except httpx.TransportError:
            await asyncio.sleep(0.1)
            continue
        if response.status_code < 500:
            return response
        await asyncio.sleep(0.1)
    raise AssertionError("the service never answered")


async def kill_and_restart(proc: ServiceProcess, injected: list[str], why: str) -> None:
    proc.kill()  # SIGKILL: no shutdown, no flush
    injected.append(f"kill -9 {proc.module} ({why})")
    await proc.start()


async def dead_lettered(system: System) -> int:
    connection = await aio_pika.connect(system.rabbit.amqp_url)
    total = 0
    async with connection:
        for name in system.rabbit.topology.all_queue_names():
            if not name.endswith("dead-letter"):
                continue
            channel = await connection.channel()
            queue = await channel.declare_queue(name, passive=True)
            total += queue.declaration_result.message_count or 0
    return total


async def test_sigkill_each_service_mid_stream_loses_and_duplicates_nothing(
    fault_system: System,
) -> None:
    system = fault_system
    company = "faults-kill"
    admin = system.admin(company)
    injected: list[str] = []
    checked: list[tuple[str, str]] = []
    users = [f"user-{i}" for i in range(USERS)]

    async with (
        system.client(system.catalog, admin) as cat,
        system.client(system.registration, admin) as reg,
    ):
        event = (
            await cat.post(
                "/v1/events",
                json={
                    "title": "Fire drill",
                    "dated": True,
                    "requires_approval": False,
                },
            )
        ).json()
        sessions = []
        for n in range(SESSIONS):
            session = (
                await cat.post(
                    f"/v1/events/{event['id']}/sessions",
                    json={
                        "name": f"Run {n}",
                        "registration_end": at(3),
                        "limit_enabled": True,
                        "participant_limit": LIMIT,
                    },
                )
            ).json()
            sessions.append(session["id"])
        assert (
            await reg.put(f"/v1/events/{event['id']}/access", json={"user_ids": users})
        ).status_code == 200
        assert (
            await cat.patch(f"/v1/events/{event['id']}", json={"state": "active"})
        ).status_code == 200
        for session_id in sessions:
            await eventually(
                lambda s=session_id: reg.get(f"/v1/sessions/{s}/seats"),
                lambda r: r.status_code == 200,
                what="read model",
            )

        confirmed_days: list[str] = []
        signed_up: dict[str, str] = {}  # user -> enrollment id (201s)
        refused: dict[str, str] = {}

        async def add_day(n: int) -> None:
            body = {
                "format": "offline",
                "start": at(5 + n, 9),
                "end": at(5 + n, 11),
                "address": f"Hall {n}",
            }
            response = await until_answered(
                lambda: cat.post(f"/v1/sessions/{sessions[n % SESSIONS]}/days", json=body)
            )
            if response.status_code == 201:
                confirmed_days.append(response.json()["id"])

        async def sign_up(i: int) -> None:
            user = users[i]
            token = system.user(company, user)
            async with system.client(system.registration, token) as me:
                response = await until_answered(
                    lambda: me.post(f"/v1/sessions/{sessions[i % SESSIONS]}/enrollments")
                )
            if response.status_code == 201:
                signed_up[user] = response.json()["id"]
            else:
                refused[user] = response.json().get("code", "")

        limiter = asyncio.Semaphore(16)

        async def limited(coro: Any) -> None:
            async with limiter:
                await coro

        async def faults() -> None:
            await asyncio.sleep(1.0)
            await kill_and_restart(system.registration, injected, "during sign-ups")
            await asyncio.sleep(1.0)
            await kill_and_restart(system.catalog, injected, "during day creation")
            await asyncio.sleep(1.0)
            await kill_and_restart(system.bridge, injected, "consuming enrollment changes")

        await asyncio.gather(
            faults(),
            *(limited(sign_up(i)) for i in range(USERS)),
            *(limited(add_day(n)) for n in range(DAYS)),
        )

        # --- checks ------------------------------------------------------------------------
        seats = await rows(
            system.databases["registration"],
            "SELECT session_id, taken, participant_limit FROM session_replica WHERE event_id = :e",
            e=event["id"],
        )
        holding = await rows(
            system.databases["registration"],
            "SELECT session_id, count(*) FROM enrollment WHERE event_id = :e AND "
            "status IN ('pending','approved','awaiting_confirmation',"
            "'participated','missed') GROUP BY session_id",
            e=event["id"],
        )
        by_session = {str(s): n for s, n in holding}
        for session_id, taken, limit in seats:
            assert taken == by_session.get(str(session_id), 0), "seat counter drifted"
            assert taken <= limit, "overbooked"
        assert sum(t for _, t, _ in seats) == SESSIONS * LIMIT
        checked.append(("no overbooking", f"{SESSIONS} sessions, {SESSIONS * LIMIT} seats taken"))

        enrollments = await rows(
            system.databases["registration"],
            "SELECT id, user_id FROM enrollment WHERE event_id = :e",
            e=event["id"],
        )
        assert len({u for _, u in enrollments}) == len(enrollments), "a user enrolled twice"
        assert {str(i) for i in signed_up.values()} <= {str(i) for i, _ in enrollments}
        assert len(signed_up) + len(refused) == USERS
        checked.append(
            (
                "every confirmed sign-up stored once",
                f"{len(signed_up)} confirmed, {len(refused)} refused",
            )
        )

        async def bridge_enrollments() -> set[str]:
            found = await rows(
                system.databases["bridge"],
                "SELECT enrollment_id FROM enrollments WHERE event_id = :e",
                e=event["id"],
            )
            return {str(r[0]) for r in found}

        expected = {str(i) for i, _ in enrollments}
        await eventually(
            bridge_enrollments,
            lambda got: got == expected,
            timeout=60,
            what="every enrollment reached zoom-bridge",
        )
        checked.append(("enrollment changes reached zoom-bridge", f"{len(expected)} enrollments"))

        async def replica_days() -> set[str]:
            found = await rows(
                system.databases["registration"],
                "SELECT day_id FROM day_replica WHERE event_id = :e",
                e=event["id"],
            )
            return {str(r[0]) for r in found}

        catalog_days = {
            str(r[0])
            for r in await rows(
                system.databases["catalog"],
                "SELECT d.id FROM days d JOIN sessions s ON s.id = d.session_id "
                "WHERE s.event_id = :e",
                e=event["id"],
            )
        }
        assert set(confirmed_days) <= catalog_days
        await eventually(
            replica_days,
            lambda got: got == catalog_days,
            timeout=60,
            what="every day reached registration",
        )
        checked.append(
            (
                "days reached registration",
                f"{len(confirmed_days)} confirmed of {DAYS}, {len(catalog_days)} stored",
            )
        )

        for name, db in system.databases.items():
            await eventually(
                lambda db=db: rows(db, "SELECT count(*) FROM outbox WHERE sent_at IS NULL"),
                lambda r: r[0][0] == 0,
                timeout=60,
                what=f"{name} outbox drained",
            )
        checked.append(("outboxes drained", "catalog, registration, zoom-bridge"))
        assert await dead_lettered(system) == 0
        checked.append(("dead-letter queues empty", "all services"))

    print("\nfaults injected:")
    for line in injected:
        print(f"  - {line}")
    print("checked:")
    width = max(len(c) for c, _ in checked)
    for check, detail in checked:
        print(f"  {check:<{width}}  {detail}")
