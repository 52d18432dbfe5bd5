"""Operations: the zoom-bridge migration that adds ``zoom_recording_instances`` fills it from
the recordings days already hold, so Zoom's bulk recording notifications (which name meeting
instances only) reach recordings attached before the upgrade."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

import asyncpg
import pytest
from alembic import command
from alembic.config import Config

from te_testing.infra import DatabaseFactory, use_sqlite
from zoom_bridge.app import MIGRATIONS


def _upgrade(url: str, script_location: Path, revision: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(script_location))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    config.attributes["database_url"] = url
    command.upgrade(config, revision)


@pytest.mark.skipif(use_sqlite(), reason="production runs PostgreSQL")
async def test_the_instances_of_recordings_held_before_the_upgrade_are_found(
    databases: DatabaseFactory,
) -> None:
    url = await databases.create("rec-inst")
    await asyncio.to_thread(_upgrade, url, MIGRATIONS, "0016")
    day, empty = uuid.uuid4(), uuid.uuid4()
    files = [
        {"id": "v", "play_url": "https://zoom.us/rec/play/v", "instance": "inst-a=="},
        {"id": "a", "play_url": "https://zoom.us/rec/play/a", "instance": "inst-a=="},
        {"id": "c", "play_url": "https://zoom.us/rec/play/c", "instance": "inst-b=="},
        {"id": "old", "play_url": "https://zoom.us/rec/play/old"},  # stored before instances
    ]
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        insert = (
            "INSERT INTO zoom_meetings (day_id, company_id, session_id, event_id, version,"
            " desired, status, synced_version, topic, timezone, auto_recording, ended,"
            " registration, recordings) VALUES ($1, 'acme', $2, $3, 1, 'present', 'created',"
            " 1, 'Day', 'UTC', true, true, true, $4::json)"
        )
        await conn.execute(insert, day, uuid.uuid4(), uuid.uuid4(), json.dumps(files))
        await conn.execute(insert, empty, uuid.uuid4(), uuid.uuid4(), None)
        await asyncio.to_thread(_upgrade, url, MIGRATIONS, "head")
        rows = await conn.fetch(
            "SELECT instance_uuid, day_id FROM zoom_recording_instances ORDER BY instance_uuid"
        )
    finally:
        await conn.close()
    assert [(r["instance_uuid"], r["day_id"]) for r in rows] == [
        ("inst-a==", day),
        ("inst-b==", day),
    ]
