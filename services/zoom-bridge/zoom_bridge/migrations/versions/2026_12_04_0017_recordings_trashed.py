"""recording files in Zoom's trash kept as they were shown, and the meeting instances whose
recordings a day holds: Zoom's bulk recording notifications name instances and file ids only

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-04
"""

import json
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("zoom_meetings") as batch:
        batch.add_column(sa.Column("recordings_trashed", sa.JSON(), nullable=True))
    instances = op.create_table(
        "zoom_recording_instances",
        sa.Column("instance_uuid", sa.String(200), nullable=False),
        sa.Column("day_id", sa.Uuid(), nullable=False),
        sa.PrimaryKeyConstraint("instance_uuid", "day_id"),
    )
    # the instances of the recordings already held (each stored file names its instance)
    meetings = sa.table("zoom_meetings", sa.column("day_id", sa.Uuid()), sa.column("recordings"))
    connection = op.get_bind()
    found: set[tuple[str, Any]] = set()
    for day_id, recordings in connection.execute(
        sa.select(meetings.c.day_id, meetings.c.recordings).where(
            meetings.c.recordings.is_not(None)
        )
    ):
        files = json.loads(recordings) if isinstance(recordings, str) else recordings
        for item in files if isinstance(files, list) else []:
            instance = item.get("instance") if isinstance(item, dict) else None
            if isinstance(instance, str) and 0 < len(instance) <= 200:
                found.add((instance, day_id))
    if found:
        op.bulk_insert(instances, [{"instance_uuid": i, "day_id": d} for i, d in sorted(found)])


def downgrade() -> None:
    op.drop_table("zoom_recording_instances")
    with op.batch_alter_table("zoom_meetings") as batch:
        batch.drop_column("recordings_trashed")
