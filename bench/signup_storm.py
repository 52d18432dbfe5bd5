"""Sign-up storm: N users sign up at once for ONE limited session over real HTTP.

Against the real registration process (PostgreSQL, RabbitMQ). Every user has access and a token;
each sends one POST /v1/sessions/{id}/enrollments. Exactly LIMIT get 201, the rest 409
``session_full``; the seats counter must equal the limit (asserted).

Baseline: the same shape of work done directly in PostgreSQL from this machine - an asyncpg pool
(as large as the service's: 10 + 10 overflow) with the same client concurrency running
``UPDATE seats SET taken = taken + 1 WHERE id = $1 AND taken < $2`` on a scratch table, N
statements against a limit of LIMIT, so it is the floor cost of the one contended row.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import Counter

import asyncpg

from bench.common import Result, Timer, create_database, summary
from bench.loadgen import Request, fire
from bench.system import at, bench_system, ok, plain_url, token, wait_for

N = 1000
LIMIT = 100
CONCURRENCY = 100  # requests in flight at once (the rest queue in the client)
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


async def run() -> list[Result]:
    base_rate, base_lat = await baseline()
    async with bench_system("signup_storm", ("catalog", "registration")) as system:
        admin = system.admin(COMPANY)
        users = [f"user-{i:04d}" for i in range(N)]
        async with (
            system.client(system.catalog, admin) as cat,
            system.client(system.registration, admin) as reg,
        ):
            event = await ok(
                await cat.post(
                    "/v1/events",
                    json={"title": "Storm", "dated": True, "requires_approval": False},
                ),
                201,
            )
            session = await ok(
                await cat.post(
                    f"/v1/events/{event['id']}/sessions",
                    json={
                        "name": "Only run",
                        "registration_end": at(3).isoformat(),
                        "limit_enabled": True,
                        "participant_limit": LIMIT,
                    },
                ),
                201,
            )
            await ok(
                await cat.post(
                    f"/v1/sessions/{session['id']}/days",
                    json={
                        "format": "offline",
                        "start": at(5, 9).isoformat(),
                        "end": at(5, 12).isoformat(),
                        "address": "Hall",
                    },
                ),
                201,
            )
            await ok(await cat.patch(f"/v1/events/{event['id']}", json={"state": "active"}))
            await wait_for(
                lambda: reg.put(f"/v1/events/{event['id']}/access", json={"user_ids": users}),
                lambda r: r.status_code == 200,
                what="event known to registration",
            )
        tokens = [token("user", COMPANY, u, f"{u}@{COMPANY}.io") for u in users]
        seats_url = f"/v1/sessions/{session['id']}/seats"
        async with system.client(system.registration, tokens[0]) as first:
            await wait_for(
                lambda: first.get(seats_url),
                lambda r: r.status_code == 200,
                what="active event with the session in registration",
            )

        path = f"/v1/sessions/{session['id']}/enrollments"
        storm = [Request("POST", path, {"authorization": f"Bearer {tok}"}) for tok in tokens]
        # the HTTP floor of the same process: the same client, connections and concurrency
        floor = await fire(
            system.registration.url, [Request("GET", "/health/live")] * N, CONCURRENCY
        )
        with Timer() as floor_t:
            floor = await fire(
                system.registration.url, [Request("GET", "/health/live")] * N, CONCURRENCY
            )
        with Timer() as t:
            answers = await fire(system.registration.url, storm, CONCURRENCY)
        statuses: Counter[str] = Counter()
        for a in answers:
            code = json.loads(a.body).get("code", "") if a.status != 201 else ""
            statuses[f"{a.status} {code}".strip()] += 1
        latencies = [a.seconds for a in answers]
        won = [a.seconds for a in answers if a.status == 201]

        async with system.client(system.registration, admin) as reg:
            seats = await ok(await reg.get(seats_url))
        conn = await asyncpg.connect(plain_url(system.databases["registration"]))
        try:
            live = await conn.fetchval(
                "SELECT count(*) FROM enrollment WHERE session_id = $1 AND status <> 'cancelled'",
                uuid.UUID(session["id"]),
            )
        finally:
            await conn.close()
    assert statuses["201"] == LIMIT, dict(statuses)
    assert seats["taken"] == LIMIT, seats
    assert live == LIMIT, live
    assert all(a.status == 200 for a in floor)
    rate = N / t.elapsed
    floor_rate = N / floor_t.elapsed
    s, b, w = summary(latencies), summary(base_lat), summary(won)
    f = summary([a.seconds for a in floor])
    extra = {
        "n": N,
        "limit": LIMIT,
        "concurrency": CONCURRENCY,
        "statuses": dict(statuses),
        "seats": seats,
        "live_enrollments_in_db": live,
        "elapsed_s": t.elapsed,
        "latency_ms": s,
        "seat_taking_latency_ms": w,
        "baseline_latency_ms": b,
        "health_live_rate": floor_rate,
        "health_live_latency_ms": f,
    }
    name = "sign-up storm"
    base = "PG conditional UPDATE (asyncpg)"
    return [
        Result(
            name, f"{N} sign-ups, {CONCURRENCY} in flight", rate, "req/s", base, base_rate, extra
        ),
        Result(name, "sign-up p50", s["p50_ms"], "ms", base, b["p50_ms"]),
        Result(name, "sign-up p99", s["p99_ms"], "ms", base, b["p99_ms"]),
        Result(
            name,
            f"{N} sign-ups vs the same process's HTTP floor",
            rate,
            "req/s",
            f"GET /health/live, {CONCURRENCY} in flight",
            floor_rate,
        ),
        Result(
            name, "seat-taking sign-ups (201) p50", w["p50_ms"], "ms", "health p50", f["p50_ms"]
        ),
        Result(name, "seats taken (asserted = limit)", seats["taken"], "seats", "limit", LIMIT),
    ]
