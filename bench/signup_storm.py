"""Sign-up storm: N users sign up at once for ONE limited session over real HTTP.

Against the real registration process (PostgreSQL, RabbitMQ). Every user has access and a token;
each sends one POST /v1/sessions/{id}/enrollments. Exactly LIMIT get 201, the rest 409
``session_full``; the seats counter must equal the limit (asserted).

Baseline: the same shape of work done directly in PostgreSQL from this machine - an asyncpg pool
(as large as the service's: 10 + 10 overflow) with the same client concurrency running
``UPDATE seats SET taken = taken + 1 WHERE id = $1 AND taken < $2`` on a scratch table, N
statements against a limit of LIMIT, so it is the floor cost of the one contended row.

The measured storms run after an untimed one, on a database with planner statistics
(:func:`analysed`), as a platform's database is when a popular training opens. A third storm
sends each sign-up with an Idempotency-Key of its own (as a gateway that retries writes safely
does), and a fourth (:func:`overload`) BIG_N sign-ups at BIG_CONCURRENCY, a backlog of seconds;
both are compared with the first's rate.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import Counter
from typing import Any

import asyncpg

from bench.common import Result, Timer, create_database, summary
from bench.loadgen import Answer, Request, fire
from bench.system import bench_system, plain_url, token
from te_testing.api import ok
from te_testing.clock import days_from_now, iso
from te_testing.polling import eventually
from te_testing.system import active_event, offline_day

N = 1000
LIMIT = 100
CONCURRENCY = 100  # requests in flight at once (the rest queue in the client)
#: a storm past what the process answers at once: its backlog waits seconds for the database
#: pool (the whole company opening the training at 9:00 behind a gateway)
BIG_N = 3000
BIG_CONCURRENCY = 1500
POOL = 20  # the service's SQLAlchemy pool: pool_size 10 + max_overflow 10
COMPANY = "bench-storm"


async def baseline() -> tuple[float, list[float]]:
    url, drop = await create_database("seats")
    try:
        pool = await asyncpg.create_pool(url, min_size=POOL, max_size=POOL)
        assert pool is not None
        async with pool.acquire() as conn:
            await conn.execute(
                "CREATE TABLE seats (id uuid PRIMARY KEY, taken int NOT NULL DEFAULT 0)"
            )
        rates: list[float] = []
        latencies: list[float] = []
        for _ in range(3):  # three rounds; the best round is the floor
            seat = uuid.uuid4()
            await pool.execute("INSERT INTO seats (id) VALUES ($1)", seat)
            sem = asyncio.Semaphore(CONCURRENCY)
            won = 0
            lat: list[float] = []

            async def one(
                seat: uuid.UUID = seat, sem: asyncio.Semaphore = sem, lat: list[float] = lat
            ) -> None:
                nonlocal won
                async with sem:
                    start = time.perf_counter()
                    status = await pool.execute(
                        "UPDATE seats SET taken = taken + 1 WHERE id = $1 AND taken < $2",
                        seat,
                        LIMIT,
                    )
                    lat.append(time.perf_counter() - start)
                    won += status == "UPDATE 1"

            with Timer() as t:
                await asyncio.gather(*(one() for _ in range(N)))
            assert won == LIMIT, won
            assert await pool.fetchval("SELECT taken FROM seats WHERE id = $1", seat) == LIMIT
            rates.append(N / t.elapsed)
            latencies = lat if N / t.elapsed >= max(rates) else latencies
        await pool.close()
        return max(rates), latencies
    finally:
        await drop()


#: R-ENR-6's whole seat-taking write as ONE statement, as registration sends it on PostgreSQL:
#: the seat (conditional UPDATE), then the enrollment, its history row and its outbox row
WRITE = """
WITH seat AS (
    UPDATE session_replica SET taken = taken + 1
    WHERE session_id = $1 AND NOT deleted
      AND (NOT limit_enabled OR participant_limit IS NULL OR taken < participant_limit)
    RETURNING session_id
), enrolled AS (
    INSERT INTO enrollment (id, company_id, event_id, session_id, user_id, email, status,
                            version, created_at, updated_at)
    SELECT $2, $3, $4, $1, $5, $6, 'approved', 1, now(), now() FROM seat
    RETURNING id
), history AS (
    INSERT INTO enrollment_history (enrollment_id, company_id, at, by, from_status, to_status,
                                    reason)
    SELECT id, $3, now(), $5, NULL, 'approved', 'sign-up' FROM enrolled
), message AS (
    INSERT INTO outbox (message_id, routing_key, payload, headers, created_at, available_at,
                        attempts)
    SELECT $7, 'registration.enrollment.changed', $8::json, '{}'::json, now(), now(), 0
    FROM enrolled
)
SELECT count(*) FROM enrolled
"""


async def write_limit(database: str, concurrency: int) -> float:
    """The same writes from a raw asyncpg loop, into the service's own database (its schema,
    indexes and triggers), against a session of their own: writes/s at ``concurrency``."""
    pool = await asyncpg.create_pool(plain_url(database), min_size=POOL, max_size=POOL)
    assert pool is not None
    try:
        session_id, event_id = uuid.uuid4(), uuid.uuid4()
        await pool.execute(
            "INSERT INTO session_replica (session_id, company_id, event_id, name, timezone, "
            "limit_enabled, participant_limit, waitlist_enabled, deleted, version, taken) "
            "VALUES ($1, $2, $3, '{}'::json, 'UTC', true, $4, false, false, 1, 0)",
            session_id,
            COMPANY,
            event_id,
            LIMIT,
        )
        sem = asyncio.Semaphore(concurrency)
        won = 0

        async def one(n: int) -> None:
            nonlocal won
            async with sem:
                enrollment = uuid.uuid4()
                payload = json.dumps({"enrollment_id": str(enrollment), "n": n})
                took = await pool.fetchval(
                    WRITE,
                    session_id,
                    enrollment,
                    COMPANY,
                    event_id,
                    f"limit-{n:05d}",
                    f"limit-{n:05d}@{COMPANY}.io",
                    uuid.uuid4(),
                    payload,
                )
                won += took  # after the await: `won += await ...` would read it before

        with Timer() as t:
            await asyncio.gather(*(one(n) for n in range(N)))
        assert won == LIMIT, won
        return N / t.elapsed
    finally:
        await pool.close()


def counted_answers(answers: list[Answer]) -> Counter[str]:
    """How many answers of each status and problem code (``409 session_full``)."""
    statuses: Counter[str] = Counter()
    for a in answers:
        code = json.loads(a.body).get("code", "") if a.status != 201 else ""
        statuses[f"{a.status} {code}".strip()] += 1
    return statuses


async def storm(
    system: Any, tokens: list[str], session_id: str, concurrency: int, *, keyed: bool = False
) -> dict[str, Any]:
    """N sign-ups at ``concurrency`` for a fresh session of LIMIT seats, and the same process's
    /health/live at the same concurrency as its floor. ``keyed``: each sign-up carries an
    Idempotency-Key of its own, as from a gateway that retries writes safely."""
    path = f"/v1/sessions/{session_id}/enrollments"
    requests = [
        Request(
            "POST",
            path,
            {"authorization": f"Bearer {tok}"}
            | ({"idempotency-key": str(uuid.uuid4())} if keyed else {}),
        )
        for tok in tokens
    ]
    await fire(system.registration.url, [Request("GET", "/health/live")] * N, concurrency)
    with Timer() as floor_t:
        floor = await fire(
            system.registration.url, [Request("GET", "/health/live")] * N, concurrency
        )
    with Timer() as t:
        answers = await fire(system.registration.url, requests, concurrency)
    statuses = counted_answers(answers)
    assert statuses["201"] == LIMIT, dict(statuses)
    assert all(a.status == 200 for a in floor)
    return {
        "rate": N / t.elapsed,
        "floor_rate": N / floor_t.elapsed,
        "latency": summary([a.seconds for a in answers]),
        "won": summary([a.seconds for a in answers if a.status == 201]),
        "floor": summary([a.seconds for a in floor]),
        "statuses": dict(statuses),
        "elapsed_s": t.elapsed,
    }


async def limited_session(system: Any, users: list[str]) -> str:
    """An active dated event with one session of LIMIT seats (a day, access for ``users``),
    known to registration; returns the session id."""
    event = await active_event(
        system,
        COMPANY,
        title="Storm",
        dated=True,
        requires_approval=False,
        sessions=[
            {
                "name": "Only run",
                "registration_end": iso(days_from_now(3)),
                "limit_enabled": True,
                "participant_limit": LIMIT,
                "days": [offline_day(days_from_now(5, 9), days_from_now(5, 12), "Hall")],
            }
        ],
        access=users,
    )
    seats_url = f"/v1/sessions/{event.session_id}/seats"
    async with system.client(system.registration, token("user", COMPANY, users[0])) as first:
        await eventually(
            lambda: first.get(seats_url),
            lambda r: r.status_code == 200,
            what="active event with the session in registration",
        )
    return event.session_id


async def counted(system: Any, session_id: str) -> tuple[dict[str, Any], int]:
    async with system.client(system.registration, system.admin(COMPANY)) as reg:
        seats = await ok(await reg.get(f"/v1/sessions/{session_id}/seats"))
    conn = await asyncpg.connect(plain_url(system.databases["registration"]))
    try:
        live = await conn.fetchval(
            "SELECT count(*) FROM enrollment WHERE session_id = $1 AND status <> 'cancelled'",
            uuid.UUID(session_id),
        )
    finally:
        await conn.close()
    return seats, int(live)


def storm_users(name: str, n: int = N) -> tuple[list[str], list[str]]:
    """``n`` users new to registration (each storm has its own: a user's first request also
    remembers their e-mail, and the process would skip that for one it has seen) and their
    tokens."""
    users = [f"{name}-{i:04d}" for i in range(n)]
    return users, [token("user", COMPANY, u, f"{u}@{COMPANY}.io") for u in users]


async def overload(system: Any) -> dict[str, Any]:
    """BIG_N sign-ups at BIG_CONCURRENCY for a fresh session of LIMIT seats: a backlog of
    seconds. Every answer must be a seat, ``session_full`` or ``database_busy`` (503, told to
    come back), and the seats exactly LIMIT; its rate against the storm's at CONCURRENCY
    shows whether the backlog costs throughput (it did: sign-ups that waited a second for the
    fast path's pool were left to the route, at several times the CPU)."""
    users, tokens = storm_users("big", BIG_N)
    session_id = await limited_session(system, users)
    path = f"/v1/sessions/{session_id}/enrollments"
    requests = [Request("POST", path, {"authorization": f"Bearer {tok}"}) for tok in tokens]
    with Timer() as t:
        answers = await fire(system.registration.url, requests, BIG_CONCURRENCY)
    statuses = counted_answers(answers)
    assert statuses["201"] == LIMIT, dict(statuses)
    assert set(statuses) <= {"201", "409 session_full", "503 database_busy"}, dict(statuses)
    seats, live = await counted(system, session_id)
    assert seats["taken"] == LIMIT, seats  # zero overbooking
    assert live == LIMIT, live
    return {
        "rate": BIG_N / t.elapsed,
        "latency": summary([a.seconds for a in answers]),
        "statuses": dict(statuses),
        "elapsed_s": t.elapsed,
    }


async def analysed(database: str) -> None:
    """Planner statistics, as a live database has them: autovacuum analyses a table once a
    tenth of it changed, checking every minute, so a database made seconds ago has none, and
    the planner guesses every table to be a few pages (it then scanned the company's access
    rows and known users for each sign-up, a cost that grows with the storm)."""
    conn = await asyncpg.connect(plain_url(database))
    try:
        await conn.execute("ANALYZE")
    finally:
        await conn.close()


async def run() -> list[Result]:
    base_rate, base_lat = await baseline()
    runs: dict[int, dict[str, Any]] = {}
    async with bench_system("signup_storm", ("catalog", "registration")) as system:
        # untimed: a storm first warms the process (its pool's connections, each statement
        # prepared on them), so the first measured storm is not the only one paying for that
        users, tokens = storm_users("warm")
        await storm(system, tokens, await limited_session(system, users), CONCURRENCY)
        await analysed(system.databases["registration"])
        for concurrency in (CONCURRENCY, 64):
            users, tokens = storm_users(f"user{concurrency}")
            session_id = await limited_session(system, users)
            runs[concurrency] = await storm(system, tokens, session_id, concurrency)
            seats, live = await counted(system, session_id)
            assert seats["taken"] == LIMIT, seats  # zero overbooking
            assert live == LIMIT, live
            runs[concurrency] |= {"seats": seats, "live_enrollments_in_db": live}
        users, tokens = storm_users("keyed")
        session_id = await limited_session(system, users)
        keyed = await storm(system, tokens, session_id, CONCURRENCY, keyed=True)
        seats, live = await counted(system, session_id)
        assert seats["taken"] == LIMIT, seats  # zero overbooking
        assert live == LIMIT, live
        big = await overload(system)
        limit_rate = await write_limit(system.databases["registration"], CONCURRENCY)
    b = summary(base_lat)
    main = runs[CONCURRENCY]
    extra = {
        "n": N,
        "limit": LIMIT,
        "runs": {str(k): v for k, v in runs.items()},
        "baseline_latency_ms": b,
        "write_limit_rate": limit_rate,
        "overload": big,
        "keyed": keyed,
    }
    name = "sign-up storm"
    pg = "PG conditional UPDATE (asyncpg)"
    floor = f"GET /health/live, {CONCURRENCY} in flight"
    results = [
        Result(
            name,
            f"{N} sign-ups, {CONCURRENCY} in flight",
            main["rate"],
            "req/s",
            floor,
            main["floor_rate"],
            extra,
            key="signup.throughput_vs_health",
        ),
        Result(
            name,
            f"{N} sign-ups, {CONCURRENCY} in flight",
            main["rate"],
            "req/s",
            "the same writes, one statement each, raw asyncpg",
            limit_rate,
            key="signup.throughput_vs_write_limit",
        ),
        Result(
            name,
            "seat-taking sign-ups (201) p99",
            main["won"]["p99_ms"],
            "ms",
            pg,
            b["p99_ms"],
            key="signup.seat_p99_vs_pg_p99",
        ),
        Result(name, "sign-up p50", main["latency"]["p50_ms"], "ms", pg, b["p50_ms"]),
        Result(name, "sign-up p99", main["latency"]["p99_ms"], "ms", pg, b["p99_ms"]),
        Result(
            name,
            f"{N} sign-ups, {CONCURRENCY} in flight",
            main["rate"],
            "req/s",
            pg,
            base_rate,
        ),
    ]
    other = runs[64]
    results += [
        Result(
            name,
            f"{N} sign-ups, 64 in flight",
            other["rate"],
            "req/s",
            "GET /health/live, 64 in flight",
            other["floor_rate"],
            key="signup.throughput_vs_health_64",
        ),
        Result(
            name,
            "seat-taking sign-ups (201) p99, 64 in flight",
            other["won"]["p99_ms"],
            "ms",
            pg,
            b["p99_ms"],
            key="signup.seat_p99_vs_pg_p99_64",
        ),
        Result(
            name,
            f"{N} sign-ups with an Idempotency-Key each, {CONCURRENCY} in flight",
            keyed["rate"],
            "req/s",
            f"{N} sign-ups, {CONCURRENCY} in flight (the storm above)",
            main["rate"],
            key="signup.keyed_vs_storm",
        ),
        Result(
            name,
            f"{BIG_N} sign-ups, {BIG_CONCURRENCY} in flight",
            big["rate"],
            "req/s",
            f"{N} sign-ups, {CONCURRENCY} in flight (the storm above)",
            main["rate"],
            key="signup.overload_vs_storm",
        ),
        Result(
            name,
            f"{BIG_N} sign-ups, {BIG_CONCURRENCY} in flight: p99",
            big["latency"]["p99_ms"],
            "ms",
            f"{N} sign-ups, {CONCURRENCY} in flight: p99",
            main["latency"]["p99_ms"],
        ),
    ]
    return results
