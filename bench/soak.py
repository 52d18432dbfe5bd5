"""`make soak`: a bounded soak over the real processes, with random faults (issue "Storms").

For ``SOAK_SECONDS`` (600 by default) a steady mixed load runs against zoom-sim, catalog,
registration, zoom-bridge and integrations, started as `make run` starts them (``bench.system``:
production timing, fresh databases, a RabbitMQ namespace of their own):

- members sign up for and withdraw from sessions of small participant limits (the limit is hit);
- an admin imports CSV files through the real import endpoint, naming users by id and by e-mails
  never seen before;
- an admin moves days (their time on the same date), zoom days among them;
- Zoom sends signed participant webhooks for the meetings the bridge created;
- Zoom's cloud recordings of meetings that ran complete (zoom days record to the cloud), and a
  host trashes one recording's files and recovers them 0-3 s later, recovers what is in the
  trash, deletes files for good, or selects several meetings' recordings in Zoom's web portal
  and trashes, recovers or deletes them at once; one change in four reaches the bridge 1-5 s
  late, after later ones, as Zoom's deliveries do;
- a host deletes a day's meeting at Zoom by mistake (a day without recordings) and recovers it
  from Zoom's trash 0-3 s later, every other time while Zoom's daily limit holds the new
  meeting back;
- integrations delivers every enrollment change to a webhook receiver in this process.

Every request goes out with an ``Idempotency-Key`` and is retried through outages as the fault
tests' clients retry (``te_testing.faults.until_answered``); every answer goes into the ledger.
Meanwhile faults are injected every 20-60 s, drawn from a seed printed at the start
(``SOAK_SEED`` replays the schedule): ``kill -9`` of a random service process (restarted at
once), RabbitMQ stopped for a few seconds, PostgreSQL restarted, a burst of Zoom 429s or 500s.

At the end the invariants are checked against the ledger and every service's database and
printed as a table: every confirmed change reached every service, nothing is twice in effect,
no session is over its limit, every zoom day shows the recording files Zoom holds for its
meeting (none in the trash or deleted), the outboxes are drained and the dead-letter queues are
empty. The exit status is 1 when one fails. RabbitMQ and PostgreSQL are left running, also on a
failure or Ctrl-C. Not part of `make test`.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import itertools
import json
import os
import random
import signal
import sys
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import AMQP_URL, POSTGRES_URL  # noqa: E402
from bench.system import COMPANY_SETTINGS, bench_system, token  # noqa: E402
from bench.webhook_ingest import signed, webhook  # noqa: E402
from te_testing.api import auth  # noqa: E402
from te_testing.clock import days_from_now, iso  # noqa: E402
from te_testing.faults import (  # noqa: E402
    PG_RESTART,
    RABBIT_STOP,
    SEAT_HOLDING,
    dead_lettered,
    infrastructure_up,
    instant,
    rows,
    sh,
    uid,
    until_answered,
)
from te_testing.polling import eventually  # noqa: E402
from te_testing.processes import ServiceProcess  # noqa: E402
from te_testing.system import (  # noqa: E402
    BuiltEvent,
    System,
    active_event,
    offline_day,
    zoom_account_known,
    zoom_company,
    zoom_day,
)
from te_testing.webhooks import WebhookReceiver  # noqa: E402

COMPANY = "soak"
EVENTS = 3
SESSIONS = 3  # per event, each with a zoom day and a day in a room
LIMITS = (3, 8)  # the participant limit of a session members sign up for, drawn from this range
#: the limit of each event's last session, which only imports fill (members take every free
#: seat of theirs within a second, so an import would never find one)
IMPORT_LIMITS = (15, 25)
MEMBERS = 120  # users who sign up and withdraw themselves
MEMBER_WORKERS = 6
SERVICES = ("catalog", "registration", "bridge", "integrations")
GAP = (20.0, 60.0)  # seconds between two faults
SETTLE = 180.0  # seconds the checks wait for what is still on its way
#: zoom days whose meetings' cloud recordings complete and move (``Soak.record_once``)
RECORDED_DAYS = 4
#: recording files deletions leave at Zoom at least (a long soak still has some to move)
KEEP_FILES = 4
#: the share of recording changes Zoom notifies 1-5 s late (after later ones)
HELD_BACK = 1 / 4
#: what a host's action on recordings makes of the files it takes, by their status
RECORDING_ACTIONS: dict[str, tuple[tuple[str, ...], str]] = {
    "trash": (("completed",), "trashed"),
    "recover": (("trashed",), "completed"),
    "delete": (("completed", "trashed"), "deleted"),
}
#: the Zoom webhooks the soak itself sends (SQL)
PARTICIPANT_EVENTS = (
    "('meeting.participant_joined', 'meeting.participant_left',"
    " 'meeting.participant_joined_breakout_room', 'meeting.participant_left_breakout_room')"
)


# --- the faults ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fault:
    #: seconds after the load started
    at: float
    kind: str  # kill | rabbit | postgres | zoom
    #: the service killed, or the status of a Zoom burst
    target: str = ""
    #: the seconds RabbitMQ stays stopped, or the Zoom API calls a burst answers
    size: int = 0

    def describe(self) -> str:
        if self.kind == "kill":
            return f"kill -9 {self.target}"
        if self.kind == "rabbit":
            return f"RabbitMQ stopped for {self.size} s"
        if self.kind == "postgres":
            return "PostgreSQL restarted"
        return f"Zoom answers {self.target} to the next {self.size} API calls"


KIND_NAMES = {
    "kill": "kill -9",
    "rabbit": "RabbitMQ",
    "postgres": "PostgreSQL",
    "zoom": "Zoom bursts",
}


def schedule(seed: int, seconds: float) -> list[Fault]:
    """The faults of a soak of ``seconds``: one every 20-60 s, each drawn at random from
    ``seed`` (the same seed, the same schedule). A kill is twice as likely as each other kind:
    there are four services to kill."""
    rng = random.Random(seed)
    faults: list[Fault] = []
    at = rng.uniform(*GAP)
    while at < seconds:
        kind = rng.choice(("kill", "kill", "rabbit", "postgres", "zoom"))
        if kind == "kill":
            faults.append(Fault(at, kind, rng.choice(SERVICES)))
        elif kind == "rabbit":
            faults.append(Fault(at, kind, size=rng.randint(3, 15)))
        elif kind == "zoom":
            faults.append(Fault(at, kind, rng.choice(("429", "500")), rng.randint(5, 25)))
        else:
            faults.append(Fault(at, kind))
        at += rng.uniform(*GAP)
    return faults


def tally(faults: Iterable[Fault]) -> str:
    """``14 faults (5 kill -9, 3 RabbitMQ, 3 PostgreSQL, 3 Zoom bursts)``."""
    done = list(faults)
    counts = Counter(f.kind for f in done)
    parts = ", ".join(f"{counts[k]} {name}" for k, name in KIND_NAMES.items())
    return f"{len(done)} faults ({parts})"


# --- the ledger: every request and its answer ------------------------------------------------


@dataclass
class Enrollment:
    id: str
    user: str
    event: str
    session: str
    #: the API confirmed the withdrawal (or its retry found it done)
    cancelled: bool = False


@dataclass
class Day:
    id: str
    event: str
    session: str
    format: str
    #: the last (start, end) the API confirmed
    start: dt.datetime
    end: dt.datetime


@dataclass
class RecordingFile:
    """A file of a meeting's cloud recording at Zoom, as the soak last moved it."""

    id: str
    meeting: str
    day: str
    #: its play link's path (``/rec/play/<token>``): catalog shows the link, not the id
    path: str
    status: str = "completed"  # completed | trashed | deleted


class Unanswered(Exception):
    """A request that got no answer through every retry (minutes of outage)."""


