"""enrollment seats (read model of registration's enrollments)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""
import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "enrollment_seats",
        sa.Column("enrollment_id", sa.Uuid(), nullable=False),
        sa.Column("company_id", sa.String(100), nullable=False),
        sa.Column("session_id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("enrollment_id", name=op.f("pk_enrollment_seats")),
    )
    op.create_index(op.f("ix_enrollment_seats_session_id"), "enrollment_seats", ["session_id"])


def downgrade() -> None:
    op.drop_table("enrollment_seats")
