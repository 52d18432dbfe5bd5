"""Faults, with nothing lost (R-ERR-2, R-ERR-3, R-ENR-6, R-ZOOM-3): each service is killed with
SIGKILL mid-stream and restarted, each kill tied to the stream's progress:

- registration after 100 of 500 sign-ups are answered;
- catalog after 15 of 50 days (offline and zoom) are answered;
- zoom-bridge after it has created 3 of the 10 zoom days' meetings (it also consumes the
  enrollment changes of the sign-ups meanwhile).

The requests after a hold point are sent only once their process was killed, so each kill lands
with requests answered before it and after the restart, and some in flight. Afterwards every
requested day exists exactly once in catalog and registration (a day committed whose answer was
lost is retried and refused as an overlap with itself), every confirmed sign-up is stored once,
no session is overbooked, each zoom day has one meeting and its join link, the outboxes are
drained and the dead-letter queues are empty.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from te_testing.clock import days_from_now, iso
from te_testing.system import System, active_event, offline_day, zoom_company, zoom_day
from tests.faults import support
from tests.faults.support import FaultReport, Ledger, Milestone

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

USERS = 500
SESSIONS = 5
LIMIT = 40
DAYS = 50
ZOOM_EVERY = 5  # days 0, 5, 10, ... are zoom days


async def test_sigkill_each_service_mid_stream_loses_and_duplicates_nothing(
    fresh_system: System, fault_report: FaultReport
) -> None:
    system, report = fresh_system, fault_report
    company = "faults-kill"
    admin = system.admin(company)
    users = [f"user-{i}" for i in range(USERS)]
    ledger = Ledger()

    async with (
        system.client(system.catalog, admin) as cat,
        system.client(system.sim) as sim,
    ):
        account_id = await zoom_company(system, company)
        event = await active_event(
            system,
            company,
            title="Fire drill",
            dated=True,
            requires_approval=False,
            sessions=[
                {
                    "name": f"Run {n}",
                    "registration_end": iso(days_from_now(3)),
                    "limit_enabled": True,
                    "participant_limit": LIMIT,
                }
                for n in range(SESSIONS)
            ],
            access=users,
        )
        sessions = list(event.sessions.values())

        signups = Milestone("sign-ups", USERS, after=100, hold_from=150)
        days = Milestone("days", DAYS, after=15, hold_from=25)
        zoom_days = DAYS // ZOOM_EVERY
        meetings = Milestone("zoom meetings", zoom_days, after=3, hold_from=5)
        # a stream of its own per service, so one being down does not stall the other
        signup_slots, day_slots = asyncio.Semaphore(12), asyncio.Semaphore(4)

        def day_body(n: int) -> dict[str, Any]:
            start = days_from_now(5 + n, 9)
            if n % ZOOM_EVERY == 0:
                return zoom_day(start, days_from_now(5 + n, 10), account_id)
            return offline_day(start, days_from_now(5 + n, 11), f"Hall {n}")

        async def add_day(n: int) -> None:
            await days.hold(n)
            if n % ZOOM_EVERY == 0:
                await meetings.hold(n // ZOOM_EVERY)
            async with day_slots:
                await ledger.add_day(cat, sessions[n % SESSIONS], day_body(n))
            days.answer()

        async def sign_up(i: int) -> None:
            await signups.hold(i)
            async with signup_slots:
                await ledger.sign_up(system, company, users[i], sessions[i % SESSIONS])
            signups.answer()

        async def count_meetings() -> None:
            """The bridge's stream: meetings it has created at Zoom."""
            while meetings.answered < zoom_days:
                listed = await sim.get("/_sim/meetings")
                for _ in range(len(listed.json()) - meetings.answered):
                    meetings.answer()
                await asyncio.sleep(0.05)

        await asyncio.gather(
            signups.kill_and_restart(system.registration, report),
            days.kill_and_restart(system.catalog, report),
            meetings.kill_and_restart(system.bridge, report),
            asyncio.wait_for(count_meetings(), 150),
            *(sign_up(i) for i in range(USERS)),
            *(add_day(n) for n in range(DAYS)),
        )

        for milestone in (signups, days, meetings):
            milestone.landed_mid_stream(report)
        with report.check("every sign-up answered") as step:
            refused = set(ledger.signups_refused.values())
            assert len(ledger.signed_up) + len(ledger.signups_refused) == USERS
            assert len(ledger.signed_up) == SESSIONS * LIMIT, len(ledger.signed_up)
            assert refused <= {"session_full"}, ledger.signups_refused
            step.detail = (
                f"{len(ledger.signed_up)} confirmed, {len(ledger.signups_refused)} refused "
                f"(session full), of {USERS}"
            )
        await support.everything_arrived(system, report, company, event.id, ledger, LIMIT)
