"""Infrastructure faults (`make test-faults`, not part of `make test`: they restart the machine's
RabbitMQ and PostgreSQL, which other test runs on the same machine would feel).

A stream of zoom days and sign-ups runs while Zoom answers 429 then 500 for a while, RabbitMQ is
stopped and started again, and PostgreSQL restarts. Afterwards every confirmed change reached
every service that needs it, each day has exactly one meeting, no session is overbooked, the
outboxes are drained and the dead-letter queues are empty (R-ERR-2, R-ERR-3, R-ZOOM-8, R-ENR-6).

The commands are overridable: FAULTS_RABBIT_STOP / FAULTS_RABBIT_START / FAULTS_PG_RESTART.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import shlex
import shutil
from pathlib import Path

import pytest

from te_shared.testing import System, eventually
from tests.faults import support

pytestmark = [pytest.mark.e2e, pytest.mark.faults]

DAYS = 50
USERS = 500
LIMIT = 150


def _pg_restart_default() -> str:
    versions = sorted(os.listdir("/etc/postgresql")) if Path("/etc/postgresql").exists() else []
    version = versions[-1] if versions else "15"
    return f"pg_ctlcluster --skip-systemctl-redirect {version} main restart"


RABBIT_STOP = os.environ.get("FAULTS_RABBIT_STOP", "rabbitmqctl stop_app")
RABBIT_START = os.environ.get("FAULTS_RABBIT_START", "rabbitmqctl start_app")
PG_RESTART = os.environ.get("FAULTS_PG_RESTART", _pg_restart_default())


async def sh(command: str) -> None:
    proc = await asyncio.create_subprocess_exec(
        *shlex.split(command), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await proc.communicate()
    assert proc.returncode == 0, f"{command}: {out.decode()[-500:]}"


def at(days: float, hour: int = 10) -> str:
    base = dt.datetime.now(dt.UTC).replace(hour=hour, minute=0, second=0, microsecond=0)
    return (base + dt.timedelta(days=days)).isoformat()


@pytest.mark.skipif(
    not (shutil.which(RABBIT_STOP.split()[0]) and shutil.which(PG_RESTART.split()[0])),
    reason="needs the local RabbitMQ and PostgreSQL control commands",
)
async def test_zoom_storms_broker_stop_and_database_restart_lose_nothing(
    fault_system: System,
) -> None:
    system = fault_system
    company = "faults-infra"
    admin = system.admin(company)
    injected: list[str] = []
    async with (
        system.client(system.catalog, admin) as cat,
        system.client(system.registration, admin) as reg,
        system.client(system.sim) as sim,
    ):
        await cat.put("/v1/company/settings", json={"zoom_enabled": True})
        account_id = await support.connect_zoom(system, admin)
        event = (
            await cat.post(
                "/v1/events", json={"title": "Storm", "dated": True, "requires_approval": False}
            )
        ).json()
        session = (
            await cat.post(
                f"/v1/events/{event['id']}/sessions",
                json={
                    "name": "Storm run",
                    "registration_end": at(2),
                    "limit_enabled": True,
                    "participant_limit": LIMIT,
                },
            )
        ).json()
        users = [f"u{i}" for i in range(USERS)]
        await reg.put(f"/v1/events/{event['id']}/access", json={"user_ids": users})
        await cat.patch(f"/v1/events/{event['id']}", json={"state": "active"})
        await eventually(
            lambda: reg.get(f"/v1/sessions/{session['id']}/seats"),
            lambda r: r.status_code == 200,
            what="read model",
        )

        days: list[str] = []
        signed: dict[str, str] = {}
        limiter = asyncio.Semaphore(12)

        async def add_day(n: int) -> None:
            body = {
                "format": "zoom",
                "start": at(4 + n, 9),
                "end": at(4 + n, 10),
                "zoom": {"account_id": account_id, "organizer_user_id": "admin-1"},
            }
            async with limiter:
                r = await support.until_answered(
                    lambda: cat.post(f"/v1/sessions/{session['id']}/days", json=body)
                )
            if r.status_code == 201:
                days.append(r.json()["id"])

        async def sign_up(user: str) -> None:
            async with (
                limiter,
                system.client(system.registration, system.user(company, user)) as me,
            ):
                r = await support.until_answered(
                    lambda: me.post(f"/v1/sessions/{session['id']}/enrollments")
                )
            if r.status_code in (200, 201):  # 200: committed, answer lost, retried
                signed[user] = r.json()["id"]

        async def faults() -> None:
            await sim.post("/_sim/faults", json={"status": 429, "count": 30, "retry_after": 1})
            injected.append("Zoom answers 429 (Retry-After: 1) to the next 30 calls")
            await asyncio.sleep(2)
            await sh(RABBIT_STOP)
            injected.append(f"RabbitMQ stopped ({RABBIT_STOP}) for 5 s")
            await asyncio.sleep(5)
            await sh(RABBIT_START)
            await asyncio.sleep(2)
            await sh(PG_RESTART)
            injected.append(f"PostgreSQL restarted ({PG_RESTART})")
            await sim.post("/_sim/faults", json={"status": 500, "count": 30})
            injected.append("Zoom answers 500 to the next 30 calls")

        await asyncio.gather(
            faults(), *(add_day(n) for n in range(DAYS)), *(sign_up(u) for u in users)
        )
        checked = await support.everything_arrived(
            system, company, event["id"], days, signed, LIMIT
        )

    support.print_table(injected, checked)
