"""The registration service: access, enrollments, limits, statuses and imports."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from opentelemetry.sdk.trace import TracerProvider

from registration.access.endpoints import router as access_router
from registration.enrollments.endpoints import router as enrollments_router
from registration.enrollments.endpoints import sign_up_router
from registration.enrollments.fast_path import close_pool, dispatch_first, open_pool
from registration.handlers import consumers
from registration.me.endpoints import feeds as feed_router
from registration.me.endpoints import router as me_router
from registration.models import IdempotencyRecord, InboxRecord, OutboxRecord
from registration.settings import RegistrationSettings
from te_shared.service import create_service_app

MIGRATIONS = Path(__file__).parent / "migrations"


def create_app(
    settings: RegistrationSettings | None = None, *, tracer_provider: TracerProvider | None = None
) -> FastAPI:
    app = create_service_app(
        tracer_provider=tracer_provider,
        settings=settings or RegistrationSettings(),
        title="registration",
        description="Access, enrollments, limits, statuses and imports.",
        routers=[access_router, sign_up_router, enrollments_router, me_router, feed_router],
        consumers=consumers,
        outbox_model=OutboxRecord,
        inbox_model=InboxRecord,
        migrations=MIGRATIONS,
        idempotency_model=IdempotencyRecord,
        startup=[open_pool],
        shutdown=[close_pool],
    )
    dispatch_first(app, sign_up_router)
    return app
