"""integrations' own Prometheus metrics, next to te_shared's, in the same registry, served at
``/metrics``."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from sqlalchemy.ext.asyncio import AsyncSession

from integrations.delivery import queue


class IntegrationsMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.deliveries = Counter(
            "webhook_deliveries_total",
            "Delivery attempts by outcome (delivered; retrying: failed, tried again later; "
            "given_up: the retry schedule is spent; endpoint_gone: a 410 disabled the endpoint)",
            ["outcome"],
            registry=registry,
        )
        self.duration = Histogram(
            "webhook_delivery_duration_seconds",
            "Time of one delivery attempt, answer or not",
            registry=registry,
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )
        self.backlog = Gauge(
            "webhook_delivery_backlog",
            "Deliveries waiting to be delivered (due now or later)",
            registry=registry,
        )
        self.oldest_due_age = Gauge(
            "webhook_delivery_oldest_due_age_seconds",
            "How long the longest-waiting due delivery has been due (0: none is late)",
            registry=registry,
        )

    async def refresh(self, session: AsyncSession) -> None:
        """Read the queue's figures from the database (when Prometheus scrapes)."""
        stats = await queue.stats(session)
        self.backlog.set(stats.backlog)
        self.oldest_due_age.set(stats.oldest_due_age_seconds)
