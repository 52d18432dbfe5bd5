"""R-ZOOM-4 under a storm: verified webhooks arriving together are stored together (one insert
and one commit per batch), each request answering only once its row is committed; duplicates
are absorbed also within one batch; arrival order is kept for processing; a failed write fails
exactly the requests of its batch."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from te_shared.errors import ServiceUnavailable
from te_testing import messages
from zoom_bridge.meetings import jobs
from zoom_bridge.models import WebhookEvent
from zoom_bridge.webhooks import rules, service
from zoom_bridge.webhooks.intake import Intake
from zoom_bridge.webhooks.secrets import SecretCache
from zoom_bridge.worker import JOBS, WEBHOOKS, Worker

if TYPE_CHECKING:
    from conftest import Env

APP = rules.Signer(app=True)
APP_SECRET = "test-webhook-secret"  # conftest.WEBHOOK_SECRET: the OAuth app's


def body(n: int, tag: str) -> dict[str, Any]:
    return {
        "event": "meeting.participant_joined",
        "event_ts": 1,
        "payload": {"object": {"id": f"{tag}-{n}", "participant": {"user_id": str(n)}}},
    }


def intake(env: Env) -> Intake:
    return Intake(env.app.state.runtime.session_factory)


async def stored_ids(env: Env, tag: str) -> list[str]:
    async with env.app.state.runtime.session_factory()() as session:
        rows = (
            await session.scalars(select(WebhookEvent).order_by(WebhookEvent.received_at))
        ).all()
    ids = [str(r.body["payload"]["object"]["id"]) for r in rows]
    return [i for i in ids if i.startswith(f"{tag}-")]


async def test_webhooks_arriving_together_share_a_write_and_keep_their_order(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    writes: list[int] = []
    real = service.store_many

    async def counted(session: AsyncSession, received: list[service.Received]) -> list[bool]:
        writes.append(len(received))
        return await real(session, received)

    monkeypatch.setattr(service, "store_many", counted)
    gate = intake(env)
    # 60 requests at once: 40 notifications, the last 20 sent twice (Zoom's retries)
    numbers = [*range(40), *range(20, 40)]
    answers = await asyncio.gather(*(gate.store(body(n, "together"), APP) for n in numbers))
    assert answers == [True] * 40 + [False] * 20
    assert sum(writes) == 60
    assert len(writes) < 60, "every request wrote on its own"
    assert max(writes) > 1
    assert await stored_ids(env, "together") == [f"together-{n}" for n in range(40)]


async def test_a_duplicate_within_one_batch_is_accepted_once(env: Env) -> None:
    gate = intake(env)
    answers = await asyncio.gather(*(gate.store(body(7, "twins"), APP) for _ in range(5)))
    assert sorted(answers) == [False, False, False, False, True]
    assert await stored_ids(env, "twins") == ["twins-7"]


async def test_a_failed_write_fails_its_batch_only(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = service.store_many
    failed: list[int] = []

    async def down_once(session: AsyncSession, received: list[service.Received]) -> list[bool]:
        if not failed:
            failed.append(len(received))
            raise ServiceUnavailable("the database is away")
        return await real(session, received)

    monkeypatch.setattr(service, "store_many", down_once)
    gate = intake(env)
    first = asyncio.create_task(gate.store(body(1, "outage"), APP))
    await asyncio.sleep(0)  # the first write is under way: these wait for the next one
    rest = [asyncio.create_task(gate.store(body(n, "outage"), APP)) for n in range(2, 6)]
    with pytest.raises(ServiceUnavailable):
        await first
    assert await asyncio.gather(*rest) == [True] * 4
    assert failed == [1]
    assert await stored_ids(env, "outage") == [f"outage-{n}" for n in range(2, 6)]


async def test_a_burst_with_a_cold_secret_cache_does_not_starve_the_pool(env: Env) -> None:
    """Twice as many webhooks at once as the pool has connections, each looking up secret
    tokens (a cold cache, each account unknown): a request gives its connection back before it
    waits for the intake's write, so the write always finds one and every webhook is accepted
    (when requests held theirs, the write waited for the pool's 30 s timeout: 500s)."""
    env.app.state.runtime.extras["webhook_secrets"] = SecretCache(60)  # cold
    stamp = str(int(time.time()))

    def signed(n: int) -> tuple[bytes, dict[str, str]]:
        hook = body(n, "burst")
        hook["payload"]["account_id"] = f"unknown-account-{n}"  # one cache miss each
        content = json.dumps(hook).encode()
        return content, {
            "content-type": "application/json",
            "x-zm-request-timestamp": stamp,
            "x-zm-signature": rules.expected_signature(APP_SECRET, stamp, content),
        }

    async with env.client() as bridge:
        answers = await asyncio.gather(
            *(
                bridge.post("/v1/zoom/webhooks", content=content, headers=headers)
                for content, headers in map(signed, range(40))
            )
        )
    assert [a.status_code for a in answers] == [200] * 40
    assert {a.json()["status"] for a in answers} == {"accepted"}


@contextlib.asynccontextmanager
async def storm(gate: Intake, tag: str) -> AsyncIterator[None]:
    """Webhooks arriving at ``gate`` every ~5 ms (not waiting for their writes) while the
    block runs; every write has finished when it ends."""
    storming = True
    stores: list[asyncio.Task[bool]] = []

    async def arrive() -> None:
        n = 0
        while storming:
            stores.append(asyncio.create_task(gate.store(body(n, tag), APP)))
            n += 1
            await asyncio.sleep(0.005)

    task = asyncio.create_task(arrive())
    try:
        await asyncio.sleep(0.02)
        yield
    finally:
        storming = False
        await task
        await asyncio.gather(*stores)


async def test_processing_waits_for_a_lull_in_a_storm_but_never_longer_than_its_bound(
    env: Env,
) -> None:
    """Accepting comes first (Zoom gives a webhook 3 s): the worker processes stored webhooks
    once none has arrived for a moment, and while a storm goes on, after its bound at most."""
    gate = intake(env)
    loop = asyncio.get_running_loop()
    start = loop.time()
    await gate.lull(0.05, 5.0)
    assert loop.time() - start < 0.05, "nothing arrived: no wait"
    async with storm(gate, "storm"):
        start = loop.time()
        await gate.lull(0.05, 0.3)  # arrivals every ~5 ms: never a 50 ms lull
        assert 0.25 <= loop.time() - start < 1.0, "the bound ends the wait"
    start = loop.time()
    await gate.lull(0.05, 5.0)  # the storm is over: a lull comes soon
    assert loop.time() - start < 1.0


async def test_a_wait_for_a_lull_gives_way_when_asked(env: Env) -> None:
    gate = intake(env)
    loop = asyncio.get_running_loop()
    async with storm(gate, "giveway"):
        asked_at = loop.time() + 0.1
        start = loop.time()
        assert await gate.lull(0.05, 5.0, stop=lambda: loop.time() >= asked_at) is False
        assert loop.time() - start < 1.0, "stopped when asked, not at the bound"


async def test_a_job_announced_in_a_storm_does_not_wait_for_its_lull(env: Env) -> None:
    """The worker waits up to ZOOM_WEBHOOK_LULL_SECONDS for a pause in a storm before it
    processes webhooks; a job announced meanwhile (a new meeting's create) is taken at once,
    and the wait then resumes where it stopped, so its bound holds across interruptions."""
    worker = Worker(env.app.state.runtime)
    worker.settings = worker.settings.model_copy(update={"zoom_webhook_lull_seconds": 3.0})
    loop = asyncio.get_running_loop()
    async with storm(worker.intake, "jobfirst"):  # the intake whose arrivals the worker watches
        start = loop.time()
        ticking = asyncio.create_task(worker.tick({WEBHOOKS}))
        await asyncio.sleep(0.1)
        worker.nudge(JOBS)
        busy = await ticking
        assert loop.time() - start < 1.5, "the job did not wait for the storm's bound"
        assert WEBHOOKS in busy  # the webhooks are looked at again after the job
        assert worker._lull_since is not None  # the wait resumes, its bound kept
        assert worker._lull_since <= start + 0.05


async def test_what_each_job_announces_goes_to_the_relay_as_it_ends_not_after_the_batch(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """R-ZOOM-1: a claimed batch runs its jobs one after another, each a Zoom call (hundreds
    of milliseconds at Zoom); the message a job stored (a MeetingCreated) is handed to the
    relay as that job's transaction commits, not once the whole batch has, so the first day's
    join link does not wait for the rest, nor for a claim."""
    runtime = env.app.state.runtime
    worker = Worker(runtime)
    seen: list[str] = []
    monkeypatch.setattr(runtime.relay, "hand", lambda rows: seen.append(f"hand {len(rows)}"))
    monkeypatch.setattr(runtime.relay, "wake", lambda: seen.append("wake"))

    async def run(job: jobs.Claimed) -> None:
        seen.append(f"run {job.day_id}")
        async with worker.sessionmaker() as session, session.begin():
            runtime.publish(session, messages.zoom_account_changed(company="job-announces"))
            await jobs.finish(session, job)

    monkeypatch.setattr(worker.syncer, "run", run)
    days = sorted(uuid.uuid4() for _ in range(2))
    running = runtime.extras["worker"]
    await running.stop()  # the service's own worker would take the jobs first
    try:
        async with worker.sessionmaker() as session, session.begin():
            for day_id in days:
                await jobs.arm(session, day_id, jobs.REGISTRANTS)
        assert await worker._jobs()
    finally:
        running.start()
    runs = [entry for entry in seen if entry.startswith("run")]
    assert len(runs) == 2
    assert seen == [runs[0], "hand 1", runs[1], "hand 1"]  # and no claim asked for


async def test_a_stream_of_handed_jobs_leaves_stored_webhooks_their_turn(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Jobs handed over as day messages commit run ten a round, as claimed ones do: a stream
    of them (an import that moved a hundred zoom days) does not hold stored webhooks back."""
    worker = Worker(env.app.state.runtime)
    ran: list[uuid.UUID] = []

    async def run(job: jobs.Claimed) -> None:
        ran.append(job.day_id)

    monkeypatch.setattr(worker.syncer, "run", run)
    handed = [jobs.Claimed(uuid.uuid4(), jobs.SYNC, 1, 1) for _ in range(12)]
    for job in handed:
        worker.hand(job)
    assert await worker.tick(set()) == {JOBS}
    assert ran == [job.day_id for job in handed[:10]]
    assert await worker.tick(set()) == {JOBS}
    assert ran == [job.day_id for job in handed]
    assert await worker.tick(set()) == set()
