"""a session's first start and last end, kept from its days, so "my events" picks and orders a
tab's events in SQL

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

from te_shared.db import UTCDateTime

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("session_replica") as batch:
        batch.add_column(sa.Column("first_start", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("last_end", UTCDateTime(), nullable=True))
    op.execute(
        "UPDATE session_replica SET "
        "first_start = (SELECT min(d.start) FROM day_replica d "
        "WHERE d.session_id = session_replica.session_id AND NOT d.deleted), "
        "last_end = (SELECT max(d.\"end\") FROM day_replica d "
        "WHERE d.session_id = session_replica.session_id AND NOT d.deleted)"
    )


def downgrade() -> None:
    with op.batch_alter_table("session_replica") as batch:
        batch.drop_column("last_end")
        batch.drop_column("first_start")
