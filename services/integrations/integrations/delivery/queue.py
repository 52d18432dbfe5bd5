"""The durable delivery queue (``webhook_deliveries``): one row per (message, endpoint),
written in the transaction that consumes the message (so the inbox, the queue and the effect
commit together), claimed with a lease (``FOR UPDATE SKIP LOCKED`` on PostgreSQL: several
processes share the work) and finished by the holder of the lease only.

Order per endpoint and subject: a delivery is claimed only while no earlier pending delivery
of the same subject to the same endpoint exists (earlier: a lower aggregate version, then an
earlier ``occurred_at``, then the order of arrival). The earlier one must be delivered, given
up or discarded first; a lease does not end a delivery's pendency, so the next one waits for
the one in flight too.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, or_, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from integrations.delivery import events, schedule, signing
from integrations.delivery.sender import Answer
from integrations.models import (
    DELIVERED,
    DISCARDED,
    FAILED,
    PENDING,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)
from te_shared.contracts import Message
from te_shared.db import is_postgres, utcnow

QUEUED = "integrations_delivery_queued"

#: outcomes of an attempt (``webhook_deliveries_total``)
DELIVERED_OUTCOME = "delivered"
RETRYING = "retrying"
GIVEN_UP = "given_up"
ENDPOINT_GONE = "endpoint_gone"
STALE = "stale"  # the delivery was finished or removed meanwhile (its endpoint deleted)


def take_queued_flag(session: AsyncSession) -> bool:
    return bool(session.info.pop(QUEUED, False))


async def enqueue(session: AsyncSession, message: Message) -> int:
    """Queue ``message`` for every enabled endpoint of its company subscribed to its type.
    Returns how many deliveries were queued (a redelivered message queues none again)."""
    described = events.describe(message)
    endpoints = (
        await session.scalars(
            select(WebhookEndpoint).where(
                WebhookEndpoint.company_id == message.company_id,
                WebhookEndpoint.enabled.is_(True),
            )
        )
    ).all()
    wanted = [e for e in endpoints if events.subscribed(e.events, described.event_type)]
    if not wanted:
        return 0
    body = events.body(described, message.occurred_at)
    now = utcnow()
    insert = pg_insert if is_postgres(session) else sqlite_insert
    queued = 0
    for endpoint in wanted:
        result = await session.execute(
            insert(WebhookDelivery)
            .values(
                company_id=message.company_id,
                endpoint_id=endpoint.id,
                message_id=message.message_id,
                webhook_id=signing.webhook_id(endpoint.id, message.message_id),
                event_type=described.event_type,
                subject=described.subject,
                subject_version=described.subject_version,
                occurred_at=message.occurred_at,
                body=body,
                state=PENDING,
                attempts=0,
                next_attempt_at=now,
                created_at=now,
            )
            .on_conflict_do_nothing()
        )
        queued += int(getattr(result, "rowcount", 0) or 0)
    if queued:
        session.info[QUEUED] = True  # the worker is woken once this transaction commits
    return queued


@dataclass(frozen=True, slots=True)
class Claimed:
    id: int
    token: uuid.UUID
    endpoint_id: uuid.UUID
    webhook_id: str
    body: str
    attempts: int
    url: str
    secret_enc: str
    previous_secrets: list[dict[str, Any]]


def _earlier_pending() -> Any:
    d, e = WebhookDelivery, aliased(WebhookDelivery)
    return (
        select(e.id)
        .where(
            e.endpoint_id == d.endpoint_id,
            e.subject == d.subject,
            e.state == PENDING,
            tuple_(e.subject_version, e.occurred_at, e.id)
            < tuple_(d.subject_version, d.occurred_at, d.id),
        )
        .exists()
    )


async def claim(
    session: AsyncSession,
    *,
    limit: int,
    lease_seconds: float,
    per_endpoint: int,
    in_flight: Mapping[uuid.UUID, int],
) -> list[Claimed]:
    """Lease up to ``limit`` due deliveries, at most ``per_endpoint`` in flight per endpoint
    (counting ``in_flight``, this process's), each the first pending one of its subject."""
    if limit <= 0:
        return []
    now = utcnow()
    d = WebhookDelivery
    stmt = (
        select(d)
        .where(
            d.state == PENDING,
            d.next_attempt_at <= now,
            or_(d.leased_until.is_(None), d.leased_until <= now),
            ~_earlier_pending(),
        )
        .order_by(d.next_attempt_at, d.id)
        .limit(limit * 4)
    )
    if is_postgres(session):
        stmt = stmt.with_for_update(skip_locked=True, of=d)
    candidates = (await session.scalars(stmt)).all()
    counts = dict(in_flight)
    picked: list[WebhookDelivery] = []
    for delivery in candidates:
        if len(picked) >= limit:
            break
        if counts.get(delivery.endpoint_id, 0) >= per_endpoint:
            continue
        counts[delivery.endpoint_id] = counts.get(delivery.endpoint_id, 0) + 1
        picked.append(delivery)
    if not picked:
        return []
    endpoints = {
        e.id: e
        for e in await session.scalars(
            select(WebhookEndpoint).where(WebhookEndpoint.id.in_({p.endpoint_id for p in picked}))
        )
    }
    until = now + dt.timedelta(seconds=lease_seconds)
    claimed = []
    for delivery in picked:
        endpoint = endpoints.get(delivery.endpoint_id)
        if endpoint is None or not endpoint.enabled:  # a race with a delete or a 410
            continue
        token = uuid.uuid4()
        delivery.leased_until = until
        delivery.claim_token = token
        if delivery.first_attempt_at is None:
            delivery.first_attempt_at = now
        claimed.append(
            Claimed(
                id=delivery.id,
                token=token,
                endpoint_id=delivery.endpoint_id,
                webhook_id=delivery.webhook_id,
                body=delivery.body,
                attempts=delivery.attempts,
                url=endpoint.url,
                secret_enc=endpoint.secret_enc,
                previous_secrets=list(endpoint.previous_secrets or []),
            )
        )
    return claimed


async def finish(
    session: AsyncSession,
    claimed: Claimed,
    answer: Answer,
    *,
    attempted_at: dt.datetime,
    window_seconds: float,
    scale: float,
) -> str:
    """Record the attempt and what follows from it: delivered; the endpoint disabled (410);
    given up (the schedule is spent); or the next attempt's time."""
    stmt = select(WebhookDelivery).where(WebhookDelivery.id == claimed.id)
    if is_postgres(session):
        stmt = stmt.with_for_update()
    delivery = (await session.scalars(stmt)).one_or_none()
    if delivery is None or delivery.state != PENDING or delivery.claim_token != claimed.token:
        return STALE
    now = utcnow()
    delivery.attempts += 1
    session.add(
        WebhookAttempt(
            delivery_id=delivery.id,
            endpoint_id=delivery.endpoint_id,
            attempt=delivery.attempts,
            attempted_at=attempted_at,
            duration_ms=answer.duration_ms,
            status_code=answer.status_code,
            error=answer.error,
            response_excerpt=answer.excerpt,
        )
    )
    delivery.last_status_code = answer.status_code
    delivery.last_error = answer.error
    delivery.leased_until = None
    delivery.claim_token = None
    if answer.succeeded:
        delivery.state = DELIVERED
        delivery.finished_at = now
        return DELIVERED_OUTCOME
    if answer.gone:
        await disable_endpoint(
            session, delivery.endpoint_id, "the receiver answered 410 Gone", now=now
        )
        return ENDPOINT_GONE
    delay = schedule.next_delay(
        delivery.attempts - delivery.schedule_from,
        window_seconds=window_seconds,
        scale=scale,
        retry_after=answer.retry_after,
    )
    if delay is None:
        delivery.state = FAILED
        delivery.finished_at = now
        return GIVEN_UP
    delivery.next_attempt_at = now + dt.timedelta(seconds=delay)
    return RETRYING


async def disable_endpoint(
    session: AsyncSession, endpoint_id: uuid.UUID, reason: str, *, now: dt.datetime
) -> None:
    """Disable the endpoint and discard what was still to be delivered to it."""
    endpoint = await session.get(WebhookEndpoint, endpoint_id)
    if endpoint is None:
        return
    endpoint.enabled = False
    endpoint.disabled_reason = reason
    endpoint.disabled_at = now
    await session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.endpoint_id == endpoint_id, WebhookDelivery.state == PENDING)
        .values(
            state=DISCARDED,
            finished_at=now,
            leased_until=None,
            claim_token=None,
            last_error=f"endpoint disabled: {reason}",
        )
        .execution_options(synchronize_session="fetch")
    )


