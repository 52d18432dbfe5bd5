"""the meeting a host deleted at Zoom, remembered, so that one recovered from Zoom's trash is
known as the day's

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("zoom_meetings") as batch:
        batch.add_column(sa.Column("gone_zoom_meeting_id", sa.String(40), nullable=True))
        batch.add_column(sa.Column("gone_account_id", sa.Uuid(), nullable=True))
    op.create_index(
        op.f("ix_zoom_meetings_gone_zoom_meeting_id"), "zoom_meetings", ["gone_zoom_meeting_id"]
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_zoom_meetings_gone_zoom_meeting_id"), table_name="zoom_meetings")
    with op.batch_alter_table("zoom_meetings") as batch:
        batch.drop_column("gone_account_id")
        batch.drop_column("gone_zoom_meeting_id")
