"""What every fault test checks afterwards, and the small tools they share."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import aio_pika
import httpx
from sqlalchemy import Uuid, bindparam, text

from te_shared.db import create_engine
from te_shared.testing import ServiceProcess, System, eventually


def _is_uuid(value: Any) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True


def uid(value: Any) -> str:
    """One spelling of a UUID: SQLite returns raw ``Uuid`` columns as 32 hex digits."""
    return str(uuid.UUID(str(value)))


SEAT_HOLDING = "('pending','approved','awaiting_confirmation','participated','missed')"


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


async def until_answered(send: Any, attempts: int = 600) -> httpx.Response:
    """A client that retries while a service or its database is down, until it gets an answer
    that is not a server error."""
    for _ in range(attempts):
        try:
            response: httpx.Response = await send()
        except httpx.TransportError:
            await asyncio.sleep(0.2)
            continue
        if response.status_code < 500:
            return response
        await asyncio.sleep(0.2)
    raise AssertionError("the service never answered")


async def kill_and_restart(proc: ServiceProcess, injected: list[str], why: str) -> None:
    proc.kill()  # SIGKILL: no shutdown, no flush
    injected.append(f"kill -9 {proc.module} ({why})")
    await proc.start()


async def connect_zoom(system: System, admin: str) -> str:
    """R-ZOOM-1 through the simulator's auto-approving OAuth; returns the account id."""
    async with system.client(system.bridge, admin) as bridge, httpx.AsyncClient() as browser:
        start = await bridge.get(
            "/v1/zoom/oauth/authorize", params={"role": "administrator", "return_to": "/admin/zoom"}
        )
        assert start.status_code == 302, start.text
        at_zoom = await browser.get(start.headers["location"])
        back = await browser.get(at_zoom.headers["location"])
        assert back.status_code == 302, back.text
        accounts = (await bridge.get("/v1/zoom/accounts")).json()
        return str(accounts[0]["id"])


async def dead_lettered(system: System) -> int:
    connection = await aio_pika.connect(system.rabbit.amqp_url)
    total = 0
    async with connection:
        for name in system.rabbit.topology.all_queue_names():
            if name.endswith("dead-letter"):
                channel = await connection.channel()
                queue = await channel.declare_queue(name, passive=True)
                total += queue.declaration_result.message_count or 0
    return total


async def everything_arrived(
    system: System,
    company: str,
    event_id: str,
    confirmed_days: list[str],
    signed_up: dict[str, str],
    limit: int,
) -> list[tuple[str, str]]:
    """The checks after a fault: returns (check, detail) rows; raises on the first failure."""
    checked: list[tuple[str, str]] = []
    reg_db, cat_db, bridge_db = (system.databases[k] for k in ("registration", "catalog", "bridge"))
    seats = await rows(
        reg_db,
        "SELECT session_id, taken, participant_limit FROM session_replica WHERE event_id = :e",
        e=event_id,
    )
    holding = dict(
        await rows(
            reg_db,
            "SELECT session_id, count(*) FROM enrollment WHERE "
            f"event_id = :e AND status IN {SEAT_HOLDING} GROUP BY session_id",
            e=event_id,
        )
    )
    for session_id, taken, participant_limit in seats:
        assert taken == holding.get(session_id, 0), "the seat counter drifted"
        assert participant_limit is None or taken <= participant_limit, "overbooked"
    checked.append(
        (
            "no overbooking, no double seat",
            f"{sum(t for _, t, _ in seats)} seats taken, limit {limit} per session",
        )
    )

    enrollments = await rows(
        reg_db, "SELECT id, user_id FROM enrollment WHERE event_id = :e", e=event_id
    )
    assert len({u for _, u in enrollments}) == len(enrollments), "a user enrolled twice"
    stored = {uid(i) for i, _ in enrollments}
    lost = {u: i for u, i in signed_up.items() if uid(i) not in stored}
    assert not lost, f"confirmed sign-ups not stored: {lost}"
    checked.append(("every confirmed sign-up stored once", f"{len(signed_up)} confirmed"))

    async def bridge_enrollments() -> set[str]:
        found = await rows(
            bridge_db, "SELECT enrollment_id FROM enrollments WHERE event_id = :e", e=event_id
        )
        return {uid(r[0]) for r in found}

    expected = stored
    await eventually(
        bridge_enrollments,
        lambda got: got == expected,
        timeout=90,
        what="every enrollment reached zoom-bridge",
    )
    checked.append(("enrollment changes reached zoom-bridge", f"{len(expected)}"))

    catalog_days = {
        uid(r[0])
        for r in await rows(
            cat_db,
            "SELECT d.id FROM days d JOIN sessions s ON s.id = d.session_id WHERE s.event_id = :e",
            e=event_id,
        )
    }
    assert {uid(d) for d in confirmed_days} <= catalog_days

    async def replica_days() -> set[str]:
        found = await rows(reg_db, "SELECT day_id FROM day_replica WHERE event_id = :e", e=event_id)
        return {uid(r[0]) for r in found}

    await eventually(
        replica_days,
        lambda got: got == catalog_days,
        timeout=90,
        what="every day reached registration",
    )
    checked.append(
        (
            "days reached registration",
            f"{len(confirmed_days)} confirmed, {len(catalog_days)} stored",
        )
    )

    zoom_days = {
        uid(r[0])
        for r in await rows(
            cat_db,
            "SELECT d.id FROM days d JOIN sessions s ON s.id = d.session_id "
            "WHERE s.event_id = :e AND d.format = 'zoom'",
            e=event_id,
        )
    }
    if zoom_days:
        async with system.client(system.sim) as sim:

            async def live_meetings() -> list[dict[str, Any]]:
                return [m for m in (await sim.get("/_sim/meetings")).json() if not m["deleted"]]

            meetings = await eventually(
                live_meetings,
                lambda m: len(m) >= len(zoom_days),
                timeout=180,
                what="a meeting per zoom day",
            )
        assert len(meetings) == len(zoom_days), "a day got two meetings"

        async def catalog_meetings() -> list[str]:
            async with system.client(system.catalog, system.admin(company)) as cat:
                full = (await cat.get(f"/v1/events/{event_id}")).json()
            return [
                (d["zoom"].get("meeting") or {}).get("status", "none")
                for s in full["sessions"]
                for d in s["days"]
                if d["format"] == "zoom"
            ]

        await eventually(
            catalog_meetings,
            lambda st: len(st) == len(zoom_days) and set(st) == {"created"},
            timeout=120,
            what="join links back in catalog",
        )
        checked.append(("one Zoom meeting per zoom day", f"{len(zoom_days)} days"))

    for name, db in system.databases.items():
        await eventually(
            lambda db=db: rows(db, "SELECT count(*) FROM outbox WHERE sent_at IS NULL"),
            lambda r: r[0][0] == 0,
            timeout=90,
            what=f"{name} outbox drained",
        )
    checked.append(("outboxes drained", ", ".join(system.databases)))
    assert await dead_lettered(system) == 0, "something was dead-lettered"
    checked.append(("dead-letter queues empty", "all services"))
    return checked


def print_table(injected: list[str], checked: list[tuple[str, str]]) -> None:
    print("\nfaults injected:")
    for line in injected:
        print(f"  - {line}")
    print("checked:")
    width = max(len(c) for c, _ in checked)
    for check, detail in checked:
        print(f"  {check:<{width}}  {detail}")