@dataclass
class Ledger:
    requests: int = 0
    #: requests answered only after retries (a process, the database or the broker was down)
    retried: int = 0
    #: "<what> <status> <code>" -> how many
    answers: Counter[str] = field(default_factory=Counter)
    #: answers no rule explains (e.g. a 422 for a valid request)
    unexpected: list[str] = field(default_factory=list)
    #: requests that never got an answer
    unanswered: list[str] = field(default_factory=list)
    enrollments: dict[str, Enrollment] = field(default_factory=dict)
    #: (user, event) -> the id of the user's live enrollment in the event
    live: dict[tuple[str, str], str] = field(default_factory=dict)
    #: (user, event) whose enrollment can no longer be withdrawn (e.g. participated)
    stuck: set[tuple[str, str]] = field(default_factory=set)
    #: (event, person) -> session: imported (the person is a user id or an e-mail)
    imported: dict[tuple[str, str], str] = field(default_factory=dict)
    days: dict[str, Day] = field(default_factory=dict)
    #: webhook bodies the bridge accepted
    webhooks: set[bytes] = field(default_factory=set)
    #: Zoom meetings a host deleted at Zoom and recovered from the trash
    recovered: set[str] = field(default_factory=set)
    #: how many a host deleted at Zoom and then for good out of the trash
    purged: int = 0
    #: Zoom meetings attendees joined and left (``attend_once``): meetings that ran
    attended: set[str] = field(default_factory=set)
    #: days whose meeting a host deleted at Zoom (``host_once``): never recorded
    hosted: set[str] = field(default_factory=set)
    #: day -> its meeting whose cloud recording completes and moves (``record_once``); the
    #: host who deletes meetings leaves these days alone
    recorded: dict[str, str] = field(default_factory=dict)
    #: file id -> the recording file
    files: dict[str, RecordingFile] = field(default_factory=dict)
    #: a recording's uuid (the instance recorded; bulk notifications name it) -> its meeting
    recording_uuids: dict[str, str] = field(default_factory=dict)
    #: what happened to recordings at Zoom ("completed", "trashed", "recovered", "deleted",
    #: "bulk trash", "bulk recover", "bulk delete") -> how many times
    recording_moves: Counter[str] = field(default_factory=Counter)
    #: the longest a request waited for its answer (retries included), and which
    slowest: tuple[float, str] = (0.0, "")

    def took(self, seconds: float, what: str) -> None:
        if seconds > self.slowest[0]:
            self.slowest = (seconds, what)

    def record(self, what: str, answer: httpx.Response, retries: int, expected: bool) -> None:
        self.requests += 1
        self.retried += retries > 0
        code = code_of(answer)
        key = f"{what} {answer.status_code}{' ' + code if code else ''}"
        self.answers[key] += 1
        if not expected:
            self.unexpected.append(f"{key}: {answer.text[:300]}")


def code_of(response: httpx.Response) -> str:
    if response.status_code < 400:
        return ""
    with contextlib.suppress(ValueError, AttributeError):
        return str(response.json().get("code") or "")
    return ""


# --- the load --------------------------------------------------------------------------------


