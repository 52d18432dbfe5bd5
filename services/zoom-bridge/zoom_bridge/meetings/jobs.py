"""Durable jobs (the ``zoom_jobs`` table): arming, claiming, finishing and backing off."""

from __future__ import annotations

import datetime as dt
import random
import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from te_shared.db import is_postgres, utcnow
from te_shared.observability import inject_trace_context
from zoom_bridge.models import ZoomJob
from zoom_bridge.settings import ZoomBridgeSettings

SYNC = "sync"
RECONCILE = "reconcile"


ARMED = "zoom_job_armed"


def take_armed_flag(session: AsyncSession) -> bool:
    return bool(session.info.pop(ARMED, False))


async def arm(session: AsyncSession, day_id: uuid.UUID, kind: str, delay: float = 0.0) -> None:
    """Make the job due (now, or after ``delay``); a new desired state restarts the retry
    budget."""
    if delay <= 0:
        session.info[ARMED] = True  # the worker is woken once this transaction commits
    job = await session.get(ZoomJob, (day_id, kind))
    due = utcnow() + dt.timedelta(seconds=delay)
    trace_context: dict[str, str] = {}
    inject_trace_context(trace_context)
    if job is None:
        session.add(
            ZoomJob(
                day_id=day_id,
                kind=kind,
                generation=1,
                attempts=0,
                next_attempt_at=due,
                trace_context=trace_context or None,
            )
        )
    else:
        job.generation += 1
        job.attempts = 0
        job.next_attempt_at = due
        job.last_error = None
        job.retry_until = None
        job.trace_context = trace_context or None


@dataclass(frozen=True)
class Claimed:
    day_id: uuid.UUID
    kind: str
    generation: int
    attempts: int
    trace_context: dict[str, str] | None = None


async def claim(session: AsyncSession, limit: int, lease: float) -> list[Claimed]:
    """Take due jobs, leasing them (``next_attempt_at`` moves ahead) so no other worker or a
    restarted bridge runs them meanwhile; a crashed worker's lease simply runs out."""
    stmt = (
        select(ZoomJob)
        .where(ZoomJob.next_attempt_at <= utcnow())
        .order_by(ZoomJob.next_attempt_at)
        .limit(limit)
    )
    if is_postgres(session):
        stmt = stmt.with_for_update(skip_locked=True)
    jobs = list((await session.execute(stmt)).scalars())
    until = utcnow() + dt.timedelta(seconds=lease)
    claimed = []
    for job in jobs:
        job.attempts += 1
        job.next_attempt_at = until
        claimed.append(
            Claimed(job.day_id, job.kind, job.generation, job.attempts, job.trace_context)
        )
    return claimed


def backoff(settings: ZoomBridgeSettings, attempts: int, retry_after: float | None) -> float:
    """Retry-After when Zoom gives one (Zoom's daily limit may ask for hours: honoured up to
    ``zoom_retry_after_max_seconds``); else exponential backoff with full jitter, capped."""
    if retry_after is not None:
        return min(retry_after, settings.zoom_retry_after_max_seconds)
    cap = min(
        settings.zoom_retry_max_seconds,
        settings.zoom_retry_base_seconds * 2 ** min(max(attempts - 1, 0), 30),
    )
    return random.uniform(cap / 2, cap)


async def finish(session: AsyncSession, claimed: Claimed) -> None:
    """Done, unless the desired state changed while Zoom was called (then run again)."""
    job = await session.get(ZoomJob, (claimed.day_id, claimed.kind))
    if job is None:
        return
    if job.generation == claimed.generation:
        await session.delete(job)
    else:
        job.next_attempt_at = utcnow()


async def retry_later(
    session: AsyncSession,
    claimed: Claimed,
    delay: float,
    error: str,
    *,
    budget_seconds: float | None = None,
    waited_as_asked: bool = False,
) -> bool:
    """Run the job again after ``delay``. With ``budget_seconds``, the retry budget (by time)
    starts at the first failure; a wait Zoom asked for (``waited_as_asked``: a 429 with
    Retry-After) moves the budget's end on by that wait and does not count as an attempt for
    the backoff. Returns False, leaving the job alone, once the budget is spent."""
    job = await session.get(ZoomJob, (claimed.day_id, claimed.kind))
    if job is None:
        return True
    now = utcnow()
    job.last_error = error
    if job.generation != claimed.generation:  # a new desired state: run it now
        job.next_attempt_at = now
        return True
    if budget_seconds is not None:
        if job.retry_until is None:
            job.retry_until = now + dt.timedelta(seconds=budget_seconds)
        if waited_as_asked:
            job.retry_until += dt.timedelta(seconds=delay)
        elif now >= job.retry_until:
            return False
    if waited_as_asked:
        job.attempts = max(0, job.attempts - 1)
    job.next_attempt_at = now + dt.timedelta(seconds=delay)
    return True
