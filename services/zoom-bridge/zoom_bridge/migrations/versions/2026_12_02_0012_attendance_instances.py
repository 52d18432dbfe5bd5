"""attendance per meeting instance: stays with their instance and the participant's Zoom ids,
the instances (ended, where their final attendance came from), admins' participant matches

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

from te_shared.db import UTCDateTime

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("attendance_segments") as batch:
        batch.add_column(sa.Column("instance_uuid", sa.String(100), nullable=True))
        batch.add_column(sa.Column("stay_id", sa.String(100), nullable=True))
        batch.add_column(
            sa.Column("source", sa.String(10), nullable=False, server_default="webhook")
        )
        batch.add_column(sa.Column("participant_uuid", sa.String(100), nullable=True))
        batch.add_column(sa.Column("registrant_id", sa.String(100), nullable=True))
        batch.add_column(sa.Column("zoom_user_id", sa.String(100), nullable=True))
        batch.add_column(sa.Column("name", sa.String(300), nullable=True))
    # rows of the reconciliation before this revision were the report's
    op.execute("UPDATE attendance_segments SET source = 'report' WHERE participant_key LIKE 'r:%'")
    op.create_table(
        "zoom_meeting_instances",
        sa.Column("day_id", sa.Uuid(), nullable=False),
        sa.Column("instance_uuid", sa.String(100), nullable=False),
        sa.Column("ended_at", UTCDateTime(), nullable=True),
        sa.Column("source", sa.String(10), nullable=True),
        sa.Column("report_unavailable_reason", sa.Text(), nullable=True),
        sa.Column("final_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("day_id", "instance_uuid", name=op.f("pk_zoom_meeting_instances")),
    )
    op.create_table(
        "zoom_participant_matches",
        sa.Column("day_id", sa.Uuid(), nullable=False),
        sa.Column("participant_id", sa.String(40), nullable=False),
        sa.Column("user_id", sa.String(100), nullable=False),
        sa.Column("email", sa.String(320), nullable=True),
        sa.Column("matched_by", sa.String(100), nullable=False),
        sa.Column("matched_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint(
            "day_id", "participant_id", name=op.f("pk_zoom_participant_matches")
        ),
    )


def downgrade() -> None:
    op.drop_table("zoom_participant_matches")
    op.drop_table("zoom_meeting_instances")
    with op.batch_alter_table("attendance_segments") as batch:
        for column in (
            "name",
            "zoom_user_id",
            "registrant_id",
            "participant_uuid",
            "source",
            "stay_id",
            "instance_uuid",
        ):
            batch.drop_column(column)
