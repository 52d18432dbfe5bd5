"""Infrastructure faults (`make test-faults`, not part of `make test`: they restart the machine's
RabbitMQ and PostgreSQL, which other test runs on the same machine would feel). Zoom's 429 and
500 storms need no restart and run in `make test` (`test_zoom_storms.py`).

A stream of zoom days and sign-ups runs while RabbitMQ is stopped (after 100 sign-ups are
answered) and started again, and PostgreSQL restarts (after 20 days are answered). Afterwards
every requested day exists exactly once in catalog and registration, every seat was taken once,
every confirmed change reached every service that needs it, each zoom day has exactly one meeting,
the outboxes are drained and the dead-letter queues are empty (R-ERR-2, R-ERR-3, R-ZOOM-3,
R-ENR-6).

The commands are overridable: FAULTS_RABBIT_STOP / FAULTS_RABBIT_START / FAULTS_PG_RESTART
(``te_testing.faults``).
"""

from __future__ import annotations

import asyncio
import shutil

import pytest

from te_testing.clock import days_from_now, iso
from te_testing.faults import PG_RESTART, RABBIT_START, RABBIT_STOP, sh
from te_testing.system import System, active_event, zoom_company, zoom_day
from tests.faults import support
from tests.faults.support import FaultReport, Ledger, Milestone

pytestmark = [pytest.mark.e2e, pytest.mark.faults]

DAYS = 50
USERS = 500
LIMIT = 150


@pytest.mark.skipif(
    not (shutil.which(RABBIT_STOP.split()[0]) and shutil.which(PG_RESTART.split()[0])),
    reason="needs the local RabbitMQ and PostgreSQL control commands",
)
async def test_broker_stop_and_database_restart_lose_nothing(
    fresh_system: System, fault_report: FaultReport
) -> None:
    system, report = fresh_system, fault_report
    company = "faults-infra"
    admin = system.admin(company)
    ledger = Ledger()
    async with system.client(system.catalog, admin) as cat:
        account_id = await zoom_company(system, company)
        users = [f"u{i}" for i in range(USERS)]
        event = await active_event(
            system,
            company,
            title="Storm",
            dated=True,
            requires_approval=False,
            sessions=[
                {
                    "name": "Storm run",
                    "registration_end": iso(days_from_now(2)),
                    "limit_enabled": True,
                    "participant_limit": LIMIT,
                }
            ],
            access=users,
        )

        signups = Milestone("sign-ups", USERS, after=100, hold_from=200)
        days = Milestone("days", DAYS, after=20, hold_from=30)
        signup_slots, day_slots = asyncio.Semaphore(12), asyncio.Semaphore(4)

        async def add_day(n: int) -> None:
            body = zoom_day(days_from_now(4 + n, 9), days_from_now(4 + n, 10), account_id)
            await days.hold(n)
            async with day_slots:
                await ledger.add_day(cat, event.session_id, body)
            days.answer()

        async def sign_up(i: int) -> None:
            await signups.hold(i)
            async with signup_slots:
                await ledger.sign_up(system, company, users[i], event.session_id)
            signups.answer()

        async def broker_back_after_5s() -> None:
            await asyncio.sleep(5)  # the held sign-ups are sent meanwhile
            await sh(RABBIT_START)

        async def database_restart() -> None:
            await sh(PG_RESTART)

        async def nothing() -> None:
            return None

        await asyncio.gather(
            signups.inject(
                report,
                f"RabbitMQ stopped for 5 s ({RABBIT_STOP} / {RABBIT_START})",
                lambda: sh(RABBIT_STOP),
                broker_back_after_5s,
            ),
            days.inject(report, f"PostgreSQL restarted ({PG_RESTART})", database_restart, nothing),
            *(add_day(n) for n in range(DAYS)),
            *(sign_up(i) for i in range(len(users))),
        )

        with report.check("the broker outage landed mid-stream") as step:
            assert signups.at_kill is not None
            assert signups.at_restart is not None
            during = signups.at_restart - signups.at_kill
            assert 0 < signups.at_kill < USERS
            assert during > 0, "no sign-up answered while the broker was down"
            step.detail = f"{signups.at_kill} sign-ups answered before, {during} during the outage"
        days.landed_mid_stream(report)
        with report.check("every request answered") as step:
            assert len(ledger.days_confirmed) + len(ledger.days_answer_lost) == DAYS, (
                ledger.days_refused
            )
            assert len(ledger.signed_up) == LIMIT, len(ledger.signed_up)
            assert set(ledger.signups_refused.values()) <= {"session_full"}
            assert len(ledger.signed_up) + len(ledger.signups_refused) == USERS
            step.detail = (
                f"{DAYS} days, {len(ledger.signed_up)} sign-ups confirmed (the limit), "
                f"{len(ledger.signups_refused)} refused as full"
            )
        await support.everything_arrived(system, report, company, event.id, ledger, LIMIT)
