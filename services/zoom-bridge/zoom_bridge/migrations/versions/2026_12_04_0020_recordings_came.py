"""files recovered by id (a bulk recovery) before the day showed them, and instances whose
whole recording went (a bulk trash), and when

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("zoom_meetings") as batch:
        batch.add_column(sa.Column("recordings_came", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("recordings_instances_gone", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("zoom_meetings") as batch:
        batch.drop_column("recordings_instances_gone")
        batch.drop_column("recordings_came")
