"""The catalog service: company settings, events, sessions and days."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from opentelemetry.sdk.trace import TracerProvider

from catalog.company.endpoints import router as company_router
from catalog.days.endpoints import router as days_router
from catalog.events.endpoints import router as events_router
from catalog.handlers import consumers
from catalog.models import IdempotencyRecord, InboxRecord, OutboxRecord
from catalog.sessions.endpoints import router as sessions_router
from catalog.settings import CatalogSettings
from te_shared.service import create_service_app

MIGRATIONS = Path(__file__).parent / "migrations"


def create_app(
    settings: CatalogSettings | None = None, *, tracer_provider: TracerProvider | None = None
) -> FastAPI:
    return create_service_app(
        tracer_provider=tracer_provider,
        settings=settings or CatalogSettings(),
        title="catalog",
        description="Company settings, events, sessions and days of the training platform.",
        routers=[company_router, events_router, sessions_router, days_router],
        consumers=consumers,
        outbox_model=OutboxRecord,
        inbox_model=InboxRecord,
        migrations=MIGRATIONS,
        idempotency_model=IdempotencyRecord,
    )
