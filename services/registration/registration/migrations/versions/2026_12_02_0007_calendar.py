"""calendar feeds (hashed tokens) and the zoom days' shared join links

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

from te_shared.db import UTCDateTime

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "meeting_link",
        sa.Column("day_id", sa.Uuid(), nullable=False),
        sa.Column("company_id", sa.String(100), nullable=False),
        sa.Column("join_url", sa.Text(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("changes", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("day_id", name=op.f("pk_meeting_link")),
    )
    op.create_table(
        "calendar_feed",
        sa.Column("company_id", sa.String(100), nullable=False),
        sa.Column("user_id", sa.String(200), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("company_id", "user_id", name=op.f("pk_calendar_feed")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_calendar_feed_token_hash")),
    )


def downgrade() -> None:
    op.drop_table("calendar_feed")
    op.drop_table("meeting_link")
