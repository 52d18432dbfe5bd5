"""enrollments of e-mails not bound to a user yet, and their attendance

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

from te_shared.db import UTCDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

UNBOUND_LIVE = sa.text("user_id IS NULL AND status <> 'cancelled'")


def upgrade() -> None:
    with op.batch_alter_table("enrollment") as batch:
        batch.alter_column("user_id", existing_type=sa.String(200), nullable=True)
    op.create_index(
        "uq_enrollment_live_unbound",
        "enrollment",
        ["company_id", "event_id", "email"],
        unique=True,
        postgresql_where=UNBOUND_LIVE,
        sqlite_where=UNBOUND_LIVE,
    )
    op.create_index("ix_enrollment_unbound_email", "enrollment", ["company_id", "email"])
    op.create_table(
        "pending_attendance",
        sa.Column("company_id", sa.String(100), nullable=False),
        sa.Column("day_id", sa.Uuid(), nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("event_id", sa.Uuid(), nullable=True),
        sa.Column("joined", sa.Boolean(), nullable=False),
        sa.Column("minutes", sa.Integer(), nullable=True),
        sa.Column("final", sa.Boolean(), nullable=False),
        sa.Column("recorded_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint(
            "company_id", "day_id", "email", name=op.f("pk_pending_attendance")
        ),
    )
    op.create_index(
        op.f("ix_pending_attendance_event_id"), "pending_attendance", ["event_id"]
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_pending_attendance_event_id"), table_name="pending_attendance")
    op.drop_table("pending_attendance")
    op.drop_index("ix_enrollment_unbound_email", table_name="enrollment")
    op.drop_index("uq_enrollment_live_unbound", table_name="enrollment")
    op.execute("DELETE FROM enrollment WHERE user_id IS NULL")
    with op.batch_alter_table("enrollment") as batch:
        batch.alter_column("user_id", existing_type=sa.String(200), nullable=False)
