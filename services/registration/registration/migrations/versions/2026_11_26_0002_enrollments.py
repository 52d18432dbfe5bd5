"""read model, access, enrollments, history, attendance

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""
import sqlalchemy as sa
from alembic import op

from te_shared.db import UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

LIVE = sa.text("status <> 'cancelled'")


def upgrade() -> None:
    op.create_table(
        "event_replica",
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("company_id", sa.String(100), nullable=False),
        sa.Column("title", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("dated", sa.Boolean(), nullable=False),
        sa.Column("requires_approval", sa.Boolean(), nullable=False),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_event_replica")),
    )
    op.create_index("ix_event_replica_company_id", "event_replica", ["company_id"])
    op.create_table(
        "session_replica",
        sa.Column("session_id", sa.Uuid(), nullable=False),
        sa.Column("company_id", sa.String(100), nullable=False),
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.JSON(), nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("registration_end", UTCDateTime(), nullable=True),
        sa.Column("limit_enabled", sa.Boolean(), nullable=False),
        sa.Column("participant_limit", sa.Integer(), nullable=True),
        sa.Column("waitlist_enabled", sa.Boolean(), nullable=False),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("taken", sa.Integer(), nullable=False, server_default="0"),
        sa.PrimaryKeyConstraint("session_id", name=op.f("pk_session_replica")),
    )
    op.create_index("ix_session_replica_event_id", "session_replica", ["event_id"])
    op.create_table(
        "day_replica",
        sa.Column("day_id", sa.Uuid(), nullable=False),
        sa.Column("company_id", sa.String(100), nullable=False),
        sa.Column("session_id", sa.Uuid(), nullable=False),
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("format", sa.String(20), nullable=False),
        sa.Column("start", UTCDateTime(), nullable=True),
        sa.Column("end", UTCDateTime(), nullable=True),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("day_id", name=op.f("pk_day_replica")),
    )
    op.create_index("ix_day_replica_session_id", "day_replica", ["session_id"])
    op.create_index("ix_day_replica_event_id", "day_replica", ["event_id"])
    op.create_table(
        "access",
        sa.Column("company_id", sa.String(100), nullable=False),
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.String(200), nullable=False),
        sa.Column("granted_at", UTCDateTime(), nullable=False),
        sa.Column("granted_by", sa.String(200), nullable=False),
        sa.PrimaryKeyConstraint("company_id", "event_id", "user_id", name=op.f("pk_access")),
    )
    op.create_table(
        "known_user",
        sa.Column("company_id", sa.String(100), nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("user_id", sa.String(200), nullable=False),
        sa.PrimaryKeyConstraint("company_id", "email", name=op.f("pk_known_user")),
    )
    op.create_table(
        "enrollment",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("company_id", sa.String(100), nullable=False),
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("session_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.String(200), nullable=False),
        sa.Column("email", sa.String(320), nullable=True),
        sa.Column("status", sa.String(30), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_enrollment")),
    )
    op.create_index(
        "uq_enrollment_live",
        "enrollment",
        ["company_id", "event_id", "user_id"],
        unique=True,
        postgresql_where=LIVE,
        sqlite_where=LIVE,
    )
    op.create_index(
        "ix_enrollment_session_status", "enrollment", ["session_id", "status", "created_at"]
    )
    op.create_index("ix_enrollment_user_id", "enrollment", ["user_id"])
    op.create_table(
        "enrollment_history",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False,
                  autoincrement=True),
        sa.Column("enrollment_id", sa.Uuid(), nullable=False),
        sa.Column("company_id", sa.String(100), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("by", sa.String(200), nullable=False),
        sa.Column("from_status", sa.String(30), nullable=True),
        sa.Column("to_status", sa.String(30), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_enrollment_history")),
    )
    op.create_index(
        "ix_enrollment_history_enrollment_id", "enrollment_history", ["enrollment_id"]
    )
    op.create_table(
        "attendance",
        sa.Column("day_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.String(200), nullable=False),
        sa.Column("company_id", sa.String(100), nullable=False),
        sa.Column("event_id", sa.Uuid(), nullable=True),
        sa.Column("joined", sa.Boolean(), nullable=False),
        sa.Column("minutes", sa.Integer(), nullable=True),
        sa.Column("final", sa.Boolean(), nullable=False),
        sa.Column("recorded_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("day_id", "user_id", name=op.f("pk_attendance")),
    )
    op.create_index("ix_attendance_event_id", "attendance", ["event_id"])


def downgrade() -> None:
    for table in (
        "attendance",
        "enrollment_history",
        "enrollment",
        "known_user",
        "access",
        "day_replica",
        "session_replica",
        "event_replica",
    ):
        op.drop_table(table)