@dataclass
class Soak:
    system: System
    seed: int
    seconds: float
    ledger: Ledger = field(default_factory=Ledger)
    events: list[BuiltEvent] = field(default_factory=list)
    #: session id -> its name (imports name sessions)
    session_names: dict[str, str] = field(default_factory=dict)
    account_id: str = ""
    tokens: dict[str, str] = field(default_factory=dict)
    busy: set[str] = field(default_factory=set)
    faults_done: list[Fault] = field(default_factory=list)
    #: processes this soak killed (their exit is no finding)
    killed: Counter[str] = field(default_factory=Counter)
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    imports: int = 0
    receiver: WebhookReceiver = field(default_factory=WebhookReceiver)

    def user_token(self, user: str) -> str:
        if user not in self.tokens:
            self.tokens[user] = token("user", COMPANY, user, f"{user}@{COMPANY}.io")
        return self.tokens[user]

    @property
    def admin(self) -> str:
        return token("admin", COMPANY, "admin-1", f"admin-1@{COMPANY}.io")

    async def send(
        self, proc: ServiceProcess, method: str, path: str, who: str, **kwargs: Any
    ) -> tuple[httpx.Response, int]:
        """One request with an Idempotency-Key, retried through outages (and while its first
        try still runs at the service) until it is answered; the answer and the retries."""
        headers = {**auth(who), "Idempotency-Key": uuid.uuid4().hex, **kwargs.pop("headers", {})}
        retries = 0
        began = time.monotonic()
        async with httpx.AsyncClient(base_url=proc.url, timeout=30) as client:
            for _ in range(100):
                try:
                    answer = await until_answered(
                        lambda: client.request(method, path, headers=headers, **kwargs)
                    )
                except AssertionError:
                    raise Unanswered(f"{method} {proc.module}{path}") from None
                retries += answer.retries
                if code_of(answer.response) != "idempotency_key_in_use":
                    self.ledger.took(time.monotonic() - began, f"{method} {proc.module}{path}")
                    return answer.response, retries
                retries += 1
                await asyncio.sleep(1)
        raise Unanswered(f"{method} {proc.module}{path} (its key stayed in use)")

    async def attempt(self, what: str, action: Awaitable[None]) -> None:
        """One step of a worker; a request never answered, or an answer the step could not
        read, is written down and the worker goes on."""
        try:
            await action
        except Unanswered as exc:
            self.ledger.unanswered.append(str(exc))
        except Exception as exc:
            self.ledger.unexpected.append(f"{what}: {exc!r}"[:300])

    # the members -----------------------------------------------------------------------------

    async def member(self, rng: random.Random, users: list[str]) -> None:
        while not self.stopping.is_set():
            held = [u for u, _ in self.ledger.live if u not in self.busy]
            # a seat holder now and then, so seats free up and change hands
            user = rng.choice(held) if held and rng.random() < 0.3 else rng.choice(users)
            if user in self.busy:
                await asyncio.sleep(0.01)
                continue
            self.busy.add(user)
            try:
                theirs = [e for e in self.events if (user, e.id) in self.ledger.live]
                event = rng.choice(theirs if theirs and rng.random() < 0.7 else self.events)
                key = (user, event.id)
                live = self.ledger.live.get(key)
                if key in self.ledger.stuck:
                    pass
                elif live is not None and rng.random() < 0.8:
                    await self.attempt("cancel", self.cancel(user, self.ledger.enrollments[live]))
                else:  # or a second sign-up in the event: refused, or the one they hold
                    session_id = rng.choice(self.open_to_members(event))
                    await self.attempt("sign-up", self.sign_up(user, event, session_id))
            finally:
                self.busy.discard(user)
            await asyncio.sleep(rng.uniform(0.1, 0.8))

    @staticmethod
    def open_to_members(event: BuiltEvent) -> list[str]:
        return list(event.sessions.values())[:-1]

    async def sign_up(self, user: str, event: BuiltEvent, session_id: str) -> None:
        path = f"/v1/sessions/{session_id}/enrollments"
        response, retries = await self.send(
            self.system.registration, "POST", path, self.user_token(user)
        )
        code = code_of(response)
        key = (user, event.id)
        held = self.ledger.live.get(key)
        ok = response.status_code in (200, 201)
        expected = (
            (response.status_code == 201 and held is None)
            or (response.status_code == 200 and (retries > 0 or held == uid(response.json()["id"])))
            or (response.status_code == 409 and code == "session_full")
            or (response.status_code == 409 and code == "already_enrolled" and held is not None)
        )
        self.ledger.record("sign-up", response, retries, expected)
        if ok:
            enrollment_id = uid(response.json()["id"])
            self.ledger.enrollments.setdefault(
                enrollment_id, Enrollment(enrollment_id, user, event.id, session_id)
            )
            self.ledger.live[key] = enrollment_id

    async def cancel(self, user: str, enrollment: Enrollment) -> None:
        path = f"/v1/enrollments/{enrollment.id}/cancel"
        response, retries = await self.send(
            self.system.registration, "POST", path, self.user_token(user)
        )
        key = (user, enrollment.event)
        came_from = ""
        if response.status_code == 409:
            with contextlib.suppress(ValueError):
                came_from = str(response.json().get("from") or "")
        if response.status_code == 200 or (came_from == "cancelled" and retries > 0):
            # done, or done by a try whose answer was lost (its key's record with it)
            enrollment.cancelled = True
            self.ledger.live.pop(key, None)
            self.ledger.record("cancel", response, retries, True)
        elif response.status_code == 409 and came_from not in ("", "cancelled"):
            self.ledger.stuck.add(key)  # participated (a Zoom webhook), no longer withdrawable
            self.ledger.record("cancel", response, retries, True)
        else:
            self.ledger.record("cancel", response, retries, False)

    # the admin -------------------------------------------------------------------------------

    async def import_once(self, rng: random.Random) -> None:
        """A CSV now and then: people by user id (who never sign up themselves) and by new
        e-mails, for the session of the event with the most seats left."""
        event = rng.choice(self.events)
        left: dict[str, int] = {}
        for session_id in event.sessions.values():
            seats, _ = await self.send(
                self.system.registration, "GET", f"/v1/sessions/{session_id}/seats", self.admin
            )
            left[session_id] = int(seats.json()["left"] or 0)
        session_id = max(left, key=lambda s: left[s])
        people: list[tuple[str, str]] = []
        for _ in range(rng.randint(1, 3)):
            self.imports += 1
            n = self.imports
            people.append((f"imp-{n:04d}", "") if n % 2 else ("", f"new-{n:04d}@fresh.example"))
        name = self.session_names[session_id]
        csv = "user_id,email,session\n" + "".join(f"{u},{e},{name}\n" for u, e in people)
        response, retries = await self.send(
            self.system.registration,
            "POST",
            f"/v1/events/{event.id}/enrollments/import",
            self.admin,
            files={"file": ("soak.csv", csv.encode(), "text/csv")},
            # a boundary of its own, the same on every retry: the key stands for these bytes
            headers={"Content-Type": f"multipart/form-data; boundary={uuid.uuid4().hex}"},
        )
        code = code_of(response)
        full = code == "session_full" or (code == "import_invalid" and "free seat" in response.text)
        self.ledger.record("import", response, retries, response.status_code == 200 or full)
        if response.status_code == 200:
            for user, email in people:
                self.ledger.imported[(event.id, user or email)] = session_id

    async def move_once(self, rng: random.Random) -> None:
        """Days moved to another hour of their date."""
        day = rng.choice(list(self.ledger.days.values()))
        hour = rng.choice([h for h in range(8, 17) if h != day.start.hour])
        start = day.start.replace(hour=hour)
        end = start + dt.timedelta(hours=1)
        body = {"start": iso(start), "end": iso(end)}
        tries: list[int] = []

        async def patch(
            day: Day = day, body: dict[str, Any] = body, tries: list[int] = tries
        ) -> httpx.Response:
            # a key of its own per try: a refusal is kept with its key and replayed
            response, retries = await self.send(
                self.system.catalog, "PATCH", f"/v1/days/{day.id}", self.admin, json=body
            )
            tries.append(retries)
            return response

        # the zoom account may be unknown to catalog for a moment after a restart
        response = await eventually(patch, zoom_account_known, what="the Zoom account known")
        self.ledger.record("day move", response, sum(tries), response.status_code == 200)
        if response.status_code == 200:
            day.start, day.end = start, end

    async def attend_once(self, rng: random.Random) -> None:
        """Zoom's participant webhooks for a meeting the bridge created: a seat holder of the
        day's session joins and leaves, and one in three spends a while in a breakout room
        meanwhile."""
        async with httpx.AsyncClient(base_url=self.system.sim.url, timeout=30) as sim:
            listed = (await sim.get("/_sim/meetings")).json()
        meetings = {
            uid(str(m["agenda"]).removeprefix("day:")): m
            for m in listed
            if not m["deleted"] and str(m.get("agenda") or "").startswith("day:")
        }
        candidates = [
            (e, d, meetings[d.id])
            for e in self.ledger.enrollments.values()
            if not e.cancelled
            for d in self.ledger.days.values()
            if d.session == e.session and d.id in meetings
        ]
        if not candidates:
            return
        enrollment, day, meeting = rng.choice(candidates)
        stay = uuid.uuid4().hex[:12]
        joined = day.start + dt.timedelta(minutes=rng.randint(0, 20))
        left = joined + dt.timedelta(minutes=rng.randint(5, 30))
        email = f"{enrollment.user}@{COMPANY}.io"
        for event, when in (
            ("meeting.participant_joined", joined),
            ("meeting.participant_left", left),
        ):
            await self.post_webhook(webhook(event, meeting, enrollment.user, stay, when, email))
        self.ledger.attended.add(str(meeting["id"]))
        if rng.random() < 1 / 3:
            room = f"room-{rng.randint(1, 3)}"
            went = joined + (left - joined) / 3
            for event, when in (
                ("meeting.participant_joined_breakout_room", went),
                ("meeting.participant_left_breakout_room", went + (left - joined) / 3),
            ):
                body = webhook(
                    event, meeting, enrollment.user, f"b{stay}", when, email, breakout_room=room
                )
                await self.post_webhook(body)

    async def host_once(self, rng: random.Random) -> None:
        """A host deletes a day's meeting in Zoom's web portal by mistake and recovers it from
        Zoom's trash a moment later: the day takes it back when its new one is not made yet,
        else it stays apart (the bridge's ruling; the check counts it so); one time in four the
        host empties it out of the trash for good instead, and the day has a new one. Every other
        time Zoom's daily limit refuses the next meeting create, which holds the new one back.
        Days with recordings are left alone (see ``record_once``)."""
        async with httpx.AsyncClient(base_url=self.system.sim.url, timeout=30) as sim:
            listed = (await sim.get("/_sim/meetings")).json()
            live = [
                m
                for m in listed
                if not m["deleted"]
                and str(m.get("agenda") or "").startswith("day:")
                and uid(str(m["agenda"]).removeprefix("day:")) not in self.ledger.recorded
            ]
            if not live:
                return
            chosen = rng.choice(live)
            meeting = str(chosen["id"])
            # the day is the host's from now on (before the next await): never recorded
            self.ledger.hosted.add(uid(str(chosen["agenda"]).removeprefix("day:")))
            # one time in four the host empties it out of the trash for good instead; not while
            # Zoom's daily limit would hold the day's new meeting back (an earlier time's refusal
            # may still wait for a create): the day would rightly have no link until 00:00 UTC
            armed = (await sim.get("/_sim/faults")).json()["faults"]
            held = any(f.get("rate_limit_type") == "Daily-limit" for f in armed)
            purge = not held and rng.random() < 1 / 4
            if not purge and rng.random() < 1 / 2:
                daily = {"status": 429, "rate_limit_type": "Daily-limit", "count": 1}
                creates = {"method": "POST", "path": "/v2/users"}
                await sim.post("/_sim/faults", json={**daily, **creates})
            deleted = await sim.post(f"/_sim/meetings/{meeting}/delete")
            if deleted.status_code != 200:
                return
            await asyncio.sleep(rng.uniform(0, 3))  # the load may stop meanwhile: recover anyway
            if purge:  # the day makes a new one
                purged = await sim.post(f"/_sim/meetings/{meeting}/purge")
                assert purged.status_code == 200, purged.text
                self.ledger.purged += 1
                # a meeting recovered before (taken back by its day) is gone for good now
                self.ledger.recovered.discard(meeting)
                return
            recovered = await sim.post(f"/_sim/meetings/{meeting}/recover")
            assert recovered.status_code == 200, recovered.text
        self.ledger.recovered.add(meeting)

    # Recordings are made only on days the host above never touches, and the host never
    # touches a day with a recording (the ruling): the bridge keeps a day's recording files on
    # the day, not on its meeting, so they outlive a meeting deleted, purged or replaced at Zoom
    # (as Zoom keeps a deleted meeting's cloud recordings, and their links still play); and it
    # drops a single recording notification that names a meeting no longer the day's (unknown
    # meeting) while a bulk one still reaches the day through the instance it names. A day
    # whose meeting changed would show files of a meeting that is not its current one, moved by
    # rules that differ by notification. Kept apart, every day's files are its current
    # meeting's live ones, and the check expects exactly those.

    async def record_once(self, rng: random.Random) -> None:
        """Zoom's cloud recordings (R-ZOOM-7) of meetings that ran (``attend_once``), on up to
        ``RECORDED_DAYS`` days the host of ``host_once`` never touched: one time in three (or
        when no file is left to move) a recording completes (``recording.completed``; a meeting
        the simulator never held records its scheduled time, once). Otherwise a host trashes
        one recording's files (one of them or all) and every other time recovers them from the
        trash 0-3 s later, recovers what one recording has in the trash, deletes one file for
        good (mostly one in the trash), or selects several meetings' recordings in Zoom's web
        portal and trashes (every other time recovering them 0-3 s later), recovers or deletes
        them at once (``recording.batch_*``). Deletions stop while ``KEEP_FILES`` are left."""
        async with httpx.AsyncClient(base_url=self.system.sim.url, timeout=30) as sim:
            listed = (await sim.get("/_sim/meetings")).json()
            fresh = self.recordable(listed)
            movable = [f for f in self.ledger.files.values() if f.status != "deleted"]
            if fresh and (rng.random() < 1 / 3 or not movable):
                day, meeting = rng.choice(fresh)
                self.ledger.recorded[day] = meeting  # before the next await: not the host's
                await self.complete_recording(sim, day, meeting)
                return
            if not movable:
                return
            roll = rng.random()
            if roll < 0.35:
                await self.trash_files(sim, rng)
            elif roll < 0.5:
                await self.recover_files(sim, rng)
            elif roll < 0.65:
                await self.delete_file(sim, rng)
            else:
                await self.change_in_bulk(sim, rng)

    def recordable(self, listed: list[dict[str, Any]]) -> list[tuple[str, str]]:
        """(day, meeting) whose recording may complete: the day's one live meeting ran, has no
        recording yet and the day is not the host's; a day not recorded yet only while fewer
        than ``RECORDED_DAYS`` are."""
        ledger = self.ledger
        live: dict[str, list[str]] = {}
        for m in listed:
            agenda = str(m.get("agenda") or "")
            if not m["deleted"] and agenda.startswith("day:"):
                live.setdefault(uid(agenda.removeprefix("day:")), []).append(str(m["id"]))
        with_files = {f.meeting for f in ledger.files.values()}
        room = len(ledger.recorded) < RECORDED_DAYS
        return [
            (day, meeting)
            for day, (meeting, *others) in live.items()
            if not others
            and meeting in ledger.attended
            and meeting not in with_files
            and day not in ledger.hosted
            and (ledger.recorded.get(day) == meeting or (day not in ledger.recorded and room))
        ]

    async def complete_recording(self, sim: httpx.AsyncClient, day: str, meeting: str) -> None:
        """``POST /_sim/meetings/{id}/recording``: the recording completes and Zoom sends
        ``recording.completed``; its files (ids, play links) go into the ledger."""
        done = await sim.post(f"/_sim/meetings/{meeting}/recording", json={})
        assert done.status_code == 200, done.text
        for item in done.json()["recording_files"]:
            file_id = str(item["id"])
            self.ledger.recording_uuids[str(item["meeting_id"])] = meeting
            self.ledger.files.setdefault(
                file_id,
                RecordingFile(file_id, meeting, day, urlsplit(str(item["play_url"])).path),
            )
        self.ledger.recording_moves["completed"] += 1

    def files_by_meeting(self, *statuses: str) -> dict[str, list[RecordingFile]]:
        """Meeting -> its recording files of ``statuses``, for meetings that have any."""
        found: dict[str, list[RecordingFile]] = {}
        for f in self.ledger.files.values():
            if f.status in statuses:
                found.setdefault(f.meeting, []).append(f)
        return found

    def may_delete(self, files: int) -> bool:
        """Whether deleting ``files`` more leaves ``KEEP_FILES`` at Zoom."""
        left = sum(1 for f in self.ledger.files.values() if f.status != "deleted")
        return left - files >= KEEP_FILES

    async def trash_files(self, sim: httpx.AsyncClient, rng: random.Random) -> None:
        """One recording's files (one of them, or all) to the trash; every other time back out
        of it 0-3 s later."""
        completed = self.files_by_meeting("completed")
        if not completed:
            return
        files = completed[rng.choice(sorted(completed))]
        chosen = files if rng.random() < 1 / 2 else [rng.choice(files)]
        await self.change_files(sim, rng, "trash", chosen)
        if rng.random() < 1 / 2:
            await self.moment(rng)
            await self.change_files(sim, rng, "recover", chosen)

    @staticmethod
    async def moment(rng: random.Random) -> None:
        """0-3 s before a host undoes a change (the load may stop meanwhile: undone anyway);
        10 ms at least, so that Zoom's ``event_ts`` (milliseconds) orders the two."""
        await asyncio.sleep(rng.uniform(0.01, 3))

    async def recover_files(self, sim: httpx.AsyncClient, rng: random.Random) -> None:
        """What one recording has in the trash, back out of it."""
        trashed = self.files_by_meeting("trashed")
        if trashed:
            await self.change_files(sim, rng, "recover", trashed[rng.choice(sorted(trashed))])

    async def delete_file(self, sim: httpx.AsyncClient, rng: random.Random) -> None:
        """One file deleted for good: two times in three one in the trash, when there is one."""
        trashed = [f for f in self.ledger.files.values() if f.status == "trashed"]
        completed = [f for f in self.ledger.files.values() if f.status == "completed"]
        pool = trashed if trashed and (rng.random() < 2 / 3 or not completed) else completed
        if pool and self.may_delete(1):
            await self.change_files(sim, rng, "delete", [rng.choice(pool)])

    async def change_files(
        self, sim: httpx.AsyncClient, rng: random.Random, action: str, files: list[RecordingFile]
    ) -> None:
        """``POST /_sim/meetings/{id}/recording/{action}``: the host moves ``files`` (of one
        meeting's recording) in Zoom's web portal, and Zoom sends ``recording.trashed``,
        ``.recovered`` or ``.deleted``."""
        path = f"/_sim/meetings/{files[0].meeting}/recording/{action}"
        await self.sim_change(sim, rng, path, {"file_ids": [f.id for f in files]})
        for f in files:
            f.status = RECORDING_ACTIONS[action][1]
        name = {"trash": "trashed", "recover": "recovered", "delete": "deleted"}[action]
        self.ledger.recording_moves[name] += 1

    async def change_in_bulk(self, sim: httpx.AsyncClient, rng: random.Random) -> None:
        """``POST /_sim/recordings/bulk/{action}``: the host selects two or three meetings'
        recordings (one when only one has files to move) and trashes (every other time
        recovering them 0-3 s later), recovers or deletes them at once; Zoom sends one
        ``recording.batch_trashed``, ``.batch_recovered`` or ``.batch_deleted``. A deletion
        takes the meetings with the fewest files first."""
        action = rng.choice(("trash", "trash", "recover", "delete"))
        movable = self.files_by_meeting(*RECORDING_ACTIONS[action][0])
        if not movable:
            return
        count = rng.randint(min(2, len(movable)), min(3, len(movable)))
        if action == "delete":
            meetings: list[str] = []
            for meeting in sorted(movable, key=lambda m: (len(movable[m]), m)):
                taken = sum(len(movable[m]) for m in meetings) + len(movable[meeting])
                if len(meetings) < count and self.may_delete(taken):
                    meetings.append(meeting)
            if not meetings:
                return
        else:
            meetings = rng.sample(sorted(movable), count)
        await self.bulk(sim, rng, action, meetings)
        if action == "trash" and rng.random() < 1 / 2:
            await self.moment(rng)
            await self.bulk(sim, rng, "recover", meetings)

    async def bulk(
        self, sim: httpx.AsyncClient, rng: random.Random, action: str, meetings: list[str]
    ) -> None:
        path = f"/_sim/recordings/bulk/{action}"
        await self.sim_change(sim, rng, path, {"meeting_ids": meetings})
        taken, becomes = RECORDING_ACTIONS[action]
        for f in self.ledger.files.values():
            if f.meeting in meetings and f.status in taken:
                f.status = becomes
        self.ledger.recording_moves[f"bulk {action}"] += 1

    @staticmethod
    async def sim_change(
        sim: httpx.AsyncClient, rng: random.Random, path: str, body: dict[str, Any]
    ) -> None:
        """A change of recordings at Zoom; its notification held back 1-5 s for a share
        ``HELD_BACK`` of them (``delay_ms``: it then reaches the bridge after later ones).
        Answered 200: the ledger names files in a state the action takes."""
        if rng.random() < HELD_BACK:
            body = {**body, "delay_ms": rng.randint(1000, 5000)}
        changed = await sim.post(path, json=body)
        assert changed.status_code == 200, changed.text

    async def post_webhook(self, body: bytes) -> None:
        async with httpx.AsyncClient(base_url=self.system.bridge.url, timeout=30) as bridge:

            async def send() -> httpx.Response:
                request = signed(body)  # signed at each try: the timestamp must be fresh
                return await bridge.post(
                    request.path, content=request.body, headers=request.headers
                )

            began = time.monotonic()
            try:
                answer = await until_answered(send)
            except AssertionError:
                raise Unanswered("POST zoom_bridge/v1/zoom/webhooks") from None
            self.ledger.took(time.monotonic() - began, "POST zoom_bridge/v1/zoom/webhooks")
        accepted = answer.response.status_code == 200
        self.ledger.record("zoom webhook", answer.response, answer.retries, accepted)
        if accepted:
            self.ledger.webhooks.add(body)

    async def every(
        self,
        rng: random.Random,
        gap: tuple[float, float],
        what: str,
        step: Callable[[random.Random], Awaitable[None]],
    ) -> None:
        """``step`` every ``gap`` seconds (drawn at random) until the load stops."""
        while True:
            await self.pause(rng.uniform(*gap))
            if self.stopping.is_set():
                return
            await self.attempt(what, step(rng))

    async def pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stopping.wait(), seconds)

    # the faults ------------------------------------------------------------------------------

    async def inject(self, faults: list[Fault], started: float) -> None:
        loop = asyncio.get_running_loop()
        for fault in faults:
            await self.pause(started + fault.at - loop.time())
            if self.stopping.is_set():
                return
            at = loop.time()
            await self.apply(fault)
            print(
                f"  {at - started:5.0f} s  {fault.describe()} (back in {loop.time() - at:.1f} s)",
                flush=True,
            )
            self.faults_done.append(fault)

    async def apply(self, fault: Fault) -> None:
        if fault.kind == "kill":
            proc = self.process(fault.target)
            self.killed[fault.target] += 1
            proc.kill()  # SIGKILL: no shutdown, no flush
            await proc.start()
        elif fault.kind == "rabbit":
            await sh(RABBIT_STOP)
            try:
                await asyncio.sleep(fault.size)
            finally:
                await infrastructure_up(AMQP_URL, POSTGRES_URL)
        elif fault.kind == "postgres":
            try:
                await sh(PG_RESTART)
            finally:
                await infrastructure_up(AMQP_URL, POSTGRES_URL)
        else:
            burst: dict[str, Any] = {
                "status": int(fault.target),
                "count": fault.size,
                "path_prefix": "/v2/",
            }
            if fault.target == "429":
                burst["retry_after"] = 1
            async with httpx.AsyncClient(base_url=self.system.sim.url, timeout=30) as sim:
                armed = await sim.post("/_sim/faults", json=burst)
                armed.raise_for_status()

    def process(self, name: str) -> ServiceProcess:
        return self.processes()[name]

    def processes(self) -> dict[str, ServiceProcess]:
        procs = {
            "catalog": self.system.catalog,
            "registration": self.system.registration,
            "bridge": self.system.bridge,
        }
        if self.system.integrations is not None:
            procs["integrations"] = self.system.integrations
        return procs


