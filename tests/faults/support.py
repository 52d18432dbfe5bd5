"""What every fault test checks afterwards (the tools they share with the soak, ``bench/soak.py``,
are the kit's: ``te_testing.faults``).

A fault test drives a stream of changes through the API (days and sign-ups), records every answer
in a :class:`Ledger`, injects its faults at points tied to the stream's progress
(:class:`Milestone`), then proves with :func:`everything_arrived` that every change the API
confirmed reached every service that needs it, once. :class:`FaultReport` keeps the table of what
was injected and checked; ``tests/faults/conftest.py`` prints it in pytest's terminal summary,
also when a check fails (the failing check is the last row).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx

from te_testing.faults import SEAT_HOLDING, dead_lettered, instant, rows, uid, until_answered
from te_testing.polling import eventually
from te_testing.processes import ServiceProcess
from te_testing.system import System, zoom_account_known

# --- the table ---------------------------------------------------------------------------------


def _short(exc: BaseException) -> str:
    first = (str(exc) or type(exc).__name__).strip().splitlines()[0]
    return f"{type(exc).__name__}: {first[:200]}"


@dataclass
class Step:
    detail: str = ""


@dataclass
class FaultReport:
    """What a fault test injected and what it checked, in order; shown in the terminal summary."""

    injected: list[str] = field(default_factory=list)
    checked: list[tuple[str, str, str]] = field(default_factory=list)  # (outcome, check, detail)

    def inject(self, what: str) -> None:
        self.injected.append(what)

    @contextlib.contextmanager
    def check(self, name: str) -> Iterator[Step]:
        """``with report.check("no overbooking") as step: ...; step.detail = "..."``: the row is
        ``ok`` when the block completes and ``FAILED`` (with the error) when it raises."""
        step = Step()
        try:
            yield step
        except BaseException as exc:
            self.checked.append(("FAILED", name, _short(exc)))
            raise
        self.checked.append(("ok", name, step.detail))

    def lines(self) -> list[str]:
        out = ["faults injected:"]
        out += [f"  - {line}" for line in self.injected] or ["  (none)"]
        out.append("checked:")
        width = max((len(c) for _, c, _ in self.checked), default=0)
        out += [f"  {o:<6}  {c:<{width}}  {d}" for o, c, d in self.checked] or ["  (nothing)"]
        return out


# --- faults tied to the stream's progress ------------------------------------------------------


@dataclass
class Milestone:
    """Kill a process once ``after`` requests of a stream are answered. The stream's requests
    from ``hold_from`` on are sent only after the kill, so the restarted process answers them;
    those in between may be in flight when the process dies."""

    stream: str
    total: int
    after: int
    hold_from: int
    answered: int = 0
    at_kill: int | None = None
    at_restart: int | None = None
    reached: asyncio.Event = field(default_factory=asyncio.Event)
    killed: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        assert 0 < self.after < self.hold_from < self.total

    async def hold(self, index: int) -> None:
        if index >= self.hold_from:
            await self.killed.wait()

    def answer(self) -> None:
        self.answered += 1
        if self.answered >= self.after:
            self.reached.set()

    async def inject(
        self,
        report: FaultReport,
        what: str,
        stop: Callable[[], Awaitable[None]],
        start: Callable[[], Awaitable[None]],
        timeout: float = 90,
    ) -> None:
        """Once ``after`` requests are answered: ``stop``, let the held requests go, ``start``."""
        await asyncio.wait_for(self.reached.wait(), timeout)
        self.at_kill = self.answered
        await stop()
        self.killed.set()
        await start()
        self.at_restart = self.answered
        report.inject(f"{what} after {self.at_kill} of {self.total} {self.stream} answered")

    async def kill_and_restart(self, proc: ServiceProcess, report: FaultReport) -> None:
        async def kill() -> None:
            proc.kill()  # SIGKILL: no shutdown, no flush

        await self.inject(report, f"kill -9 {proc.module}", kill, proc.start)

    def landed_mid_stream(self, report: FaultReport) -> None:
        with report.check(f"fault landed mid-stream ({self.stream})") as step:
            assert self.at_kill is not None, "never killed"
            assert self.at_restart is not None
            assert 0 < self.at_kill < self.total, self.at_kill
            after = self.answered - self.at_restart
            assert after > 0, "nothing answered by the restarted process"
            step.detail = f"{self.at_kill} answered before the fault, {after} after the restart"


# --- the stream and what the API answered ------------------------------------------------------


def is_overlap(response: httpx.Response) -> bool:
    """R-DAY-6's refusal (409, or 422 naming the field) with the ``days_overlap`` code."""
    if response.status_code not in (409, 422):
        return False
    body = response.json()
    codes = {body.get("code")} | {e.get("code") for e in body.get("errors") or []}
    return "days_overlap" in codes


