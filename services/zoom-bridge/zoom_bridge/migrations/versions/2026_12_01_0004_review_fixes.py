"""durable create flag and meeting account, time-based retry budget, webhook retries, per-app
webhook secrets

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

from te_shared.db import UTCDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("zoom_meetings") as batch:
        batch.add_column(sa.Column("meeting_account_id", sa.Uuid(), nullable=True))
        batch.add_column(sa.Column("create_account_id", sa.Uuid(), nullable=True))
    # meetings created so far live on the day's account
    op.execute(
        "UPDATE zoom_meetings SET meeting_account_id = account_id "
        "WHERE zoom_meeting_id IS NOT NULL"
    )
    with op.batch_alter_table("zoom_jobs") as batch:
        batch.add_column(sa.Column("retry_until", UTCDateTime(), nullable=True))
    with op.batch_alter_table("zoom_accounts") as batch:
        batch.add_column(sa.Column("webhook_secret_enc", sa.Text(), nullable=True))
    op.create_index(op.f("ix_zoom_accounts_zoom_account_id"), "zoom_accounts", ["zoom_account_id"])
    with op.batch_alter_table("zoom_webhook_events") as batch:
        batch.add_column(sa.Column("processed_at", UTCDateTime(), nullable=True))
        batch.add_column(
            sa.Column("attempts", sa.Integer(), nullable=False, server_default=sa.text("0"))
        )
        batch.add_column(sa.Column("next_attempt_at", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("last_error", sa.Text(), nullable=True))
        batch.add_column(
            sa.Column("failed", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    op.execute("UPDATE zoom_webhook_events SET next_attempt_at = received_at")
    op.execute("UPDATE zoom_webhook_events SET processed_at = received_at WHERE processed")
    with op.batch_alter_table("zoom_webhook_events") as batch:
        batch.alter_column("next_attempt_at", existing_type=UTCDateTime(), nullable=False)
    op.create_index(
        op.f("ix_zoom_webhook_events_next_attempt_at"), "zoom_webhook_events", ["next_attempt_at"]
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_zoom_webhook_events_next_attempt_at"), "zoom_webhook_events")
    with op.batch_alter_table("zoom_webhook_events") as batch:
        for column in ("failed", "last_error", "next_attempt_at", "attempts", "processed_at"):
            batch.drop_column(column)
    op.drop_index(op.f("ix_zoom_accounts_zoom_account_id"), "zoom_accounts")
    with op.batch_alter_table("zoom_accounts") as batch:
        batch.drop_column("webhook_secret_enc")
    with op.batch_alter_table("zoom_jobs") as batch:
        batch.drop_column("retry_until")
    with op.batch_alter_table("zoom_meetings") as batch:
        batch.drop_column("create_account_id")
        batch.drop_column("meeting_account_id")