# --- setting up ------------------------------------------------------------------------------


async def set_up(soak: Soak, rng: random.Random) -> list[str]:
    """Zoom connected, EVENTS active events of SESSIONS limited sessions each (a zoom day and a
    day in a room per session; zoom days record to the cloud), access for the members, a
    webhook endpoint at integrations for enrollment changes; the members' user ids."""
    system = soak.system
    soak.account_id = await zoom_company(system, COMPANY, **COMPANY_SETTINGS)
    members = [f"m{i:03d}" for i in range(MEMBERS)]
    for e in range(EVENTS):
        sessions = []
        for s in range(SESSIONS):
            date = 20 + e * 10 + s * 3
            sessions.append(
                {
                    "name": f"Run {s}",
                    "registration_end": iso(days_from_now(15)),
                    "limit_enabled": True,
                    "participant_limit": rng.randint(
                        *(LIMITS if s < SESSIONS - 1 else IMPORT_LIMITS)
                    ),
                    "days": [
                        zoom_day(
                            days_from_now(date, 9),
                            days_from_now(date, 10),
                            soak.account_id,
                            auto_recording=True,  # Zoom completes cloud recordings only
                        ),
                        offline_day(days_from_now(date + 1, 9), days_from_now(date + 1, 10)),
                    ],
                }
            )
        event = await active_event(
            system,
            COMPANY,
            title=f"Soak {e}",
            dated=True,
            requires_approval=False,
            sessions=sessions,
            access=members,
        )
        soak.events.append(event)
        for name, session_id in event.sessions.items():
            soak.session_names[session_id] = name
            for day in event.days[name]:
                day_id = uid(day["id"])
                soak.ledger.days[day_id] = Day(
                    day_id,
                    event.id,
                    session_id,
                    str(day["format"]),
                    instant(day["start"]),
                    instant(day["end"]),
                )
    await soak.receiver.start()
    assert system.integrations is not None
    async with system.client(system.integrations, soak.admin) as integrations:
        created = await integrations.post(
            "/v1/webhooks/endpoints",
            json={"url": soak.receiver.url("/soak"), "events": ["enrollment.changed"]},
        )
        assert created.status_code == 201, created.text
    return members


