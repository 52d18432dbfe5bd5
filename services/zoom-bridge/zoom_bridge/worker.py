"""The background worker: due ``zoom_jobs`` and stored webhooks, polled from the database so
work survives a restart (nothing is kept only in memory)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Collection
from typing import cast

from opentelemetry import trace
from opentelemetry.trace import SpanKind
from sqlalchemy.ext.asyncio import AsyncSession

from te_shared.errors import while_database_away
from te_shared.logging import get_logger
from te_shared.observability import attach_trace_context, detach
from te_shared.service import Runtime
from zoom_bridge.meetings import jobs
from zoom_bridge.meetings.sync import Syncer
from zoom_bridge.metrics import BridgeMetrics
from zoom_bridge.settings import DEV_TOKEN_KEY, ZoomBridgeSettings
from zoom_bridge.webhooks import secrets as webhook_secrets
from zoom_bridge.webhooks import service as webhooks
from zoom_bridge.webhooks.intake import Intake
from zoom_bridge.zoom.client import ZoomClient

log = get_logger(__name__)

PRUNE_EVERY_SECONDS = 3600.0
#: the two kinds of work the worker takes: stored webhooks, and due jobs
WEBHOOKS = "webhooks"
JOBS = "jobs"
EVERYTHING = frozenset({WEBHOOKS, JOBS})
#: no webhook for this long is a pause in which stored ones are processed
LULL_GAP_SECONDS = 0.02
#: jobs run in one round of the worker (claimed, or handed over) before stored webhooks
JOBS_A_ROUND = 10


class Worker:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.settings = cast(ZoomBridgeSettings, runtime.settings)
        self.zoom = cast(ZoomClient, runtime.extras["zoom"])
        self.sessionmaker = runtime.session_factory()
        self.metrics = cast(BridgeMetrics, runtime.extras["bridge_metrics"])
        self.syncer = Syncer(
            self.zoom, self.sessionmaker, self.metrics.duplicate_meetings_deleted.inc
        )
        self.intake = cast(Intake, runtime.extras["webhook_intake"])
        self.wake = asyncio.Event()
        #: kinds of work announced (:meth:`nudge`) since the worker last looked
        self._nudged: set[str] = set()
        provider = runtime.tracer_provider
        self.tracer = (provider or trace.get_tracer_provider()).get_tracer("zoom_bridge.worker")
        self._task: asyncio.Task[None] | None = None
        self._pruned_at: float | None = None
        #: when the worker began waiting for a lull to process stored webhooks in
        self._lull_since: float | None = None
        #: jobs committed leased to this worker (:meth:`hand`), to run without a claim
        self._handed: list[jobs.Claimed] = []

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="zoom-worker")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        handed, self._handed = self._handed, []
        if handed:  # not run: due again at once for any worker, not when the lease runs out
            with contextlib.suppress(Exception):
                await asyncio.wait_for(jobs.release(self.sessionmaker, handed), timeout=5)

    def hand(self, claimed: jobs.Claimed) -> None:
        """A job committed leased to this worker (:func:`jobs.arm` with ``hand_over``): run it
        now, without claiming it."""
        self._handed.append(claimed)
        self.wake.set()

    def nudge(self, *kinds: str) -> None:
        """Work of these kinds (:data:`WEBHOOKS`, :data:`JOBS`; all when none named) was just
        committed here: look for it now, and only for it, rather than at the next poll."""
        self._nudged.update(kinds or EVERYTHING)
        self.wake.set()

    def _job_waits(self) -> bool:
        return JOBS in self._nudged or bool(self._handed)

    def _take_nudged(self) -> set[str]:
        kinds, self._nudged = self._nudged, set()
        self.wake.clear()  # a nudge from now on sets it again: none is lost while we work
        return kinds

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        poll = self.settings.zoom_worker_poll_seconds
        due: set[str] = set(EVERYTHING)
        looked_at_everything = loop.time()
        while True:
            if loop.time() - looked_at_everything >= poll:
                # the poll, busy or not: work another replica stored, retries come due
                due = set(EVERYTHING)
            if due >= EVERYTHING:
                looked_at_everything = loop.time()
            due |= self._take_nudged()
            try:
                busy = await self.tick(due)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database may be down: try again later
                log.warning("zoom_worker_error", error=type(exc).__name__, detail=str(exc)[:200])
                busy = set()
                looked_at_everything = loop.time() - poll  # then everything, after the wait
            if busy:  # more may be waiting where there was work
                due = busy
                continue
            due = set()  # woken by a nudge: what it named (taken at the top)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), timeout=poll)

    async def prune(self) -> None:
        """Forget processed webhooks past their retention, once an hour."""
        now = asyncio.get_running_loop().time()
        if self._pruned_at is not None and now - self._pruned_at < PRUNE_EVERY_SECONDS:
            return
        self._pruned_at = now
        async with self.sessionmaker() as session, session.begin():
            removed = await webhooks.prune(session, self.settings.zoom_webhook_retention_days)
        if removed:
            log.info("zoom_webhooks_pruned", removed=removed)

    async def tick(self, kinds: Collection[str] = EVERYTHING) -> set[str]:
        """One round over the ``kinds`` of work asked for: up to ten jobs handed over and ten
        claimed (a Zoom call each, waited on by whoever made the change), then up to ten
        batches of stored webhooks. Returns the kinds that had work."""
        busy: set[str] = set()
        await self.prune()
        if self._handed:  # handed over: run now, whatever was asked for
            busy.add(JOBS)
        # one at a time (those not run yet are released if it stops), ten a round as claimed
        # ones: a stream of day messages does not hold stored webhooks back
        for _ in range(min(len(self._handed), JOBS_A_ROUND)):
            await self._run([self._handed.pop(0)])
        if JOBS in kinds and await self._jobs():
            busy.add(JOBS)
        if WEBHOOKS in kinds:
            loop = asyncio.get_running_loop()
            for _ in range(10):
                # a job announced while waiting for a lull (a new meeting's create) goes first;
                # the wait then resumes where it stopped, so its bound still holds
                if self._lull_since is None:
                    self._lull_since = loop.time()
                left = self.settings.zoom_webhook_lull_seconds - (loop.time() - self._lull_since)
                if not await self.intake.lull(LULL_GAP_SECONDS, max(left, 0.0), self._job_waits):
                    busy.add(WEBHOOKS)
                    break
                self._lull_since = None
                async with self.sessionmaker() as session, session.begin():
                    outcomes = await webhooks.process_batch(
                        session, self.settings, self.settings.zoom_webhook_batch_size
                    )
                self.runtime.after_commit(session)
                for outcome in outcomes:
                    self.metrics.webhooks_processing.labels(outcome.event, outcome.result).inc()
                if not outcomes:
                    break
                busy.add(WEBHOOKS)
                if self._job_waits():  # a batch, then the job: neither waits on the other
                    break
        return busy

    async def _jobs(self) -> bool:
        """Claim and run up to ten due jobs; False when none was due."""
        claimed = await jobs.claim(
            self.sessionmaker, JOBS_A_ROUND, self.settings.zoom_job_lease_seconds
        )
        await self._run(claimed)
        return bool(claimed)

    async def _run(self, claimed: list[jobs.Claimed]) -> None:
        """Run jobs leased to this worker, one after the other."""
        for job in claimed:
            token = attach_trace_context(job.trace_context or {})
            try:
                with self.tracer.start_as_current_span(
                    f"zoom {job.kind}", kind=SpanKind.CLIENT, attributes={"day_id": str(job.day_id)}
                ):
                    # a database restart mid-job: run it again once the database is back,
                    # within the lease, rather than wait the lease out
                    await while_database_away(
                        functools.partial(self.syncer.run, job),
                        budget_seconds=self.settings.zoom_job_lease_seconds / 2,
                        what="zoom_job",
                        day_id=str(job.day_id),
                        kind=job.kind,
                    )
            except Exception as exc:
                log.warning("zoom_job_error", day_id=str(job.day_id), error=type(exc).__name__)
            finally:
                # what the job announced (a join link) went to the relay as it committed
                # (handed over): it goes out now, not after the rest of the claimed jobs
                detach(token)


async def start_worker(runtime: Runtime) -> None:
    settings = cast(ZoomBridgeSettings, runtime.settings)
    if settings.token_encryption_key.get_secret_value() == DEV_TOKEN_KEY:
        log.warning(
            "token_encryption_key_is_the_dev_default",
            hint="set TOKEN_ENCRYPTION_KEY (a Fernet key) in production",
        )
    calls = runtime.metrics.zoom_api_calls
    runtime.extras["zoom"] = ZoomClient(
        settings,
        runtime.session_factory(),
        observe=lambda operation, status: calls.labels(operation, status).inc(),
    )
    worker = Worker(runtime)
    runtime.extras["worker"] = worker
    runtime.extras["wake"] = worker.nudge

    def wake_on_new_job(session: AsyncSession) -> None:
        for claimed in jobs.take_handed(session):
            worker.hand(claimed)
        if jobs.take_armed_flag(session):
            worker.nudge(JOBS)

    jobs.hand_over_to_worker(worker.sessionmaker, settings.zoom_job_lease_seconds)

    runtime.commit_hooks.append(wake_on_new_job)
    runtime.commit_hooks.append(webhook_secrets.after_commit)
    worker.start()


async def stop_worker(runtime: Runtime) -> None:
    worker = runtime.extras.get("worker")
    if isinstance(worker, Worker):
        await worker.stop()
    zoom = runtime.extras.get("zoom")
    if isinstance(zoom, ZoomClient):
        await zoom.aclose()
