"""The bridge's own Prometheus metrics, next to te_shared's (``zoom_api_calls_total`` and the
rest), in the same registry, served at ``/metrics``."""

from __future__ import annotations

import re

from prometheus_client import CollectorRegistry, Counter, Gauge
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from zoom_bridge.models import WebhookEvent

#: outcomes of a webhook delivery (``zoom_webhooks_received_total``)
ACCEPTED = "accepted"
DUPLICATE = "duplicate"
IGNORED = "ignored"
BAD_SIGNATURE = "bad_signature"
STALE = "stale"
VALIDATED = "url_validation"
BAD_REQUEST = "bad_request"

#: outcomes of processing a stored webhook (``zoom_webhooks_processing_total``)
PROCESSED = "processed"
FAILED = "failed"
GIVEN_UP = "given_up"

_EVENT_NAME = re.compile(r"^[a-z][a-z0-9_.]{0,63}$")


def event_label(event: object, known: frozenset[str] | None = None) -> str:
    """A bounded label for a webhook's event: with ``known``, only those names (an unverified
    body names anything it likes); else any plausible Zoom event name. Others are ``other``."""
    name = event if isinstance(event, str) else ""
    if known is not None:
        return name if name in known else "other"
    return name if _EVENT_NAME.match(name) else "other"


class BridgeMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.webhooks_received = Counter(
            "zoom_webhooks_received_total",
            "Webhook deliveries by event and outcome (accepted, duplicate, ignored, "
            "bad_signature, stale, url_validation, bad_request)",
            ["event", "outcome"],
            registry=registry,
        )
        self.webhooks_processing = Counter(
            "zoom_webhooks_processing_total",
            "Attempts at processing stored webhooks by event and outcome (processed; failed: "
            "kept for a later attempt; given_up: attempts spent, kept with its error)",
            ["event", "outcome"],
            registry=registry,
        )
        self.webhook_backlog = Gauge(
            "zoom_webhook_backlog",
            "Stored webhooks not processed, by state (pending: waiting for an attempt; "
            "given_up: kept with its error, needing an operator)",
            ["state"],
            registry=registry,
        )
        self.duplicate_meetings_deleted = Counter(
            "zoom_duplicate_meetings_deleted_total",
            "Second meetings a create whose answer was lost made on Zoom, found and deleted by "
            "the verification after the day's meeting was stored",
            registry=registry,
        )

    async def refresh(self, session: AsyncSession) -> None:
        """Read the backlog from the database (when Prometheus scrapes)."""
        rows = await session.execute(
            select(WebhookEvent.failed, func.count())
            .where(WebhookEvent.processed.is_(False))
            .group_by(WebhookEvent.failed)
        )
        counts = {bool(failed): int(n) for failed, n in rows.all()}
        self.webhook_backlog.labels("pending").set(counts.get(False, 0))
        self.webhook_backlog.labels("given_up").set(counts.get(True, 0))