async def recover(
    session: AsyncSession,
    endpoint_id: uuid.UUID,
    *,
    since: dt.datetime,
    until: dt.datetime | None,
) -> int:
    """Queue again the endpoint's deliveries that were given up or discarded, of changes that
    happened from ``since`` (to ``until``): each with a retry schedule of its own starting now,
    the same ``webhook-id`` and body (a receiver that got one deduplicates it), in its subject's
    order again. How many were queued."""
    now = utcnow()
    d = WebhookDelivery
    where = [d.endpoint_id == endpoint_id, d.state.in_((FAILED, DISCARDED)), d.occurred_at >= since]
    if until is not None:
        where.append(d.occurred_at < until)
    result = await session.execute(
        update(d)
        .where(*where)
        .values(
            state=PENDING,
            schedule_from=d.attempts,
            next_attempt_at=now,
            finished_at=None,
            leased_until=None,
            claim_token=None,
        )
        .execution_options(synchronize_session=False)
    )
    recovered = int(getattr(result, "rowcount", 0) or 0)
    if recovered:
        session.info[QUEUED] = True  # the worker is woken once this transaction commits
    return recovered


async def remove_endpoint(session: AsyncSession, endpoint_id: uuid.UUID) -> None:
    await session.execute(delete(WebhookAttempt).where(WebhookAttempt.endpoint_id == endpoint_id))
    await session.execute(delete(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint_id))
    await session.execute(delete(WebhookEndpoint).where(WebhookEndpoint.id == endpoint_id))