# --- the invariants --------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    name: str
    expected: str
    found: str
    ok: bool


def table(rows_: list[Row]) -> str:
    header = ("invariant", "expected", "found", "ok")
    cells = [header] + [(r.name, r.expected, r.found, "ok" if r.ok else "FAILED") for r in rows_]
    widths = [max(len(c[i]) for c in cells) for i in range(4)]
    lines = [
        "| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |"
        for row in cells
    ]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def count_row(name: str, expected: int, found: int, detail: str = "") -> Row:
    """A row of counts; ``detail`` (the first offenders) is cut short to keep the table
    readable (the run prints the unexpected answers in full after it)."""
    detail = detail if len(detail) <= 80 else detail[:77] + "..."
    return Row(
        name, f"{expected:,}", f"{found:,}{' ' + detail if detail else ''}", expected == found
    )


@dataclass(frozen=True)
class Settle:
    """Waits for what is still on its way, all checks together until one deadline (so a run
    with many failures still ends ``SETTLE`` seconds after its checks began)."""

    deadline: float

    async def __call__(self, probe: Callable[[], Awaitable[int]], want: int) -> int:
        """``probe``'s value once it equals ``want``, or its last value at the deadline."""
        left = max(1.0, self.deadline - asyncio.get_running_loop().time())
        with contextlib.suppress(AssertionError):
            return await eventually(probe, lambda n: n == want, timeout=left, interval=1)
        return await probe()


