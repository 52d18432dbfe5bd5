"""a day's recordings change (files trashed, recovered, deleted at Zoom): their version, and
when each file that went went

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("zoom_meetings") as batch:
        batch.add_column(
            sa.Column("recordings_version", sa.Integer(), nullable=False, server_default="0")
        )
        batch.add_column(sa.Column("recordings_gone", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("zoom_meetings") as batch:
        batch.drop_column("recordings_gone")
        batch.drop_column("recordings_version")
