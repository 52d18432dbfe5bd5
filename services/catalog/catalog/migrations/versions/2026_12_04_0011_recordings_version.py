"""a day's recordings are replaced whole by the newest RecordingsChanged: its version

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("days") as batch:
        batch.add_column(
            sa.Column("recordings_version", sa.Integer(), nullable=False, server_default="0")
        )


def downgrade() -> None:
    with op.batch_alter_table("days") as batch:
        batch.drop_column("recordings_version")
