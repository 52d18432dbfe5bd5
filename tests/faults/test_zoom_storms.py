"""Zoom rate-limiting, down and slow never loses a day's meeting (R-ZOOM-8, R-ZOOM-3, R-ERR-2):
while a stream of zoom days is created, the simulator answers 429 (with Retry-After), then 500,
then is slow to create meetings. No infrastructure restarts, so this runs in `make test`
(`test_infrastructure.py` keeps the broker and database restarts, `make test-faults` only).

Afterwards every injected fault was actually hit (the simulator's fault counters reached 0, its
call log and the bridge's own metrics show the 429s and 500s), each zoom day has exactly one live
meeting and its join link on the day in catalog, the outboxes are drained and nothing was
dead-lettered.
"""

from __future__ import annotations

import asyncio
import re

import pytest

from te_testing.clock import days_from_now, iso
from te_testing.faults import uid
from te_testing.polling import eventually
from te_testing.system import System, create_event, zoom_company, zoom_day
from tests.faults import support
from tests.faults.support import FaultReport, Ledger

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

ZOOM_DAYS = 12
RATE_LIMITED = 15
DOWN = 15
SLOW = 3
SLOW_MS = 1000  # well inside the bridge's Zoom timeout: slow, but answered


def zoom_calls(metrics: str, status: str) -> float:
    """The bridge's zoom_api_calls_total for one status, over every operation."""
    pattern = rf'zoom_api_calls_total\{{[^}}]*status="{status}"[^}}]*\}} ([0-9.e+]+)'
    return sum(float(v) for v in re.findall(pattern, metrics))


async def test_zoom_429_500_and_slowness_lose_and_double_no_meeting(
    fresh_system: System, fault_report: FaultReport
) -> None:
    system, report = fresh_system, fault_report
    company = "faults-zoom"
    admin = system.admin(company)
    ledger = Ledger()
    async with (
        system.client(system.catalog, admin) as cat,
        system.client(system.sim) as sim,
        system.client(system.bridge) as bridge,
    ):
        account_id = await zoom_company(system, company)
        event = await create_event(
            system,
            company,
            title="Storm",
            dated=True,
            requires_approval=False,
            sessions=[{"name": "Storm run", "registration_end": iso(days_from_now(2))}],
        )
        session_id = event.session_id

        # the storm is armed before the first day: the first Zoom calls of the stream meet it
        for fault in (
            {"status": 429, "count": RATE_LIMITED, "retry_after": 1, "path_prefix": "/v2/"},
            {"status": 500, "count": DOWN, "path_prefix": "/v2/"},
            {"delay_ms": SLOW_MS, "count": SLOW, "method": "POST", "path_prefix": "/v2/users/"},
        ):
            armed = await sim.post("/_sim/faults", json=fault)
            assert armed.status_code == 200, armed.text
        report.inject(f"Zoom answers 429 (Retry-After: 1) to the next {RATE_LIMITED} API calls")
        report.inject(f"then 500 to the next {DOWN}")
        report.inject(f"then {SLOW} meeting creations each answered {SLOW_MS} ms late")

        slots = asyncio.Semaphore(4)

        async def add_day(n: int) -> None:
            body = zoom_day(days_from_now(4 + n, 9), days_from_now(4 + n, 10), account_id)
            async with slots:
                await ledger.add_day(cat, session_id, body)

        await asyncio.gather(*(add_day(n) for n in range(ZOOM_DAYS)))
        with report.check("every zoom day confirmed") as step:
            assert len(ledger.days_confirmed) == ZOOM_DAYS, ledger.days_refused
            step.detail = f"{ZOOM_DAYS} of {ZOOM_DAYS} (catalog does not wait for Zoom)"

        with report.check("every injected fault was hit") as step:
            await eventually(
                lambda: sim.get("/_sim/faults"),
                lambda r: r.json()["faults"] == [],
                timeout=90,
                what="the simulator's fault counters at 0",
            )

            async def faulted_calls() -> list[int]:
                calls = (await sim.get("/_sim/calls")).json()
                return [c["status"] for c in calls if c["faulted"]]

            # a slow call is logged once it is answered
            faulted = await eventually(
                faulted_calls,
                lambda got: len(got) == RATE_LIMITED + DOWN + SLOW,
                what="every faulted call answered",
            )
            assert faulted.count(429) == RATE_LIMITED, faulted
            assert faulted.count(500) == DOWN, faulted
            slow = [s for s in faulted if s not in (429, 500)]
            assert all(200 <= s < 300 for s in slow), slow
            metrics = (await bridge.get("/metrics")).text
            seen_429, seen_500 = zoom_calls(metrics, "429"), zoom_calls(metrics, "500")
            assert seen_429 >= RATE_LIMITED, metrics
            assert seen_500 >= DOWN, metrics
            step.detail = (
                f"simulator: {faulted.count(429)} x 429, {faulted.count(500)} x 500, "
                f"{len(slow)} slow (answered {slow}); bridge metrics: "
                f"{seen_429:.0f} x 429, {seen_500:.0f} x 500"
            )

        zoom_day_ids = {uid(i) for i in ledger.days_confirmed.values()}
        await support.one_meeting_per_zoom_day(system, report, company, event.id, zoom_day_ids)
        await support.drained(system, report)
