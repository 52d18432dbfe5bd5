"""Webhook ingest: signed Zoom webhooks accepted by the bridge and turned into attendance.

Set-up through the real APIs: Zoom connected via the simulator, a zoom day whose meeting the
bridge created, P users with access who signed up (so the bridge knows their e-mails from
EnrollmentChanged). Then P users x STAYS stays x (joined, left) webhooks for that real meeting,
signed with ``zoom_sim.webhooks.sign`` and POSTed to /v1/zoom/webhooks over CONCURRENCY keep-alive
connections (``bench.loadgen``).

Three figures, all in webhooks/s over the same W webhooks:
- accepted: W / time until every POST answered ``accepted`` (store only; processing is async);
- processed by the bridge: W / time until every stored webhook is ``processed`` and every stay is a
  complete row in ``attendance_segments`` (bridge database);
- attendance in registration: W / time until registration's ``attendance`` holds every user's
  total minutes (AttendanceRecorded consumed).
Baseline: the bridge's GET /health/live requests/s with the same client concurrency.

Then nine o'clock: MEETINGS meetings start at once (days of a second event, every participant
signed up), and Zoom sends each one's ``meeting.started`` and every participant's join as
fast as it can: BURST_CONCURRENCY webhooks in flight. Zoom counts an answer later than three
seconds as a failed delivery and sends it again five minutes later (its "Resolving webhook
delays" guide), so the figure is the burst's p99 answer against those three seconds
(``webhook.burst_p99_vs_deadline``, lower is better; above 1x Zoom would be retrying), with
every answer late by Zoom's clock counted, and the time until every join is a row in the
bridge's ``attendance_segments``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import json
import time
import uuid
from collections.abc import Collection
from typing import Any

import asyncpg
import httpx

from bench.common import Result, Timer, summary
from bench.loadgen import Answer, Request, fire
from bench.system import (
    COMPANY_SETTINGS,
    bench_system,
    plain_url,
    token,
)
from te_testing.clock import days_from_now, iso, zoom_time
from te_testing.polling import eventually
from te_testing.system import BuiltEvent, active_event, zoom_company, zoom_day
from zoom_sim.webhooks import sign

P = 100  # participants (enrolled users)
STAYS = 5  # each joins and leaves five times: 1,000 webhooks, enough for a steady rate
MINUTES = 30  # per stay
CONCURRENCY = 20
MEETINGS = 20  # nine o'clock: meetings starting at once, every participant joining each
BURST_CONCURRENCY = 500
#: Zoom's: a webhook not answered 200/204 within three seconds failed, and is sent again
ZOOM_DEADLINE_S = 3.0
HEALTH_REQUESTS = 3000
SECRET = "dev-webhook-secret"
COMPANY = "bench-webhooks"
SESSION = "Online"


def webhook(
    event: str,
    meeting: dict[str, Any],
    who: str,
    key: str,
    when: dt.datetime,
    email: str | None = None,
    breakout_room: str | None = None,
) -> bytes:
    """A participant's join or leave as Zoom sends it (``email``: by default ``who``'s at this
    scenario's company); with ``breakout_room``, of that breakout room
    (``meeting.participant_joined_breakout_room`` and ``_left_breakout_room``)."""
    joined = event.startswith("meeting.participant_joined")
    participant = {
        "user_id": key,
        "user_name": who,
        "id": "",
        "participant_uuid": f"uuid-{key}",
        ("join_time" if joined else "leave_time"): zoom_time(when),
        "email": email or f"{who}@{COMPANY}.io",
    }
    obj: dict[str, Any] = {
        "id": str(meeting["id"]),
        "uuid": meeting.get("uuid", ""),
        "topic": meeting.get("topic", ""),
        "participant": participant,
    }
    if breakout_room is not None:
        obj["breakout_room_uuid"] = breakout_room
    body = {
        "event": event,
        "event_ts": int(time.time() * 1000),
        "payload": {"account_id": "zoomSimAccount00000001", "object": obj},
    }
    return json.dumps(body, separators=(",", ":")).encode()


def started(meeting: dict[str, Any], when: dt.datetime) -> bytes:
    """``meeting.started`` as Zoom sends it (the bridge acknowledges it and acts on none)."""
    obj = {
        "id": str(meeting["id"]),
        "uuid": meeting.get("uuid", ""),
        "host_id": meeting.get("host_id", ""),
        "topic": meeting.get("topic", ""),
        "type": 2,
        "start_time": zoom_time(when),
        "timezone": meeting.get("timezone", "UTC"),
        "duration": meeting.get("duration", 60),
    }
    body = {
        "event": "meeting.started",
        "event_ts": int(time.time() * 1000),
        "payload": {"account_id": "zoomSimAccount00000001", "object": obj},
    }
    return json.dumps(body, separators=(",", ":")).encode()


def signed(body: bytes) -> Request:
    ts = str(int(time.time()))
    headers = {
        "content-type": "application/json",
        "x-zm-request-timestamp": ts,
        "x-zm-signature": sign(SECRET, ts, body),
    }
    return Request("POST", "/v1/zoom/webhooks", headers, body)


async def rate(base_url: str, requests: list[Request]) -> float:
    """Requests per second over CONCURRENCY keep-alive connections; every answer must be 200
    (and ``accepted`` for a webhook)."""
    with Timer() as t:
        await answered(base_url, requests, CONCURRENCY)
    return len(requests) / t.elapsed


async def answered(
    base_url: str,
    requests: list[Request],
    concurrency: int,
    statuses: Collection[str] = ("accepted",),
) -> list[Answer]:
    """The answers over ``concurrency`` keep-alive connections; every one must be 200 (and for
    a webhook one of ``statuses``: ``ignored`` is what an event the bridge does not act on is
    answered)."""
    answers = await fire(base_url, requests, concurrency)
    for request, answer in zip(requests, answers, strict=True):
        if answer.status != 200 or (
            request.body and json.loads(answer.body)["status"] not in statuses
        ):
            raise AssertionError(f"{request.path}: {answer.status} {answer.body!r}")
    return answers


async def nine_oclock(
    bridge_url: str,
    bridge_db: asyncpg.Connection,
    days: list[tuple[dict[str, Any], dict[str, Any]]],
    users: list[str],
) -> dict[str, Any]:
    """Every meeting of ``days`` (each day with its meeting at the simulator) starts, and every
    user joins each: the ``meeting.started`` first, then the joins a meeting after the other
    (as many meetings filling at once), BURST_CONCURRENCY in flight. Every answer must be
    ``accepted`` (``ignored`` for a ``meeting.started``, which the bridge does not act on);
    their times are Zoom's view of them. Then the time until every join is a row of
    ``attendance_segments``."""
    bodies = []
    for day, meeting in days:
        bodies.append(started(meeting, dt.datetime.fromisoformat(day["start"])))
    for i, u in enumerate(users):
        for n, (day, meeting) in enumerate(days):
            joined = dt.datetime.fromisoformat(day["start"]) + dt.timedelta(minutes=i % 10)
            key = f"nine-{n}-{i}"
            bodies.append(webhook("meeting.participant_joined", meeting, u, key, joined))
    requests = [signed(body) for body in bodies]
    day_ids = [uuid.UUID(day["id"]) for day, _ in days]
    start = time.perf_counter()
    answers = await answered(bridge_url, requests, BURST_CONCURRENCY, ("accepted", "ignored"))
    accepted_s = time.perf_counter() - start

    async def joins() -> int:
        return int(
            await bridge_db.fetchval(
                "SELECT count(*) FROM attendance_segments WHERE day_id = ANY($1::uuid[])",
                day_ids,
            )
        )

    await eventually(
        joins,
        lambda n: n == len(days) * len(users),
        timeout=300,
        interval=0.02,
        what="nine o'clock's joins processed by the bridge",
    )
    processed_s = time.perf_counter() - start
    seconds = [a.seconds for a in answers]
    return {
        "webhooks": len(requests),
        "meetings": len(days),
        "concurrency": BURST_CONCURRENCY,
        "latency": summary(seconds),
        "slowest_ms": max(seconds) * 1000,
        "late": sum(s > ZOOM_DEADLINE_S for s in seconds),
        "accepted_rate": len(requests) / accepted_s,
        "processed_s": processed_s,
    }


async def zoom_event(
    system: Any,
    account_id: str,
    users: list[str],
    title: str,
    spans: list[tuple[dt.datetime, dt.datetime]],
) -> BuiltEvent:
    """An active event of one session whose days (each ``spans``' start and end) are Zoom
    meetings on ``account_id``, open to ``users``."""
    days = [zoom_day(start, end, account_id, auto_recording=False) for start, end in spans]
    return await active_event(
        system,
        COMPANY,
        title=title,
        dated=True,
        requires_approval=False,
        sessions=[{"name": SESSION, "registration_end": iso(days_from_now(1)), "days": days}],
        access=users,
    )


async def run() -> list[Result]:
    async with bench_system("webhook_ingest") as system:
        account_id = await zoom_company(system, COMPANY, **COMPANY_SETTINGS)
        users = [f"p{i:03d}" for i in range(P)]
        start_at = days_from_now(2, 9)
        event = await zoom_event(
            system,
            account_id,
            users,
            "Live",
            [(start_at, start_at + dt.timedelta(hours=6))],  # every stay within the day
        )
        [day] = event.days[SESSION]
        mornings = [(days_from_now(3 + k, 9), days_from_now(3 + k, 10)) for k in range(MEETINGS)]
        nine = await zoom_event(system, account_id, users, "Nine o'clock", mornings)
        async with httpx.AsyncClient(base_url=system.sim.url, timeout=30) as sim:
            listed = await eventually(
                lambda: sim.get("/_sim/meetings"),
                lambda r: len(r.json()) == 1 + MEETINGS,
                what="the days' meetings at the simulator",
            )
        by_agenda = {m["agenda"]: m for m in listed.json()}
        meeting = by_agenda[f"day:{day['id']}"]
        nine_days = [(d, by_agenda[f"day:{d['id']}"]) for d in nine.days[SESSION]]
        for u in users:
            async with system.client(
                system.registration, token("user", COMPANY, u, f"{u}@{COMPANY}.io")
            ) as me:
                for session_id in (event.session_id, nine.session_id):
                    await eventually(
                        functools.partial(me.post, f"/v1/sessions/{session_id}/enrollments"),
                        lambda r: r.status_code in (201, 409),
                        what="sign-up",
                    )
        bridge_db = await asyncpg.connect(plain_url(system.databases["bridge"]))
        reg_db = await asyncpg.connect(plain_url(system.databases["registration"]))
        try:
            await eventually(
                lambda: bridge_db.fetchval("SELECT count(*) FROM enrollments"),
                lambda n: n == 2 * P,
                what="enrollments known to the bridge",
            )
            # the meetings are on an administrator-role account: the bridge registers every
            # seat holder at Zoom (R-ZOOM-3), a job per day armed by each sign-up; done first,
            # or the worker would be registering while the webhooks wait for it
            await eventually(
                lambda: bridge_db.fetchval("SELECT count(*) FROM zoom_jobs"),
                lambda n: n == 0,
                timeout=300,
                interval=0.1,
                what="the seat holders registered at Zoom",
            )
            await asyncio.sleep(1.0)  # let the sign-up traffic settle (outboxes drained)

            bodies: list[bytes] = []
            for k in range(STAYS):
                for i, u in enumerate(users):
                    key = f"{i * STAYS + k + 1}"
                    joined = start_at + dt.timedelta(minutes=k * 60 + i % 10)
                    left = joined + dt.timedelta(minutes=MINUTES)
                    bodies.append(webhook("meeting.participant_joined", meeting, u, key, joined))
                    bodies.append(webhook("meeting.participant_left", meeting, u, key, left))
            total = len(bodies)
            day_id = uuid.UUID(day["id"])
            health_check = Request("GET", "/health/live")
            await rate(system.bridge.url, [health_check] * 200)  # warm-up
            health = await rate(system.bridge.url, [health_check] * HEALTH_REQUESTS)
            requests = [signed(body) for body in bodies]  # signed before the clock starts
            start = time.perf_counter()
            accepted = await rate(system.bridge.url, requests)

            async def bridge_done() -> tuple[int, int]:
                pending = await bridge_db.fetchval(
                    "SELECT count(*) FROM zoom_webhook_events WHERE NOT processed"
                )
                # each join and each leave is a row of its own (a half of a stay, keyed by
                # the meeting instance and the stay): every webhook written
                complete = await bridge_db.fetchval(
                    "SELECT count(*) FROM attendance_segments WHERE day_id = $1", day_id
                )
                return int(pending), int(complete)

            await eventually(
                bridge_done,
                lambda v: v == (0, 2 * P * STAYS),
                timeout=300,
                interval=0.02,
                what="webhooks processed by the bridge",
            )
            processed_s = time.perf_counter() - start
            await eventually(
                lambda: reg_db.fetchval(
                    "SELECT count(*) FROM attendance WHERE day_id = $1 AND minutes = $2",
                    day_id,
                    MINUTES * STAYS,
                ),
                lambda n: n == P,
                timeout=300,
                interval=0.05,
                what="attendance in registration",
            )
            registered_s = time.perf_counter() - start
            fanout = await bridge_db.fetchval(
                "SELECT count(*) FROM outbox WHERE routing_key LIKE '%attendance%'"
            )
            participated = await reg_db.fetchval(
                "SELECT count(*) FROM enrollment WHERE status = 'participated'"
            )
            burst = await nine_oclock(system.bridge.url, bridge_db, nine_days, users)
        finally:
            await bridge_db.close()
            await reg_db.close()
    extra = {
        "participants": P,
        "webhooks": total,
        "concurrency": CONCURRENCY,
        "bridge_processed_s": processed_s,
        "registration_attendance_s": registered_s,
        "attendance_messages_published_by_bridge": fanout,
        "enrollments_participated": participated,
        "nine_oclock": burst,
    }
    deadline = "Zoom's deadline for an answer (3 s)"
    burst_name = (
        f"nine o'clock: {burst['webhooks']} webhooks of {MEETINGS} meetings starting at once"
    )
    name = "webhook ingest"
    b = f"bridge /health/live, {CONCURRENCY} in flight"
    return [
        Result(
            name,
            f"{total} signed webhooks accepted",
            accepted,
            "req/s",
            b,
            health,
            extra,
            key="webhook.accept_vs_health",
        ),
        Result(
            name,
            "-> processed into attendance_segments",
            total / processed_s,
            "req/s",
            b,
            health,
            key="webhook.processed_vs_health",
        ),
        Result(name, "-> attendance in registration", total / registered_s, "req/s", b, health),
        Result(
            name,
            f"{burst_name}, {BURST_CONCURRENCY} in flight: p99",
            burst["latency"]["p99_ms"],
            "ms",
            deadline,
            ZOOM_DEADLINE_S * 1000,
            key="webhook.burst_p99_vs_deadline",
        ),
        Result(
            name,
            "nine o'clock: the slowest answer",
            burst["slowest_ms"],
            "ms",
            deadline,
            ZOOM_DEADLINE_S * 1000,
        ),
        Result(
            name,
            "nine o'clock: -> every join in attendance_segments",
            burst["webhooks"] / burst["processed_s"],
            "req/s",
            b,
            health,
        ),
    ]
