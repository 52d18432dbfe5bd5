"""The user's "my events" view with a company of 10,000 events and 100,000 enrollments.

The real registration process; its database is seeded with set-based SQL after its migrations ran,
consistent with what the read model would hold after catalog's messages and the users' sign-ups:

- 10,000 events (95 % active), spread from 180 days ago to 180 days ahead; 2 sessions each
  (registration ends the day before the first day, half with a limit of 30), 2 days per session;
- 5,000 users; each has access to 100 events and a live-or-cancelled enrollment in 20 of them
  (100,000 enrollments: past events mostly participated/missed, future ones approved/pending,
  ~10 % cancelled), one history row each, and ``taken`` equal to the seat-holding enrollments;
- one heavier user with access to 2,000 events (a broad audience, e.g. "all employees").

Measured: GET /v1/me/events?tab=available|participating|completed one request at a time (the three
tabs interleaved; 100 rounds for each user, so 300 views and 100 baseline requests), p50/p99.
Baseline: GET /v1/sessions/{id}/seats by the same user - a trivial
authenticated endpoint of the same service that also reads the database.
"""

from __future__ import annotations

import time
import uuid

import asyncpg
import httpx

from bench.common import Result, summary
from bench.system import bench_system, plain_url, token

COMPANY = "bench-me"
EVENTS = 10_000
USERS = 5_000
ACCESS_PER_USER = 100  # events a typical user may see
ENROLLED_PER_USER = 20  # of which they enrolled in
HEAVY_ACCESS = 2_000
#: rounds per user: three tabs and the baseline each. Enough for a p99 to be one, not the slowest
#: of a handful (15 rounds gave the baseline 15 samples, and its p99 was their maximum)
REQUESTS = {"u00042": 100, "heavy": 100}
WARMUP = {"u00042": 10, "heavy": 2}
TYPICAL = "u00042"
HEAVY = "heavy"

SEED = f"""
CREATE TEMP TABLE ev AS
SELECT n, gen_random_uuid() AS event_id,
       date_trunc('hour', now()) + ((n % 360) - 180) * interval '1 day' AS first_day
FROM generate_series(0, {EVENTS - 1}) AS n;

INSERT INTO event_replica (event_id, company_id, title, state, dated, requires_approval,
                           deleted, version)
SELECT event_id, '{COMPANY}', json_build_object('en', 'Event ' || n),
       CASE WHEN n % 20 = 0 THEN 'hidden' ELSE 'active' END, true, n % 10 = 0, false, 3
FROM ev;

CREATE TEMP TABLE se AS
SELECT ev.n, s, ev.event_id, gen_random_uuid() AS session_id,
       ev.first_day + s * interval '7 hours' AS first_day
FROM ev CROSS JOIN generate_series(0, 1) AS s;

INSERT INTO session_replica (session_id, company_id, event_id, name, timezone,
                             registration_end, limit_enabled, participant_limit,
                             waitlist_enabled, deleted, version, taken)
SELECT session_id, '{COMPANY}', event_id,
       json_build_object('en', CASE WHEN s = 0 THEN 'Daytime' ELSE 'Evening' END),
       'Europe/Berlin', first_day - interval '1 day', n % 2 = 0,
       CASE WHEN n % 2 = 0 THEN 30 END, n % 4 = 0, false, 2, 0
FROM se;

INSERT INTO day_replica (day_id, company_id, session_id, event_id, format, start, "end",
                         deleted, version)
SELECT gen_random_uuid(), '{COMPANY}', session_id, event_id,
       CASE WHEN d = 0 THEN 'offline' ELSE 'online' END,
       first_day + d * interval '1 day', first_day + d * interval '1 day' + interval '3 hours',
       false, 1
FROM se CROSS JOIN generate_series(0, 1) AS d;

INSERT INTO access (company_id, event_id, user_id, granted_at, granted_by)
SELECT '{COMPANY}', ev.event_id, 'u' || lpad(u::text, 5, '0'), now(), 'admin'
FROM generate_series(0, {USERS - 1}) AS u
CROSS JOIN generate_series(0, {ACCESS_PER_USER - 1}) AS j
JOIN ev ON ev.n = (u + j * {EVENTS // ACCESS_PER_USER}) % {EVENTS};

INSERT INTO access (company_id, event_id, user_id, granted_at, granted_by)
SELECT '{COMPANY}', event_id, '{HEAVY}', now(), 'admin'
FROM ev WHERE n % {EVENTS // HEAVY_ACCESS} = 0;

INSERT INTO enrollment (id, company_id, event_id, session_id, user_id, email, status, version,
                        created_at, updated_at)
SELECT gen_random_uuid(), '{COMPANY}', se.event_id, se.session_id, x.user_id,
       x.user_id || '@{COMPANY}.io',
       CASE
         WHEN (x.u + x.j) % 10 = 0 THEN 'cancelled'
         WHEN se.first_day < now() THEN
           CASE WHEN (x.u + x.j) % 10 < 8 THEN 'participated' ELSE 'missed' END
         WHEN (x.u + x.j) % 10 = 9 THEN 'pending'
         ELSE 'approved'
       END,
       2, se.first_day - interval '20 days', se.first_day - interval '20 days'
FROM (
  SELECT u, j, 'u' || lpad(u::text, 5, '0') AS user_id,
         (u + j * {EVENTS // ENROLLED_PER_USER}) % {EVENTS} AS n
  FROM generate_series(0, {USERS - 1}) AS u
  CROSS JOIN generate_series(0, {ENROLLED_PER_USER - 1}) AS j
) AS x
JOIN se ON se.n = x.n AND se.s = (x.u + x.j) % 2;

INSERT INTO enrollment_history (enrollment_id, company_id, at, by, from_status, to_status, reason)
SELECT id, company_id, created_at, user_id, NULL, status, 'sign-up' FROM enrollment;

INSERT INTO known_user (company_id, email, user_id)
SELECT DISTINCT company_id, email, user_id FROM enrollment;

UPDATE session_replica AS s SET taken = c.taken
FROM (SELECT session_id, count(*) AS taken FROM enrollment
      WHERE status IN ('pending', 'approved', 'awaiting_confirmation', 'participated', 'missed')
      GROUP BY session_id) AS c
WHERE c.session_id = s.session_id;

-- as the day handlers keep them (registration.readmodel.refresh_timeline)
UPDATE session_replica AS s SET first_start = d.first_start, last_end = d.last_end
FROM (SELECT session_id, min(start) AS first_start, max("end") AS last_end
      FROM day_replica WHERE NOT deleted GROUP BY session_id) AS d
WHERE d.session_id = s.session_id;

-- as the handlers keep them (registration.readmodel.refresh_event_times)
UPDATE event_replica AS e SET first_start = x.first_start, registration_closes = x.closes
FROM (SELECT event_id, min(first_start) AS first_start,
             max(coalesce(registration_end, 'infinity')) AS closes
      FROM session_replica WHERE NOT deleted GROUP BY event_id) AS x
WHERE x.event_id = e.event_id;
"""


