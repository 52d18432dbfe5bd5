"""The zoom-bridge service: zoom accounts, meetings per day, webhooks, attendance and recordings."""

from __future__ import annotations

import logging
from pathlib import Path

from fastapi import FastAPI
from opentelemetry.sdk.trace import TracerProvider

from te_shared.service import Runtime, create_service_app
from zoom_bridge.accounts.endpoints import router as accounts_router
from zoom_bridge.handlers import consumers
from zoom_bridge.meetings.endpoints import router as meetings_router
from zoom_bridge.metrics import BridgeMetrics
from zoom_bridge.models import IdempotencyRecord, InboxRecord, OutboxRecord
from zoom_bridge.participants.endpoints import router as participants_router
from zoom_bridge.settings import ZoomBridgeSettings
from zoom_bridge.webhooks.endpoints import router as webhooks_router
from zoom_bridge.webhooks.intake import Intake
from zoom_bridge.webhooks.secrets import SecretCache
from zoom_bridge.worker import start_worker, stop_worker

MIGRATIONS = Path(__file__).parent / "migrations"


def create_app(
    settings: ZoomBridgeSettings | None = None, *, tracer_provider: TracerProvider | None = None
) -> FastAPI:
    settings = settings or ZoomBridgeSettings()
    app = create_service_app(
        tracer_provider=tracer_provider,
        settings=settings,
        title="zoom-bridge",
        description="Zoom accounts, meetings per day, webhooks, attendance and recordings.",
        routers=[accounts_router, meetings_router, participants_router, webhooks_router],
        consumers=consumers,
        idempotency_model=IdempotencyRecord,
        # Zoom's own calls: signed webhooks (no bearer token) and the OAuth redirect
        idempotency_exempt=("/v1/zoom/webhooks", "/v1/zoom/oauth/"),
        outbox_model=OutboxRecord,
        inbox_model=InboxRecord,
        migrations=MIGRATIONS,
        startup=[start_worker],
        shutdown=[stop_worker],
    )
    runtime: Runtime = app.state.runtime
    metrics = BridgeMetrics(runtime.metrics.registry)
    runtime.extras["bridge_metrics"] = metrics
    runtime.extras["webhook_intake"] = Intake(runtime.session_factory)
    runtime.extras["webhook_secrets"] = SecretCache(settings.zoom_webhook_secret_cache_seconds)

    async def refresh_backlog(rt: Runtime) -> None:
        async with rt.session_factory()() as session:
            await metrics.refresh(session)

    runtime.gauge_hooks.append(refresh_backlog)
    # httpcore's DEBUG traces print whole response headers (a Location with an OAuth code, say):
    # keep them to warnings, as te_shared does for httpx
    logging.getLogger("httpcore").setLevel(max(logging.WARNING, logging.getLogger().level))
    return app
