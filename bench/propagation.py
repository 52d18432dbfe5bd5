"""Propagation: a zoom day committed in catalog -> meeting created at the simulator -> join link
visible in catalog.

Default timing settings everywhere (outbox poll 0.5 s, zoom worker poll 0.5 s), as deployed. Days
are added one at a time (no overlap between measurements); each is timed from the 201 of
POST /v1/sessions/{id}/days (the transaction has committed by then) to (a) the simulator's
create call (its call log's wall-clock time, read after the run) and (b) the day's meeting in
catalog's database being ``created`` with a join URL (a primary-key read every 2 ms); then the
API is asked once that it shows the link. The observer stays light: polling the simulator and
``GET /v1/events/{id}`` every 5 ms took a core's worth of CPU from the processes it timed on
this 2-core machine (94 ms p50 against 67 ms). A random 0-1 s pause before each day keeps the
arrivals from locking onto the pollers' cadence.

The path crosses RabbitMQ twice (DayScheduled catalog -> bridge, MeetingCreated bridge ->
catalog) plus the bridge's job table and one Zoom API call. Baseline: a bare aio-pika
publish (persistent, publisher confirms) -> consume round trip on a quorum-less classic queue,
one message at a time, p50/p99 - the transport floor of one hop. And for context
(``propagation.p50_vs_quorum_hop``) the same round trip on a durable quorum queue, the kind
every service consumes from: its confirm waits for the queue's log on disk, which a
classic exclusive queue never does, so it is the floor of one hop as deployed. Both are
taken back to back, 300 in a row, every process on the way awake; each day's path starts
after a pause, every process idle, and on this machine a round trip after idling costs two
to three times one back to back (a PostgreSQL statement 0.3 -> 0.9-1.1 ms, the quorum hop
1.0 -> 2.8 ms). So, for context, ``propagation.p50_vs_idle_quorum_hop`` takes the quorum hop
after pauses like the days' (uniform 0-0.5 s): the same conditions for the baseline as for the
path it divides.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import time
import uuid
from typing import Any

import aio_pika
import asyncpg
import httpx

from bench.common import AMQP_URL, Result, summary
from bench.system import COMPANY_SETTINGS, bench_system, plain_url
from te_testing.api import ok
from te_testing.clock import days_from_now, iso
from te_testing.polling import eventually
from te_testing.system import create_day, create_event, zoom_company, zoom_day

DAYS = 30
POLL = 0.002
ROUND_TRIPS = 300
WARM_ROUND_TRIPS = 10
IDLE_ROUND_TRIPS = 50
IDLE_PAUSE = 0.5  # the idle hop's pauses: uniform in [0, IDLE_PAUSE] s
COMPANY = "bench-propagation"


async def baseline(*, quorum: bool = False, idle: bool = False) -> list[float]:
    """One hop's round trips: on an exclusive classic queue (the transport's floor), or with
    ``quorum`` on a durable quorum queue, the kind the services consume from (its publisher
    confirm waits for the queue's log to reach the disk). Back to back, or with ``idle`` after
    a pause like the days' (fewer of them): every process on the path then wakes from idle,
    as on the measured path."""
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.declare_exchange(
            f"bench-rt-{uuid.uuid4().hex[:6]}", aio_pika.ExchangeType.TOPIC, auto_delete=True
        )
        if quorum:
            queue = await channel.declare_queue(
                f"bench-rt-quorum-{uuid.uuid4().hex[:6]}",
                durable=True,
                arguments={"x-queue-type": "quorum"},
            )
        else:
            queue = await channel.declare_queue(exclusive=True, auto_delete=True)
        await queue.bind(exchange, routing_key="bench.rt")
        arrived: asyncio.Queue[float] = asyncio.Queue()

        async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            await message.ack()
            arrived.put_nowait(time.perf_counter())

        await queue.consume(on_message)
        latencies = []
        for i in range(IDLE_ROUND_TRIPS if idle else ROUND_TRIPS):
            if idle and i >= WARM_ROUND_TRIPS:
                await asyncio.sleep(random.uniform(0, IDLE_PAUSE))
            start = time.perf_counter()
            await exchange.publish(
                aio_pika.Message(
                    b'{"n": %d}' % i,
                    delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                    message_id=str(uuid.uuid4()),
                ),
                routing_key="bench.rt",
            )
            end = await asyncio.wait_for(arrived.get(), timeout=10)
            latencies.append(end - start)
        if quorum:
            await queue.delete(if_unused=False, if_empty=False)
        return latencies[WARM_ROUND_TRIPS:]  # the first few warm the channel


async def run() -> list[Result]:
    base = summary(await baseline())
    quorum = summary(await baseline(quorum=True))
    idle_quorum = summary(await baseline(quorum=True, idle=True))
    async with bench_system("propagation") as system:
        account_id = await zoom_company(system, COMPANY, **COMPANY_SETTINGS)
        admin = system.admin(COMPANY)
        async with (
            system.client(system.catalog, admin) as cat,
            httpx.AsyncClient(base_url=system.sim.url, timeout=30) as sim,
        ):
            event = await create_event(
                system,
                COMPANY,
                title="Remote",
                dated=True,
                requires_approval=False,
                sessions=[{"name": "Online", "registration_end": iso(days_from_now(2))}],
            )

            async def day_zoom(day_id: str) -> dict[str, Any]:
                full = await ok(await cat.get(f"/v1/events/{event.id}"))
                for s in full["sessions"]:
                    for d in s["days"]:
                        if d["id"] == day_id:
                            return dict((d.get("zoom") or {}).get("meeting") or {})
                return {}

            catalog_db = await asyncpg.connect(plain_url(system.databases["catalog"]))

            async def in_catalog(day_id: str) -> tuple[str | None, str | None]:
                row = await catalog_db.fetchrow(
                    "SELECT meeting_status, meeting_join_url FROM days WHERE id = $1",
                    uuid.UUID(day_id),
                )
                return (row[0], row[1]) if row else (None, None)

            committed_at: list[float] = []  # wall clock, to compare with the simulator's log
            to_catalog: list[float] = []
            try:
                for i in range(DAYS):
                    # arrivals at random phases of the pollers (a fixed cadence would lock on)
                    await asyncio.sleep(random.uniform(0, 1.0))
                    start_at = days_from_now(4 + i, 9)
                    body = zoom_day(
                        start_at, start_at + dt.timedelta(hours=2), account_id, auto_recording=False
                    )
                    day = await create_day(cat, event.session_id, body)  # 201: committed
                    committed = time.perf_counter()
                    committed_at.append(time.time())
                    while True:
                        status, join_url = await in_catalog(day["id"])
                        if status == "created" and join_url:
                            done = time.perf_counter()
                            break
                        if status == "failed":
                            raise AssertionError(f"meeting failed: {await day_zoom(day['id'])}")
                        if time.perf_counter() - committed > 60:
                            raise AssertionError(f"no join link after 60s: {status}")
                        await asyncio.sleep(POLL)
                    to_catalog.append(done - committed)
                    meeting = await day_zoom(day["id"])  # and the API shows it
                    if meeting.get("status") != "created" or not meeting.get("join_url"):
                        raise AssertionError(f"catalog's API lags its database: {meeting}")
            finally:
                await catalog_db.close()
            await eventually(
                lambda: sim.get("/_sim/meetings"),
                lambda r: len(r.json()) == DAYS,
                what="exactly one meeting per day",
            )
            calls = await ok(await sim.get("/_sim/calls"))
    creates = sorted(
        dt.datetime.fromisoformat(c["at"]).replace(tzinfo=dt.UTC).timestamp()
        for c in calls
        if c["method"] == "POST" and c["path"].endswith("/meetings") and c["status"] == 201
    )
    assert len(creates) == DAYS, f"{len(creates)} creates for {DAYS} days"
    # one day at a time, each done before the next: the i-th create is the i-th day's
    to_sim = [made - committed for made, committed in zip(creates, committed_at, strict=True)]
    sim_s, cat_s = summary(to_sim), summary(to_catalog)
    extra = {
        "days": DAYS,
        "commit_to_simulator_ms": sim_s,
        "commit_to_catalog_ms": cat_s,
        "baseline_round_trip_ms": base,
        "quorum_round_trip_ms": quorum,
        "idle_quorum_round_trip_ms": idle_quorum,
        "settings": "defaults: OUTBOX_POLL_INTERVAL=0.5, ZOOM_WORKER_POLL_SECONDS=0.5",
    }
    name = "propagation"
    b = "aio-pika publish->consume (1 hop)"
    return [
        Result(
            name,
            "commit -> join link in catalog p50",
            cat_s["p50_ms"],
            "ms",
            b,
            base["p50_ms"],
            extra,
            key="propagation.p50_vs_hop",
        ),
        Result(
            name, "commit -> join link in catalog p99", cat_s["p99_ms"], "ms", b, base["p99_ms"]
        ),
        Result(
            name, "commit -> meeting at simulator p50", sim_s["p50_ms"], "ms", b, base["p50_ms"]
        ),
        Result(
            name, "commit -> meeting at simulator p99", sim_s["p99_ms"], "ms", b, base["p99_ms"]
        ),
        Result(
            name,
            "commit -> join link in catalog p50",
            cat_s["p50_ms"],
            "ms",
            "aio-pika publish->consume (1 hop, a quorum queue as deployed)",
            quorum["p50_ms"],
            key="propagation.p50_vs_quorum_hop",
        ),
        Result(
            name,
            "commit -> join link in catalog p50",
            cat_s["p50_ms"],
            "ms",
            "the quorum hop after an idle pause, as each day's path starts",
            idle_quorum["p50_ms"],
            key="propagation.p50_vs_idle_quorum_hop",
        ),
    ]