async def seed(database_url: str) -> dict[str, int]:
    conn = await asyncpg.connect(plain_url(database_url))
    try:
        await conn.execute(SEED)
        # as autovacuum leaves a steady-state database: statistics and the visibility map
        await conn.execute("VACUUM ANALYZE")
        counts = {}
        for table in ("event_replica", "session_replica", "day_replica", "access", "enrollment"):
            counts[table] = int(await conn.fetchval(f"SELECT count(*) FROM {table}"))
        return counts
    finally:
        await conn.close()


async def a_visible_session(database_url: str, user: str) -> uuid.UUID:
    conn = await asyncpg.connect(plain_url(database_url))
    try:
        value = await conn.fetchval(
            "SELECT s.session_id FROM access a JOIN event_replica e USING (event_id) "
            "JOIN session_replica s USING (event_id) "
            "WHERE a.user_id = $1 AND e.state = 'active' LIMIT 1",
            user,
        )
        return uuid.UUID(str(value))
    finally:
        await conn.close()


async def timed(
    client: httpx.AsyncClient, path: str, params: dict[str, str] | None = None
) -> float:
    start = time.perf_counter()
    r = await client.get(path, params=params)
    elapsed = time.perf_counter() - start
    if r.status_code != 200:
        raise AssertionError(f"{path}: {r.status_code} {r.text}")
    return elapsed


async def measure(system_url: str, user: str, session_id: uuid.UUID) -> dict[str, object]:
    headers = {"Authorization": f"Bearer {token('user', COMPANY, user, f'{user}@{COMPANY}.io')}"}
    async with httpx.AsyncClient(base_url=system_url, headers=headers, timeout=60) as client:
        counts = {}
        for tab in ("available", "participating", "completed"):
            r = await client.get("/v1/me/events", params={"tab": tab, "limit": "200"})
            counts[tab] = len(r.json()["items"])
        for _ in range(WARMUP[user]):
            for tab in ("available", "participating", "completed"):
                await timed(client, "/v1/me/events", {"tab": tab})
            await timed(client, f"/v1/sessions/{session_id}/seats")
        views: list[float] = []
        per_tab: dict[str, list[float]] = {"available": [], "participating": [], "completed": []}
        seats: list[float] = []
        health: list[float] = []
        for _ in range(REQUESTS[user]):
            for tab in per_tab:
                t = await timed(client, "/v1/me/events", {"tab": tab})
                per_tab[tab].append(t)
                views.append(t)
            seats.append(await timed(client, f"/v1/sessions/{session_id}/seats"))
            health.append(await timed(client, "/health/live"))
    return {
        "items_per_tab": counts,
        "view": summary(views),
        "per_tab_p50_ms": {k: summary(v)["p50_ms"] for k, v in per_tab.items()},
        "seats": summary(seats),
        "health": summary(health),
    }


async def run() -> list[Result]:
    async with bench_system("my_events", ("registration",)) as system:
        database = system.databases["registration"]
        with_timer = time.perf_counter()
        counts = await seed(database)
        seed_s = time.perf_counter() - with_timer
        out = {}
        for user in (TYPICAL, HEAVY):
            session_id = await a_visible_session(database, user)
            out[user] = await measure(system.registration.url, user, session_id)
    # a tab the seed left empty would be measured as nothing to do (before the seed kept the
    # sessions' first start and last end, the typical user's Completed tab was empty)
    typical_tabs = out[TYPICAL]["items_per_tab"]
    assert isinstance(typical_tabs, dict)
    assert all(typical_tabs.values()), typical_tabs
    name = "my events (10k events, 100k enrollments)"
    base = "GET /v1/sessions/{id}/seats"
    results = []
    for user, label, key in (
        (TYPICAL, f"{ACCESS_PER_USER} visible / {ENROLLED_PER_USER} enrolled", "typical"),
        (HEAVY, f"{HEAVY_ACCESS} visible", "wide"),
    ):
        m = out[user]
        view, seats = m["view"], m["seats"]
        assert isinstance(view, dict)
        assert isinstance(seats, dict)
        extra = {"user": user, **m, "seeded": counts, "seed_s": seed_s}
        results += [
            Result(name, f"user, {label}: p50", view["p50_ms"], "ms", base, seats["p50_ms"], extra),
            Result(
                name,
                f"user, {label}: p99",
                view["p99_ms"],
                "ms",
                base,
                seats["p99_ms"],
                key=f"my_events.{key}_p99_vs_seats",
            ),
        ]
    return results
