"""an event's first start and registration close, kept from its sessions, so "my events" picks
and orders the Available tab in SQL without a subquery per event

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-04
"""

import datetime as dt

import sqlalchemy as sa
from alembic import op

from te_shared.db import UTCDateTime

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

#: registration.readmodel.FAR_FUTURE: a session without a registration end never closes
FAR_FUTURE = dt.datetime.max.replace(tzinfo=dt.UTC)


def upgrade() -> None:
    with op.batch_alter_table("event_replica") as batch:
        batch.add_column(sa.Column("first_start", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("registration_closes", UTCDateTime(), nullable=True))
    events = sa.table(
        "event_replica",
        sa.column("event_id", sa.Uuid()),
        sa.column("first_start", UTCDateTime()),
        sa.column("registration_closes", UTCDateTime()),
    )
    sessions = sa.table(
        "session_replica",
        sa.column("event_id", sa.Uuid()),
        sa.column("deleted", sa.Boolean()),
        sa.column("first_start", UTCDateTime()),
        sa.column("registration_end", UTCDateTime()),
    )
    alive = sa.and_(sessions.c.event_id == events.c.event_id, sessions.c.deleted.is_(False))
    far = sa.literal(FAR_FUTURE, UTCDateTime())
    op.execute(
        events.update().values(
            first_start=sa.select(sa.func.min(sessions.c.first_start))
            .where(alive)
            .scalar_subquery(),
            registration_closes=sa.select(
                sa.func.max(sa.func.coalesce(sessions.c.registration_end, far))
            )
            .where(alive)
            .scalar_subquery(),
        )
    )


def downgrade() -> None:
    with op.batch_alter_table("event_replica") as batch:
        batch.drop_column("registration_closes")
        batch.drop_column("first_start")
