"""Registering, reading, rotating and removing endpoints; the deliveries log."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from integrations.crypto import SecretCipher
from integrations.delivery import queue, signing
from integrations.delivery.targets import Resolver, TargetPolicy, TargetRefused, check_target
from integrations.models import PENDING, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from integrations.webhooks.schemas import (
    AttemptOut,
    DeliveryOut,
    DeliveryPage,
    EndpointIn,
    EndpointOut,
    EndpointPatch,
    EndpointWithSecret,
    RecoverIn,
)
from te_shared.db import utcnow
from te_shared.errors import Conflict, NotFound, field_error

#: endpoints one company may have (every message of the company goes to each)
MAX_ENDPOINTS = 50
#: rotated-out secrets kept signing at once (rotating again within the overlap keeps them)
MAX_PREVIOUS_SECRETS = 5
#: why an endpoint an admin disabled is disabled (``disabled_reason``)
DISABLED_BY_ADMIN = "disabled by an admin"


def _previous_expiry(endpoint: WebhookEndpoint, now: dt.datetime) -> dt.datetime | None:
    live = [
        dt.datetime.fromisoformat(str(p["expires_at"])) for p in endpoint.previous_secrets or []
    ]
    live = [at for at in live if at > now]
    return max(live) if live else None


def out(endpoint: WebhookEndpoint) -> EndpointOut:
    return EndpointOut(
        id=endpoint.id,
        url=endpoint.url,
        description=endpoint.description,
        events=list(endpoint.events),
        enabled=endpoint.enabled,
        disabled_reason=endpoint.disabled_reason,
        disabled_at=endpoint.disabled_at,
        created_at=endpoint.created_at,
        secret_rotated_at=endpoint.secret_rotated_at,
        previous_secret_expires_at=_previous_expiry(endpoint, utcnow()),
    )


def with_secret(endpoint: WebhookEndpoint, secret: str) -> EndpointWithSecret:
    return EndpointWithSecret(**out(endpoint).model_dump(), secret=secret)


async def check_url(url: str, policy: TargetPolicy, resolver: Resolver | None = None) -> None:
    """422 on ``body.url`` unless ``url`` may be a target (resolved now; checked again at
    every delivery)."""
    try:
        if resolver is None:
            await check_target(url, policy)
        else:
            await check_target(url, policy, resolver)
    except TargetRefused as exc:
        raise field_error("body.url", exc.reason, exc.code) from exc


def _unique(events: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(events))


async def create(
    session: AsyncSession, company_id: str, body: EndpointIn, cipher: SecretCipher
) -> EndpointWithSecret:
    count = await session.scalar(
        select(func.count())
        .select_from(WebhookEndpoint)
        .where(WebhookEndpoint.company_id == company_id)
    )
    if (count or 0) >= MAX_ENDPOINTS:
        raise Conflict(
            f"A company may have at most {MAX_ENDPOINTS} webhook endpoints.",
            code="too_many_endpoints",
        )
    secret = signing.new_secret()
    events = _unique(body.events)
    endpoint = WebhookEndpoint(
        id=uuid.uuid4(),
        company_id=company_id,
        url=body.url,
        description=body.description or None,
        events=["*"] if "*" in events else events,
        secret_enc=cipher.encrypt(secret),
        previous_secrets=[],
        enabled=True,
        created_at=utcnow(),
    )
    session.add(endpoint)
    await session.flush()
    return with_secret(endpoint, secret)


async def get(session: AsyncSession, company_id: str, endpoint_id: uuid.UUID) -> WebhookEndpoint:
    """The company's endpoint; another company's is as unknown as one that never existed."""
    endpoint = await session.get(WebhookEndpoint, endpoint_id)
    if endpoint is None or endpoint.company_id != company_id:
        raise NotFound("No such webhook endpoint.", code="endpoint_not_found")
    return endpoint


async def list_for(session: AsyncSession, company_id: str) -> list[EndpointOut]:
    endpoints = await session.scalars(
        select(WebhookEndpoint)
        .where(WebhookEndpoint.company_id == company_id)
        .order_by(WebhookEndpoint.created_at, WebhookEndpoint.id)
    )
    return [out(e) for e in endpoints]


async def rotate(
    session: AsyncSession,
    company_id: str,
    endpoint_id: uuid.UUID,
    cipher: SecretCipher,
    overlap: dt.timedelta,
) -> EndpointWithSecret:
    """A new secret signs from now on; the old one keeps signing beside it for ``overlap``."""
    endpoint = await get(session, company_id, endpoint_id)
    now = utcnow()
    kept = [
        p
        for p in endpoint.previous_secrets or []
        if dt.datetime.fromisoformat(str(p["expires_at"])) > now
    ]
    if overlap > dt.timedelta(0):
        kept.insert(
            0, {"secret_enc": endpoint.secret_enc, "expires_at": (now + overlap).isoformat()}
        )
    secret = signing.new_secret()
    endpoint.secret_enc = cipher.encrypt(secret)
    endpoint.previous_secrets = kept[:MAX_PREVIOUS_SECRETS]
    endpoint.secret_rotated_at = now
    await session.flush()
    return with_secret(endpoint, secret)


async def update(
    session: AsyncSession, endpoint: WebhookEndpoint, body: EndpointPatch
) -> EndpointOut:
    """Change what the admin gave on the company's ``endpoint`` (:func:`get`; the URL already
    checked). A new URL or event types apply to what is delivered from now on, pending
    deliveries included (they go to the new URL); ``enabled`` turns the endpoint on (changes
    from now on reach it) or off (what was pending is discarded, as a 410 does)."""
    given = body.model_fields_set
    if body.url is not None:
        endpoint.url = body.url
    if body.events is not None:
        events = _unique(body.events)
        endpoint.events = ["*"] if "*" in events else events
    if "description" in given:
        endpoint.description = body.description or None
    if body.enabled is True and not endpoint.enabled:
        endpoint.enabled = True
        endpoint.disabled_reason = None
        endpoint.disabled_at = None
    elif body.enabled is False and endpoint.enabled:
        await queue.disable_endpoint(session, endpoint.id, DISABLED_BY_ADMIN, now=utcnow())
    await session.flush()
    return out(endpoint)


async def recover(
    session: AsyncSession, company_id: str, endpoint_id: uuid.UUID, body: RecoverIn
) -> int:
    """Queue again the endpoint's given-up and discarded deliveries of the span (409 while the
    endpoint is disabled: they would only be discarded again)."""
    endpoint = await get(session, company_id, endpoint_id)
    if not endpoint.enabled:
        raise Conflict(
            "The endpoint is disabled: enable it first (PATCH with enabled: true).",
            code="endpoint_disabled",
        )
    return await queue.recover(session, endpoint.id, since=body.since, until=body.until)


async def remove(session: AsyncSession, company_id: str, endpoint_id: uuid.UUID) -> None:
    """The endpoint, what was still to be delivered to it and its log."""
    endpoint = await get(session, company_id, endpoint_id)
    await queue.remove_endpoint(session, endpoint.id)


async def deliveries(
    session: AsyncSession,
    company_id: str,
    endpoint_id: uuid.UUID,
    *,
    limit: int,
    cursor: int | None,
    state: str | None,
) -> DeliveryPage:
    """Newest first, with every attempt of each."""
    await get(session, company_id, endpoint_id)
    stmt = select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint_id)
    if cursor is not None:
        stmt = stmt.where(WebhookDelivery.id < cursor)
    if state is not None:
        stmt = stmt.where(WebhookDelivery.state == state)
    rows = list(await session.scalars(stmt.order_by(WebhookDelivery.id.desc()).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    attempts: dict[int, list[AttemptOut]] = {r.id: [] for r in rows}
    if rows:
        found = await session.scalars(
            select(WebhookAttempt)
            .where(WebhookAttempt.delivery_id.in_(list(attempts)))
            .order_by(WebhookAttempt.delivery_id, WebhookAttempt.attempt, WebhookAttempt.id)
        )
        for attempt in found:
            attempts[attempt.delivery_id].append(AttemptOut.model_validate(attempt))
    items = [
        DeliveryOut(
            webhook_id=r.webhook_id,
            message_id=r.message_id,
            event_type=r.event_type,
            state=r.state,
            occurred_at=r.occurred_at,
            created_at=r.created_at,
            next_attempt_at=r.next_attempt_at if r.state == PENDING else None,
            finished_at=r.finished_at,
            attempts=attempts[r.id],
        )
        for r in rows
    ]
    return DeliveryPage(items=items, next_cursor=str(rows[-1].id) if more and rows else None)
