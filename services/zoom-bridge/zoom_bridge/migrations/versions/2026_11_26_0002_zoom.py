"""zoom: accounts, oauth states, meetings, jobs, enrollments, webhook events, attendance

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
        "zoom_accounts",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("company_id", sa.String(100), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("zoom_user_id", sa.String(100), nullable=False),
        sa.Column("zoom_account_id", sa.String(100), nullable=False),
        sa.Column("zoom_user_email", sa.String(320), nullable=False),
        sa.Column("access_token_enc", sa.Text(), nullable=True),
        sa.Column("refresh_token_enc", sa.Text(), nullable=True),
        sa.Column("s2s_client_id", sa.String(200), nullable=True),
        sa.Column("s2s_client_secret_enc", sa.Text(), nullable=True),
        sa.Column("expires_at", UTCDateTime(), nullable=True),
        sa.Column("connected_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_zoom_accounts")),
    )
    op.create_index(op.f("ix_zoom_accounts_company_id"), "zoom_accounts", ["company_id"])
    op.create_table(
        "zoom_oauth_states",
        sa.Column("nonce", sa.String(64), nullable=False),
        sa.Column("company_id", sa.String(100), nullable=False),
        sa.Column("admin_user_id", sa.String(100), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("nonce", name=op.f("pk_zoom_oauth_states")),
    )
    op.create_table(
        "zoom_meetings",
        sa.Column("day_id", sa.Uuid(), nullable=False),
        sa.Column("company_id", sa.String(100), nullable=False),
        sa.Column("session_id", sa.Uuid(), nullable=False),
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("desired", sa.String(10), nullable=False),
        sa.Column("account_id", sa.Uuid(), nullable=True),
        sa.Column("organizer_user_id", sa.String(100), nullable=True),
        sa.Column("auto_recording", sa.Boolean(), nullable=False),
        sa.Column("topic", sa.String(300), nullable=False),
        sa.Column("start", UTCDateTime(), nullable=True),
        sa.Column("end", UTCDateTime(), nullable=True),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("synced_version", sa.Integer(), nullable=False),
        sa.Column("zoom_meeting_id", sa.String(40), nullable=True),
        sa.Column("join_url", sa.Text(), nullable=True),
        sa.Column("start_url_enc", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("ended", sa.Boolean(), nullable=False),
        sa.Column("recordings", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("day_id", name=op.f("pk_zoom_meetings")),
    )
    op.create_index(op.f("ix_zoom_meetings_company_id"), "zoom_meetings", ["company_id"])
    op.create_index(op.f("ix_zoom_meetings_zoom_meeting_id"), "zoom_meetings", ["zoom_meeting_id"])
    op.create_table(
        "zoom_jobs",
        sa.Column("day_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", UTCDateTime(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("day_id", "kind", name=op.f("pk_zoom_jobs")),
    )
    op.create_index(op.f("ix_zoom_jobs_next_attempt_at"), "zoom_jobs", ["next_attempt_at"])
    op.create_table(
        "enrollments",
        sa.Column("enrollment_id", sa.Uuid(), nullable=False),
        sa.Column("company_id", sa.String(100), nullable=False),
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("session_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.String(100), nullable=False),
        sa.Column("email", sa.String(320), nullable=True),
        sa.Column("status", sa.String(30), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("enrollment_id", name=op.f("pk_enrollments")),
    )
    op.create_index(op.f("ix_enrollments_session_id"), "enrollments", ["session_id"])
    op.create_table(
        "zoom_webhook_events",
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("event", sa.String(100), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.Column("processed", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("digest", name=op.f("pk_zoom_webhook_events")),
    )
    op.create_index(
        op.f("ix_zoom_webhook_events_processed"), "zoom_webhook_events", ["processed"]
    )
    op.create_table(
        "attendance_segments",
        sa.Column("day_id", sa.Uuid(), nullable=False),
        sa.Column("participant_key", sa.String(200), nullable=False),
        sa.Column("email", sa.String(320), nullable=True),
        sa.Column("join_time", UTCDateTime(), nullable=True),
        sa.Column("leave_time", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("day_id", "participant_key", name=op.f("pk_attendance_segments")),
    )


def downgrade() -> None:
    for table in (
        "attendance_segments",
        "zoom_webhook_events",
        "enrollments",
        "zoom_jobs",
        "zoom_meetings",
        "zoom_oauth_states",
        "zoom_accounts",
    ):
        op.drop_table(table)