async def check(soak: Soak) -> list[Row]:
    system, ledger = soak.system, soak.ledger
    settle = Settle(asyncio.get_running_loop().time() + SETTLE)
    reg, cat = system.databases["registration"], system.databases["catalog"]
    bridge, integ = system.databases["bridge"], system.databases["integrations"]
    out: list[Row] = []

    out.append(count_row("every request answered", 0, len(ledger.unanswered)))
    out.append(
        count_row(
            "every answer one the rules explain",
            0,
            len(ledger.unexpected),
            "; ".join(ledger.unexpected[:3]),
        )
    )
    stopped = [
        name
        for name, proc in soak.processes().items()
        if proc.process is not None and proc.process.poll() is not None
    ]
    out.append(count_row("no process died on its own", 0, len(stopped), ", ".join(stopped)))

    # first what is still on its way: Zoom's webhooks into attendance, the outboxes
    async def processed() -> int:
        """The participant webhooks the soak sent, processed (Zoom also notifies the bridge's
        own patches and deletions, ``meeting.updated``, ``meeting.deleted``, and the hosts'
        changes of meetings and recordings; counted below)."""
        got = await rows(
            bridge,
            "SELECT count(*) FROM zoom_webhook_events WHERE processed AND NOT failed "
            f"AND event IN {PARTICIPANT_EVENTS}",
        )
        return int(got[0][0])

    async def notifications_left() -> int:
        got = await rows(
            bridge,
            "SELECT count(*) FROM zoom_webhook_events WHERE (failed OR NOT processed) "
            f"AND event NOT IN {PARTICIPANT_EVENTS}",
        )
        return int(got[0][0])

    async def unsent() -> int:
        total = 0
        for db in system.databases.values():
            found = await rows(db, "SELECT count(*) FROM outbox WHERE sent_at IS NULL")
            total += int(found[0][0])
        return total

    webhooks = await settle(processed, len(ledger.webhooks))
    notifications = await settle(notifications_left, 0)
    await settle(unsent, 0)

    # registration against the ledger
    stored = {
        uid(i): (str(u) if u else "", str(m or ""), uid(e), uid(s), str(st), int(v))
        for i, u, m, e, s, st, v in await rows(
            reg, "SELECT id, user_id, email, event_id, session_id, status, version FROM enrollment"
        )
    }
    confirmed = ledger.enrollments
    out.append(
        count_row(
            "confirmed sign-ups stored", len(confirmed), sum(1 for i in confirmed if i in stored)
        )
    )
    cancelled = [e for e in confirmed.values() if e.cancelled]
    out.append(
        count_row(
            "confirmed withdrawals in effect",
            len(cancelled),
            sum(1 for e in cancelled if e.id in stored and stored[e.id][4] == "cancelled"),
        )
    )
    holding = ("pending", "approved", "awaiting_confirmation", "participated", "missed")
    kept = [e for e in confirmed.values() if not e.cancelled]
    out.append(
        count_row(
            "confirmed sign-ups still holding their seat",
            len(kept),
            sum(1 for e in kept if e.id in stored and stored[e.id][4] in holding),
        )
    )
    by_person = {
        (e, u or m): (s, st) for (u, m, e, s, st, _) in stored.values() if st != "cancelled"
    }
    out.append(
        count_row(
            "confirmed imports in effect",
            len(ledger.imported),
            sum(1 for k, s in ledger.imported.items() if by_person.get(k, ("",))[0] == s),
        )
    )
    strays = [
        i
        for i, (u, m, e, _, _, _) in stored.items()
        if i not in confirmed and (e, u or m) not in ledger.imported
    ]
    out.append(count_row("enrollments nobody confirmed", 0, len(strays), ", ".join(strays[:3])))

    # nothing twice in effect
    doubled = await rows(
        reg,
        "SELECT event_id, coalesce(user_id, email), count(*) FROM enrollment "
        "WHERE status <> 'cancelled' GROUP BY 1, 2 HAVING count(*) > 1",
    )
    out.append(count_row("one live enrollment per person and event", 0, len(doubled)))
    history = await rows(
        reg,
        "SELECT enrollment_id, from_status, to_status FROM enrollment_history ORDER BY id",
    )
    chains: dict[str, list[tuple[str, str]]] = {}
    for enrollment_id, came_from, went_to in history:
        chains.setdefault(uid(enrollment_id), []).append((str(came_from or ""), str(went_to)))
    broken = [
        i
        for i, (*_, status, _) in stored.items()
        if not chains.get(i)
        or chains[i][-1][1] != status
        or any(a[1] != b[0] for a, b in itertools.pairwise(chains[i]))
        or any(a == b for a, b in chains[i])
    ]
    out.append(
        count_row(
            "status history: each change once, replays to the status",
            0,
            len(broken),
            ", ".join(f"{i}: {chains.get(i)}" for i in broken[:2]),
        )
    )

    # never over a limit
    seats = await rows(
        reg,
        "SELECT s.session_id, s.taken, s.participant_limit, "
        f"(SELECT count(*) FROM enrollment e WHERE e.session_id = s.session_id "
        f"AND e.status IN {SEAT_HOLDING}) FROM session_replica s",
    )
    over = [str(s) for s, _, lim, n in seats if lim is not None and n > lim]
    drift = [str(s) for s, taken, _, n in seats if taken != n]
    full = sum(1 for _, _, lim, n in seats if lim is not None and n == lim)
    out.append(
        count_row("sessions over their limit", 0, len(over), f"({full} of {len(seats)} full)")
    )
    out.append(count_row("seat counters off their seat holders", 0, len(drift)))

    # every confirmed change reached every service: each enrollment at registration's newest
    # version (read again at every look: attendance may still move one on meanwhile)
    async def newest() -> dict[str, tuple[int, str]]:
        found = await rows(reg, "SELECT id, version, status FROM enrollment")
        return {uid(i): (int(v), str(st)) for i, v, st in found}

    async def behind(db: str, sql: str) -> int:
        """Enrollments whose (version, status) in ``db`` is not registration's; ``sql`` gives
        (id, version, status), or an empty status where ``db`` keeps none."""
        want = await newest()
        got = {uid(i): (int(v), str(st)) for i, v, st in await rows(db, sql)}
        return sum(
            1
            for i, (version, status) in want.items()
            if got.get(i, (0, ""))[0] != version or got[i][1] not in (status, "")
        )

    for name, db, sql in (
        ("catalog", cat, "SELECT enrollment_id, version, status FROM enrollment_seats"),
        ("zoom-bridge", bridge, "SELECT enrollment_id, version, status FROM enrollments"),
        (
            "integrations' deliveries",
            integ,
            # subject: enrollment:<id>
            "SELECT substr(subject, 12), max(subject_version), '' FROM webhook_deliveries "
            "WHERE state = 'delivered' AND subject LIKE 'enrollment:%' GROUP BY subject",
        ),
    ):
        lagging = await settle(functools.partial(behind, db, sql), 0)
        out.append(
            count_row(f"enrollments behind registration in {name}", 0, lagging, f"of {len(stored)}")
        )
    sent = {
        str(w)
        for (w,) in await rows(
            integ, "SELECT webhook_id FROM webhook_deliveries WHERE state = 'delivered'"
        )
    }
    received = {r.headers.get("webhook-id") for r in soak.receiver.received}
    out.append(count_row("deliveries received by the endpoint", len(sent), len(sent & received)))
    await check_days(soak, settle, out)
    await check_recordings(soak, settle, out)

    out.append(
        count_row("Zoom webhooks accepted, each processed once", len(ledger.webhooks), webhooks)
    )
    out.append(
        count_row("Zoom's notifications of the bridge's changes left or failed", 0, notifications)
    )
    out.append(count_row("outbox messages unsent", 0, await settle(unsent, 0)))
    pending = await rows(
        integ, "SELECT count(*) FROM webhook_deliveries WHERE state <> 'delivered'"
    )
    out.append(count_row("webhook deliveries not delivered", 0, int(pending[0][0])))
    out.append(count_row("dead-lettered messages", 0, await dead_lettered(system)))
    return out


