"""Zoom's event_ts of the last meeting.deleted or meeting.recovered applied to a day's meeting:
they come in no order

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("zoom_meetings") as batch:
        batch.add_column(sa.Column("presence_notified_at", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("zoom_meetings") as batch:
        batch.drop_column("presence_notified_at")
