"""The registration service: access, enrollments, limits, statuses and imports."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from te_shared.service import create_service_app
from registration.handlers import consumers
from registration.models import InboxRecord, OutboxRecord
from registration.settings import RegistrationSettings

MIGRATIONS = Path(__file__).parent / "migrations"


def create_app(settings: RegistrationSettings | None = None) -> FastAPI:
    return create_service_app(
        settings=settings or RegistrationSettings(),
        title="registration",
        description="Access, enrollments, limits, statuses and imports.",
        routers=[],
        consumers=consumers,
        outbox_model=OutboxRecord,
        inbox_model=InboxRecord,
        migrations=MIGRATIONS,
    )
