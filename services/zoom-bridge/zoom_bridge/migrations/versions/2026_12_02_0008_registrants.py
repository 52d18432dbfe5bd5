"""meeting registrants: seat holders registered for administrator-role meetings, with their
personal join links (encrypted)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

from te_shared.db import UTCDateTime

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "zoom_registrants",
        sa.Column("day_id", sa.Uuid(), nullable=False),
        sa.Column("enrollment_id", sa.Uuid(), nullable=False),
        sa.Column("company_id", sa.String(100), nullable=False),
        sa.Column("zoom_meeting_id", sa.String(40), nullable=False),
        sa.Column("zoom_registrant_id", sa.String(100), nullable=False),
        sa.Column("join_url_enc", sa.Text(), nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("registered_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("day_id", "enrollment_id", name=op.f("pk_zoom_registrants")),
    )
    op.create_index(
        op.f("ix_zoom_registrants_zoom_registrant_id"), "zoom_registrants", ["zoom_registrant_id"]
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_zoom_registrants_zoom_registrant_id"), table_name="zoom_registrants")
    op.drop_table("zoom_registrants")
