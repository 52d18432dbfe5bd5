"""The integrations service: outbound webhooks (Standard Webhooks) to the companies' receivers."""

from __future__ import annotations

import logging
from pathlib import Path

from fastapi import FastAPI
from opentelemetry.sdk.trace import TracerProvider

from integrations.crypto import configure
from integrations.delivery.worker import start_worker, stop_worker
from integrations.handlers import consumers
from integrations.metrics import IntegrationsMetrics
from integrations.models import IdempotencyRecord, InboxRecord, OutboxRecord
from integrations.settings import IntegrationsSettings
from integrations.webhooks.endpoints import router as webhooks_router
from te_shared.service import Runtime, create_service_app

MIGRATIONS = Path(__file__).parent / "migrations"


def create_app(
    settings: IntegrationsSettings | None = None, *, tracer_provider: TracerProvider | None = None
) -> FastAPI:
    settings = settings or IntegrationsSettings()
    cipher = configure(settings.webhook_secret_key.get_secret_value())
    app = create_service_app(
        tracer_provider=tracer_provider,
        settings=settings,
        title="integrations",
        description="Outbound webhooks (Standard Webhooks) to the companies' own receivers.",
        routers=[webhooks_router],
        consumers=consumers,
        idempotency_model=IdempotencyRecord,
        outbox_model=OutboxRecord,
        inbox_model=InboxRecord,
        migrations=MIGRATIONS,
        startup=[start_worker],
        shutdown=[stop_worker],
    )
    runtime: Runtime = app.state.runtime
    runtime.extras["cipher"] = cipher
    metrics = IntegrationsMetrics(runtime.metrics.registry)
    runtime.extras["integrations_metrics"] = metrics

    async def refresh_queue(rt: Runtime) -> None:
        async with rt.session_factory()() as session:
            await metrics.refresh(session)

    runtime.gauge_hooks.append(refresh_queue)
    # httpcore's DEBUG traces print whole requests' headers (the signatures): keep them quiet
    logging.getLogger("httpcore").setLevel(max(logging.WARNING, logging.getLogger().level))
    return app
