"""Operations: a started service has frozen what startup built and collects its youngest
generation every ten thousand objects, not Python's 700 (a sign-up storm spent 540-670 ms in
collections at the default, seven of them full pauses of every request in flight)."""

from __future__ import annotations

import gc

from catalog.app import create_app
from catalog.settings import CatalogSettings
from te_shared.service import YOUNG_COLLECTION_THRESHOLD
from te_testing.infra import DatabaseFactory, RabbitNamespace, running_app, settings_for


async def test_a_started_service_freezes_startup_and_collects_young_objects_less_often(
    databases: DatabaseFactory, fresh_rabbit: RabbitNamespace
) -> None:
    before = gc.get_threshold()
    gc.set_threshold(700, 10, 10)  # Python's default, whatever an earlier test started
    try:
        app = create_app(settings_for(CatalogSettings, await databases.create("gc"), fresh_rabbit))
        async with running_app(app) as client:
            assert (await client.get("/health/live")).status_code == 200
            assert gc.get_threshold() == (YOUNG_COLLECTION_THRESHOLD, 10, 10)
            assert gc.get_freeze_count() > 0
    finally:
        gc.set_threshold(*before)