@dataclass(frozen=True, slots=True)
class QueueStats:
    backlog: int
    oldest_due_age_seconds: float
    next_due_at: dt.datetime | None


async def stats(session: AsyncSession) -> QueueStats:
    now = utcnow()
    d = WebhookDelivery
    backlog, next_due = (
        await session.execute(
            select(func.count(d.id), func.min(d.next_attempt_at)).where(d.state == PENDING)
        )
    ).one()
    oldest = (
        await session.execute(
            select(func.min(d.next_attempt_at)).where(d.state == PENDING, d.next_attempt_at <= now)
        )
    ).scalar()
    age = 0.0
    if oldest is not None:
        if oldest.tzinfo is None:
            oldest = oldest.replace(tzinfo=dt.UTC)
        age = max(0.0, (now - oldest).total_seconds())
    if next_due is not None and next_due.tzinfo is None:
        next_due = next_due.replace(tzinfo=dt.UTC)
    return QueueStats(int(backlog), age, next_due)


async def prune(session: AsyncSession, retention_days: float) -> int:
    """Forget finished deliveries (and their attempts) older than the retention."""
    cutoff = utcnow() - dt.timedelta(days=retention_days)
    old = select(WebhookDelivery.id).where(
        WebhookDelivery.finished_at.is_not(None), WebhookDelivery.finished_at < cutoff
    )
    await session.execute(
        delete(WebhookAttempt).where(WebhookAttempt.delivery_id.in_(old.scalar_subquery()))
    )
    result = await session.execute(
        delete(WebhookDelivery).where(
            WebhookDelivery.finished_at.is_not(None), WebhookDelivery.finished_at < cutoff
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)
