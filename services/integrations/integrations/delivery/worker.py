"""The delivery worker: claims due deliveries from the database and sends them, many at once.

Nothing is kept only in memory: a delivery is a row until it is finished, a claim is a lease,
and a process that dies (even ``kill -9``) leaves leases that run out, after which any process
sends those deliveries again, with the same ``webhook-id``. Each attempt runs in a task of its
own, bounded by ``WEBHOOK_TIMEOUT_SECONDS``, with at most ``WEBHOOK_CONCURRENCY`` in flight and
``WEBHOOK_ENDPOINT_CONCURRENCY`` per endpoint, so a slow receiver holds up nobody else.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import time
import uuid
from typing import cast

from cryptography.fernet import InvalidToken
from sqlalchemy.ext.asyncio import AsyncSession

from integrations.crypto import SecretCipher
from integrations.delivery import queue, sender, signing
from integrations.delivery.targets import TargetPolicy
from integrations.metrics import IntegrationsMetrics
from integrations.settings import DEV_SECRET_KEY, IntegrationsSettings
from te_shared.db import utcnow
from te_shared.errors import while_database_away
from te_shared.logging import get_logger
from te_shared.service import Runtime

log = get_logger(__name__)

PRUNE_EVERY_SECONDS = 3600.0
UNDECRYPTABLE = "the endpoint's secret cannot be decrypted with WEBHOOK_SECRET_KEY: nothing sent"


def policy_of(settings: IntegrationsSettings) -> TargetPolicy:
    return TargetPolicy.of(settings.webhook_allow_http, settings.webhook_allow_private_networks)


def signing_secrets(cipher: SecretCipher, claimed: queue.Claimed, now: dt.datetime) -> list[str]:
    """The current secret, then every rotated-out one whose overlap has not ended."""
    secrets = [cipher.decrypt(claimed.secret_enc)]
    for previous in claimed.previous_secrets:
        if dt.datetime.fromisoformat(str(previous["expires_at"])) > now:
            secrets.append(cipher.decrypt(str(previous["secret_enc"])))
    return secrets


class DeliveryWorker:
    def __init__(
        self,
        runtime: Runtime,
        settings: IntegrationsSettings,
        cipher: SecretCipher,
        metrics: IntegrationsMetrics,
    ) -> None:
        self.runtime = runtime
        self.settings = settings
        self.cipher = cipher
        self.metrics = metrics
        self.sessionmaker = runtime.session_factory()
        self.policy = policy_of(settings)
        self.client = sender.make_client(self.policy, max_connections=settings.webhook_concurrency)
        self.wake = asyncio.Event()
        self.in_flight: dict[uuid.UUID, int] = {}
        self.tasks: set[asyncio.Task[None]] = set()
        self._stopping = False
        self._loop_task: asyncio.Task[None] | None = None
        self._pruned_at: float | None = None

    def start(self) -> None:
        self._loop_task = asyncio.create_task(self._loop(), name="webhook-worker")

    async def stop(self, grace: float) -> None:
        """Claim nothing more; let attempts in flight finish for up to ``grace`` seconds (the
        rest are cancelled: their leases run out and they are sent again)."""
        self._stopping = True
        self.wake.set()
        if self._loop_task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
        if self.tasks:
            _, pending = await asyncio.wait(set(self.tasks), timeout=grace)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=5)
        await self.client.aclose()

    async def _loop(self) -> None:
        while not self._stopping:
            free = self.settings.webhook_concurrency - len(self.tasks)
            claimed: list[queue.Claimed] = []
            try:
                await self._prune()
                if free > 0:
                    claimed = await self._claim(free)
            except Exception as exc:  # the database may be restarting: try again later
                log.warning("webhook_worker_error", error=type(exc).__name__, detail=str(exc)[:200])
            for item in claimed:
                self._spawn(item)
            if claimed and len(claimed) == free:
                continue  # there may be more due: look again once a slot frees
            self.wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self.wake.wait(), timeout=self.settings.webhook_worker_poll_seconds
                )

    async def _claim(self, free: int) -> list[queue.Claimed]:
        async with self.sessionmaker() as session, session.begin():
            return await queue.claim(
                session,
                limit=free,
                lease_seconds=self.settings.webhook_lease_seconds,
                per_endpoint=self.settings.webhook_endpoint_concurrency,
                in_flight=self.in_flight,
            )

    async def _prune(self) -> None:
        now = time.monotonic()
        if self._pruned_at is not None and now - self._pruned_at < PRUNE_EVERY_SECONDS:
            return
        self._pruned_at = now
        async with self.sessionmaker() as session, session.begin():
            removed = await queue.prune(session, self.settings.webhook_retention_days)
        if removed:
            log.info("webhook_deliveries_pruned", removed=removed)

    def _spawn(self, claimed: queue.Claimed) -> None:
        self.in_flight[claimed.endpoint_id] = self.in_flight.get(claimed.endpoint_id, 0) + 1
        task = asyncio.create_task(self._deliver(claimed), name=f"webhook-{claimed.id}")
        self.tasks.add(task)

        def done(finished: asyncio.Task[None]) -> None:
            self.tasks.discard(finished)
            left = self.in_flight.get(claimed.endpoint_id, 1) - 1
            if left > 0:
                self.in_flight[claimed.endpoint_id] = left
            else:
                self.in_flight.pop(claimed.endpoint_id, None)
            self.wake.set()

        task.add_done_callback(done)

    async def _deliver(self, claimed: queue.Claimed) -> None:
        settings = self.settings
        try:
            attempted_at = utcnow()
            body = claimed.body.encode()
            try:
                secrets = signing_secrets(self.cipher, claimed, attempted_at)
            except InvalidToken:  # WEBHOOK_SECRET_KEY no longer holds the key it was sealed with
                secrets = []
            if secrets:
                headers = signing.headers(secrets, claimed.webhook_id, int(time.time()), body)
                answer = await sender.send(
                    self.client,
                    claimed.url,
                    headers,
                    body,
                    policy=self.policy,
                    timeout=settings.webhook_timeout_seconds,
                    excerpt_bytes=settings.webhook_response_excerpt_bytes,
                )
                self.metrics.duration.observe(answer.duration_ms / 1000)
            else:
                answer = sender.Answer(None, 0, UNDECRYPTABLE, None)

            async def record() -> str:
                async with self.sessionmaker() as session, session.begin():
                    return await queue.finish(
                        session,
                        claimed,
                        answer,
                        attempted_at=attempted_at,
                        window_seconds=settings.webhook_retry_window_hours * 3600,
                        scale=settings.webhook_retry_scale,
                    )

            outcome = await while_database_away(
                record,
                budget_seconds=settings.webhook_lease_seconds / 2,
                what="webhook_delivery",
                delivery_id=claimed.id,
            )
        except Exception as exc:  # the lease runs out and the delivery is sent again
            log.warning(
                "webhook_delivery_error",
                delivery_id=claimed.id,
                error=type(exc).__name__,
                detail=str(exc)[:200],
            )
            return
        if outcome != queue.STALE:
            self.metrics.deliveries.labels(outcome).inc()
        log.info(
            "webhook_delivery_attempted",
            delivery_id=claimed.id,
            webhook_id=claimed.webhook_id,
            endpoint_id=str(claimed.endpoint_id),
            attempt=claimed.attempts + 1,
            status_code=answer.status_code,
            error=answer.error,
            duration_ms=answer.duration_ms,
            outcome=outcome,
        )


async def start_worker(runtime: Runtime) -> None:
    settings = cast(IntegrationsSettings, runtime.settings)
    if settings.webhook_secret_key.get_secret_value() == DEV_SECRET_KEY:
        log.warning(
            "webhook_secret_key_is_the_dev_default",
            hint="set WEBHOOK_SECRET_KEY (a Fernet key) in production",
        )
    worker = DeliveryWorker(
        runtime,
        settings,
        cast(SecretCipher, runtime.extras["cipher"]),
        cast(IntegrationsMetrics, runtime.extras["integrations_metrics"]),
    )
    runtime.extras["worker"] = worker

    def wake_on_queued(session: AsyncSession) -> None:
        if queue.take_queued_flag(session):
            worker.wake.set()

    runtime.commit_hooks.append(wake_on_queued)
    worker.start()


async def stop_worker(runtime: Runtime) -> None:
    worker = runtime.extras.get("worker")
    if isinstance(worker, DeliveryWorker):
        await worker.stop(runtime.settings.graceful_timeout)