@dataclass
class Ledger:
    """Every request of the stream and the API's answer to it."""

    #: (session id, start) of every day requested -> its format
    days_requested: dict[tuple[str, dt.datetime], str] = field(default_factory=dict)
    #: -> the id the API confirmed (201)
    days_confirmed: dict[tuple[str, dt.datetime], str] = field(default_factory=dict)
    #: committed, but the answer was lost with the process: the retry is refused as an overlap
    #: with the very day it had created
    days_answer_lost: set[tuple[str, dt.datetime]] = field(default_factory=set)
    days_refused: dict[tuple[str, dt.datetime], str] = field(default_factory=dict)
    signed_up: dict[str, str] = field(default_factory=dict)  # user -> enrollment id
    on_retry: list[str] = field(default_factory=list)  # 200: committed, answer lost, retried
    signups_refused: dict[str, str] = field(default_factory=dict)  # user -> code

    async def add_day(self, cat: httpx.AsyncClient, session_id: str, body: dict[str, Any]) -> None:
        key = (session_id, instant(body["start"]))
        self.days_requested[key] = body["format"]
        answer = await until_answered(
            lambda: eventually(
                lambda: cat.post(f"/v1/sessions/{session_id}/days", json=body),
                zoom_account_known,
                what="the Zoom account known to catalog",
            )
        )
        response = answer.response
        if response.status_code == 201:
            self.days_confirmed[key] = response.json()["id"]
        elif answer.retries and is_overlap(response):
            self.days_answer_lost.add(key)
        else:
            self.days_refused[key] = f"{response.status_code} {response.text[:200]}"

    async def sign_up(self, system: System, company: str, user: str, session_id: str) -> None:
        async with system.client(system.registration, system.user(company, user)) as me:
            answer = await until_answered(lambda: me.post(f"/v1/sessions/{session_id}/enrollments"))
        response = answer.response
        if response.status_code == 201 or (response.status_code == 200 and answer.retries):
            self.signed_up[user] = response.json()["id"]
            if response.status_code == 200:
                self.on_retry.append(user)
        else:
            self.signups_refused[user] = str(response.json().get("code", response.status_code))

    @property
    def zoom_days(self) -> int:
        return sum(1 for f in self.days_requested.values() if f == "zoom")


# --- the checks --------------------------------------------------------------------------------


async def catalog_days(system: System, company: str, event_id: str) -> list[dict[str, Any]]:
    async with system.client(system.catalog, system.admin(company)) as cat:
        response = await cat.get(f"/v1/events/{event_id}")
    assert response.status_code == 200, response.text
    return [d for s in response.json()["sessions"] for d in s["days"]]


async def one_meeting_per_zoom_day(
    system: System, report: FaultReport, company: str, event_id: str, zoom_day_ids: set[str]
) -> None:
    """R-ZOOM-3, R-ZOOM-8: exactly one live meeting per zoom day at Zoom, recognised by the
    day in its agenda, and its join link on the day in catalog."""
    with report.check("one Zoom meeting per zoom day") as step:
        async with system.client(system.sim) as sim:

            async def live() -> dict[str, list[dict[str, Any]]]:
                by_day: dict[str, list[dict[str, Any]]] = {}
                for meeting in (await sim.get("/_sim/meetings")).json():
                    if not meeting["deleted"]:
                        day = str(meeting.get("agenda") or "").removeprefix("day:")
                        by_day.setdefault(day, []).append(meeting)
                return by_day

            by_day = await eventually(
                live,
                lambda got: zoom_day_ids <= set(got),
                timeout=120,
                what="a meeting for every zoom day",
            )
            all_meetings = (await sim.get("/_sim/meetings")).json()
        doubled = {d: len(m) for d, m in by_day.items() if len(m) > 1}
        assert not doubled, f"zoom days with two live meetings: {doubled}"
        strays = set(by_day) - zoom_day_ids
        assert not strays, f"live meetings for no zoom day of the event: {strays}"
        orphans = sum(1 for m in all_meetings if m["deleted"])
        step.detail = f"{len(zoom_day_ids)} zoom days, {len(zoom_day_ids)} live meetings"
        if orphans:
            step.detail += f" ({orphans} duplicate(s) created and deleted again)"

    with report.check("join links in catalog") as step:

        async def links() -> dict[str, tuple[str | None, str | None]]:
            return {
                d["id"]: (
                    (d["zoom"].get("meeting") or {}).get("status"),
                    (d["zoom"].get("meeting") or {}).get("join_url"),
                )
                for d in await catalog_days(system, company, event_id)
                if d["format"] == "zoom"
            }

        expected = {day: ("created", by_day[day][0]["join_url"]) for day in zoom_day_ids}
        await eventually(links, lambda got: got == expected, timeout=120, what="join links")
        step.detail = f"{len(expected)} days show their meeting's join link"


