"""when an unanswered create was sent and when it settles; the pass of a multi-pass job; the
worker lease of a job, apart from when it is next due

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

from te_shared.db import UTCDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("zoom_meetings") as batch:
        batch.add_column(sa.Column("create_sent_at", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("create_settles_at", UTCDateTime(), nullable=True))
    with op.batch_alter_table("zoom_jobs") as batch:
        batch.add_column(
            sa.Column("step", sa.Integer(), nullable=False, server_default=sa.text("0"))
        )
        batch.add_column(sa.Column("leased_until", UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("zoom_jobs") as batch:
        batch.drop_column("leased_until")
        batch.drop_column("step")
    with op.batch_alter_table("zoom_meetings") as batch:
        batch.drop_column("create_settles_at")
        batch.drop_column("create_sent_at")