async def check_days(soak: Soak, settle: Settle, out: list[Row]) -> None:
    """Every day at its last confirmed time in catalog, registration, the bridge and at Zoom;
    one live Zoom meeting per zoom day. Each count is of the wanted days found right, less the
    days found that are not wanted (a day missing is one fewer found, never made up for)."""
    system, days = soak.system, soak.ledger.days
    want = {d.id: (d.start, d.end) for d in days.values()}
    zoom_want = {d.id: (d.start, d.end) for d in days.values() if d.format == "zoom"}

    async def in_catalog() -> int:
        got: dict[str, tuple[dt.datetime, dt.datetime]] = {}
        async with system.client(system.catalog, soak.admin) as cat:
            for event in soak.events:
                body = (await cat.get(f"/v1/events/{event.id}")).json()
                for session in body["sessions"]:
                    for d in session["days"]:
                        got[uid(d["id"])] = (instant(d["start"]), instant(d["end"]))
        return sum(1 for i, t in want.items() if got.get(i) == t) - len(got.keys() - want.keys())

    async def in_db(db: str, sql: str, wanted: dict[str, tuple[dt.datetime, dt.datetime]]) -> int:
        got = {uid(i): (s, e) for i, s, e in await rows(db, sql)}
        right = sum(1 for i, t in wanted.items() if got.get(i) == t)
        return right - len(got.keys() - wanted.keys())

    async def at_zoom() -> int:
        # a meeting its host recovered once the day had a new one stays apart, as recovered:
        # not the day's (the bridge's ruling), so not counted against it
        sql = "SELECT zoom_meeting_id FROM zoom_meetings"
        held = {str(z) for (z,) in await rows(system.databases["bridge"], sql)}
        apart = soak.ledger.recovered - held
        async with httpx.AsyncClient(base_url=system.sim.url, timeout=30) as sim:
            meetings = [
                m
                for m in (await sim.get("/_sim/meetings")).json()
                if not m["deleted"] and str(m["id"]) not in apart
            ]
        by_day = Counter(uid(str(m["agenda"]).removeprefix("day:")) for m in meetings)
        starts = {uid(str(m["agenda"]).removeprefix("day:")): m["start_time"] for m in meetings}
        right = sum(
            1
            for i, (start, _) in zoom_want.items()
            if by_day[i] == 1 and starts.get(i) and instant(starts[i]) == start
        )
        return right - len(by_day.keys() - zoom_want.keys())  # meetings of days not wanted

    out.append(
        count_row(
            "days at their confirmed time in catalog",
            len(want),
            await settle(in_catalog, len(want)),
        )
    )
    reg_sql = 'SELECT day_id, start, "end" FROM day_replica WHERE NOT deleted'
    found = await settle(
        functools.partial(in_db, system.databases["registration"], reg_sql, want), len(want)
    )
    out.append(count_row("days at their confirmed time in registration", len(want), found))
    bridge_sql = "SELECT day_id, start, \"end\" FROM zoom_meetings WHERE desired = 'present'"
    found = await settle(
        functools.partial(in_db, system.databases["bridge"], bridge_sql, zoom_want), len(zoom_want)
    )
    out.append(count_row("zoom days at their confirmed time in zoom-bridge", len(zoom_want), found))
    found = await settle(at_zoom, len(zoom_want))
    out.append(count_row("zoom days with one live meeting at their time", len(zoom_want), found))

    async def links_shown() -> int:
        """Zoom days whose join link in catalog is their meeting's in the bridge (a meeting
        deleted at Zoom and made again is announced twice at one day version, on two queues)."""
        bridge_links = {
            uid(d): link
            for d, link in await rows(
                system.databases["bridge"],
                "SELECT day_id, join_url FROM zoom_meetings WHERE desired = 'present'",
            )
        }
        shown = {
            uid(d): link
            for d, link in await rows(
                system.databases["catalog"],
                "SELECT id, meeting_join_url FROM days WHERE format = 'zoom'",
            )
        }
        return sum(1 for d in zoom_want if bridge_links.get(d) and shown.get(d) == bridge_links[d])

    found = await settle(links_shown, len(zoom_want))
    out.append(count_row("zoom days showing their meeting's link", len(zoom_want), found))
    recovered = soak.ledger.recovered
    async with httpx.AsyncClient(base_url=system.sim.url, timeout=30) as sim:
        live = {str(m["id"]) for m in (await sim.get("/_sim/meetings")).json() if not m["deleted"]}
    sql = "SELECT zoom_meeting_id FROM zoom_meetings"
    held = {str(z) for (z,) in await rows(system.databases["bridge"], sql)}
    out.append(
        count_row(
            "meetings recovered at Zoom still live",
            len(recovered),
            len(recovered & live),
            f"{len(recovered & held)} taken back by their day; {soak.ledger.purged} purged",
        )
    )


async def check_recordings(soak: Soak, settle: Settle, out: list[Row]) -> None:
    """Every zoom day's recording files in catalog (its API, by their play links) are the ones
    Zoom holds live for the day's current meeting: none in the trash, none deleted (read at
    Zoom: a file's play link answers 200 while it is neither). A day Zoom still owes a
    recording notification (its delivery got no answer or a 5xx during a fault, and Zoom
    retries after 5, 20 and 60 minutes, beyond the checks' wait) may not match yet: when it
    does not, it is counted apart, in the detail."""
    system, ledger = soak.system, soak.ledger
    zoom_days = sorted(d.id for d in ledger.days.values() if d.format == "zoom")
    by_path = {f.path: f.id for f in ledger.files.values()}
    day_of = {meeting: day for day, meeting in ledger.recorded.items()}

    async def shown() -> dict[str, set[str]]:
        """Day -> the files catalog shows (a link the soak never saw stays a link)."""
        got: dict[str, set[str]] = {}
        async with system.client(system.catalog, soak.admin) as cat:
            for event in soak.events:
                body = (await cat.get(f"/v1/events/{event.id}")).json()
                for session in body["sessions"]:
                    for d in session["days"]:
                        files = (d.get("zoom") or {}).get("recordings") or []
                        paths = (urlsplit(str(f["play_url"])).path for f in files)
                        got[uid(d["id"])] = {by_path.get(p, p) for p in paths}
        return got

    async def held(sim: httpx.AsyncClient) -> dict[str, set[str]]:
        """Day -> the live files of its current meeting(s) at Zoom: live meetings, less those
        recovered and left apart (``check_days``)."""
        sql = "SELECT zoom_meeting_id FROM zoom_meetings"
        bridge_held = {str(z) for (z,) in await rows(system.databases["bridge"], sql)}
        apart = ledger.recovered - bridge_held
        got: dict[str, set[str]] = {}
        for m in (await sim.get("/_sim/meetings")).json():
            agenda, meeting = str(m.get("agenda") or ""), str(m["id"])
            if m["deleted"] or meeting in apart or not agenda.startswith("day:"):
                continue
            files = got.setdefault(uid(agenda.removeprefix("day:")), set())
            mine = [f for f in ledger.files.values() if f.meeting == meeting]
            if m["has_recording"] and not mine:
                files.add(f"a recording of meeting {meeting} the soak never saw")
            for f in mine:
                if (await sim.get(f.path)).status_code == 200:
                    files.add(f.id)
        return got

    async def owed(sim: httpx.AsyncClient) -> set[str]:
        """Days a recording notification waits for Zoom's retry of (refusals, 4xx, excepted)."""
        days: set[str] = set()
        for delivery in (await sim.get("/_sim/webhooks")).json():
            status = delivery.get("status")
            if (
                not str(delivery["event"]).startswith("recording.")
                or delivery["state"] != "retrying"
                or (status is not None and status < 500)
            ):
                continue
            obj = delivery["body"]["payload"]["object"]
            if "id" in obj:  # one meeting's recording
                meetings = [str(obj["id"])]
            else:  # in bulk: the instances recorded
                named = obj.get("meetings") or []
                uuids = obj.get("meeting_uuids") or [i["meeting_uuid"] for i in named]
                meetings = [ledger.recording_uuids.get(str(u), "") for u in uuids]
            days.update(day_of[m] for m in meetings if m in day_of)
        return days

    in_catalog: dict[str, set[str]] = {}
    at_zoom: dict[str, set[str]] = {}
    off: list[str] = []
    excused: list[str] = []

    async def unmatched() -> int:
        nonlocal in_catalog, at_zoom, off, excused
        async with httpx.AsyncClient(base_url=system.sim.url, timeout=30) as sim:
            at_zoom, waiting = await held(sim), await owed(sim)
        in_catalog = await shown()
        off = [d for d in zoom_days if in_catalog.get(d, set()) != at_zoom.get(d, set())]
        excused = [d for d in off if d in waiting]
        return len(off) - len(excused)

    await settle(unmatched, 0)
    moves = ledger.recording_moves
    bulk = sum(n for kind, n in moves.items() if kind.startswith("bulk "))
    detail = (
        f"{moves['completed']} completed, {moves['trashed']} trashed, "
        f"{moves['recovered']} recovered, {moves['deleted']} deleted, {bulk} in bulk"
    )
    if excused:
        detail += f"; {len(excused)} owed by Zoom's retry"
    failing = [d for d in off if d not in excused]
    for d in failing:  # what each side holds, and the notifications that made it, for the log
        ledger.unexpected.extend(await recordings_trail(soak, d, at_zoom.get(d, set())))
    if failing:
        d = failing[0]
        shows, holds = in_catalog.get(d, set()), at_zoom.get(d, set())
        alike, stray = len(shows & holds), len(shows - holds)
        detail = f"day {d[:8]}: {alike} of Zoom's {len(holds)} shown, {stray} more; {detail}"
    out.append(
        count_row(
            "zoom days whose recordings match Zoom's",
            len(zoom_days) - len(excused),
            len(zoom_days) - len(off),
            detail,
        )
    )