async def everything_arrived(
    system: System,
    report: FaultReport,
    company: str,
    event_id: str,
    ledger: Ledger,
    limit: int,
) -> None:
    """The checks after a fault (R-ERR-2, R-ERR-3, R-ENR-6); each is a row of the report and the
    first failure raises."""
    reg_db, bridge_db = system.databases["registration"], system.databases["bridge"]
    with report.check("no overbooking, no double seat") as step:
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
        step.detail = f"{sum(t for _, t, _ in seats)} seats taken, limit {limit} per session"

    with report.check("every confirmed sign-up stored once") as step:
        enrollments = await rows(
            reg_db, "SELECT id, user_id FROM enrollment WHERE event_id = :e", e=event_id
        )
        assert len({u for _, u in enrollments}) == len(enrollments), "a user enrolled twice"
        stored = {uid(i) for i, _ in enrollments}
        lost = {u: i for u, i in ledger.signed_up.items() if uid(i) not in stored}
        assert not lost, f"confirmed sign-ups not stored: {lost}"
        unconfirmed = stored - {uid(i) for i in ledger.signed_up.values()}
        assert not unconfirmed, f"stored sign-ups the API never confirmed: {unconfirmed}"
        step.detail = f"{len(ledger.signed_up)} confirmed ({len(ledger.on_retry)} on a retry)"

    with report.check("enrollment changes reached zoom-bridge") as step:

        async def bridge_enrollments() -> set[str]:
            found = await rows(
                bridge_db, "SELECT enrollment_id FROM enrollments WHERE event_id = :e", e=event_id
            )
            return {uid(r[0]) for r in found}

        await eventually(
            bridge_enrollments,
            lambda got: got == stored,
            timeout=90,
            what="every enrollment reached zoom-bridge",
        )
        step.detail = f"{len(stored)}"

    with report.check("every requested day in catalog exactly once") as step:
        assert not ledger.days_refused, f"days refused: {ledger.days_refused}"
        days = await catalog_days(system, company, event_id)
        found: dict[tuple[str, dt.datetime], list[str]] = {}
        for day in days:
            found.setdefault((day["session_id"], instant(day["start"])), []).append(day["id"])
        missing = set(ledger.days_requested) - set(found)
        assert not missing, f"requested days not in catalog: {sorted(missing)}"
        doubled = {k: v for k, v in found.items() if len(v) > 1}
        assert not doubled, f"days stored twice: {doubled}"
        extra = set(found) - set(ledger.days_requested)
        assert not extra, f"days in catalog nobody requested: {extra}"
        wrong = {k: i for k, i in ledger.days_confirmed.items() if found[k] != [i]}
        assert not wrong, f"confirmed ids that are not the stored day: {wrong}"
        catalog_ids = {uid(v[0]) for v in found.values()}
        step.detail = (
            f"{len(ledger.days_requested)} requested, {len(ledger.days_confirmed)} confirmed, "
            f"{len(ledger.days_answer_lost)} committed with the answer lost (retry refused as "
            "an overlap with itself)"
        )

    with report.check("every day in registration exactly once") as step:

        async def replica_days() -> list[str]:
            found = await rows(
                reg_db,
                "SELECT day_id FROM day_replica WHERE event_id = :e AND NOT deleted",
                e=event_id,
            )
            return sorted(uid(r[0]) for r in found)

        await eventually(
            replica_days,
            lambda got: got == sorted(catalog_ids),
            timeout=90,
            what="every day reached registration",
        )
        step.detail = f"{len(catalog_ids)} days"

    zoom_ids = {uid(d["id"]) for d in days if d["format"] == "zoom"}
    assert len(zoom_ids) == ledger.zoom_days
    if zoom_ids:
        await one_meeting_per_zoom_day(system, report, company, event_id, zoom_ids)

    await drained(system, report)


async def drained(system: System, report: FaultReport) -> None:
    with report.check("outboxes drained") as step:
        for name, db in system.databases.items():
            await eventually(
                functools.partial(rows, db, "SELECT count(*) FROM outbox WHERE sent_at IS NULL"),
                lambda r: r[0][0] == 0,
                timeout=90,
                what=f"{name} outbox drained",
            )
        step.detail = ", ".join(system.databases)
    with report.check("dead-letter queues empty") as step:
        assert await dead_lettered(system) == 0, "something was dead-lettered"
        step.detail = "all services"
