"""Faults, with nothing lost (R-ERR-2, R-ERR-3, R-ENR-6): each service is killed with SIGKILL
mid-stream and restarted; afterwards every confirmed change has reached every service that needs
it, nothing took effect twice, no session is overbooked and the dead-letter queues are empty."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import pytest

from te_shared.testing import System, eventually
from tests.faults import support

pytestmark = pytest.mark.e2e

USERS = 500
SESSIONS = 5
LIMIT = 40
DAYS = 50


def at(days: float, hour: int = 10) -> str:
    base = dt.datetime.now(dt.UTC).replace(hour=hour, minute=0, second=0, microsecond=0)
    return (base + dt.timedelta(days=days)).isoformat()


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
        answered_on_retry: list[str] = []

        async def add_day(n: int) -> None:
            body = {
                "format": "offline",
                "start": at(5 + n, 9),
                "end": at(5 + n, 11),
                "address": f"Hall {n}",
            }
            response = await support.until_answered(
                lambda: cat.post(f"/v1/sessions/{sessions[n % SESSIONS]}/days", json=body)
            )
            if response.status_code == 201:
                confirmed_days.append(response.json()["id"])

        async def sign_up(i: int) -> None:
            user = users[i]
            token = system.user(company, user)
            async with system.client(system.registration, token) as me:
                response = await support.until_answered(
                    lambda: me.post(f"/v1/sessions/{sessions[i % SESSIONS]}/enrollments")
                )
            # 200: the sign-up had committed but its answer was lost with the killed process;
            # the retry answers the same enrollment
            if response.status_code in (200, 201):
                signed_up[user] = response.json()["id"]
                if response.status_code == 200:
                    answered_on_retry.append(user)
            else:
                refused[user] = response.json().get("code", "")

        limiter = asyncio.Semaphore(16)

        async def limited(coro: Any) -> None:
            async with limiter:
                await coro

        async def faults() -> None:
            await asyncio.sleep(1.0)
            await support.kill_and_restart(system.registration, injected, "during sign-ups")
            await asyncio.sleep(1.0)
            await support.kill_and_restart(system.catalog, injected, "during day creation")
            await asyncio.sleep(1.0)
            await support.kill_and_restart(system.bridge, injected, "consuming enrollment changes")

        await asyncio.gather(
            faults(),
            *(limited(sign_up(i)) for i in range(USERS)),
            *(limited(add_day(n)) for n in range(DAYS)),
        )

        checked = await support.everything_arrived(
            system, company, event["id"], confirmed_days, signed_up, LIMIT
        )
        checked.insert(
            1,
            (
                "sign-ups answered",
                f"{len(signed_up)} confirmed ({len(answered_on_retry)} on a retry), "
                f"{len(refused)} refused, of {USERS}",
            ),
        )
        assert len(signed_up) + len(refused) == USERS
        assert len(signed_up) == SESSIONS * LIMIT

    support.print_table(injected, checked)