async def recordings_trail(soak: Soak, day: str, at_zoom: set[str]) -> list[str]:
    """A day whose recordings do not match Zoom's: Zoom's files, the bridge's and catalog's
    state, and the recording notifications the bridge stored for the day's meeting, in the
    order Zoom sent them (``event_ts``), with what each named."""
    system, ledger = soak.system, soak.ledger
    meeting = ledger.recorded.get(day, "")
    instances = {u for u, m in ledger.recording_uuids.items() if m == meeting}
    lines = [f"recordings of day {day} (meeting {meeting}): Zoom holds {sorted(at_zoom)}"]
    sql = (
        "SELECT recordings, recordings_gone, recordings_trashed, recordings_came, "
        "recordings_version FROM zoom_meetings WHERE day_id = :day"
    )
    for files, gone, trashed, came, version in await rows(system.databases["bridge"], sql, day=day):
        shown = sorted(str(f["id"]) for f in loaded(files) or [])
        in_trash = sorted(loaded(trashed) or {})
        lines.append(
            f"  bridge v{version}: {shown}; gone {loaded(gone)}; trashed {in_trash}; "
            f"came {loaded(came)}"
        )
    sql = "SELECT recordings_version, recordings FROM days WHERE id = :day"
    for version, files in await rows(system.databases["catalog"], sql, day=day):
        lines.append(f"  catalog v{version}: {len(loaded(files) or [])} files")
    sql = (
        "SELECT event, processed, failed, received_at, body FROM zoom_webhook_events "
        "WHERE event LIKE 'recording.%'"
    )
    trail = []
    for event, processed, failed, received, body in await rows(system.databases["bridge"], sql):
        parsed = loaded(body)
        text_ = json.dumps(parsed)
        if meeting not in text_ and not any(u in text_ for u in instances):
            continue
        obj = parsed.get("payload", {}).get("object", {})
        files_named = [f.get("id") for f in obj.get("recording_files") or []]
        named = files_named or obj.get("meetings") or obj.get("meeting_uuids")
        trail.append(
            (
                int(parsed.get("event_ts") or 0),
                f"  {parsed.get('event_ts')} {event} processed={processed} failed={failed} "
                f"received {received}: {named}",
            )
        )
    async with httpx.AsyncClient(base_url=system.sim.url, timeout=30) as sim:
        deliveries = (await sim.get("/_sim/webhooks")).json()
    for d in deliveries:
        text_ = json.dumps(d["body"])
        if not str(d["event"]).startswith("recording."):
            continue
        if meeting not in text_ and not any(u in text_ for u in instances):
            continue
        trail.append(
            (
                int(d["body"].get("event_ts") or 0),
                f"  {d['body'].get('event_ts')} zoom sent {d['event']}: {d['state']}, "
                f"status {d['status']}, attempts "
                f"{[(a['status'], a['error'], a['at']) for a in d['attempts']]}",
            )
        )
    return lines + [line for _, line in sorted(trail)]


def loaded(value: Any) -> Any:
    """A JSON column read with raw SQL: text on PostgreSQL, parsed where the driver parses."""
    return json.loads(value) if isinstance(value, str) else value


# --- the run ---------------------------------------------------------------------------------


async def run(seconds: float, seed: int) -> int:
    faults = schedule(seed, seconds)
    print(f"soak {seconds:.0f} s, seed {seed} (SOAK_SEED={seed} replays it)", flush=True)
    rng = random.Random(seed + 1)
    interrupt_once()
    try:
        async with bench_system("soak", (*SERVICES, "sim")) as system:
            print(f"logs in {system.catalog.log_path.parent}", flush=True)
            soak = Soak(system, seed, seconds)
            try:
                members = await set_up(soak, rng)
                print(f"load for {seconds:.0f} s; faults:", flush=True)
                loop = asyncio.get_running_loop()
                started = loop.time()
                workers = [
                    *(
                        soak.member(random.Random(rng.random()), members)
                        for _ in range(MEMBER_WORKERS)
                    ),
                    soak.every(random.Random(rng.random()), (5, 15), "import", soak.import_once),
                    soak.every(random.Random(rng.random()), (2, 6), "day move", soak.move_once),
                    soak.every(
                        random.Random(rng.random()), (1, 4), "zoom webhook", soak.attend_once
                    ),
                    soak.every(random.Random(rng.random()), (15, 30), "zoom host", soak.host_once),
                    soak.every(
                        random.Random(rng.random()), (3, 8), "zoom recording", soak.record_once
                    ),
                    soak.inject(faults, started),
                ]

                async def stop_after() -> None:
                    await asyncio.sleep(seconds)
                    soak.stopping.set()

                await asyncio.gather(stop_after(), *workers)
                elapsed = loop.time() - started
                await infrastructure_up(AMQP_URL, POSTGRES_URL)
                async with httpx.AsyncClient(base_url=system.sim.url, timeout=30) as sim:
                    await sim.delete("/_sim/faults")
                print(f"load stopped after {elapsed:.0f} s; checking ...", flush=True)
                results = await check(soak)
            finally:
                await soak.receiver.stop()
    finally:
        await infrastructure_up(AMQP_URL, POSTGRES_URL)
    failed = sum(not r.ok for r in results)
    print(table(results))
    print(
        f"soak {seconds:.0f} s, seed {seed}: {tally(soak.faults_done)}, "
        f"{soak.ledger.requests:,} requests ({soak.ledger.retried:,} answered after retries), "
        f"{failed} invariant failures"
    )
    for line in soak.ledger.unexpected + soak.ledger.unanswered:
        print(f"  unexpected or unanswered: {line}")
    seconds_, what = soak.ledger.slowest
    print(f"longest wait for an answer: {seconds_:.1f} s ({what})")
    files = Counter(f.status for f in soak.ledger.files.values())
    moves = ", ".join(f"{k} x{n}" for k, n in sorted(soak.ledger.recording_moves.items()))
    print(f"recordings at Zoom: {files['completed']} of {files.total()} files live; {moves}")
    print("answers: " + ", ".join(f"{k} x{n}" for k, n in sorted(soak.ledger.answers.items())))
    return 1 if failed else 0


def interrupt_once() -> None:
    """Ctrl-C (or SIGTERM) stops the soak once: the load and the faults are cancelled and the
    clean-up runs to its end (RabbitMQ and PostgreSQL back up, the processes stopped, the
    databases and the namespace removed); a signal during the clean-up is ignored. (Ctrl-C
    reaches the process twice at times: from the terminal and forwarded by ``uv run``.)"""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    seen: list[int] = []

    def stop(signum: int) -> None:
        if not seen:
            print(f"\n{signal.Signals(signum).name}: stopping, cleaning up ...", file=sys.stderr)
            task.cancel()
        seen.append(signum)

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop, signum)


def main() -> None:
    seconds = float(os.environ.get("SOAK_SECONDS") or 600)
    seed = int(os.environ.get("SOAK_SEED") or random.SystemRandom().randrange(1, 10_000))
    try:
        code = asyncio.run(run(seconds, seed))
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("interrupted: no invariants checked", file=sys.stderr)
        code = 130
    sys.exit(code)


if __name__ == "__main__":
    main()
