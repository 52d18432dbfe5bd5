"""events, sessions, session names, days

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


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("company_id", sa.String(100), nullable=False),
        sa.Column("title", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("dated", sa.Boolean(), nullable=False),
        sa.Column("requires_approval", sa.Boolean(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
    )
    op.create_index(op.f("ix_events_company_id"), "events", ["company_id"])
    op.create_table(
        "sessions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("company_id", sa.String(100), nullable=False),
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("registration_end", UTCDateTime(), nullable=True),
        sa.Column("limit_enabled", sa.Boolean(), nullable=False),
        sa.Column("participant_limit", sa.Integer(), nullable=True),
        sa.Column("waitlist_enabled", sa.Boolean(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["event_id"], ["events.id"], name=op.f("fk_sessions_event_id_events"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sessions")),
    )
    op.create_index(op.f("ix_sessions_company_id"), "sessions", ["company_id"])
    op.create_index(op.f("ix_sessions_event_id"), "sessions", ["event_id"])
    op.create_table(
        "session_names",
        sa.Column("session_id", sa.Uuid(), nullable=False),
        sa.Column("locale", sa.String(40), nullable=False),
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(180), nullable=False),
        sa.Column("name_key", sa.String(180), nullable=False),
        sa.ForeignKeyConstraint(
            ["session_id"], ["sessions.id"], name=op.f("fk_session_names_session_id_sessions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("session_id", "locale", name=op.f("pk_session_names")),
        sa.UniqueConstraint(
            "event_id", "locale", "name_key", name=op.f("uq_session_names_event_id_locale_name_key")
        ),
    )
    op.create_table(
        "days",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("company_id", sa.String(100), nullable=False),
        sa.Column("session_id", sa.Uuid(), nullable=False),
        sa.Column("format", sa.String(16), nullable=False),
        sa.Column("start", UTCDateTime(), nullable=False),
        sa.Column("end", UTCDateTime(), nullable=False),
        sa.Column("address", sa.Text(), nullable=True),
        sa.Column("url", sa.Text(), nullable=True),
        sa.Column("zoom_account_id", sa.Uuid(), nullable=True),
        sa.Column("zoom_account_role", sa.String(16), nullable=True),
        sa.Column("zoom_organizer_user_id", sa.String(200), nullable=True),
        sa.Column("zoom_auto_recording", sa.Boolean(), nullable=False),
        sa.Column("meeting_status", sa.String(16), nullable=True),
        sa.Column("meeting_join_url", sa.Text(), nullable=True),
        sa.Column("meeting_error", sa.Text(), nullable=True),
        sa.Column("meeting_zoom_id", sa.String(64), nullable=True),
        sa.Column("meeting_version", sa.Integer(), nullable=False),
        sa.Column("recordings", sa.JSON(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["session_id"], ["sessions.id"], name=op.f("fk_days_session_id_sessions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_days")),
    )
    op.create_index(op.f("ix_days_company_id"), "days", ["company_id"])
    op.create_index(op.f("ix_days_session_id"), "days", ["session_id"])


def downgrade() -> None:
    op.drop_table("days")
    op.drop_table("session_names")
    op.drop_table("sessions")
    op.drop_table("events")
